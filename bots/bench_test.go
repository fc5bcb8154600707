package bots

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/store"
)

// benchBots are n enabled bots with keyword, regex and advanced triggers,
// none of which matches the benchmark's message except the last.
func benchBots(b *testing.B, n int) []*bot {
	b.Helper()
	settings := DefaultSettings("inst")
	kinds := []struct{ typ, op, value string }{
		{TriggerKeyword, OpContains, "pedido %d"},
		{TriggerKeyword, OpEquals, "menu %d"},
		{TriggerKeyword, OpStartsWith, "olá %d"},
		{TriggerKeyword, OpEndsWith, "obrigado %d"},
		{TriggerKeyword, OpRegex, `^order #%d\d+$`},
		{TriggerAdvanced, "", "contains:preço%d notcontains:grátis"},
	}
	out := make([]*bot, 0, n)
	for i := range n {
		k := kinds[i%len(kinds)]
		value := fmt.Sprintf(k.value, i)
		if i == n-1 {
			k.typ, k.op, value = TriggerKeyword, OpContains, "horário"
		}
		tr, err := CompileTrigger(k.typ, k.op, value)
		if err != nil {
			b.Fatal(err)
		}
		sb := &store.Bot{ID: fmt.Sprintf("bot-%03d", i), InstanceID: "inst", Enabled: true, TriggerType: k.typ,
			TriggerOperator: k.op, TriggerValue: value, CreatedAt: time.Unix(int64(i), 0)}
		out = append(out, &bot{Bot: sb, trigger: tr, eff: EffectiveFor(sb, settings)})
	}
	return out
}

// BenchmarkTriggerMatch100Bots is the engine choosing among 100 bots for a
// message that opens a session: every trigger is tried.
func BenchmarkTriggerMatch100Bots(b *testing.B) {
	for _, text := range []string{"Qual é o HORÁRIO de atendimento da loja?", "What are the opening hours of the shop (horario)?"} {
		name := "accented"
		if !strings.ContainsFunc(text, func(r rune) bool { return r > 127 }) {
			name = "ascii"
		}
		b.Run(name, func(b *testing.B) {
			c := &chat{inst: &store.Instance{ID: "inst"}, jid: "5511999990000@s.whatsapp.net", settings: DefaultSettings("inst"), bots: benchBots(b, 100)}
			m := &store.Message{RemoteJID: c.jid, Text: text}
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				if got, _, _ := c.match(ctx, m, m.Text); got == nil || got.ID != "bot-099" {
					b.Fatalf("matched %v", got)
				}
			}
		})
	}
}

// benchReply is a typical model answer in Markdown: headings, bold and
// italics, a list, a link, a code block, and long enough to split.
var benchReply = strings.Repeat(`## Horário de atendimento

Olá! Nossa loja abre **de segunda a sexta**, das *9h às 18h*, e aos sábados das __9h às 13h__.

* Pedidos online: 24 horas por dia
* Retirada na loja: em horário comercial
+ Trocas: até ~~7~~ 30 dias após a compra

Veja mais em [nossa página](https://example.com/horarios) ou use o código:

`+"```"+`
PEDIDO-2024
`+"```"+`

`, 6)

func BenchmarkToWhatsApp(b *testing.B) {
	plain := "Olá! Nossa loja abre de segunda a sexta, das 9h às 18h, e aos sábados das 9h às 13h. Pedidos online são aceitos 24 horas por dia."
	for name, text := range map[string]string{"markdown": benchReply, "plain": plain} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				ToWhatsApp(text)
			}
		})
	}
}

func BenchmarkSplitReply(b *testing.B) {
	text := ToWhatsApp(benchReply)
	for _, paragraphs := range []bool{false, true} {
		b.Run(fmt.Sprintf("paragraphs=%v", paragraphs), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(text)))
			for b.Loop() {
				SplitReply(text, paragraphs)
			}
		})
	}
}

// BenchmarkRegexTriggerWorstCase is the costliest regex the program bound
// admits, on a 1 MB message: what one bot's trigger can cost per message
// once the text bound applies (without it, about 25 s).
func BenchmarkRegexTriggerWorstCase(b *testing.B) {
	tr, err := CompileTrigger(TriggerKeyword, OpRegex, `(.*){499}z`)
	if err != nil {
		b.Fatal(err)
	}
	text := strings.Repeat("x", 1<<20)
	for b.Loop() {
		tr.Match(text)
	}
}
