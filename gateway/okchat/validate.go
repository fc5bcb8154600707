package okchat

import (
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/wagate/wagate"
)

// Checks of JSON values decoded into any, each recording its problem under
// the JSON path the client sent.

func checkString(p *wagate.Problems, path string, v any, max int) (string, bool) {
	s, ok := v.(string)
	switch {
	case !ok:
		p.Add(path, "must be a string")
	case utf8.RuneCountInString(s) > max:
		p.Add(path, fmt.Sprintf("longer than %d characters", max))
	case strings.ContainsRune(s, 0):
		p.Add(path, "must not contain NUL characters")
	default:
		return s, true
	}
	return "", false
}

func checkBool(p *wagate.Problems, path string, v any) (bool, bool) {
	b, ok := v.(bool)
	if !ok {
		p.Add(path, "must be a boolean")
	}
	return b, ok
}

func checkNumber(p *wagate.Problems, path string, v any, lo, hi float64) {
	n, ok := v.(float64)
	switch {
	case !ok:
		p.Add(path, "must be a number")
	case n < lo || n > hi:
		p.Add(path, fmt.Sprintf("must be between %g and %g", lo, hi))
	}
}

func checkInteger(p *wagate.Problems, path string, v any, lo, hi float64) {
	n, ok := v.(float64)
	switch {
	case !ok || n != float64(int64(n)):
		p.Add(path, "must be an integer")
	case n < lo || n > hi:
		p.Add(path, fmt.Sprintf("must be between %g and %g", lo, hi))
	}
}

func checkObject(p *wagate.Problems, path string, v any) (map[string]any, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		p.Add(path, "must be an object")
	}
	return m, ok
}

var colorPattern = regexp.MustCompile(`^#[0-9A-Fa-f]{6}$`)

func checkColor(p *wagate.Problems, path string, v any) {
	if s, ok := checkString(p, path, v, 7); ok && !colorPattern.MatchString(s) {
		p.Add(path, "must be a colour as #RRGGBB")
	}
}

// checkURL accepts an absolute http or https URL, or "" for none.
func checkURL(p *wagate.Problems, path string, v any) {
	s, ok := checkString(p, path, v, 2048)
	if !ok || s == "" {
		return
	}
	if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		p.Add(path, "must be an absolute http or https URL")
	}
}

var languagePattern = regexp.MustCompile(`^(auto|[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8})*)$`)

// checkFields runs the check of each key of m that has one; keys without
// one are refused when strict.
func checkFields(p *wagate.Problems, prefix string, m map[string]any, strict bool, checks map[string]func(path string, v any)) {
	for k, v := range m {
		if check, ok := checks[k]; ok {
			if v != nil { // null removes the key in a merge patch
				check(prefix+k, v)
			}
		} else if strict {
			p.Add(prefix+k, "unknown field")
		}
	}
}

// widgetChecks are the checks of the chat widget's branding, which is also
// settings.snippet.
func widgetChecks(p *wagate.Problems) map[string]func(string, any) {
	text := func(path string, v any) { checkString(p, path, v, 255) }
	return map[string]func(string, any){
		"name": text, "header": text, "slogan": text,
		"logo":           func(path string, v any) { checkURL(p, path, v) },
		"primaryColor":   func(path string, v any) { checkColor(p, path, v) },
		"secondaryColor": func(path string, v any) { checkColor(p, path, v) },
		"language": func(path string, v any) {
			if s, ok := checkString(p, path, v, 35); ok && !languagePattern.MatchString(s) {
				p.Add(path, `must be "auto" or a language tag such as "en" or "pt-BR"`)
			}
		},
	}
}

// checkVoiceWidget checks the voice agent's configuration.
func checkVoiceWidget(p *wagate.Problems, m map[string]any) {
	text := func(max int) func(string, any) {
		return func(path string, v any) { checkString(p, path, v, max) }
	}
	color := func(path string, v any) { checkColor(p, path, v) }
	radius := func(path string, v any) { checkNumber(p, path, v, 0, 1000) }
	object := func(checks map[string]func(string, any)) func(string, any) {
		return func(path string, v any) {
			if o, ok := checkObject(p, path, v); ok {
				checkFields(p, path+".", o, true, checks)
			}
		}
	}
	checkFields(p, "", m, true, map[string]func(string, any){
		"agentId": text(64),
		"voice":   text(64),
		"model": object(map[string]func(string, any){
			"temperature":       func(path string, v any) { checkNumber(p, path, v, 0, 2) },
			"max_output_tokens": func(path string, v any) { checkInteger(p, path, v, 1, 1<<20) },
		}),
		"vad": object(map[string]func(string, any){
			"threshold":           func(path string, v any) { checkNumber(p, path, v, 0, 1) },
			"prefix_padding_ms":   func(path string, v any) { checkInteger(p, path, v, 0, 60000) },
			"silence_duration_ms": func(path string, v any) { checkInteger(p, path, v, 0, 60000) },
		}),
		"avatar": object(map[string]func(string, any){
			"imageUrl": func(path string, v any) { checkURL(p, path, v) },
		}),
		"appearance": object(map[string]func(string, any){
			"backgroundColor": color, "borderColor": color, "buttonColor": color, "buttonTextColor": color,
			"focusOutlineColor": color, "textColor": color, "buttonRadius": radius, "cardRadius": radius,
		}),
		"text": object(map[string]func(string, any){
			"startCall": text(255), "endCall": text(255), "callToAction": text(255),
			"listeningStatus": text(255), "speakingStatus": text(255),
		}),
	})
}

// checkOrigins checks a web chat's allowed origins: at most 50 origins as
// browsers send them, scheme://host[:port] with no path.
func checkOrigins(p *wagate.Problems, path string, v any) {
	list, ok := v.([]any)
	if !ok || len(list) > 50 {
		p.Add(path, "must be an array of at most 50 origins, e.g. [\"https://shop.example.com\"]")
		return
	}
	for i, item := range list {
		s, _ := item.(string)
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") ||
			u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			p.Add(fmt.Sprintf("%s[%d]", path, i), "must be an origin: scheme://host[:port], e.g. https://shop.example.com")
		}
	}
}
