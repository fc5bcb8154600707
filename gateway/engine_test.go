package gateway_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store/storetest"
)

// botEnv is a gateway with an EVOLUTION instance whose webhook receiver
// sees the replies, credentials pointing at the fake model server, and
// helpers to talk to it as a customer would.
type botEnv struct {
	t     *testing.T
	s     *server
	rc    *receiver
	ai    *fakeai.Server
	inst  instance
	creds string
}

func newBotEnv(t *testing.T, opts ...option) *botEnv {
	t.Helper()
	s := startServer(t, "", opts...)
	return attachBotEnv(t, s, nil)
}

// attachBotEnv sets up the instance, receiver and fake model on s (or
// reuses those of prev, for a restarted gateway).
func attachBotEnv(t *testing.T, s *server, prev *botEnv) *botEnv {
	t.Helper()
	if prev != nil {
		return &botEnv{t: t, s: s, rc: prev.rc, ai: prev.ai, inst: prev.inst, creds: prev.creds}
	}
	e := &botEnv{t: t, s: s, rc: newReceiver(t), ai: fakeai.NewTestServer(t, fakeai.Options{})}
	e.inst = s.createInstance("shop", e.rc.URL)
	e.rc.setSecret(e.inst.Secret)
	e.creds = s.createCreds(e.inst, "fake", testProviderKey, e.ai.BaseURL())
	return e
}

// bot creates a chatCompletion bot answering everything at once; edit
// changes the body.
func (e *botEnv) bot(edit func(map[string]any)) string {
	e.t.Helper()
	b := map[string]any{
		"openaiCredsId": e.creds, "botType": "chatCompletion", "model": "gpt-4o", "triggerType": "all",
		"delayMessage": 0, "timePerChar": 0, "debounceTime": 0,
	}
	if edit != nil {
		edit(b)
	}
	return e.s.createBot(e.inst, b)["id"].(string)
}

// say posts an inbound message to chat; extra fields are merged into the
// body (e.g. "contextInfo").
func (e *botEnv) say(id, chat, text string, extra map[string]any) {
	e.t.Helper()
	body := map[string]any{
		"numberId": e.inst.Number,
		"key":      map[string]any{"id": id, "remoteJid": chat, "fromMe": false},
		"pushName": "Ana",
		"message":  map[string]any{"conversation": text},
	}
	for k, v := range extra {
		body[k] = v
	}
	e.s.must(http.StatusOK, "POST", "/webhook/evolution", e.inst.Token, body)
}

// operator posts a message typed on the instance's own phone.
func (e *botEnv) operator(id, chat, text string) {
	e.t.Helper()
	e.s.must(http.StatusOK, "POST", "/webhook/evolution", e.inst.Token, map[string]any{
		"numberId": e.inst.Number, "key": map[string]any{"id": id, "remoteJid": chat, "fromMe": true},
		"message": map[string]any{"conversation": text},
	})
}

// replies waits for n send.message events and returns their texts.
func (e *botEnv) replies(n int) []string {
	e.t.Helper()
	var out []string
	for _, d := range e.rc.waitEvents(e.t, webhook.SendMessage, n) {
		out = append(out, replyText(e.t, d))
	}
	return out
}

func replyText(t *testing.T, d delivery) string {
	t.Helper()
	var rec struct {
		Key     struct{ RemoteJID string } `json:"key"`
		Message struct {
			Conversation string `json:"conversation"`
		} `json:"message"`
	}
	if err := json.Unmarshal(d.Envelope.Data, &rec); err != nil {
		t.Fatal(err)
	}
	return rec.Message.Conversation
}

// settle sends a message to a sentinel chat with its own bot and waits for
// its answer: events are delivered in order per instance, so whatever the
// engine did with earlier messages of other chats is visible by then... as
// far as it concerns messages handled before. It is used only where the
// earlier messages were decided (stored state), not for timing.
func (e *botEnv) messageState(chat, id string) (state, reason string) {
	e.t.Helper()
	db := storetest.RawDB(e.t, e.s.dbURL)
	err := db.QueryRow(`SELECT state, state_reason FROM messages m JOIN instances i ON i.id = m.instance_id
		WHERE i.name = $1 AND m.remote_jid = $2 AND m.message_id = $3 AND m.direction = 'in'`, e.inst.Name, chat, id).Scan(&state, &reason)
	if err != nil {
		e.t.Fatal(err)
	}
	return state, reason
}

// waitState waits until the engine decided on an inbound message.
func (e *botEnv) waitState(chat, id string) (string, string) {
	e.t.Helper()
	var state, reason string
	eventually(e.t, func() bool { state, reason = e.messageState(chat, id); return state != "received" }, "a decision on %s", id)
	return state, reason
}

// exec runs SQL on the gateway's database, as a clock moving forward would.
func (e *botEnv) exec(query string, args ...any) {
	e.t.Helper()
	if _, err := storetest.RawDB(e.t, e.s.dbURL).Exec(query, args...); err != nil {
		e.t.Fatal(err)
	}
}

