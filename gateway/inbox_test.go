package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
)

// inboxList is GET /api/v1/inbox's answer.
type inboxList struct {
	Data []struct {
		ID, Instance, Channel, ChatbotID, RemoteJID, Name, Status, LastFrom string
		LastMessage                                                         string `json:"lastMessage"`
	} `json:"data"`
	NextCursor *string `json:"nextCursor"`
}

func decodeAs[T any](t *testing.T, r response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil {
		t.Fatalf("%v: %s", err, r.Body)
	}
	return v
}

type inboxMessage struct {
	From, AgentName, Text, Status, Reason string
}

func (se *session) inboxMessages(id string) []inboxMessage {
	se.s.t.Helper()
	r := se.call("GET", "/api/v1/inbox/"+id+"/messages", nil)
	if r.Status != http.StatusOK {
		se.s.t.Fatalf("messages: %d %s", r.Status, r.Body)
	}
	return decodeAs[struct{ Data []inboxMessage }](se.s.t, r).Data
}

// TestInboxHandoff: an agent sees the organization's EVOLUTION chat with
// the bot's answer, takes it over (the bot then stores the customer's
// message without answering), answers through the channel as themselves,
// hands it back (the bot answers again), and the webhook saw the pause and
// the resumption; a state change without the CSRF token is refused.
func TestInboxHandoff(t *testing.T) {
	e := newBotEnv(t)
	e.bot(nil)
	s := e.s
	s.createConsoleUser(s.defaultOrgID(), "carla@example.com", "agent")
	agent := s.signInAPI("carla@example.com", testPassword)
	const chat = "5511999990001@s.whatsapp.net"

	e.say("in-1", chat, "hello", nil)
	if got := e.replies(1); got[0] != "echo: hello" {
		t.Fatalf("bot reply = %q", got)
	}
	list := decodeAs[inboxList](t, agent.call("GET", "/api/v1/inbox", nil))
	if len(list.Data) != 1 || list.Data[0].Channel != "evolution" || list.Data[0].Status != "opened" ||
		list.Data[0].Instance != "shop" || list.Data[0].RemoteJID != chat {
		t.Fatalf("inbox = %s", mustJSON(list))
	}
	id := list.Data[0].ID
	if r := agent.call("GET", "/api/v1/inbox?status=paused", nil); len(decodeAs[inboxList](t, r).Data) != 0 {
		t.Fatalf("paused filter lists %s", r.Body)
	}

	if r, _ := s.raw("POST", "/api/v1/inbox/"+id+"/takeover", agent.Cookie, "", nil); r.Status != http.StatusForbidden {
		t.Fatalf("takeover without CSRF: %d %s", r.Status, r.Body)
	}
	if r := agent.call("POST", "/api/v1/inbox/"+id+"/takeover", nil); r.Status != http.StatusOK || r.json(t)["status"] != "paused" {
		t.Fatalf("takeover: %d %s", r.Status, r.Body)
	}
	e.say("in-2", chat, "is anyone there?", nil)
	if state, reason := e.waitState(chat, "in-2"); state != "ignored" || !strings.Contains(reason, "paused") {
		t.Fatalf("message while taken over: %s (%s)", state, reason)
	}
	if r := agent.call("POST", "/api/v1/inbox/"+id+"/messages", map[string]any{"text": " "}); r.Status != http.StatusBadRequest {
		t.Fatalf("empty reply: %d %s", r.Status, r.Body)
	} else if _, fields := apiErr(t, r); fields["text"] == nil {
		t.Fatalf("empty reply error names no text field: %s", r.Body)
	}
	r := agent.call("POST", "/api/v1/inbox/"+id+"/messages", map[string]any{"text": "Carla here, how can I help?"})
	if r.Status != http.StatusCreated {
		t.Fatalf("reply: %d %s", r.Status, r.Body)
	}
	if m := r.json(t); m["from"] != "agent" || m["agentName"] != "carla" {
		t.Fatalf("reply = %s", r.Body)
	}
	// The EVOLUTION channel delivers sends as send.message events.
	if got := e.replies(2); got[1] != "Carla here, how can I help?" {
		t.Fatalf("sent through the channel: %q", got)
	}
	r = agent.call("POST", "/api/v1/inbox/"+id+"/handback", nil)
	if r.Status != http.StatusOK || r.json(t)["status"] != "opened" {
		t.Fatalf("handback: %d %s", r.Status, r.Body)
	}
	e.say("in-3", chat, "thanks", nil)
	if got := e.replies(3); got[2] != "echo: thanks" {
		t.Fatalf("after hand-back: %q", got)
	}

	var from []string
	for _, m := range agent.inboxMessages(id) {
		from = append(from, m.From+":"+m.Text)
		if m.Text == "is anyone there?" && !strings.Contains(m.Reason, "paused") {
			t.Errorf("the message while taken over shows no reason: %+v", m)
		}
		if m.From == "agent" && m.AgentName != "carla" {
			t.Errorf("agent message without the agent's name: %+v", m)
		}
	}
	want := []string{"customer:hello", "bot:echo: hello", "customer:is anyone there?", "agent:Carla here, how can I help?",
		"customer:thanks", "bot:echo: thanks"}
	if !slices.Equal(from, want) {
		t.Fatalf("messages = %q\nwant %q", from, want)
	}
	events := e.sessionEvents()
	if !slices.Contains(events, "paused:operator") || !slices.Contains(events, "opened:handed back") {
		t.Fatalf("session events = %q", events)
	}
	// Nothing to hand back twice; nothing to take over without a bot.
	if r := agent.call("POST", "/api/v1/inbox/"+id+"/handback", nil); r.Status != http.StatusOK {
		t.Fatalf("second handback: %d %s", r.Status, r.Body)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// TestInboxOrganizationScope: each organization's inbox lists its own
// conversations only, and another's conversation id is unknown to every
// route.
func TestInboxOrganizationScope(t *testing.T) {
	s := startServer(t, "")
	mine := s.createInstance("shop", "")
	if r := s.inbound(mine, "m1", "5511999990002@s.whatsapp.net", "hello"); r.Status != http.StatusOK {
		t.Fatalf("inbound: %d %s", r.Status, r.Body)
	}
	other := s.createOrg("Other")
	m := s.must(http.StatusCreated, "POST", "/instance/create", other.Key,
		map[string]any{"instanceName": "theirs", "integration": "EVOLUTION", "number": "num-theirs"}).json(t)
	theirs := instance{Name: "theirs", Token: m["hash"].(string), Number: "num-theirs"}
	if r := s.inbound(theirs, "t1", "5511999990003@s.whatsapp.net", "secret stuff"); r.Status != http.StatusOK {
		t.Fatalf("inbound: %d %s", r.Status, r.Body)
	}
	s.createConsoleUser(s.defaultOrgID(), "agent@example.com", "agent")
	agent := s.signInAPI("agent@example.com", testPassword)

	list := decodeAs[inboxList](t, agent.call("GET", "/api/v1/inbox", nil))
	if len(list.Data) != 1 || list.Data[0].Instance != "shop" {
		t.Fatalf("agent's inbox = %s", mustJSON(list))
	}
	theirList := decodeAs[inboxList](t, s.apiMust(http.StatusOK, "GET", "/api/v1/inbox", other.Key, nil))
	if len(theirList.Data) != 1 || theirList.Data[0].Instance != "theirs" || theirList.Data[0].LastMessage != "secret stuff" {
		t.Fatalf("other organization's inbox = %s", mustJSON(theirList))
	}
	foreign := theirList.Data[0].ID
	for _, c := range []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/v1/inbox/" + foreign, nil},
		{"GET", "/api/v1/inbox/" + foreign + "/messages", nil},
		{"POST", "/api/v1/inbox/" + foreign + "/messages", map[string]any{"text": "hi"}},
		{"POST", "/api/v1/inbox/" + foreign + "/takeover", nil},
		{"POST", "/api/v1/inbox/" + foreign + "/handback", nil},
		{"GET", "/api/v1/inbox/not-an-id", nil},
	} {
		if r := agent.call(c.method, c.path, c.body); r.Status != http.StatusNotFound || strings.Contains(string(r.Body), "secret") {
			t.Errorf("%s %s: %d %s", c.method, c.path, r.Status, r.Body)
		}
	}
	// Pages follow the cursor, newest activity first.
	if r := s.inbound(mine, "m2", "5511999990004@s.whatsapp.net", "hello again"); r.Status != http.StatusOK {
		t.Fatalf("inbound: %d %s", r.Status, r.Body)
	}
	first := decodeAs[inboxList](t, agent.call("GET", "/api/v1/inbox?limit=1", nil))
	if len(first.Data) != 1 || first.Data[0].RemoteJID != "5511999990004@s.whatsapp.net" || first.NextCursor == nil {
		t.Fatalf("first page = %s", mustJSON(first))
	}
	second := decodeAs[inboxList](t, agent.call("GET", "/api/v1/inbox?limit=1&cursor="+*first.NextCursor, nil))
	if len(second.Data) != 1 || second.Data[0].RemoteJID != "5511999990002@s.whatsapp.net" || second.NextCursor != nil {
		t.Fatalf("second page = %s", mustJSON(second))
	}
	// A chat without a bot has nothing to take over.
	if r := agent.call("POST", "/api/v1/inbox/"+list.Data[0].ID+"/takeover", nil); r.Status != http.StatusConflict {
		t.Fatalf("takeover without a bot: %d %s", r.Status, r.Body)
	}
	for _, q := range []string{"status=asleep", "channel=fax", "cursor=nope"} {
		if r := agent.call("GET", "/api/v1/inbox?"+q, nil); r.Status != http.StatusBadRequest {
			t.Errorf("?%s: %d %s", q, r.Status, r.Body)
		}
	}
}

// TestInboxWebchat: a web chat conversation is in the inbox with its
// channel, and an agent's reply reaches the visitor through the widget's
// history route, the conversation then held by a human.
func TestInboxWebchat(t *testing.T) {
	e := newWebEnv(t, nil)
	e.makePublic(nil)
	visitor := e.publicCall("POST", "/sessions", "", "", nil).json(t)["visitorToken"].(string)
	if r := e.publicCall("POST", "/chat?stream=false", "", visitor, map[string]any{"content": "hi there"}); r.Status != http.StatusOK {
		t.Fatalf("visitor chat: %d %s", r.Status, r.Body)
	}
	e.s.createConsoleUser(e.s.defaultOrgID(), "dora@example.com", "agent")
	agent := e.s.signInAPI("dora@example.com", testPassword)
	list := decodeAs[inboxList](t, agent.call("GET", "/api/v1/inbox?channel=webchat", nil))
	if len(list.Data) != 1 || list.Data[0].Channel != "webchat" || list.Data[0].ChatbotID != e.cb.ID || list.Data[0].Status != "opened" {
		t.Fatalf("web chat inbox = %s", mustJSON(list))
	}
	if r := agent.call("GET", "/api/v1/inbox?channel=evolution", nil); len(decodeAs[inboxList](t, r).Data) != 0 {
		t.Fatalf("evolution filter lists the web chat: %s", r.Body)
	}
	id := list.Data[0].ID
	if r := agent.call("POST", "/api/v1/inbox/"+id+"/messages", map[string]any{"text": "Dora from support here"}); r.Status != http.StatusCreated {
		t.Fatalf("reply: %d %s", r.Status, r.Body)
	}
	h := e.publicCall("GET", "/messages", "", visitor, nil)
	var hist struct {
		HumanMode bool `json:"humanMode"`
		Messages  []struct{ Role, Content string }
	}
	if err := json.Unmarshal(h.Body, &hist); err != nil {
		t.Fatal(err)
	}
	last := hist.Messages[len(hist.Messages)-1]
	if !hist.HumanMode || last.Role != "human" || last.Content != "Dora from support here" {
		t.Fatalf("visitor's history = %s", h.Body)
	}
	var from []string
	for _, m := range agent.inboxMessages(id) {
		from = append(from, m.From)
	}
	if got := strings.Join(from, ","); got != "bot,customer,bot,agent" {
		t.Fatalf("web chat messages from %s", got)
	}
}

// TestInboxPagesWithoutJavaScript: the inbox's filter form, take over,
// reply and hand back work as plain forms with the CSRF field, and are
// refused without it; a session's live streams are bounded.
func TestInboxPagesWithoutJavaScript(t *testing.T) {
	e := newBotEnv(t)
	e.bot(nil)
	s := e.s
	s.createConsoleUser(s.defaultOrgID(), "carla@example.com", "agent")
	agent := s.signInAPI("carla@example.com", testPassword)
	const chat = "5511999990009@s.whatsapp.net"
	e.say("in-1", chat, "hello", nil)
	e.replies(1)
	id := decodeAs[inboxList](t, agent.call("GET", "/api/v1/inbox", nil)).Data[0].ID

	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	send := func(method, path, form string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(agent.Cookie)
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}
	if resp, body := send("GET", "/console/inbox?status=opened&channel=evolution", ""); resp.StatusCode != http.StatusOK || !strings.Contains(body, "/console/inbox/c/"+id) {
		t.Fatalf("filtered inbox: %d %s", resp.StatusCode, body)
	}
	if resp, body := send("GET", "/console/inbox?status=paused", ""); resp.StatusCode != http.StatusOK || strings.Contains(body, "/console/inbox/c/"+id) {
		t.Fatalf("paused inbox lists the open chat: %d", resp.StatusCode)
	}
	if resp, body := send("GET", "/console/inbox?channel=fax", ""); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="channel-error"`) {
		t.Fatalf("bad filter: %d %s", resp.StatusCode, body)
	}
	page := "/console/inbox/c/" + id
	if resp, _ := send("POST", page+"/takeover", ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("takeover without CSRF: %d", resp.StatusCode)
	}
	csrf := "csrf=" + url.QueryEscape(agent.CSRF)
	if resp, _ := send("POST", page+"/takeover", csrf); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != page {
		t.Fatalf("takeover: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, body := send("POST", page+"/reply", csrf+"&text="); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, `id="reply-text-error"`) {
		t.Fatalf("empty reply: %d %s", resp.StatusCode, body)
	}
	if resp, _ := send("POST", page+"/reply", csrf+"&text=Right+with+you"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reply: %d", resp.StatusCode)
	}
	if got := e.replies(2); got[1] != "Right with you" {
		t.Fatalf("sent: %q", got)
	}
	resp, body := send("GET", page, "")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Right with you") || !strings.Contains(body, `id="handback"`) {
		t.Fatalf("conversation page: %d %s", resp.StatusCode, body)
	}
	if resp, _ := send("POST", page+"/handback", csrf); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("handback: %d", resp.StatusCode)
	}

	// Six live pages per session; the seventh waits for one to close.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	open := func() *http.Response {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/console/inbox/events", nil)
		req.AddCookie(agent.Cookie)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	for i := range 6 {
		resp := open()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
			t.Fatalf("stream %d: %d %s", i+1, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		defer resp.Body.Close()
		if line, _ := bufio.NewReader(resp.Body).ReadString('\n'); line != "event: conversations\n" {
			t.Fatalf("stream %d begins with %q", i+1, line)
		}
	}
	resp = open()
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("seventh stream: %d", resp.StatusCode)
	}
}

// TestInboxShowsSources: a grounded bot reply shows in the inbox with the
// knowledge it used, in the API and on the conversation's page.
func TestInboxShowsSources(t *testing.T) {
	e, cb, _ := newChatbotEnv(t)
	e.s.apiMust(http.StatusAccepted, "POST", "/api/external/chatbot/"+cb.ID+"/knowledge-base", testAPIKey, map[string]any{
		"type": "text", "title": "Opening hours", "body": "On Saturdays the shop opens at ten and closes at four."})
	waitKnowledge(t, e.s, cb.ID, testAPIKey)
	e.say("m1", "5511@s.whatsapp.net", "When does the shop open on Saturdays?", nil)
	e.replies(1)
	e.s.createConsoleUser(e.s.defaultOrgID(), "carla@example.com", "agent")
	agent := e.s.signInAPI("carla@example.com", testPassword)
	id := decodeAs[inboxList](t, agent.call("GET", "/api/v1/inbox?channel=evolution", nil)).Data[0].ID
	r := agent.call("GET", "/api/v1/inbox/"+id+"/messages", nil)
	msgs := decodeAs[struct {
		Data []struct {
			From    string
			Sources []struct{ Title, SourceID, ChunkID string }
		}
	}](t, r).Data
	if len(msgs) != 2 || msgs[1].From != "bot" || len(msgs[1].Sources) == 0 || msgs[1].Sources[0].Title != "Opening hours" {
		t.Fatalf("messages = %s", r.Body)
	}
	req, _ := http.NewRequest("GET", e.s.URL+"/console/inbox/c/"+id, nil)
	req.AddCookie(agent.Cookie)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(page), "Sources (1)") || !strings.Contains(string(page), "Opening hours") {
		t.Fatalf("the page shows no sources:\n%s", page)
	}
}
