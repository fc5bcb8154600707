package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/fakeai"
)

// TestInboundTextCut posts a text of about a megabyte (what the body limit
// lets in): it is stored cut to WAGATE_MAX_INBOUND_TEXT with a note that
// the conversations routes show, the bot reads the cut text, and its echo
// goes out in a few messages instead of hundreds. A reply of more parts
// than MaxReplyParts is sent as that many, the rest carried by the last.
func TestInboundTextCut(t *testing.T) {
	e := newBotEnv(t)
	e.bot(func(b map[string]any) { b["splitMessages"] = true })
	const chat = "5511@s.whatsapp.net"
	huge := strings.Repeat("word ", 200_000)
	e.say("big", chat, huge, nil)
	e.say("ping", chat, "ping", nil)
	eventually(t, func() bool { return slices.Contains(e.chatReplies(chat), "echo: ping") }, "the answer to ping")

	const kept = 16384 // the default
	note := fmt.Sprintf("[message cut: %d characters received, the first %d kept]", utf8.RuneCountInString(huge), kept)
	var page struct {
		Data []struct {
			ID, Text string
		} `json:"data"`
	}
	r := e.s.must(http.StatusOK, "GET", "/conversations/shop/"+chat+"/messages?direction=in&order=asc", e.inst.Token, nil)
	if err := json.Unmarshal(r.Body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 2 || page.Data[0].ID != "big" {
		t.Fatalf("%d inbound messages", len(page.Data))
	}
	if got := page.Data[0].Text; !strings.HasSuffix(got, "\n\n"+note) || utf8.RuneCountInString(got) > kept+len(note)+2 {
		t.Fatalf("stored text: %d characters ending %q", utf8.RuneCountInString(got), got[max(0, len(got)-80):])
	}
	calls := e.ai.RequestsTo(fakeai.EndpointChat)
	if len(calls) != 2 || !strings.HasSuffix(calls[0].UserText, note) {
		t.Fatalf("the model was not given the cut text")
	}
	replies := e.chatReplies(chat)
	if n := len(replies) - 1; n > bots.MaxReplyParts || replies[n-1] != note {
		t.Fatalf("the echo went out as %d messages, the last %q", n, replies[n-1])
	}

	// A reply of 30 paragraphs is sent as MaxReplyParts messages.
	const other = "5522@s.whatsapp.net"
	var paras []string
	for i := range 30 {
		paras = append(paras, fmt.Sprintf("paragraph %d", i+1))
	}
	e.ai.Enqueue(fakeai.Reply(strings.Join(paras, "\n\n")))
	e.say("many", other, "tell me everything", nil)
	e.say("ping2", other, "ping", nil)
	eventually(t, func() bool { return slices.Contains(e.chatReplies(other), "echo: ping") }, "the answer to ping")
	got := e.chatReplies(other)
	want := append(paras[:bots.MaxReplyParts-1:bots.MaxReplyParts-1], strings.Join(paras[bots.MaxReplyParts-1:], "\n\n"), "echo: ping")
	if !slices.Equal(got, want) {
		t.Fatalf("replies = %q, want %q", got, want)
	}
}
