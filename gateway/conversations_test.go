package gateway_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/store/storetest"
)

// page is a list response of the conversations routes.
type page struct {
	Data       []map[string]any `json:"data"`
	NextCursor *string          `json:"nextCursor"`
}

func (s *server) page(path, key string) page {
	s.t.Helper()
	var p page
	r := s.must(http.StatusOK, "GET", path, key, nil)
	if err := json.Unmarshal(r.Body, &p); err != nil {
		s.t.Fatalf("GET %s: %v: %s", path, err, r.Body)
	}
	if p.Data == nil {
		s.t.Fatalf("GET %s: data is not a list: %s", path, r.Body)
	}
	return p
}

// field returns the string field name of each item.
func field(items []map[string]any, name string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i], _ = it[name].(string)
	}
	return out
}

// post sends an inbound message without touching t, for writers running
// beside a test.
func post(s *server, inst instance, id, chat, text string) error {
	body, _ := json.Marshal(map[string]any{
		"numberId": inst.Number, "key": map[string]any{"id": id, "remoteJid": chat},
		"pushName": "Ana", "message": map[string]any{"conversation": text},
	})
	req, err := http.NewRequest("POST", s.URL+"/webhook/evolution", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("apikey", inst.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("inbound %s: status %d", id, resp.StatusCode)
	}
	return nil
}

const (
	chatA = "5511000000001@s.whatsapp.net"
	chatB = "5511000000002@s.whatsapp.net"
	chatC = "5511000000003@s.whatsapp.net"
	chatD = "5511000000004@s.whatsapp.net"
	chatE = "5511000000005@s.whatsapp.net"
)

// conversationsEnv has real bot conversations in five chats, each showing
// something: A answered, then taken over by an operator; B answered, then
// closed; C failed; D ignored (no trigger); E answered by a second bot.
// Activity, newest first: E, D, C, A, B.
type conversationsEnv struct {
	*botEnv
	pedido, orcamento string // the bots
}

func newConversationsEnv(t *testing.T, opts ...option) *conversationsEnv {
	t.Helper()
	e := &conversationsEnv{botEnv: newBotEnv(t, opts...)}
	e.pedido = e.bot(func(b map[string]any) {
		b["triggerType"], b["triggerOperator"], b["triggerValue"] = "keyword", "contains", "pedido"
	})
	e.orcamento = e.bot(func(b map[string]any) {
		b["triggerType"], b["triggerOperator"], b["triggerValue"] = "keyword", "contains", "orcamento"
	})
	e.say("a1", chatA, "hello", nil)
	e.say("a2", chatA, "meu pedido", nil)
	e.replies(1)
	e.say("b1", chatB, "pedido 2", nil)
	e.replies(2)
	e.s.must(http.StatusOK, "POST", "/openai/changeStatus/shop", e.inst.Token, map[string]any{"remoteJid": chatB, "status": "closed"})
	e.operator("op1", chatA, "I'll take it from here")
	e.waitState(chatA, "op1")
	e.say("a3", chatA, "still there?", nil)
	e.waitState(chatA, "a3")
	e.ai.Enqueue(fakeai.Fail(500, "boom"), fakeai.Fail(500, "boom"), fakeai.Fail(500, "boom"))
	e.say("c1", chatC, "pedido falhou", nil)
	e.waitState(chatC, "c1")
	e.say("d1", chatD, "oi", map[string]any{"pushName": "Bruno Souza"})
	e.waitState(chatD, "d1")
	e.say("e1", chatE, "um orcamento", nil)
	e.replies(3)
	return e
}

func TestConversationsAfterBotConversations(t *testing.T) {
	e := newConversationsEnv(t)
	tok := e.inst.Token

	list := e.s.page("/conversations/shop", tok)
	if got, want := field(list.Data, "remoteJid"), []string{chatE, chatD, chatC, chatA, chatB}; !slices.Equal(got, want) {
		t.Fatalf("conversations = %v, want newest activity first %v", got, want)
	}
	if list.NextCursor != nil {
		t.Fatalf("one page, but nextCursor = %q", *list.NextCursor)
	}
	byJID := map[string]map[string]any{}
	for _, c := range list.Data {
		byJID[c["remoteJid"].(string)] = c
	}
	a := byJID[chatA]
	if a["status"] != "paused" || a["botId"] != e.pedido || a["pushName"] != "Ana" || a["unread"] != 1.0 {
		t.Fatalf("chat A = %v", a)
	}
	if s := a["session"].(map[string]any); s["status"] != "paused" || s["reason"] != "operator" || s["botId"] != e.pedido {
		t.Fatalf("chat A's session = %v", s)
	}
	if m := a["messages"].(map[string]any); m["in"] != 4.0 || m["out"] != 1.0 || m["total"] != 5.0 {
		t.Fatalf("chat A's counts = %v", m)
	}
	if last := a["lastMessage"].(map[string]any); last["id"] != "a3" || last["text"] != "still there?" || last["status"] != "ignored" {
		t.Fatalf("chat A's last message = %v", last)
	}
	usage := a["usage"].(map[string]any)
	if usage["promptTokens"].(float64) <= 0 || usage["completionTokens"].(float64) <= 0 ||
		usage["totalTokens"] != usage["promptTokens"].(float64)+usage["completionTokens"].(float64) {
		t.Fatalf("chat A's usage = %v", usage)
	}
	// B's session was closed (and, without keepOpen, deleted): the chat
	// shows closed with the bot that answered it.
	if b := byJID[chatB]; b["status"] != "closed" || b["botId"] != e.pedido || b["session"] != nil {
		t.Fatalf("chat B = %v", b)
	}
	if d := byJID[chatD]; d["status"] != nil || d["botId"] != nil || d["pushName"] != "Bruno Souza" {
		t.Fatalf("chat D = %v", d)
	}

	// One chat with its sessions.
	detail := e.s.must(http.StatusOK, "GET", "/conversations/shop/"+chatA, tok, nil).json(t)
	sessions := detail["sessions"].([]any)
	if len(sessions) != 1 || detail["remoteJid"] != chatA {
		t.Fatalf("chat A = %v", detail)
	}
	if s := sessions[0].(map[string]any); s["status"] != "paused" || s["reason"] != "operator" || s["createdAt"] == nil {
		t.Fatalf("chat A's session = %v", s)
	}
	// A phone number or a URL-escaped JID names the chat too.
	e.s.must(http.StatusOK, "GET", "/conversations/shop/5511000000001", tok, nil)
	e.s.must(http.StatusOK, "GET", "/conversations/shop/"+url.PathEscape(chatA), tok, nil)
	e.s.must(http.StatusNotFound, "GET", "/conversations/shop/5599@s.whatsapp.net", tok, nil)

	// The chat's messages, newest first, with what became of each.
	msgs := e.s.page("/conversations/shop/"+chatA+"/messages", tok).Data
	if len(msgs) != 5 {
		t.Fatalf("chat A has %d messages, want 5", len(msgs))
	}
	wantStatus := []struct{ id, status, reason string }{
		{"a3", "ignored", "session paused: a human is answering"},
		{"op1", "ignored", "operator took over"},
		{"", "sent", ""},
		{"a2", "answered", ""},
		{"a1", "ignored", "no bot trigger matched"},
	}
	for i, w := range wantStatus {
		m := msgs[i]
		if (w.id != "" && m["id"] != w.id) || m["status"] != w.status || (m["reason"] != nil && m["reason"] != w.reason) ||
			(w.reason != "" && m["reason"] != w.reason) {
			t.Fatalf("message %d = %v, want %+v", i, m, w)
		}
	}
	reply, answered := msgs[2], msgs[3]
	if reply["fromMe"] != true || reply["direction"] != "out" || reply["text"] != "echo: meu pedido" ||
		reply["botId"] != e.pedido || reply["sessionId"] == nil || reply["latencyMs"] == nil {
		t.Fatalf("bot reply = %v", reply)
	}
	if u := reply["usage"].(map[string]any); u["promptTokens"].(float64) <= 0 || u["completionTokens"].(float64) <= 0 {
		t.Fatalf("bot reply usage = %v", u)
	}
	if answered["botId"] != e.pedido || answered["sessionId"] != reply["sessionId"] || answered["usage"] != nil {
		t.Fatalf("answered message = %v", answered)
	}
	if m := answered["message"].(map[string]any); m["conversation"] != "meu pedido" {
		t.Fatalf("answered message's content = %v", m)
	}
	// C's failure is there with its error, never as the customer saw it.
	c := e.s.page("/conversations/shop/"+chatC+"/messages", tok).Data
	if len(c) != 1 || c[0]["status"] != "failed" || !strings.Contains(c[0]["error"].(string), "HTTP 500") {
		t.Fatalf("chat C = %v", c)
	}

	// Directions and orders.
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"?direction=in", []string{"a3", "op1", "a2", "a1"}},
		{"?direction=out", []string{""}},
		{"?order=asc&direction=in", []string{"a1", "a2", "op1", "a3"}},
	} {
		got := field(e.s.page("/conversations/shop/"+chatA+"/messages"+tt.query, tok).Data, "id")
		if tt.want[0] == "" { // the reply's id is the gateway's
			if len(got) != 1 || got[0] == "" {
				t.Fatalf("%s: %v", tt.query, got)
			}
			continue
		}
		if !slices.Equal(got, tt.want) {
			t.Fatalf("%s: %v, want %v", tt.query, got, tt.want)
		}
	}
}

