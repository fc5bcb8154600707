package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/fakeai"
)

// webEnv is a gateway with a chatbot answering through the fake model.
type webEnv struct {
	t  *testing.T
	s  *server
	ai *fakeai.Server
	cb chatbot
}

func newWebEnv(t *testing.T, settings map[string]any) *webEnv {
	t.Helper()
	s := startServer(t, "")
	ai := fakeai.NewTestServer(t, fakeai.Options{})
	credsID := s.orgCreds("org-fake", chatbotProviderKey, ai.BaseURL())
	cb := s.createChatbot("Olivia", testAPIKey)
	set := map[string]any{"prompt": "You are Olivia.", "model": "gpt-4o-mini", "openaiCredsId": credsID,
		"greeting": "Hi! I am Olivia."}
	for k, v := range settings {
		set[k] = v
	}
	s.patchChatbot(cb.ID, map[string]any{"settings": set})
	return &webEnv{t: t, s: s, ai: ai, cb: cb}
}

func chatBody(token, text string) map[string]any {
	return map[string]any{"messages": []map[string]any{{"role": "user", "content": text}}, "platform": "api",
		"sessionToken": token}
}

// chat posts a turn with stream=false and returns the answer.
func (e *webEnv) chat(key string, body any) map[string]any {
	e.t.Helper()
	return e.s.apiMust(http.StatusOK, "POST", "/api/external/chatbot/"+e.cb.ID+"/chat?stream=false", key, body).json(e.t)
}

// sseEvent is one server-sent event.
type sseEvent struct {
	Name string
	Data map[string]any
}

// readSSE reads events from r until the stream ends or stop says so.
func readSSE(t *testing.T, r *bufio.Reader, stop func(sseEvent) bool) []sseEvent {
	t.Helper()
	var out []sseEvent
	var ev sseEvent
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return out
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "event: "):
			ev.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			if err := json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &ev.Data); err != nil {
				t.Fatalf("event data %q: %v", line, err)
			}
		case line == "" && ev.Name != "":
			out = append(out, ev)
			if stop != nil && stop(ev) {
				return out
			}
			ev = sseEvent{}
		}
	}
}

// stream posts a turn with stream=true; the caller reads the events.
func (e *webEnv) stream(ctx context.Context, key string, body any) (*http.Response, *bufio.Reader) {
	e.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", e.s.URL+"/api/external/chatbot/"+e.cb.ID+"/chat?stream=true", bytes.NewReader(b))
	req.Header.Set("x-api-key", key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { resp.Body.Close() })
	return resp, bufio.NewReader(resp.Body)
}

func (e *webEnv) messages(sessionID string) []map[string]any {
	e.t.Helper()
	r := e.s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+e.cb.ID+"/conversations/"+sessionID+"/messages", e.cb.Key, nil)
	var page struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &page); err != nil {
		e.t.Fatal(err)
	}
	return page.Data
}

func senders(msgs []map[string]any) string {
	var s []string
	for _, m := range msgs {
		s = append(s, m["sender_type"].(string)+":"+m["content"].(string))
	}
	return strings.Join(s, " | ")
}