func (e *botEnv) sessionEvents() []string {
	var out []string
	for _, d := range e.rc.deliveries() {
		if strings.HasPrefix(d.Envelope.Event, "openai.session.") {
			var data map[string]string
			json.Unmarshal(d.Envelope.Data, &data)
			out = append(out, strings.TrimPrefix(d.Envelope.Event, "openai.session.")+":"+data["reason"])
		}
	}
	return out
}

func lastUserText(r fakeai.Request) string { return r.UserText }

// ---- rule 1: order and concurrency

func TestEngineOrderAndConcurrency(t *testing.T) {
	e := newBotEnv(t)
	e.bot(nil)
	e.ai.SetLatency(20 * time.Millisecond)
	const chats, perChat = 4, 5
	var wg sync.WaitGroup
	for c := range chats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perChat {
				e.say(fmt.Sprintf("c%d-m%d", c, i), fmt.Sprintf("55%d@s.whatsapp.net", c), fmt.Sprintf("c%d m%d", c, i), nil)
			}
		}()
	}
	wg.Wait()
	e.replies(chats * perChat)
	// Per chat, replies come in the order of the messages, and each model
	// call saw the previous turns: one call at a time per chat.
	byChat := map[string][]string{}
	for _, d := range e.rc.events(webhook.SendMessage) {
		var rec struct {
			Key struct {
				RemoteJID string `json:"remoteJid"`
			} `json:"key"`
		}
		json.Unmarshal(d.Envelope.Data, &rec)
		byChat[rec.Key.RemoteJID] = append(byChat[rec.Key.RemoteJID], replyText(t, d))
	}
	for c := range chats {
		got := byChat[fmt.Sprintf("55%d@s.whatsapp.net", c)]
		var want []string
		for i := range perChat {
			want = append(want, fmt.Sprintf("echo: c%d m%d", c, i))
		}
		if !slices.Equal(got, want) {
			t.Fatalf("chat %d replies %q, want %q", c, got, want)
		}
	}
	for _, r := range e.ai.RequestsTo(fakeai.EndpointChat) {
		var i int
		fmt.Sscanf(r.UserText[strings.Index(r.UserText, "m")+1:], "%d", &i)
		if got := len(r.Messages); got != 1+2*i { // history of i turns, then the new one
			t.Fatalf("call for %q carried %d messages, want %d", r.UserText, got, 1+2*i)
		}
	}

	// The inbound handler does not wait for the model.
	e.ai.Enqueue(fakeai.Reply("slow").After(3 * time.Second))
	e.say("slow", "5599@s.whatsapp.net", "hello", nil)
	if n := len(e.rc.events(webhook.SendMessage)); n != chats*perChat {
		t.Fatalf("a reply arrived before the inbound request returned")
	}
	if got := e.replies(chats*perChat + 1)[chats*perChat]; got != "slow" {
		t.Fatalf("slow reply = %q", got)
	}
}

// ---- rule 2: ignore rules

func TestEngineIgnoreRules(t *testing.T) {
	e := newBotEnv(t)
	e.bot(func(b map[string]any) { b["ignoreJids"] = []string{"blocked@s.whatsapp.net"} })
	s := e.s
	s.must(http.StatusOK, "POST", "/openai/ignoreJid/shop", e.inst.Token, map[string]any{"remoteJid": "@lid", "action": "add"})

	sent := s.must(http.StatusCreated, "POST", "/message/sendText/shop", e.inst.Token, map[string]any{"number": "5511", "text": "promo"}).json(t)
	ourID := sent["key"].(map[string]any)["id"].(string)

	cases := []struct {
		id, chat string
		body     map[string]any
		reason   string
	}{
		{"st", "status@broadcast", nil, "status broadcast"},
		{"nl", "123@newsletter", nil, "newsletter"},
		{"re", "5511@s.whatsapp.net", map[string]any{"message": map[string]any{"reactionMessage": map[string]any{"text": "👍"}}}, "reactionMessage"},
		{"pr", "5511@s.whatsapp.net", map[string]any{"message": map[string]any{"protocolMessage": map[string]any{"type": 0}}}, "protocolMessage"},
		{"ed", "5511@s.whatsapp.net", map[string]any{"message": map[string]any{"editedMessage": map[string]any{"text": "x"}}}, "editedMessage"},
		{ourID, "5511@s.whatsapp.net", map[string]any{"key": map[string]any{"id": ourID, "remoteJid": "5511@s.whatsapp.net", "fromMe": true}}, "sent by the gateway"},
		{"lid", "777@lid", nil, "ignoreJids of the settings"},
		{"blk", "blocked@s.whatsapp.net", nil, "ignoreJids of the bot"},
	}
	for _, c := range cases {
		e.say(c.id, c.chat, "hello", c.body)
	}
	for _, c := range cases {
		if state, reason := e.waitState(c.chat, c.id); state != "ignored" || reason != c.reason {
			t.Errorf("%s in %s: %s (%s), want ignored (%s)", c.id, c.chat, state, reason, c.reason)
		}
	}
	if n := len(e.ai.Requests()); n != 0 {
		t.Fatalf("the model was called %d times for ignored messages", n)
	}
	// A plain message still gets its answer.
	e.say("ok", "5511@s.whatsapp.net", "hello", nil)
	if got := e.replies(2)[1]; got != "echo: hello" {
		t.Fatalf("reply = %q", got)
	}
}

