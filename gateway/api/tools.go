package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"

	"github.com/wagate/wagate"
)

// MaxTools is OpenAI's own limit on the tools of one request: a bot with
// more could never call the model.
const MaxTools = 128

var toolNamePattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// CheckTools validates OpenAI function definitions sent at path (an
// instance bot's tools, a chatbot's settings.tools), every problem under
// its own path. It accepts the chat completions form
// {"type":"function","function":{…}} and a bare function
// {"name","description","parameters"}, and returns the former; nil for
// none.
func CheckTools(path string, raw json.RawMessage, p *wagate.Problems) (json.RawMessage, bool) {
	if len(bytes.TrimSpace(raw)) == 0 || string(bytes.TrimSpace(raw)) == "null" {
		return nil, true
	}
	var list []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &list); err != nil {
		p.Add(path, "must be an array of function definitions")
		return nil, false
	}
	if len(list) == 0 {
		return nil, true
	}
	if len(list) > MaxTools {
		p.Add(path, fmt.Sprintf("more than %d tools; OpenAI accepts at most %d per request", MaxTools, MaxTools))
		return nil, false
	}
	type function struct {
		Name        string          `json:"name"`
		Description string          `json:"description,omitempty"`
		Parameters  json.RawMessage `json:"parameters,omitempty"`
		Strict      *bool           `json:"strict,omitempty"`
	}
	type tool struct {
		Type     string   `json:"type"`
		Function function `json:"function"`
	}
	out := make([]tool, 0, len(list))
	ok := true
	for i, item := range list {
		field := fmt.Sprintf("%s[%d]", path, i)
		def := item
		if t, has := item["type"]; has {
			if string(t) != `"function"` {
				p.Add(field+".type", `must be "function"`)
				ok = false
				continue
			}
			def = nil
			if err := json.Unmarshal(item["function"], &def); err != nil || def == nil {
				p.Add(field+".function", "required: an object with name, description and parameters")
				ok = false
				continue
			}
			field += ".function"
		}
		var fn function
		b, _ := json.Marshal(def)
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&fn); err != nil {
			p.Add(field, "must hold only name, description, parameters and strict")
			ok = false
			continue
		}
		if !toolNamePattern.MatchString(fn.Name) {
			p.Add(field+".name", "required: 1 to 64 characters of A-Z, a-z, 0-9, '_' or '-'")
			ok = false
		}
		if len(fn.Parameters) > 0 {
			var obj map[string]any
			if json.Unmarshal(fn.Parameters, &obj) != nil {
				p.Add(field+".parameters", "must be a JSON Schema object")
				ok = false
			}
		}
		if slices.ContainsFunc(out, func(t tool) bool { return t.Function.Name == fn.Name }) {
			p.Add(field+".name", "defined twice")
			ok = false
		}
		out = append(out, tool{Type: "function", Function: fn})
	}
	if !ok {
		return nil, false
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, false
	}
	return b, true
}