func TestWebchatChatJSON(t *testing.T) {
	e := newWebEnv(t, nil)
	a := e.chat(e.cb.Key, chatBody("visitor-1", "hello"))
	msg := a["message"].(map[string]any)
	if msg["content"] != "echo: hello" || msg["role"] != "assistant" || msg["id"] == "" || a["sessionId"] == "" {
		t.Fatalf("answer = %v", a)
	}
	if u := a["usage"].(map[string]any); u["total_tokens"].(float64) <= 0 {
		t.Fatalf("usage = %v", u)
	}
	// The same visitor continues the same conversation; the server keeps
	// its history, so the model sees the first turn too.
	b := e.chat(testAPIKey, chatBody("visitor-1", "again"))
	if b["sessionId"] != a["sessionId"] {
		t.Fatalf("second turn in session %v, first in %v", b["sessionId"], a["sessionId"])
	}
	req, _ := e.ai.LastChat()
	var texts []string
	for _, m := range req.Messages {
		texts = append(texts, m.Role+":"+m.Content)
	}
	if got := strings.Join(texts, "|"); !strings.Contains(got, "user:hello|assistant:echo: hello|user:again") {
		t.Fatalf("model saw %s", got)
	}
	got := senders(e.messages(a["sessionId"].(string)))
	want := "bot:Hi! I am Olivia. | user:hello | bot:echo: hello | user:again | bot:echo: again"
	if got != want {
		t.Fatalf("messages = %s, want %s", got, want)
	}
	list := e.s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+e.cb.ID+"/conversations", e.cb.Key, nil).json(t)
	conv := list["data"].([]any)[0].(map[string]any)
	if conv["platform"] != "api" || conv["sns_user_id"] != "visitor-1" || conv["id"] != a["sessionId"] {
		t.Fatalf("conversation = %v", conv)
	}
	// The web chat's instance is internal: Evolution's listing hides it.
	if insts := e.s.must(http.StatusOK, "GET", "/instance/fetchInstances", testAPIKey, nil); strings.Contains(string(insts.Body), "WEBCHAT") {
		t.Fatalf("fetchInstances shows the web chat: %s", insts.Body)
	}
	// Nor do its routes reach it: it is the chatbot's, and goes with it.
	for _, path := range []string{"/instance/connectionState/webchat-" + e.cb.ID, "/openai/find/webchat-" + e.cb.ID} {
		e.s.must(http.StatusNotFound, "GET", path, testAPIKey, nil)
	}
	e.s.must(http.StatusNotFound, "DELETE", "/instance/delete/webchat-"+e.cb.ID, testAPIKey, nil)
}

func TestWebchatChatValidation(t *testing.T) {
	e := newWebEnv(t, nil)
	other := e.s.createChatbot("Other", testAPIKey)
	path := "/api/external/chatbot/" + e.cb.ID + "/chat"
	for _, tc := range []struct {
		name   string
		key    string
		query  string
		body   any
		status int
		field  string
	}{
		{"no messages", e.cb.Key, "", map[string]any{"sessionToken": "v"}, 400, "messages"},
		{"last not user", e.cb.Key, "", map[string]any{"sessionToken": "v", "messages": []map[string]any{{"role": "assistant", "content": "x"}}}, 400, "messages[0].role"},
		{"no token", e.cb.Key, "", map[string]any{"messages": []map[string]any{{"role": "user", "content": "x"}}}, 400, "sessionToken"},
		{"bad platform", e.cb.Key, "", map[string]any{"platform": "fax", "sessionToken": "v", "messages": []map[string]any{{"role": "user", "content": "x"}}}, 400, "platform"},
		{"bad stream", e.cb.Key, "?stream=yes", chatBody("v", "x"), 400, "stream"},
		{"empty text", e.cb.Key, "", chatBody("v", "  "), 400, "messages[0].content"},
		{"another chatbot's key", other.Key, "", chatBody("v", "x"), 403, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.s.apiCall("POST", path+tc.query, tc.key, tc.body)
			if r.Status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tc.status, r.Body)
			}
			if tc.field != "" {
				if _, ok := r.apiError(t).Fields[tc.field]; !ok {
					t.Fatalf("no problem under %s: %s", tc.field, r.Body)
				}
			}
		})
	}
	e.s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbots?id="+e.cb.ID, testAPIKey, map[string]any{"active": false})
	r := e.s.apiCall("POST", path, e.cb.Key, chatBody("v", "hello"))
	if r.Status != http.StatusUnprocessableEntity || !strings.Contains(r.apiError(t).Message, "inactive") {
		t.Fatalf("inactive chatbot: %d %s", r.Status, r.Body)
	}
}