func TestEngineGroups(t *testing.T) {
	e := newBotEnv(t)
	off := e.bot(func(b map[string]any) {
		b["groupMode"], b["triggerType"], b["triggerOperator"], b["triggerValue"] = "off", "keyword", "startsWith", "off"
	})
	e.bot(func(b map[string]any) {
		b["groupMode"], b["triggerType"], b["triggerOperator"], b["triggerValue"] = "mention", "keyword", "startsWith", "bot"
	})
	e.bot(func(b map[string]any) {
		b["groupMode"], b["triggerType"], b["triggerOperator"], b["triggerValue"] = "all", "keyword", "startsWith", "everyone"
	})
	_ = off
	const g = "120363-1@g.us"
	part := func(who string) map[string]any {
		return map[string]any{"key": map[string]any{"id": who, "remoteJid": g, "participant": "5511@s.whatsapp.net"}}
	}
	e.say("g1", g, "off please", part("g1"))
	e.say("g2", g, "bot, are you there?", part("g2"))
	if state, reason := e.waitState(g, "g1"); state != "ignored" || reason != "group messages are off for the bot" {
		t.Fatalf("groupMode off: %s (%s)", state, reason)
	}
	if state, reason := e.waitState(g, "g2"); state != "ignored" {
		t.Fatalf("groupMode mention without a mention: %s (%s)", state, reason)
	}
	// A mention of the instance's number, and a reply to its own message.
	mention := part("g3")
	mention["contextInfo"] = map[string]any{"mentionedJid": []string{e.inst.Number + "@s.whatsapp.net"}}
	e.say("g3", g, "bot, hello", mention)
	if got := e.replies(1)[0]; got != "echo: Ana: bot, hello" {
		t.Fatalf("mentioned reply = %q (the sender's name goes to the model in groups)", got)
	}
	reply := e.rc.events(webhook.SendMessage)[0]
	var rec map[string]any
	json.Unmarshal(reply.Envelope.Data, &rec)
	ourID := rec["key"].(map[string]any)["id"].(string)
	// Closing (not deleting, which would delete the chat's messages too,
	// ours included) lets the next message start a new session.
	e.s.must(http.StatusOK, "POST", "/openai/changeStatus/shop", e.inst.Token, map[string]any{"remoteJid": g, "status": "closed"})
	quoted := part("g4")
	quoted["message"] = map[string]any{"extendedTextMessage": map[string]any{"text": "bot thanks", "contextInfo": map[string]any{"stanzaId": ourID}}}
	e.say("g4", g, "", quoted)
	if got := e.replies(2)[1]; got != "echo: Ana: bot thanks" {
		t.Fatalf("reply to our message = %q", got)
	}
	e.s.must(http.StatusOK, "POST", "/openai/changeStatus/shop", e.inst.Token, map[string]any{"remoteJid": g, "status": "closed"})
	e.say("g5", g, "everyone listen", part("g5"))
	if got := e.replies(3)[2]; got != "echo: Ana: everyone listen" {
		t.Fatalf("groupMode all = %q", got)
	}
}

// ---- rule 3: triggers

