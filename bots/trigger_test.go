package bots

import (
	"testing"

	"github.com/wagate/wagate"
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