func TestWebchatChatStream(t *testing.T) {
	e := newWebEnv(t, nil)
	e.ai.Enqueue(fakeai.Reply("Streaming **works** fine"))
	resp, rd := e.stream(context.Background(), e.cb.Key, chatBody("s-1", "hello"))
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
		t.Fatalf("content type %q", ct)
	}
	evs := readSSE(t, rd, nil)
	var text strings.Builder
	var done map[string]any
	for _, ev := range evs {
		switch ev.Name {
		case "delta":
			text.WriteString(ev.Data["content"].(string))
		case "done":
			done = ev.Data
		}
	}
	if evs[0].Name != "start" || done == nil || text.String() != "Streaming **works** fine" {
		t.Fatalf("events = %+v", evs)
	}
	msg := done["message"].(map[string]any)
	if msg["content"] != text.String() || done["sessionId"] != evs[0].Data["sessionId"] {
		t.Fatalf("done = %v", done)
	}
	if req, _ := e.ai.LastChat(); !req.Chat.Stream {
		t.Fatal("the model call did not stream")
	}
	// Markdown is kept for the page to render (not WhatsApp's *bold*).
	msgs := e.messages(done["sessionId"].(string))
	if last := msgs[len(msgs)-1]; last["content"] != "Streaming **works** fine" || last["id"] != msg["id"] {
		t.Fatalf("stored answer = %v", last)
	}
}

func TestWebchatDisconnectKeepsPartial(t *testing.T) {
	e := newWebEnv(t, nil)
	words := strings.Repeat("word ", 40)
	e.ai.Enqueue(fakeai.Reply(words).Paced(20 * time.Millisecond))
	ctx, cancel := context.WithCancel(context.Background())
	_, rd := e.stream(ctx, e.cb.Key, chatBody("leaver", "tell me a story"))
	evs := readSSE(t, rd, func(ev sseEvent) bool { return ev.Name == "delta" && len(ev.Data["content"].(string)) > 0 })
	sessionID := evs[0].Data["sessionId"].(string)
	cancel()
	// The answer is stored, then marked partial once its transaction has
	// committed: wait for both.
	var bot map[string]any
	eventually(t, func() bool {
		msgs := e.messages(sessionID)
		if last := msgs[len(msgs)-1]; last["sender_type"] == "bot" && last["content"] != "Hi! I am Olivia." {
			bot = last
			md, _ := bot["metadata"].(map[string]any)
			return md["partial"] == true
		}
		return false
	}, "no partial answer stored and marked partial")
	content := bot["content"].(string)
	if !strings.HasPrefix(words, content) || len(content) >= len(words) {
		t.Fatalf("partial answer %q is not a cut of the full one", content)
	}
	// The next turn of the same visitor is answered normally.
	if a := e.chat(e.cb.Key, chatBody("leaver", "hello")); a["message"].(map[string]any)["content"] != "echo: hello" {
		t.Fatalf("next answer = %v", a)
	}
}

func TestWebchatHumanMode(t *testing.T) {
	e := newWebEnv(t, nil)
	a := e.chat(e.cb.Key, chatBody("h-1", "hello"))
	sid := a["sessionId"].(string)
	conv := "/api/external/chatbot/" + e.cb.ID + "/conversations/" + sid
	v := e.s.apiMust(http.StatusOK, "PATCH", conv, e.cb.Key, map[string]any{"is_human_mode": true}).json(t)
	if v["session"].(map[string]any)["is_human_mode"] != true {
		t.Fatalf("takeover = %v", v)
	}
	calls := len(e.ai.RequestsTo(fakeai.EndpointChat))
	h := e.chat(e.cb.Key, chatBody("h-1", "is anyone there?"))
	if h["humanMode"] != true || h["message"] != nil {
		t.Fatalf("answer in human mode = %v", h)
	}
	e.s.apiMust(http.StatusCreated, "POST", conv+"/messages", e.cb.Key, map[string]any{"content": "Carla here, hi!"})
	// Streamed, a turn in human mode says so at once.
	_, rd := e.stream(context.Background(), e.cb.Key, chatBody("h-1", "great"))
	var names []string
	for _, ev := range readSSE(t, rd, nil) {
		names = append(names, ev.Name)
	}
	if strings.Join(names, ",") != "start,human,done" {
		t.Fatalf("events in human mode: %v", names)
	}
	e.s.apiMust(http.StatusOK, "PATCH", conv, e.cb.Key, map[string]any{"is_human_mode": false})
	if b := e.chat(e.cb.Key, chatBody("h-1", "thanks")); b["message"].(map[string]any)["content"] != "echo: thanks" {
		t.Fatalf("after hand-back = %v", b)
	}
	if n := len(e.ai.RequestsTo(fakeai.EndpointChat)); n != calls+1 {
		t.Fatalf("%d model calls in human mode", n-calls-1)
	}
	want := "bot:Hi! I am Olivia. | user:hello | bot:echo: hello | user:is anyone there? | human:Carla here, hi! | user:great | user:thanks | bot:echo: thanks"
	if got := senders(e.messages(sid)); got != want {
		t.Fatalf("messages = %s\nwant %s", got, want)
	}
}