func TestEngineTriggers(t *testing.T) {
	e := newBotEnv(t)
	prompt := func(name string) func(map[string]any) {
		return func(b map[string]any) { b["systemMessages"] = []string{name} }
	}
	kw := func(name, op, value string, priority int) {
		e.bot(func(b map[string]any) {
			prompt(name)(b)
			b["triggerType"], b["triggerOperator"], b["triggerValue"], b["priority"] = "keyword", op, value, priority
		})
	}
	kw("contains-pedido", "contains", "pedido", 0)
	kw("equals-pedido", "equals", "Pedido", 0)
	kw("regex", "regex", `^pedido \d+$`, 0)
	kw("starts-oi", "startsWith", "oi", 0)
	kw("vip", "contains", "vip", 10)
	e.bot(func(b map[string]any) {
		prompt("advanced")(b)
		b["triggerType"], b["triggerValue"] = "advanced", "contains:preco notcontains:gratis"
	})
	e.bot(func(b map[string]any) {
		prompt("disabled")(b)
		b["enabled"] = false
		b["triggerType"], b["triggerOperator"], b["triggerValue"] = "keyword", "equals", "menu"
	})
	fallback := e.bot(func(b map[string]any) { prompt("fallback")(b); b["triggerType"] = "none" })

	tests := []struct{ text, bot string }{
		{"  PEDIDO ", "equals-pedido"},  // equals beats contains; trimmed, case-insensitive
		{"pedido 42", "regex"},          // regex beats contains
		{"Oi, meu pedido", "starts-oi"}, // startsWith beats contains
		{"status do pedido", "contains-pedido"},
		{"pedido vip", "vip"},         // priority beats everything
		{"qual o preço?", "advanced"}, // accent-insensitive
		{"preço grátis?", ""},         // notcontains: nothing matches, no fallback yet
		{"menu", ""},                  // disabled never answers
	}
	for i, tt := range tests {
		chat := fmt.Sprintf("55%d@s.whatsapp.net", i)
		calls := len(e.ai.RequestsTo(fakeai.EndpointChat))
		e.say(fmt.Sprintf("t%d", i), chat, tt.text, nil)
		if tt.bot == "" {
			if state, _ := e.waitState(chat, fmt.Sprintf("t%d", i)); state != "ignored" {
				t.Errorf("%q: %s, want ignored", tt.text, state)
			}
			continue
		}
		ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
		got, err := e.ai.Await(ctx, fakeai.EndpointChat, calls+1)
		cancel()
		if err != nil {
			state, reason := e.messageState(chat, fmt.Sprintf("t%d", i))
			t.Fatalf("%q: %v; the message is %s (%s)", tt.text, err, state, reason)
		}
		if sys := got[len(got)-1].Messages[0].Content; sys != tt.bot {
			t.Errorf("%q answered by %q, want %q", tt.text, sys, tt.bot)
		}
	}
	// none is reachable only as the fallback; then it answers what nothing matched.
	e.s.must(http.StatusOK, "POST", "/openai/settings/shop", e.inst.Token, map[string]any{"fallbackId": fallback, "openaiCredsId": e.creds})
	e.say("f1", "5590@s.whatsapp.net", "something else", nil)
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Second)
	defer cancel()
	got, err := e.ai.Await(ctx, fakeai.EndpointChat, 7)
	if err != nil {
		t.Fatal(err)
	}
	if sys := got[len(got)-1].Messages[0].Content; sys != "fallback" {
		t.Fatalf("fallback answered by %q", sys)
	}
}

// ---- rule 4: sessions

func TestEngineSessions(t *testing.T) {
	e := newBotEnv(t)
	bot := e.bot(func(b map[string]any) {
		b["triggerType"], b["triggerOperator"], b["triggerValue"] = "keyword", "equals", "start"
		b["expire"], b["keywordFinish"], b["keepOpen"] = 10, "#SAIR", true
	})
	const chat = "5511@s.whatsapp.net"
	e.say("m1", chat, "start", nil)
	e.say("m2", chat, "no trigger needed now", nil)
	if got := e.replies(2); got[1] != "echo: no trigger needed now" {
		t.Fatalf("in-session reply = %q", got[1])
	}
	// keywordFinish closes without a reply (accent/case-insensitive, trimmed).
	e.say("m3", chat, " #sair ", nil)
	if state, reason := e.waitState(chat, "m3"); state != "ignored" || !strings.Contains(reason, "keywordFinish") {
		t.Fatalf("keyword: %s (%s)", state, reason)
	}
	// The closed session (keepOpen) does not block the contact.
	e.say("m4", chat, "not a trigger", nil)
	if state, _ := e.waitState(chat, "m4"); state != "ignored" {
		t.Fatalf("after close, untriggered message: %s", state)
	}
	e.say("m5", chat, "START", nil)
	e.replies(3)
	sessions := func() []map[string]any {
		var body struct {
			Data []map[string]any `json:"data"`
		}
		json.Unmarshal(e.s.must(http.StatusOK, "GET", "/openai/fetchSessions/"+bot+"/shop", e.inst.Token, nil).Body, &body)
		return body.Data
	}
	if ss := sessions(); len(ss) != 2 || ss[0]["status"] != "opened" || ss[1]["status"] != "closed" || ss[1]["closeReason"] != "keyword" {
		t.Fatalf("sessions = %v", ss)
	}

	// Idle longer than expire: the next message goes through triggers again.
	e.exec("UPDATE openai_sessions SET updated_at = $1 WHERE status = 'opened'", time.Now().Add(-11*time.Minute).UnixMilli())
	e.say("m6", chat, "are you there?", nil)
	if state, reason := e.waitState(chat, "m6"); state != "ignored" || reason != "no bot trigger matched" {
		t.Fatalf("after expiry: %s (%s)", state, reason)
	}
	// The sweeper closes idle sessions without any message, and says so.
	e.say("m7", chat, "start", nil)
	e.replies(4)
	e.exec("UPDATE openai_sessions SET updated_at = $1 WHERE status = 'opened'", time.Now().Add(-11*time.Minute).UnixMilli())
	eventually(t, func() bool {
		ev := e.sessionEvents()
		return len(ev) > 0 && ev[len(ev)-1] == "closed:expire"
	}, "the sweeper's close event")
	want := []string{"opened:trigger", "closed:keyword", "opened:trigger", "closed:expire", "opened:trigger", "closed:expire"}
	if got := e.sessionEvents(); !slices.Equal(got, want) {
		t.Fatalf("session events = %v, want %v", got, want)
	}
}

