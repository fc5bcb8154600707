package bots

import (
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/runes"
	"golang.org/x/text/transform"
	"golang.org/x/text/unicode/norm"

	"github.com/wagate/wagate"
)

// Trigger types and keyword operators (Evolution's names).
const (
	TriggerAll      = "all"
	TriggerKeyword  = "keyword"
	TriggerNone     = "none"
	TriggerAdvanced = "advanced"

	OpEquals     = "equals"
	OpContains   = "contains"
	OpStartsWith = "startsWith"
	OpEndsWith   = "endsWith"
	OpRegex      = "regex"
)

// TriggerTypes and TriggerOperators list the accepted values.
var (
	TriggerTypes     = []string{TriggerAll, TriggerKeyword, TriggerNone, TriggerAdvanced}
	TriggerOperators = []string{OpContains, OpEquals, OpStartsWith, OpEndsWith, OpRegex}
)

// maxTriggerLen bounds trigger values; RE2 has no catastrophic backtracking,
// but a huge pattern still costs memory per bot.
const maxTriggerLen = 1000

// Trigger is a compiled bot trigger.
type Trigger struct {
	typ, op string
	value   string // normalised keyword
	re      *regexp.Regexp
	adv     advanced
}

// advanced is a parsed advanced trigger: operator → alternatives (ORed),
// each alternative a list of values that must all hold (ANDed); different
// operators are ANDed.
type advanced map[string][][]string

var advancedOps = []string{"contains", "notcontains", "startswith", "endswith", "exact"}

// CompileTrigger validates and compiles a trigger. Errors say what is wrong
// with which field, for the API to report as it is.
func CompileTrigger(typ, op, value string) (*Trigger, error) {
	t := &Trigger{typ: typ, op: op}
	if len(value) > maxTriggerLen {
		return nil, fieldErr("triggerValue", "longer than %d characters", maxTriggerLen)
	}
	switch typ {
	case TriggerAll, TriggerNone:
		return t, nil
	case TriggerKeyword:
		switch op {
		case "":
			return nil, fieldErr("triggerOperator", "required for keyword triggers: one of %s", strings.Join(TriggerOperators, ", "))
		case OpRegex:
			if value == "" {
				return nil, fieldErr("triggerValue", "required for keyword triggers")
			}
			re, err := regexp.Compile(value)
			if err != nil {
				return nil, fieldErr("triggerValue", "invalid regular expression: %v", err)
			}
			t.re = re
		case OpEquals, OpContains, OpStartsWith, OpEndsWith:
			t.value = Normalize(value)
			if t.value == "" {
				return nil, fieldErr("triggerValue", "required for keyword triggers")
			}
		default:
			return nil, fieldErr("triggerOperator", "must be one of %s", strings.Join(TriggerOperators, ", "))
		}
		return t, nil
	case TriggerAdvanced:
		adv, err := parseAdvanced(value)
		if err != nil {
			return nil, err
		}
		t.adv = adv
		return t, nil
	}
	return nil, fieldErr("triggerType", "must be one of %s", strings.Join(TriggerTypes, ", "))
}

func parseAdvanced(value string) (advanced, error) {
	tokens := strings.Fields(value)
	if len(tokens) == 0 {
		return nil, fieldErr("triggerValue", `required for advanced triggers, e.g. "contains:order startswith:hi"`)
	}
	adv := advanced{}
	for _, tok := range tokens {
		op, vals, ok := strings.Cut(tok, ":")
		op = strings.ToLower(op)
		if !ok || vals == "" {
			return nil, fieldErr("triggerValue", "token %q must be operator:value", tok)
		}
		known := false
		for _, o := range advancedOps {
			known = known || o == op
		}
		if !known {
			return nil, fieldErr("triggerValue", "unknown operator %q in %q; use %s", op, tok, strings.Join(advancedOps, ", "))
		}
		var all []string
		for _, v := range strings.Split(vals, ",") {
			if v = Normalize(v); v == "" {
				return nil, fieldErr("triggerValue", "empty value in %q", tok)
			}
			all = append(all, v)
		}
		adv[op] = append(adv[op], all)
	}
	return adv, nil
}

