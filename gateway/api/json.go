package api

import "strings"

// MergePatch applies an RFC 7386 JSON merge patch to doc and returns it:
// objects merge recursively, null removes a key, anything else replaces.
func MergePatch(doc, patch map[string]any) map[string]any {
	if doc == nil {
		doc = map[string]any{}
	}
	for k, v := range patch {
		switch pv := v.(type) {
		case nil:
			delete(doc, k)
		case map[string]any:
			dv, _ := doc[k].(map[string]any)
			doc[k] = MergePatch(dv, pv)
		default:
			doc[k] = v
		}
	}
	return doc
}

// MaskKey keeps a key's scheme prefix and last four characters: "sk-…abcd".
// Provider keys are shown only so.
func MaskKey(key string) string {
	if len(key) < 12 {
		return "…"
	}
	prefix := ""
	if i := strings.IndexByte(key, '-'); i > 0 && i <= 4 {
		prefix = key[:i+1]
	}
	return prefix + "…" + key[len(key)-4:]
}