func TestEngineOneLiveSessionUnderConcurrency(t *testing.T) {
	e := newBotEnv(t)
	e.bot(func(b map[string]any) { b["keepOpen"] = true })
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); e.say(fmt.Sprintf("c%d", i), "5511@s.whatsapp.net", "hi", nil) }()
	}
	wg.Wait()
	e.replies(8)
	var n int
	if err := storetest.RawDB(t, e.s.dbURL).QueryRow("SELECT COUNT(*) FROM openai_sessions").Scan(&n); err != nil || n != 1 {
		t.Fatalf("%d sessions (%v), want 1", n, err)
	}
}

func TestEngineKeepOpenFalseDeletes(t *testing.T) {
	e := newBotEnv(t)
	e.bot(func(b map[string]any) { b["keywordFinish"] = "bye" })
	e.say("a", "5511@s.whatsapp.net", "hi", nil)
	e.replies(1)
	e.say("b", "5511@s.whatsapp.net", "Bye", nil)
	e.waitState("5511@s.whatsapp.net", "b")
	var n int
	storetest.RawDB(t, e.s.dbURL).QueryRow("SELECT COUNT(*) FROM openai_sessions").Scan(&n)
	if n != 0 {
		t.Fatalf("%d sessions after keywordFinish without keepOpen", n)
	}
	e.say("c", "5511@s.whatsapp.net", "hi again", nil)
	if got := e.replies(2)[1]; got != "echo: hi again" {
		t.Fatalf("new session reply = %q", got)
	}
	// A fresh session has a fresh history.
	if last, _ := e.ai.LastChat(); len(last.Messages) != 1 {
		t.Fatalf("new session carried %d messages", len(last.Messages))
	}
}

// ---- rule 5: human handoff

func TestEngineHumanHandoff(t *testing.T) {
	e := newBotEnv(t)
	e.bot(func(b map[string]any) { b["stopBotFromMe"], b["pauseMinutes"] = true, 0 })
	const chat = "5511@s.whatsapp.net"
	e.say("m1", chat, "hi", nil)
	e.replies(1)
	e.operator("op1", chat, "Hi, Maria here, I'll help you")
	e.say("m2", chat, "thanks Maria", nil)
	e.say("m3", chat, "still there?", nil)
	for _, id := range []string{"m2", "m3"} {
		if state, reason := e.waitState(chat, id); state != "ignored" || !strings.Contains(reason, "paused") {
			t.Fatalf("%s during takeover: %s (%s)", id, state, reason)
		}
	}
	if state, reason := e.waitState(chat, "op1"); state != "ignored" || reason != "operator took over" {
		t.Fatalf("operator message: %s (%s)", state, reason)
	}
	// Back to the bot through the API; the next message is answered, not swallowed.
	e.s.must(http.StatusOK, "POST", "/openai/changeStatus/shop", e.inst.Token, map[string]any{"remoteJid": chat, "status": "opened"})
	e.say("m4", chat, "bot again?", nil)
	if got := e.replies(2)[1]; got != "echo: bot again?" {
		t.Fatalf("after reopening: %q", got)
	}
	if got := e.sessionEvents(); !slices.Equal(got, []string{"opened:trigger", "paused:operator", "opened:api"}) {
		t.Fatalf("events = %v", got)
	}
}

func TestEnginePauseMinutesRunOut(t *testing.T) {
	e := newBotEnv(t)
	e.bot(func(b map[string]any) { b["pauseMinutes"] = 30 })
	const chat = "5511@s.whatsapp.net"
	e.say("m1", chat, "hi", nil)
	e.replies(1)
	e.operator("op1", chat, "human here")
	e.waitState(chat, "op1")
	e.say("m2", chat, "paused?", nil)
	if state, _ := e.waitState(chat, "m2"); state != "ignored" {
		t.Fatalf("during the pause: %s", state)
	}
	e.exec("UPDATE openai_sessions SET paused_until = $1", time.Now().Add(-time.Minute).UnixMilli())
	e.say("m3", chat, "and now?", nil)
	if got := e.replies(2)[1]; got != "echo: and now?" {
		t.Fatalf("after the pause ran out: %q", got)
	}
}

func TestEngineOperatorMessages(t *testing.T) {
	e := newBotEnv(t)
	e.bot(func(b map[string]any) { b["stopBotFromMe"], b["listeningFromMe"] = false, true })
	const chat = "5511@s.whatsapp.net"
	e.say("m1", chat, "hi", nil)
	e.replies(1)
	e.operator("op1", chat, "Our store opens at 9")
	e.waitState(chat, "op1")
	e.say("m2", chat, "ok", nil)
	e.replies(2)
	last, _ := e.ai.LastChat()
	got := last.Messages[len(last.Messages)-2]
	if got.Role != openai.ChatMessageRoleAssistant || got.Content != "Our store opens at 9" {
		t.Fatalf("operator turn in history = %+v", got)
	}
	if n := len(e.ai.RequestsTo(fakeai.EndpointChat)); n != 2 {
		t.Fatalf("the operator's message was answered: %d calls", n)
	}

	// Without a session and without listeningFromMe, an operator message
	// never starts one.
	e2 := newBotEnv(t)
	e2.bot(nil)
	e2.operator("op", chat, "hello from the shop")
	if state, reason := e2.waitState(chat, "op"); state != "ignored" || reason != "operator message" {
		t.Fatalf("operator without session: %s (%s)", state, reason)
	}
	if len(e2.sessionEvents()) != 0 || len(e2.ai.Requests()) != 0 {
		t.Fatal("an operator message started a session")
	}
}

// ---- rule 6: debounce

func TestEngineDebounce(t *testing.T) {
	e := newBotEnv(t)
	e.bot(func(b map[string]any) { b["debounceTime"] = 1 })
	const chat = "5511@s.whatsapp.net"
	e.say("m1", chat, "first", nil)
	e.say("m2", chat, "", map[string]any{"message": map[string]any{"imageMessage": map[string]any{"url": "https://example.com/a.png", "caption": "look"}}})
	e.say("m3", chat, "third", nil)
	e.replies(1)
	calls := e.ai.RequestsTo(fakeai.EndpointChat)
	if len(calls) != 1 {
		t.Fatalf("%d model calls for one debounced turn", len(calls))
	}
	parts := calls[0].Messages[len(calls[0].Messages)-1].MultiContent
	var kinds []string
	for _, p := range parts {
		if p.Type == openai.ChatMessagePartTypeImageURL {
			kinds = append(kinds, "image:"+p.ImageURL.URL)
		} else {
			kinds = append(kinds, p.Text)
		}
	}
	if want := []string{"first", "image:https://example.com/a.png", "look", "third"}; !slices.Equal(kinds, want) {
		t.Fatalf("turn parts = %q, want %q", kinds, want)
	}
}

func TestEngineDebounceSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	e := attachBotEnv(t, s, nil)
	e.bot(func(b map[string]any) { b["debounceTime"] = 30 })
	const chat = "5511@s.whatsapp.net"
	e.say("m1", chat, "one", nil)
	e.say("m2", chat, "two", nil)
	eventually(t, func() bool { return len(e.sessionEvents()) == 1 }, "the session to open")
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(e.ai.Requests()); n != 0 {
		t.Fatalf("answered before the window closed: %d calls", n)
	}
	// Restarted mid-window with a shorter window: the buffered messages are
	// still there and are answered once, together.
	e.exec("UPDATE messages SET created_at = created_at - 60000")
	s2 := startServer(t, dir)
	e2 := attachBotEnv(t, s2, e)
	if got := e2.replies(1); got[0] != "echo: one\ntwo" {
		t.Fatalf("reply after restart = %q", got)
	}
	if n := len(e.ai.Requests()); n != 1 {
		t.Fatalf("%d model calls", n)
	}
}

// ---- rule 7: chat completions

func TestEngineChatCompletionRequest(t *testing.T) {
	e := newBotEnv(t, withConfig(func(c *config.Config) { c.HistoryTokens = 30 }))
	e.bot(func(b map[string]any) {
		b["systemMessages"] = []string{"You are helpful."}
		b["userMessages"] = []string{"Hello!", "Price?"}
		b["assistantMessages"] = []string{"Hi, how can I help?"}
		b["maxTokens"] = 300
	})
	const chat = "5511@s.whatsapp.net"
	for i, text := range []string{"first question here", "second question here", "third question here"} {
		e.say(fmt.Sprintf("m%d", i), chat, text, nil)
		e.replies(i + 1)
	}
	last, _ := e.ai.LastChat()
	if last.APIKey != testProviderKey || last.Chat.MaxCompletionTokens != 300 || last.Chat.MaxTokens != 0 || last.Model != "gpt-4o" {
		t.Fatalf("request = key %q, max_completion_tokens %d, max_tokens %d, model %q",
			last.APIKey, last.Chat.MaxCompletionTokens, last.Chat.MaxTokens, last.Model)
	}
	var roles []string
	for _, m := range last.Messages {
		roles = append(roles, m.Role+":"+m.Content)
	}
	// System, the seeded examples interleaved, the history within its
	// 30-token budget (only the last exchange fits), then the new turn.
	want := []string{"system:You are helpful.", "user:Hello!", "assistant:Hi, how can I help?", "user:Price?",
		"user:second question here", "assistant:echo: second question here", "user:third question here"}
	if !slices.Equal(roles, want) {
		t.Fatalf("messages =\n%q\nwant\n%q", roles, want)
	}
	// Usage and latency are recorded on the reply.
	var prompt, completion int
	err := storetest.RawDB(t, e.s.dbURL).QueryRow(`SELECT prompt_tokens, completion_tokens FROM messages
		WHERE direction = 'out' ORDER BY seq DESC LIMIT 1`).Scan(&prompt, &completion)
	if err != nil || prompt == 0 || completion == 0 {
		t.Fatalf("usage = %d/%d (%v)", prompt, completion, err)
	}
}

// ---- rule 8: assistant bots on the Responses API

func TestEngineAssistantResponses(t *testing.T) {
	e := newBotEnv(t)
	e.bot(func(b map[string]any) { b["botType"], b["assistantId"], b["model"] = "assistant", "pmpt_support", "" })
	const chat = "5511@s.whatsapp.net"
	e.say("m1", chat, "hello", nil)
	e.replies(1)
	e.say("m2", chat, "and then?", nil)
	if got := e.replies(2); got[0] != "echo: hello" || got[1] != "echo: and then?" {
		t.Fatalf("replies = %q", got)
	}
	calls := e.ai.RequestsTo(fakeai.EndpointResponses)
	if len(calls) != 2 {
		t.Fatalf("%d Responses API calls", len(calls))
	}
	first, second := calls[0].Responses, calls[1].Responses
	if first.Prompt == nil || first.Prompt.ID != "pmpt_support" || first.PreviousResponseID != "" {
		t.Fatalf("first call: prompt %+v, previous %q", first.Prompt, first.PreviousResponseID)
	}
	if second.PreviousResponseID == "" || second.PreviousResponseID != calls[0].ReplyID {
		t.Fatalf("second call continues from %q, want %q", second.PreviousResponseID, calls[0].ReplyID)
	}
}

// ---- rule 9: tools

func TestEngineTools(t *testing.T) {
	var mu sync.Mutex
	var calls []map[string]any
	var sigs []string
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var m map[string]any
		json.Unmarshal(body, &m)
		mu.Lock()
		calls = append(calls, m)
		sigs = append(sigs, r.Header.Get("X-Wagate-Signature"))
		mu.Unlock()
		if m["name"] == "broken" {
			http.Error(w, "boom", http.StatusInternalServerError)
			return
		}
		fmt.Fprint(w, `{"status":"shipped"}`)
	}))
	defer fn.Close()
	e := newBotEnv(t)
	e.bot(func(b map[string]any) {
		b["functionUrl"] = fn.URL
		b["tools"] = []any{map[string]any{"name": "order_status"}, map[string]any{"name": "broken"}}
	})
	e.ai.Enqueue(fakeai.CallTool("order_status", `{"order":"42"}`), fakeai.CallTool("broken", `{}`))
	e.say("m1", "5511@s.whatsapp.net", "where is my order?", nil)
	got := e.replies(1)[0]
	// The fake model echoes the last tool output: the failing function's error.
	if !strings.Contains(got, "function answered HTTP 500") {
		t.Fatalf("reply = %q", got)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 2 || calls[0]["name"] != "order_status" || calls[0]["arguments"] != `{"order":"42"}` ||
		calls[0]["remoteJid"] != "5511@s.whatsapp.net" || calls[0]["instance"] != "shop" || calls[0]["callId"] == "" || calls[0]["sessionId"] == "" {
		t.Fatalf("function calls = %v", calls)
	}
	if !strings.HasPrefix(sigs[0], "t=") {
		t.Fatalf("function call not signed: %q", sigs[0])
	}
	chats := e.ai.RequestsTo(fakeai.EndpointChat)
	if len(chats) != 3 {
		t.Fatalf("%d model calls, want 3 (two tool rounds, then the answer)", len(chats))
	}
	toolOut := chats[1].Messages[len(chats[1].Messages)-1]
	if toolOut.Role != openai.ChatMessageRoleTool || toolOut.Content != `{"status":"shipped"}` {
		t.Fatalf("tool output sent to the model = %+v", toolOut)
	}
}

// ---- rule 10: replies

func TestEngineReplyFormatting(t *testing.T) {
	e := newBotEnv(t)
	e.bot(func(b map[string]any) { b["splitMessages"] = true })
	long := strings.Repeat("word ", 1000) // 5000 characters
	e.ai.Enqueue(fakeai.Reply("# Order\n\n**Shipped** via [tracking](https://t.example/1)\n\n" + long))
	e.say("m1", "5511@s.whatsapp.net", "status?", nil)
	got := e.replies(4)
	if got[0] != "*Order*" || got[1] != "*Shipped* via tracking (https://t.example/1)" {
		t.Fatalf("formatted parts = %q", got[:2])
	}
	if len(got[2]) > 4096 || strings.TrimSpace(got[2]+" "+got[3]) != strings.TrimSpace(long) {
		t.Fatalf("long paragraph split into %d and %d characters", len(got[2]), len(got[3]))
	}
	var bot, session string
	if err := storetest.RawDB(t, e.s.dbURL).QueryRow(`SELECT bot_id, session_id FROM messages WHERE direction = 'out' LIMIT 1`).Scan(&bot, &session); err != nil || bot == "" || session == "" {
		t.Fatalf("reply not linked to bot and session: %q %q %v", bot, session, err)
	}
}

// ---- rule 11: failures