// Match reports whether the message text triggers. text is the message
// text or audio transcript, never a media placeholder.
func (t *Trigger) Match(text string) bool { return t.MatchText(NewText(text)) }

// Text is a message text to match against several triggers, normalised
// once: normalising it again for each of a hundred bots took half a
// millisecond and 800 KB per message (BenchmarkTriggerMatch100Bots).
type Text struct {
	raw, norm  string
	normalised bool
}

// NewText prepares text for matching.
func NewText(text string) *Text { return &Text{raw: text} }

func (x *Text) normal() string {
	if !x.normalised {
		x.norm, x.normalised = Normalize(x.raw), true
	}
	return x.norm
}

// MatchText is Match for a prepared text.
func (t *Trigger) MatchText(x *Text) bool {
	text := x.raw
	if strings.TrimSpace(text) == "" {
		return false
	}
	switch t.typ {
	case TriggerAll:
		return true
	case TriggerKeyword:
		if t.re != nil {
			return t.re.MatchString(text)
		}
		n := x.normal()
		switch t.op {
		case OpEquals:
			return n == t.value
		case OpContains:
			return strings.Contains(n, t.value)
		case OpStartsWith:
			return strings.HasPrefix(n, t.value)
		case OpEndsWith:
			return strings.HasSuffix(n, t.value)
		}
	case TriggerAdvanced:
		n := x.normal()
		for op, alternatives := range t.adv {
			if !anyAlternative(op, alternatives, n) {
				return false
			}
		}
		return true
	}
	return false // none: reachable only as the fallback
}

func anyAlternative(op string, alternatives [][]string, text string) bool {
	for _, values := range alternatives {
		ok := true
		for _, v := range values {
			ok = ok && advancedHolds(op, v, text)
		}
		if ok {
			return true
		}
	}
	return false
}

func advancedHolds(op, v, text string) bool {
	switch op {
	case "contains":
		return strings.Contains(text, v)
	case "notcontains":
		return !strings.Contains(text, v)
	case "startswith":
		return strings.HasPrefix(text, v)
	case "endswith":
		return strings.HasSuffix(text, v)
	case "exact":
		return text == v
	}
	return false
}

// Rank orders triggers of equal priority, most specific first: keyword
// equals, regex, startsWith, endsWith, contains, advanced, all. none
// never matches and ranks last.
func (t *Trigger) Rank() int {
	switch t.typ {
	case TriggerKeyword:
		switch {
		case t.re != nil:
			return 1
		case t.op == OpEquals:
			return 0
		case t.op == OpStartsWith:
			return 2
		case t.op == OpEndsWith:
			return 3
		default:
			return 4
		}
	case TriggerAdvanced:
		return 5
	case TriggerAll:
		return 6
	}
	return 7
}

// Normalize is how keywords and messages are compared: trimmed, lower
// case, without accents ("  Olá " → "ola").
func Normalize(s string) string {
	if isASCII(s) { // nothing to decompose: skip the Unicode transform
		return strings.ToLower(strings.TrimSpace(s))
	}
	t := normalizers.Get().(transform.Transformer)
	out, _, err := transform.String(t, s)
	normalizers.Put(t)
	if err != nil {
		out = s
	}
	return strings.ToLower(strings.TrimSpace(out))
}

// normalizers are reusable accent-stripping transformers (a chain is not
// safe for concurrent use; building one per call was most of its cost).
var normalizers = sync.Pool{New: func() any {
	return transform.Chain(norm.NFD, runes.Remove(runes.In(unicode.Mn)), norm.NFC)
}}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

func fieldErr(field, format string, args ...any) error {
	return wagate.Invalid(field, fmt.Sprintf(format, args...))
}
