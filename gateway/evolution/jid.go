package evolution

import "strings"

// maxJIDLen bounds chat and sender ids, as stored and as named in paths.
const maxJIDLen = 256

// NormalizeJID is the one rule for naming a chat: a JID is kept as given
// (suffix included, unlike Evolution), a phone number becomes a WhatsApp
// user JID. The inbound route and the chat routes share it, so that every
// chat stored can be named again in a path or a filter. It returns the
// problem with n instead when n is neither.
func NormalizeJID(n string) (jid, problem string) {
	n = strings.TrimSpace(n)
	switch {
	case n == "":
		return "", "required"
	case len(n) > maxJIDLen:
		return "", "longer than 256 characters"
	case strings.Contains(n, "@"):
		if strings.HasPrefix(n, "@") || strings.HasSuffix(n, "@") || strings.ContainsFunc(n, isSpaceOrControl) {
			return "", "not a valid JID"
		}
		return n, ""
	}
	digits := strings.Map(func(r rune) rune {
		switch {
		case r >= '0' && r <= '9':
			return r
		case r == '+' || r == ' ' || r == '-' || r == '(' || r == ')' || r == '.':
			return -1
		}
		return 'x'
	}, n)
	if digits == "" || strings.Contains(digits, "x") {
		return "", "must be a phone number (digits, country code first) or a full JID"
	}
	return digits + "@s.whatsapp.net", ""
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }
