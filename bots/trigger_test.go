package bots

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
)

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"  Olá  ":      "ola",
		"AÇÃO":         "acao",
		"Crème brûlée": "creme brulee",
		"#SAIR":        "#sair",
		"":             "",
	} {
		if got := Normalize(in); got != want {
			t.Errorf("Normalize(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTriggerMatch(t *testing.T) {
	tests := []struct {
		typ, op, value string
		text           string
		want           bool
	}{
		{TriggerAll, "", "", "anything", true},
		{TriggerAll, "", "", "   ", false},
		{TriggerNone, "", "", "anything", false},
		{TriggerKeyword, OpEquals, "Teste", "  teste ", true},
		{TriggerKeyword, OpEquals, "olá", "OLA", true},
		{TriggerKeyword, OpEquals, "teste", "teste 2", false},
		{TriggerKeyword, OpContains, "pedido", "Meu PEDIDO chegou?", true},
		{TriggerKeyword, OpContains, "pedido", "pedi", false},
		{TriggerKeyword, OpStartsWith, "oi", "Oi, tudo bem", true},
		{TriggerKeyword, OpStartsWith, "oi", "e aí, oi", false},
		{TriggerKeyword, OpEndsWith, "obrigado", "muito obrigado!", false},
		{TriggerKeyword, OpEndsWith, "obrigado", "muito obrigado", true},
		{TriggerKeyword, OpRegex, `^order #\d+$`, "order #42", true},
		{TriggerKeyword, OpRegex, `^order #\d+$`, "Order #42", false}, // case-sensitive by default
		{TriggerKeyword, OpRegex, `(?i)^order #\d+$`, "ORDER #42", true},
		// A regex sees the first MaxRegexText bytes, cut at a character.
		{TriggerKeyword, OpRegex, `pedido`, strings.Repeat("x", MaxRegexText-6) + "pedido", true},
		{TriggerKeyword, OpRegex, `pedido`, strings.Repeat("x", MaxRegexText-5) + "pedido", false},
		{TriggerKeyword, OpRegex, `^x+é$`, strings.Repeat("x", MaxRegexText-1) + "é", false},
		{TriggerKeyword, OpRegex, `^x+$`, strings.Repeat("x", MaxRegexText-1) + "é", true},
		{TriggerKeyword, OpContains, "pedido", strings.Repeat("x", MaxRegexText) + " pedido", true}, // keywords see it all
		// advanced: different operators AND, repeated operator OR, commas AND
		{TriggerAdvanced, "", "contains:pedido,status startswith:oi startswith:ola", "Olá, status do pedido?", true},
		{TriggerAdvanced, "", "contains:pedido,status startswith:oi startswith:ola", "oi, meu pedido", false},
		{TriggerAdvanced, "", "contains:pedido,status startswith:oi startswith:ola", "bom dia, status do pedido", false},
		{TriggerAdvanced, "", "contains:price notcontains:free", "What is the PRICE?", true},
		{TriggerAdvanced, "", "contains:price notcontains:free", "price of the free plan", false},
		{TriggerAdvanced, "", "exact:menu", " Menu ", true},
		{TriggerAdvanced, "", "exact:menu", "menu please", false},
		{TriggerAdvanced, "", "endswith:?", "is it open?", true},
		{TriggerAdvanced, "", "Contains:Ação", "qual a acao", true},
	}
	for _, tt := range tests {
		tr, err := CompileTrigger(tt.typ, tt.op, tt.value)
		if err != nil {
			t.Fatalf("CompileTrigger(%q, %q, %q): %v", tt.typ, tt.op, tt.value, err)
		}
		if got := tr.Match(tt.text); got != tt.want {
			t.Errorf("%s %s %q on %q = %v, want %v", tt.typ, tt.op, tt.value, tt.text, got, tt.want)
		}
	}
}

func TestCompileTriggerErrors(t *testing.T) {
	tests := []struct {
		typ, op, value string
		field          string
	}{
		{"", "", "", "triggerType"},
		{"sometimes", "", "", "triggerType"},
		{TriggerKeyword, "", "x", "triggerOperator"},
		{TriggerKeyword, "like", "x", "triggerOperator"},
		{TriggerKeyword, OpEquals, "  ", "triggerValue"},
		{TriggerKeyword, OpRegex, "", "triggerValue"},
		{TriggerKeyword, OpRegex, "(", "triggerValue"},
		{TriggerKeyword, OpRegex, `(?=x)`, "triggerValue"}, // lookahead: not RE2
		{TriggerAdvanced, "", "", "triggerValue"},
		{TriggerAdvanced, "", "contains", "triggerValue"},
		{TriggerAdvanced, "", "contains:", "triggerValue"},
		{TriggerAdvanced, "", "contains:a,,b", "triggerValue"},
		{TriggerAdvanced, "", "has:a", "triggerValue"},
		{TriggerKeyword, OpContains, string(make([]byte, 1001)), "triggerValue"},
		{TriggerKeyword, OpRegex, `(.*){1000}z`, "triggerValue"}, // RE2 accepts it; 4003 instructions
		{TriggerKeyword, OpRegex, `(ab|cd){600}`, "triggerValue"},
		{TriggerKeyword, OpRegex, `[a-z]{1000}[0-9]{1000}`, "triggerValue"},
	}
	for _, tt := range tests {
		_, err := CompileTrigger(tt.typ, tt.op, tt.value)
		if wagate.ErrorCode(err) != wagate.EINVALID {
			t.Errorf("CompileTrigger(%q, %q, %q) = %v, want EINVALID", tt.typ, tt.op, tt.value, err)
			continue
		}
		if msg := wagate.ErrorMessages(err)[0]; len(msg) < len(tt.field) || msg[:len(tt.field)+1] != tt.field+":" {
			t.Errorf("CompileTrigger(%q, %q, %q) message %q does not name %s", tt.typ, tt.op, tt.value, msg, tt.field)
		}
	}
}

func TestTriggerRank(t *testing.T) {
	order := []struct{ typ, op, value string }{
		{TriggerKeyword, OpEquals, "x"},
		{TriggerKeyword, OpRegex, "x"},
		{TriggerKeyword, OpStartsWith, "x"},
		{TriggerKeyword, OpEndsWith, "x"},
		{TriggerKeyword, OpContains, "x"},
		{TriggerAdvanced, "", "contains:x"},
		{TriggerAll, "", ""},
		{TriggerNone, "", ""},
	}
	prev := -1
	for _, o := range order {
		tr, err := CompileTrigger(o.typ, o.op, o.value)
		if err != nil {
			t.Fatal(err)
		}
		if r := tr.Rank(); r <= prev {
			t.Errorf("%s/%s ranks %d, not after %d", o.typ, o.op, r, prev)
		} else {
			prev = r
		}
	}
}

// FuzzAdvancedTrigger checks that any trigger value either fails to compile
// with a field error or compiles into a trigger that matches without panics.
func FuzzAdvancedTrigger(f *testing.F) {
	f.Add("contains:pedido,status startswith:oi", "oi, status do pedido")
	f.Add("exact:ação notcontains:x,y", "AÇÃO")
	f.Add("::: ,:, contains:,", "")
	f.Fuzz(func(t *testing.T, value, text string) {
		tr, err := CompileTrigger(TriggerAdvanced, "", value)
		if err != nil {
			if wagate.ErrorCode(err) != wagate.EINVALID {
				t.Fatalf("error without a field: %v", err)
			}
			return
		}
		tr.Match(text)
	})
}

// Patterns RE2 accepts and people write stay accepted under the program
// bound, including a literal of the longest trigger.
func TestCompileTriggerAcceptsReasonableRegexes(t *testing.T) {
	for _, re := range []string{
		`(?i)^order #\d+$`,
		`(?i)^(oi|ola|olá|bom dia|boa tarde|boa noite|hello|hi|hey)\b`,
		`\d{3}-\d{4}-\d{4}`,
		`(\w+\s+){1,20}`,
		`.{1,500}`,
		`[\p{Greek}\p{Han}]+`,
		strings.Repeat("a", maxTriggerLen),
		"(?i)" + strings.Repeat("é", 497),
		strings.Repeat("(ab|cd)", 140),
	} {
		if _, err := CompileTrigger(TriggerKeyword, OpRegex, re); err != nil {
			t.Errorf("CompileTrigger(regex %.40q): %v", re, err)
		}
	}
}

// A stopping engine stops matching between bots instead of finishing a
// long list of triggers; the message stays undecided.
func TestMatchStopsWhenStopping(t *testing.T) {
	tr, err := CompileTrigger(TriggerAll, "", "")
	if err != nil {
		t.Fatal(err)
	}
	settings := DefaultSettings("inst")
	sb := &store.Bot{ID: "bot", InstanceID: "inst", Enabled: true, TriggerType: TriggerAll, CreatedAt: time.Unix(1, 0)}
	c := &chat{inst: &store.Instance{ID: "inst"}, jid: "5511@s.whatsapp.net", settings: settings,
		bots: []*bot{{Bot: sb, trigger: tr, eff: EffectiveFor(sb, settings)}}}
	m := &store.Message{RemoteJID: c.jid, Text: "oi"}
	if b, _, err := c.match(context.Background(), m, m.Text); err != nil || b == nil {
		t.Fatalf("match = %v, %v; want the bot", b, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if b, _, err := c.match(ctx, m, m.Text); err == nil || b != nil {
		t.Fatalf("match after stop = %v, %v; want the context's error", b, err)
	}
}