func TestWebchatLeads(t *testing.T) {
	e := newWebEnv(t, map[string]any{"isRequestUserInfoEnabled": true})
	for _, tc := range []struct{ say, want string }{
		{"hi", "Before we start, could you tell me your email address?"},
		{"it is bob@", "That does not look like an email address. Could you check it and send it again?"},
		{"sure: Bob@Example.com.", "Thank you! How can I help you today?"},
		{"where is my order?", "echo: where is my order?"},
	} {
		a := e.chat(e.cb.Key, chatBody("lead-1", tc.say))
		if got := a["message"].(map[string]any)["content"]; got != tc.want {
			t.Fatalf("%q answered %q, want %q", tc.say, got, tc.want)
		}
	}
	if n := len(e.ai.RequestsTo(fakeai.EndpointChat)); n != 1 {
		t.Fatalf("%d model calls; the lead capture needs none", n)
	}
	leads := e.s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+e.cb.ID+"/leads", e.cb.Key, nil).json(t)
	data := leads["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["email"] != "bob@example.com" || data[0].(map[string]any)["sns_user_id"] != "lead-1" {
		t.Fatalf("leads = %v", leads)
	}
}

func TestWebchatImage(t *testing.T) {
	e := newWebEnv(t, nil)
	png := pngBytes(t)
	dataURL := "data:image/png;base64," + base64.StdEncoding.EncodeToString(png)
	body := map[string]any{"platform": "api", "sessionToken": "img-1", "messages": []map[string]any{{"role": "user",
		"content": []map[string]any{{"type": "text", "text": "what is this?"}, {"type": "image_url", "image_url": map[string]string{"url": dataURL}}}}}}
	a := e.chat(e.cb.Key, body)
	req, _ := e.ai.LastChat()
	last := req.Messages[len(req.Messages)-1]
	if len(last.MultiContent) != 2 || last.MultiContent[0].ImageURL == nil || last.MultiContent[0].ImageURL.URL != dataURL {
		t.Fatalf("the model did not get the image: %+v", last)
	}
	msgs := e.messages(a["sessionId"].(string))
	att, _ := msgs[1]["attachments"].([]any)
	if len(att) != 1 {
		t.Fatalf("attachments = %v", msgs[1])
	}
	url := att[0].(map[string]any)["url"].(string)
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var got bytes.Buffer
	got.ReadFrom(resp.Body)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/png" || !bytes.Equal(got.Bytes(), png) {
		t.Fatalf("attachment %s: %d %s", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	// Not an image: refused before anything is stored.
	body["messages"] = []map[string]any{{"role": "user", "content": "x", "attachments": []map[string]string{{"name": "a.txt",
		"url": "data:text/plain;base64," + base64.StdEncoding.EncodeToString([]byte("hello"))}}}}
	if r := e.s.apiCall("POST", "/api/external/chatbot/"+e.cb.ID+"/chat", e.cb.Key, body); r.Status != 400 {
		t.Fatalf("text attachment: %d %s", r.Status, r.Body)
	}
}