func TestEngineProviderFailures(t *testing.T) {
	e := newBotEnv(t)
	e.bot(func(b map[string]any) { b["unknownMessage"] = "Sorry, try again later." })
	// 429 then success: retried, answered.
	e.ai.Enqueue(fakeai.RateLimited(0), fakeai.Reply("ok now"))
	e.say("m1", "5511@s.whatsapp.net", "hi", nil)
	if got := e.replies(1)[0]; got != "ok now" {
		t.Fatalf("after a 429: %q", got)
	}
	// Three 500s: the user gets unknownMessage, never the provider's text.
	e.ai.Enqueue(fakeai.Fail(500, "internal details"), fakeai.Fail(500, "internal details"), fakeai.Fail(500, "internal details"))
	e.say("m2", "5511@s.whatsapp.net", "hi", nil)
	if got := e.replies(2)[1]; got != "Sorry, try again later." {
		t.Fatalf("after 3 failures: %q", got)
	}
	if n := len(e.ai.RequestsTo(fakeai.EndpointChat)); n != 2+3 {
		t.Fatalf("%d calls, want 5", n)
	}
	errs := e.rc.waitEvents(t, "openai.error", 1)
	var data map[string]any
	json.Unmarshal(errs[0].Envelope.Data, &data)
	if data["status"] != 500.0 || strings.Contains(string(errs[0].Body), "internal details") {
		t.Fatalf("openai.error = %s", errs[0].Body)
	}
	if state, reason := e.messageState("5511@s.whatsapp.net", "m2"); state != "failed" || !strings.Contains(reason, "HTTP 500") {
		t.Fatalf("m2: %s (%s)", state, reason)
	}
	// Bad credentials are not retried.
	e.ai.RejectKey(testProviderKey)
	before := len(e.ai.Requests())
	e.say("m3", "5511@s.whatsapp.net", "hi", nil)
	e.replies(3)
	if n := len(e.ai.Requests()) - before; n != 1 {
		t.Fatalf("a 401 was tried %d times", n)
	}
}

// ---- rule 12: audio

func TestEngineAudio(t *testing.T) {
	e := newBotEnv(t)
	e.bot(func(b map[string]any) {
		b["speechToText"] = true
		b["triggerType"], b["triggerOperator"], b["triggerValue"] = "keyword", "contains", "atendente"
	})
	e.s.must(http.StatusOK, "POST", "/openai/settings/shop", e.inst.Token, map[string]any{
		"openaiCredsId": e.creds, "speechToText": true, "transcriptionErrorMessage": "Please type it.",
	})
	audio := map[string]any{"message": map[string]any{"audioMessage": map[string]any{
		"base64": base64.StdEncoding.EncodeToString([]byte("OggS fake voice note")), "mimetype": "audio/ogg; codecs=opus",
	}}}
	e.ai.EnqueueTranscription(fakeai.Reply("quero falar com um atendente"))
	e.say("a1", "5511@s.whatsapp.net", "", audio)
	if got := e.replies(1)[0]; got != "echo: quero falar com um atendente" {
		t.Fatalf("reply to audio = %q", got)
	}
	tr, ok := e.ai.LastTranscription()
	if !ok || tr.Form.Get("model") != "gpt-4o-mini-transcribe" || tr.Form.Get("language") != "" || tr.FileSize != len("OggS fake voice note") {
		t.Fatalf("transcription request = %+v", tr)
	}
	// A failed transcription gets the configured message.
	e.ai.EnqueueTranscription(fakeai.Fail(500, "no"), fakeai.Fail(500, "no"), fakeai.Fail(500, "no"))
	e.say("a2", "5511@s.whatsapp.net", "", audio)
	if got := e.replies(2)[1]; got != "Please type it." {
		t.Fatalf("after a failed transcription: %q", got)
	}
}

// Media that a sender gives by URL is fetched only from public addresses,
// unless WAGATE_ALLOW_PRIVATE_FETCH opens the others.
func TestEngineAudioURLIsFetchedSafely(t *testing.T) {
	var hits atomic.Int32
	media := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Write([]byte("OggS voice note by url"))
	}))
	defer media.Close()
	for _, allow := range []bool{true, false} {
		e := newBotEnv(t, withConfig(func(c *config.Config) { c.AllowPrivateFetch = allow }))
		e.bot(func(b map[string]any) { b["speechToText"] = true })
		e.s.must(http.StatusOK, "POST", "/openai/settings/shop", e.inst.Token, map[string]any{
			"openaiCredsId": e.creds, "speechToText": true, "transcriptionErrorMessage": "Please type it.",
		})
		e.ai.EnqueueTranscription(fakeai.Reply("hello by voice"))
		before := hits.Load()
		e.say("u1", "5511@s.whatsapp.net", "", map[string]any{"message": map[string]any{"audioMessage": map[string]any{
			"url": media.URL + "/voice.ogg", "mimetype": "audio/ogg; codecs=opus"}}})
		got := e.replies(1)[0]
		if allow && (got != "echo: hello by voice" || hits.Load() != before+1) {
			t.Errorf("allowed: reply %q after %d fetches", got, hits.Load()-before)
		}
		if !allow && (got != "Please type it." || hits.Load() != before) {
			t.Errorf("refused: reply %q after %d fetches", got, hits.Load()-before)
		}
	}
}