func TestConversationsFilters(t *testing.T) {
	e := newConversationsEnv(t)
	tok := e.inst.Token
	for _, tt := range []struct {
		query string
		want  []string
	}{
		{"", []string{chatE, chatD, chatC, chatA, chatB}},
		{"?botId=" + e.pedido, []string{chatC, chatA, chatB}},
		{"?botId=" + e.orcamento, []string{chatE}},
		{"?status=opened", []string{chatE, chatC}},
		{"?status=paused", []string{chatA}},
		{"?status=closed", []string{chatB}},
		{"?status=opened&botId=" + e.orcamento, []string{chatE}},
		{"?q=bruno", []string{chatD}},
		{"?q=SOUZA", []string{chatD}},
		{"?q=0003", []string{chatC}},
		{"?q=ana", []string{chatE, chatC, chatA, chatB}},
		{"?q=%25", []string{}}, // a literal %
		{"?q=_", []string{}},   // a literal _
		{"?limit=2", []string{chatE, chatD}},
		{"?limit=200", []string{chatE, chatD, chatC, chatA, chatB}},
	} {
		t.Run(tt.query, func(t *testing.T) {
			if got := field(e.s.page("/conversations/shop"+tt.query, tok).Data, "remoteJid"); !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	for _, tt := range []struct{ path, field string }{
		{"/conversations/shop?status=open", "status"},
		{"/conversations/shop?limit=0", "limit"},
		{"/conversations/shop?limit=201", "limit"},
		{"/conversations/shop?limit=ten", "limit"},
		{"/conversations/shop?cursor=bm90LWEtY3Vyc29y", "cursor"},
		{"/conversations/shop?botId=no-such-bot", "botId"},
		{"/conversations/shop/" + chatA + "/messages?direction=sideways", "direction"},
		{"/conversations/shop/" + chatA + "/messages?order=up", "order"},
		{"/conversations/shop/" + chatA + "/messages?limit=201", "limit"},
		{"/conversations/shop/" + chatA + "/messages?cursor=!!", "cursor"},
		{"/conversations/shop/not a jid/messages", "remoteJid"},
	} {
		r := e.s.must(http.StatusBadRequest, "GET", strings.ReplaceAll(tt.path, " ", "%20"), tok, nil)
		hasMessage(t, r, tt.field+": ")
	}
	// A cursor of one order is refused by the other.
	p := e.s.page("/conversations/shop/"+chatA+"/messages?limit=1", tok)
	e.s.must(http.StatusBadRequest, "GET", "/conversations/shop/"+chatA+"/messages?order=asc&cursor="+*p.NextCursor, tok, nil)
}

// TestConversationsCursorsWhileMessagesArrive pages through conversations
// and through one chat's messages while another client keeps posting:
// every row that existed when paging began is seen once, in order, and
// nothing is seen twice.
func TestConversationsCursorsWhileMessagesArrive(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	const chats = 12
	var wantChats []string
	for i := range chats {
		chat := fmt.Sprintf("55110%02d@s.whatsapp.net", i)
		s.must(http.StatusOK, "POST", "/webhook/evolution", inst.Token, map[string]any{
			"numberId": inst.Number, "key": map[string]any{"id": fmt.Sprintf("c%d", i), "remoteJid": chat},
			"message": map[string]any{"conversation": "hi"},
		})
		wantChats = append([]string{chat}, wantChats...)
	}
	const busy = "5511999@s.whatsapp.net"
	var wantMsgs []string
	for i := range 20 {
		id := fmt.Sprintf("busy-%02d", i)
		if err := post(s, inst, id, busy, "hello"); err != nil {
			t.Fatal(err)
		}
		wantMsgs = append([]string{id}, wantMsgs...)
	}
	wantChats = append([]string{busy}, wantChats...)

	// A writer posts to old chats, to the busy chat and to new chats from
	// when the first page has been read until the reader is done.
	start, stop := make(chan struct{}), make(chan struct{})
	var (
		wg      sync.WaitGroup
		written atomic.Int64
	)
	writeErr := make(chan error, 1)
	var once sync.Once
	wg.Add(1)
	go func() {
		defer wg.Done()
		<-start
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			chat := []string{wantChats[(i*5)%len(wantChats)], busy, fmt.Sprintf("new%d@s.whatsapp.net", i)}[i%3]
			if err := post(s, inst, fmt.Sprintf("late-%d", i), chat, "more"); err != nil {
				writeErr <- err
				return
			}
			written.Add(1)
		}
	}()

	// collect pages through path; between pages it waits for a few more
	// writes while the writer runs, so that they land between pages.
	collect := func(path string, key string, writing bool) []string {
		var got []string
		cursor := ""
		for range 100 {
			p := s.page(path+cursor, inst.Token)
			got = append(got, field(p.Data, key)...)
			if p.NextCursor == nil {
				return got
			}
			cursor = "&cursor=" + *p.NextCursor
			if !writing {
				continue
			}
			once.Do(func() { close(start) })
			n := written.Load() + 2
			eventually(t, func() bool { return written.Load() >= n || len(writeErr) > 0 }, "more concurrent writes")
		}
		t.Fatalf("%s: more than 100 pages", path)
		return nil
	}
	gotChats := collect("/conversations/shop?limit=3", "remoteJid", true)
	gotMsgs := collect("/conversations/shop/"+busy+"/messages?limit=3", "id", true)
	once.Do(func() { close(start) })
	close(stop)
	wg.Wait()
	select {
	case err := <-writeErr:
		t.Fatal(err)
	default:
	}
	t.Logf("%d messages arrived while paging", written.Load())
	if !slices.Equal(gotChats, wantChats) {
		t.Fatalf("paged conversations = %v\nwant %v", gotChats, wantChats)
	}
	// The writer was already running when this listing began: messages
	// newer than its first page may lead it; after them come exactly the
	// messages that were there, each once.
	first := slices.Index(gotMsgs, wantMsgs[0])
	if first < 0 || !slices.Equal(gotMsgs[first:], wantMsgs) {
		t.Fatalf("paged messages = %v\nwant, after any newer ones, %v", gotMsgs, wantMsgs)
	}
	for _, id := range gotMsgs[:first] {
		if !strings.HasPrefix(id, "late-") {
			t.Fatalf("%s leads the listing", id)
		}
	}
	// Oldest first, the same messages in the other order.
	asc := collect("/conversations/shop/"+busy+"/messages?order=asc&direction=in&limit=4", "id", false)
	if want := slices.Clone(wantMsgs); !slices.Equal(asc[:len(want)], func() []string { slices.Reverse(want); return want }()) {
		t.Fatalf("oldest first = %v", asc)
	}
}

// TestConversationsIsolation tries every conversations route of instance
// alpha with beta's token, and alpha's chat through beta's routes.
func TestConversationsIsolation(t *testing.T) {
	s := startServer(t, "")
	a := s.createInstance("alpha", "")
	b := s.createInstance("beta", "")
	const chat = "5511777@s.whatsapp.net"
	if r := s.inbound(a, "m1", chat, "secret order 42"); r.Status != http.StatusOK {
		t.Fatalf("inbound: %d", r.Status)
	}
	routes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/chat/findMessages/%s", map[string]any{}},
		{"POST", "/chat/findChats/%s", map[string]any{}},
		{"POST", "/chat/findContacts/%s", map[string]any{}},
		{"POST", "/chat/findStatusMessage/%s", map[string]any{}},
		{"GET", "/conversations/%s", nil},
		{"GET", "/conversations/%s/" + chat, nil},
		{"GET", "/conversations/%s/" + chat + "/messages", nil},
		{"GET", "/conversations/%s/" + url.PathEscape(chat) + "/messages", nil},
	}
	for _, rt := range routes {
		alpha := strings.Replace(rt.path, "%s", "alpha", 1)
		for _, suffix := range []string{"", "?instanceName=beta"} {
			if r := s.call(rt.method, alpha+suffix, b.Token, rt.body); r.Status != http.StatusForbidden {
				t.Errorf("%s %s with beta's token: %d, want 403: %s", rt.method, alpha+suffix, r.Status, r.Body)
			} else {
				r.messages(t)
			}
			if r := s.call(rt.method, alpha+suffix, "", rt.body); r.Status != http.StatusUnauthorized {
				t.Errorf("%s %s without a key: %d, want 401", rt.method, alpha+suffix, r.Status)
			}
		}
		if r := s.call(rt.method, strings.Replace(rt.path, "%s", "nobody", 1), testAPIKey, rt.body); r.Status != http.StatusNotFound {
			t.Errorf("%s %s for an unknown instance with the global key: %d, want 404", rt.method, rt.path, r.Status)
		}
		if r := s.call(rt.method, alpha, a.Token, rt.body); r.Status != http.StatusOK {
			t.Errorf("%s %s with alpha's token: %d: %s", rt.method, alpha, r.Status, r.Body)
		}
	}
	// beta's own routes know nothing of alpha's chat.
	s.must(http.StatusNotFound, "GET", "/conversations/beta/"+chat, b.Token, nil)
	s.must(http.StatusNotFound, "GET", "/conversations/beta/"+chat+"/messages", b.Token, nil)
	for _, r := range []response{
		s.must(http.StatusOK, "GET", "/conversations/beta", b.Token, nil),
		s.must(http.StatusOK, "POST", "/chat/findMessages/beta", b.Token, map[string]any{"where": map[string]any{"key": map[string]any{"remoteJid": chat}}}),
		s.must(http.StatusOK, "POST", "/chat/findChats/beta", b.Token, nil),
		s.must(http.StatusOK, "POST", "/chat/findChats/beta", b.Token, map[string]any{"where": map[string]any{"remoteJid": chat}}),
		s.must(http.StatusOK, "POST", "/chat/findContacts/beta", b.Token, nil),
		s.must(http.StatusOK, "POST", "/chat/findContacts/beta", b.Token, map[string]any{"where": map[string]any{"remoteJid": chat}}),
		s.must(http.StatusOK, "POST", "/chat/findStatusMessage/beta", b.Token, map[string]any{"where": map[string]any{"id": "m1"}}),
	} {
		if strings.Contains(string(r.Body), "5511777") {
			t.Fatalf("beta sees alpha's chat: %s", r.Body)
		}
	}
}

func TestEvolutionFindMessagesAndChats(t *testing.T) {
	e := newConversationsEnv(t)
	tok := e.inst.Token
	var body struct {
		Messages struct {
			Total       int              `json:"total"`
			Pages       int              `json:"pages"`
			CurrentPage int              `json:"currentPage"`
			Records     []map[string]any `json:"records"`
		} `json:"messages"`
	}
	find := func(req any) {
		t.Helper()
		body.Messages.Records = nil
		if err := json.Unmarshal(e.s.must(http.StatusOK, "POST", "/chat/findMessages/shop", tok, req).Body, &body); err != nil {
			t.Fatal(err)
		}
	}
	// All of chat A (5 messages), 2 per page, page 2.
	find(map[string]any{"where": map[string]any{"key": map[string]any{"remoteJid": chatA}}, "page": 2, "offset": 2})
	m := body.Messages
	if m.Total != 5 || m.Pages != 3 || m.CurrentPage != 2 || len(m.Records) != 2 {
		t.Fatalf("findMessages = %+v", m)
	}
	r := m.Records[1] // newest first: a3, op1 | reply, a2 | a1
	key := r["key"].(map[string]any)
	if key["id"] != "a2" || key["remoteJid"] != chatA || key["fromMe"] != false || r["pushName"] != "Ana" ||
		r["messageType"] != "conversation" || r["messageTimestamp"] == nil || r["status"] != "DELIVERY_ACK" ||
		r["instanceId"] != e.inst.ID || r["id"] == nil {
		t.Fatalf("record = %v", r)
	}
	if msg := r["message"].(map[string]any); msg["conversation"] != "meu pedido" {
		t.Fatalf("record message = %v", msg)
	}
	// fromMe false filters too (Evolution ignores it); a number names the chat.
	find(map[string]any{"where": map[string]any{"key": map[string]any{"remoteJid": "5511000000001", "fromMe": false}}})
	if body.Messages.Total != 3 {
		t.Fatalf("fromMe false: %d records, want 3", body.Messages.Total)
	}
	find(map[string]any{"where": map[string]any{"key": map[string]any{"fromMe": true}}})
	if body.Messages.Total != 4 { // op1 and three bot replies
		t.Fatalf("fromMe true: %d records, want 4", body.Messages.Total)
	}
	find(map[string]any{"where": map[string]any{"key": map[string]any{"id": "c1"}}})
	if body.Messages.Total != 1 || body.Messages.Records[0]["key"].(map[string]any)["remoteJid"] != chatC {
		t.Fatalf("by id: %+v", body.Messages)
	}
	find(nil) // no body: everything, 50 per page
	if body.Messages.Total != 11 || body.Messages.Pages != 1 || body.Messages.CurrentPage != 1 {
		t.Fatalf("no filter: %+v", body.Messages)
	}
	find(map[string]any{"page": 9})
	if len(body.Messages.Records) != 0 || body.Messages.Total != 11 {
		t.Fatalf("past the end: %+v", body.Messages)
	}
	find(map[string]any{"page": 1_000_000, "offset": 1000}) // the last page number accepted
	if len(body.Messages.Records) != 0 || body.Messages.CurrentPage != 1_000_000 {
		t.Fatalf("last page: %+v", body.Messages)
	}
	for _, tt := range []struct {
		body any
		want string
	}{
		{map[string]any{"page": 0}, "page: must be from 1 to 1000000"},
		{map[string]any{"page": 1_000_001}, "page: must be from 1 to 1000000"},
		{`{"page": 9223372036854775807}`, "page: must be from 1 to 1000000"}, // wrapped the offset negative
		{`{"page": 9223372036854775808}`, "page: must be an integer"},
		{map[string]any{"offset": 0}, "offset: must be a page size from 1 to 1000"},
		{map[string]any{"offset": 1001}, "offset: must be a page size from 1 to 1000"},
		{map[string]any{"where": map[string]any{"key": map[string]any{"remoteJid": "abc"}}}, "where.key.remoteJid:"},
	} {
		hasMessage(t, e.s.must(http.StatusBadRequest, "POST", "/chat/findMessages/shop", tok, tt.body), tt.want)
	}

	var chats []map[string]any
	if err := json.Unmarshal(e.s.must(http.StatusOK, "POST", "/chat/findChats/shop", tok, map[string]any{}).Body, &chats); err != nil {
		t.Fatal(err)
	}
	if got := field(chats, "remoteJid"); !slices.Equal(got, []string{chatE, chatD, chatC, chatA, chatB}) {
		t.Fatalf("findChats = %v", got)
	}
	a := chats[3]
	last := a["lastMessage"].(map[string]any)
	if a["unreadMessages"] != 1.0 || a["pushName"] != "Ana" || a["id"] != chatA || a["updatedAt"] == nil ||
		last["key"].(map[string]any)["id"] != "a3" || last["messageType"] != "conversation" {
		t.Fatalf("findChats A = %v", a)
	}
	if err := json.Unmarshal(e.s.must(http.StatusOK, "POST", "/chat/findChats/shop", tok,
		map[string]any{"where": map[string]any{"remoteJid": chatB}}).Body, &chats); err != nil {
		t.Fatal(err)
	}
	if len(chats) != 1 || chats[0]["remoteJid"] != chatB || chats[0]["unreadMessages"] != 0.0 {
		t.Fatalf("findChats B = %v", chats)
	}
}

func TestRetentionDeletesOldMessagesAndSessions(t *testing.T) {
	e := newBotEnv(t, withConfig(func(c *config.Config) {
		c.MessageRetentionDays, c.RetentionSweepEach = 1, 20*time.Millisecond
	}))
	e.bot(func(b map[string]any) {
		b["triggerType"], b["triggerOperator"], b["triggerValue"] = "keyword", "contains", "pedido"
		b["keepOpen"], b["keywordFinish"] = true, "#fim"
	})
	e.say("a1", chatA, "pedido", nil)
	e.replies(1)
	e.say("a2", chatA, "#fim", nil)
	e.waitState(chatA, "a2")
	e.say("b1", chatB, "pedido", nil)
	e.replies(2)
	e.say("b2", chatB, "thanks", nil)
	e.replies(3)
	tok := e.inst.Token
	if got := e.s.must(http.StatusOK, "GET", "/conversations/shop/"+chatA, tok, nil).json(t)["sessions"].([]any); len(got) != 1 {
		t.Fatalf("chat A's kept session: %v", got)
	}
	// Two days pass for all of chat A (and its closed session) and for B's
	// first exchange.
	twoDays := (48 * time.Hour).Milliseconds()
	e.exec("UPDATE messages SET created_at = created_at - $1 WHERE remote_jid = $2", twoDays, chatA)
	e.exec("UPDATE openai_sessions SET closed_at = closed_at - $1 WHERE status = 'closed'", twoDays)
	var firstReply string
	msgs := e.s.page("/conversations/shop/"+chatB+"/messages?order=asc", tok).Data
	firstReply = msgs[1]["id"].(string)
	e.exec("UPDATE messages SET created_at = created_at - $1 WHERE message_id IN ('b1', $2)", twoDays, firstReply)

	eventually(t, func() bool {
		return e.s.call("GET", "/conversations/shop/"+chatA, tok, nil).Status == http.StatusNotFound
	}, "chat A to be deleted")
	eventually(t, func() bool {
		return len(e.s.page("/conversations/shop/"+chatB+"/messages", tok).Data) == 2
	}, "B's old messages to be deleted")
	b := e.s.must(http.StatusOK, "GET", "/conversations/shop/"+chatB, tok, nil).json(t)
	if m := b["messages"].(map[string]any); m["in"] != 1.0 || m["out"] != 1.0 || b["status"] != "opened" {
		t.Fatalf("chat B after retention = %v", b)
	}
	db := storetest.RawDB(t, e.s.dbURL)
	var closed, history int
	db.QueryRow("SELECT COUNT(*) FROM openai_sessions WHERE status = 'closed'").Scan(&closed)
	db.QueryRow("SELECT COUNT(*) FROM openai_history h JOIN openai_sessions s ON s.id = h.session_id WHERE s.remote_jid = $1", chatA).Scan(&history)
	if closed != 0 || history != 0 {
		t.Fatalf("after retention: %d closed sessions, %d turns of chat A's history", closed, history)
	}
}

func TestDeletionRemovesHistory(t *testing.T) {
	e := newConversationsEnv(t)
	tok := e.inst.Token
	count := func(query string, args ...any) int {
		t.Helper()
		var n int
		if err := storetest.RawDB(t, e.s.dbURL).QueryRow(query, args...).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	// changeStatus delete with a botId: that bot's part of the chat. E has
	// only the orcamento bot's exchange, so nothing is left of it.
	r := e.s.must(http.StatusOK, "POST", "/openai/changeStatus/shop", tok,
		map[string]any{"remoteJid": chatE, "status": "delete", "botId": e.orcamento}).json(t)
	if r["deleted"] != 1.0 || r["deletedMessages"] != 2.0 {
		t.Fatalf("changeStatus delete = %v", r)
	}
	e.s.must(http.StatusNotFound, "GET", "/conversations/shop/"+chatE, tok, nil)

	// Deleting the pedido bot deletes what it handled or said in every
	// chat: A keeps what it never handled, B and C are gone.
	sessions := count("SELECT COUNT(*) FROM openai_sessions WHERE bot_id = $1", e.pedido)
	if sessions == 0 {
		t.Fatal("the bot has no sessions to delete")
	}
	e.s.must(http.StatusOK, "DELETE", "/openai/delete/"+e.pedido+"/shop", tok, nil)
	if got := field(e.s.page("/conversations/shop", tok).Data, "remoteJid"); !slices.Equal(got, []string{chatD, chatA}) {
		t.Fatalf("conversations after deleting the bot = %v", got)
	}
	a := e.s.must(http.StatusOK, "GET", "/conversations/shop/"+chatA, tok, nil).json(t)
	if a["status"] != nil || a["botId"] != nil || len(a["sessions"].([]any)) != 0 || a["usage"].(map[string]any)["totalTokens"] != 0.0 {
		t.Fatalf("chat A after deleting its bot = %v", a)
	}
	if got := field(e.s.page("/conversations/shop/"+chatA+"/messages", tok).Data, "id"); !slices.Equal(got, []string{"a1"}) {
		t.Fatalf("chat A's messages after deleting its bot = %v", got)
	}
	if n := count("SELECT COUNT(*) FROM messages WHERE bot_id IS NOT NULL"); n != 0 {
		t.Fatalf("%d messages of deleted bots left", n)
	}
	if n := count("SELECT COUNT(*) FROM openai_history"); n != 0 {
		t.Fatalf("%d turns of model history left", n)
	}

	// changeStatus delete without a botId: the whole chat.
	r = e.s.must(http.StatusOK, "POST", "/openai/changeStatus/shop", tok, map[string]any{"remoteJid": chatA, "status": "delete"}).json(t)
	if r["deletedMessages"] != 1.0 {
		t.Fatalf("changeStatus delete = %v", r)
	}
	e.s.must(http.StatusNotFound, "GET", "/conversations/shop/"+chatA, tok, nil)

	// Deleting the instance deletes everything it had.
	e.s.must(http.StatusOK, "DELETE", "/instance/delete/shop", tok, nil)
	for _, table := range []string{"messages", "conversations", "openai_sessions"} {
		if n := count("SELECT COUNT(*) FROM "+table+" WHERE instance_id = $1", e.inst.ID); n != 0 {
			t.Fatalf("%d rows of the deleted instance in %s", n, table)
		}
	}
}
