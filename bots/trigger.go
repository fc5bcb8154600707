package bots

import (
	"fmt"
	"regexp"
	"regexp/syntax"
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

// RE2 matches in time linear in the text, but the factor is the size of
// the compiled program: (.*){1000}z is 12 characters, compiles to 4003
// instructions and took about 50 s on a 1 MB message (3 ns per instruction
// and byte on the NFA). Both factors are bounded:
//
//   - MaxRegexInsts bounds the program, measured as regexp compiles it
//     (regexp/syntax's Compile of the simplified expression). 2000 admits
//     any pattern of maxTriggerLen characters without counted repetition
//     (a 1000-character literal is 1002 instructions) and every reasonable
//     one with it; (.*){1000} does not pass.
//   - MaxRegexText bounds the text a regex is matched against: its first
//     4096 bytes, cut at a character boundary. The worst admitted pattern
//     then costs about 25 ms per message and bot.
const (
	MaxRegexInsts = 2000
	MaxRegexText  = 4096
)

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
			re, err := compileRegex(value)
			if err != nil {
				return nil, err
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

// compileRegex compiles a regex trigger, refusing one whose program is
// too large to match in bounded time (see MaxRegexInsts). Bots saved by
// older versions are compiled again when loaded, so a stored pattern over
// the bound is refused then, and the bot does not match by trigger.
func compileRegex(value string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(value)
	if err != nil {
		return nil, fieldErr("triggerValue", "invalid regular expression: %v", err)
	}
	// regexp.Compile parses with syntax.Perl and runs this program.
	ast, err := syntax.Parse(value, syntax.Perl)
	if err != nil {
		return nil, fieldErr("triggerValue", "invalid regular expression: %v", err)
	}
	prog, err := syntax.Compile(ast.Simplify())
	if err != nil {
		return nil, fieldErr("triggerValue", "invalid regular expression: %v", err)
	}
	if n := len(prog.Inst); n > MaxRegexInsts {
		return nil, fieldErr("triggerValue", "pattern too complex: it compiles to %d instructions, at most %d are allowed; "+
			"use fewer or smaller counted repetitions such as {1000}", n, MaxRegexInsts)
	}
	return re, nil
}

// regexText is the part of text a regex trigger looks at: the first
// MaxRegexText bytes, without splitting a character.
func regexText(text string) string {
	if len(text) <= MaxRegexText {
		return text
	}
	cut := MaxRegexText
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return text[:cut]
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
			return t.re.MatchString(regexText(text))
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
