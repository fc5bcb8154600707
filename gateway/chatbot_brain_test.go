package gateway_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/store/storetest"
)

// chatbotProviderKey is the key of the organization credentials chatbots
// name in these tests: the fake model server records it, telling it from
// the instance's testProviderKey.
const chatbotProviderKey = "sk-proj-chatbot-credentials-0123456789"

// chatbot is a chatbot created through the chatbot API, with its key.
type chatbot struct{ ID, Key string }

// createChatbot creates a chatbot with key: the global key (in the default
// organization) or an organization's key.
func (s *server) createChatbot(name, key string) chatbot {
	s.t.Helper()
	m := s.apiMust(http.StatusOK, "POST", "/api/v1/chatbots", key, map[string]any{"name": name}).json(s.t)
	cb := chatbot{ID: m["chatbot"].(map[string]any)["id"].(string), Key: m["apiKey"].(string)}
	if !chatbotKeyPattern.MatchString(cb.Key) {
		s.t.Fatalf("chatbot key %q", cb.Key)
	}
	return cb
}

// patchChatbot deep-merges body into the chatbot.
func (s *server) patchChatbot(id string, body map[string]any) {
	s.t.Helper()
	s.apiMust(http.StatusOK, "PATCH", "/api/v1/chatbots/"+id, testAPIKey, body)
}

// orgCreds creates credentials of the whole default organization.
func (s *server) orgCreds(name, key, baseURL string) string {
	s.t.Helper()
	return s.apiMust(http.StatusCreated, "POST", "/api/v1/credentials", testAPIKey,
		map[string]any{"name": name, "apiKey": key, "baseUrl": baseURL, "default": false}).json(s.t)["id"].(string)
}

// chatbotBot creates a bot of e's instance that answers as chatbot id,
// with no model, prompts or credentials of its own; edit changes the body.
func (e *botEnv) chatbotBot(id string, edit func(map[string]any)) map[string]any {
	e.t.Helper()
	b := map[string]any{"botType": "chatCompletion", "triggerType": "all", "chatbotId": id,
		"delayMessage": 0, "timePerChar": 0, "debounceTime": 0}
	if edit != nil {
		edit(b)
	}
	return e.s.createBot(e.inst, b)
}

// newChatbotEnv is a bot environment with a chatbot whose settings name
// organization credentials at the fake model server, and a bot of the
// instance answering as it.
func newChatbotEnv(t *testing.T) (*botEnv, chatbot, string) {
	t.Helper()
	e := newBotEnv(t)
	credsID := e.s.orgCreds("org-fake", chatbotProviderKey, e.ai.BaseURL())
	cb := e.s.createChatbot("Olivia", testAPIKey)
	e.s.patchChatbot(cb.ID, map[string]any{"settings": map[string]any{
		"prompt": "You are Olivia, the shop's assistant.", "model": "gpt-4o-mini", "openaiCredsId": credsID,
	}})
	e.s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbots?id="+cb.ID, testAPIKey,
		map[string]any{"personality_config": map[string]any{"tone": "warm", "style": "brief"}})
	bot := e.chatbotBot(cb.ID, nil)
	return e, cb, bot["id"].(string)
}

func systemPrompt(t *testing.T, r fakeai.Request) string {
	t.Helper()
	if len(r.Messages) == 0 || r.Messages[0].Role != "system" {
		t.Fatalf("no system message first: %+v", r.Messages)
	}
	return r.Messages[0].Content
}

func TestChatbotBrain(t *testing.T) {
	e, cb, botID := newChatbotEnv(t)
	v := e.s.must(http.StatusOK, "GET", "/openai/fetch/"+botID+"/shop", e.inst.Token, nil).json(t)
	if v["chatbotId"] != cb.ID || v["model"] != "" || v["openaiCredsId"] != nil {
		t.Fatalf("bot view = %v", v)
	}

	e.say("m1", "5511@s.whatsapp.net", "hello", nil)
	if got := e.replies(1)[0]; got != "echo: hello" {
		t.Fatalf("reply = %q", got)
	}
	req, _ := e.ai.LastChat()
	sys := systemPrompt(t, req)
	for _, want := range []string{"You are Olivia, the shop's assistant.", "Tone: warm", "Style: brief"} {
		if !strings.Contains(sys, want) {
			t.Errorf("system prompt %q lacks %q", sys, want)
		}
	}
	if req.Model != "gpt-4o-mini" || req.APIKey != chatbotProviderKey {
		t.Fatalf("model %q with key %q; want the chatbot's gpt-4o-mini with its credentials", req.Model, req.APIKey)
	}

	// The chatbot's next prompt applies to the bot's next message.
	e.s.patchChatbot(cb.ID, map[string]any{"settings": map[string]any{"prompt": "You are Bruno."}})
	e.say("m2", "5511@s.whatsapp.net", "again", nil)
	e.replies(2)
	req, _ = e.ai.LastChat()
	if sys := systemPrompt(t, req); !strings.Contains(sys, "You are Bruno.") || strings.Contains(sys, "Olivia") {
		t.Fatalf("system prompt after the chatbot's update = %q", sys)
	}
	if req.Model != "gpt-4o-mini" || req.APIKey != chatbotProviderKey {
		t.Fatalf("after the update: model %q, key %q", req.Model, req.APIKey)
	}

	// A chatbot that bots answer as cannot be deleted; the conflict names them.
	for _, path := range []string{"/api/v1/chatbots/" + cb.ID, "/api/external/chatbot/" + cb.ID} {
		if e := e.s.apiMust(http.StatusConflict, "DELETE", path, testAPIKey, nil).apiError(t); !strings.Contains(e.Fields["chatbotId"], botID) {
			t.Errorf("DELETE %s while a bot answers as it = %+v", path, e)
		}
	}

	// Without its chatbot the bot needs a model of its own again.
	r := e.s.call("PATCH", "/openai/update/"+botID+"/shop", e.inst.Token, map[string]any{"chatbotId": nil})
	if r.Status != http.StatusBadRequest {
		t.Fatalf("chatbotId removed from a bot without a model: status %d: %s", r.Status, r.Body)
	}
	hasMessage(t, r, "model")
	v = e.s.must(http.StatusOK, "PATCH", "/openai/update/"+botID+"/shop", e.inst.Token,
		map[string]any{"chatbotId": nil, "model": "gpt-4o", "openaiCredsId": e.creds}).json(t)
	if _, ok := v["chatbotId"]; !ok || v["chatbotId"] != nil {
		t.Fatalf("bot without a chatbot shows chatbotId %v", v["chatbotId"])
	}
}

func TestChatbotWithoutCredentials(t *testing.T) {
	e := newBotEnv(t)
	cb := e.s.createChatbot("Nobody pays", testAPIKey)
	e.s.patchChatbot(cb.ID, map[string]any{"settings": map[string]any{"prompt": "Hi.", "model": "gpt-4o"}})
	e.chatbotBot(cb.ID, func(b map[string]any) { b["unknownMessage"] = "Sorry, try again later." })

	e.say("m1", "5511@s.whatsapp.net", "hello", nil)
	if got := e.replies(1)[0]; got != "Sorry, try again later." {
		t.Fatalf("reply = %q", got)
	}
	errs := e.rc.waitEvents(t, "openai.error", 1)
	if !strings.Contains(string(errs[0].Envelope.Data), "no credentials") {
		t.Fatalf("openai.error = %s", errs[0].Envelope.Data)
	}
	if state, reason := e.messageState("5511@s.whatsapp.net", "m1"); state != "failed" || !strings.Contains(reason, "no credentials") {
		t.Fatalf("m1: %s (%s)", state, reason)
	}
	if !strings.Contains(e.s.logs.String(), "no credentials") {
		t.Fatal("the failure was not logged")
	}
	if n := len(e.ai.RequestsTo(fakeai.EndpointChat)); n != 0 {
		t.Fatalf("%d model calls without credentials", n)
	}
}

func TestChatbotIDValidation(t *testing.T) {
	e := newBotEnv(t)
	mine := e.s.createChatbot("Mine", testAPIKey)
	theirs := e.s.createChatbot("Theirs", e.s.createOrg("Elsewhere").Key)

	tests := []struct {
		name  string
		edit  func(map[string]any)
		field string
	}{
		{"another organization's chatbot", func(b map[string]any) { b["chatbotId"] = theirs.ID }, "chatbotId"},
		{"unknown chatbot", func(b map[string]any) { b["chatbotId"] = "5a0c4a43-0000-4000-8000-000000000000" }, "chatbotId"},
		{"assistant bot", func(b map[string]any) {
			b["botType"], b["assistantId"], b["chatbotId"] = "assistant", "pmpt_123", mine.ID
		}, "chatbotId"},
		{"no chatbot and no model", func(b map[string]any) { delete(b, "chatbotId") }, "model"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := map[string]any{"botType": "chatCompletion", "triggerType": "all", "chatbotId": mine.ID, "openaiCredsId": e.creds}
			tc.edit(b)
			r := e.s.call("POST", "/openai/create/shop", e.inst.Token, b)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
			}
			hasMessage(t, r, tc.field+":")
		})
	}
	// Updating a bot to another organization's chatbot is refused too.
	id := e.chatbotBot(mine.ID, nil)["id"].(string)
	r := e.s.call("PATCH", "/openai/update/"+id+"/shop", e.inst.Token, map[string]any{"chatbotId": theirs.ID})
	if r.Status != http.StatusBadRequest {
		t.Fatalf("update to another organization's chatbot: status %d: %s", r.Status, r.Body)
	}
	hasMessage(t, r, "chatbotId:")
}

var okchatTime = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$`)

func TestChatbotConversations(t *testing.T) {
	e, cb, _ := newChatbotEnv(t)
	other := e.s.createChatbot("Other", testAPIKey)
	const chat, chat2 = "5511@s.whatsapp.net", "5522@s.whatsapp.net"
	e.say("m1", chat, "hello", nil)
	e.replies(1)
	e.operator("op1", chat, "A person here.")
	e.waitState(chat, "op1")
	e.say("m2", chat2, "second chat", nil)
	e.replies(2)

	base := "/api/external/chatbot/" + cb.ID + "/conversations"
	list := e.s.apiCall("GET", base, cb.Key, nil)
	if list.Status != http.StatusOK {
		t.Fatalf("list: status %d: %s", list.Status, list.Body)
	}
	var page struct {
		Data []map[string]any `json:"data"`
		Next *string          `json:"next_cursor"`
	}
	if err := json.Unmarshal(list.Body, &page); err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 2 || page.Next != nil {
		t.Fatalf("conversations = %s", list.Body)
	}
	newest, first := page.Data[0], page.Data[1]
	if newest["sns_user_id"] != chat2 || first["sns_user_id"] != chat {
		t.Fatalf("not newest first: %s", list.Body)
	}
	want := map[string]any{
		"chatbot_id": cb.ID, "active": true, "platform": "whatsapp", "session_token": nil, "user_id": nil,
		"voice_path": nil, "is_human_mode": true, "state": "in_progress", "migrated_data": false,
		"metadata": map[string]any{},
	}
	for k, v := range want {
		if fmt.Sprint(first[k]) != fmt.Sprint(v) {
			t.Errorf("%s = %v, want %v", k, first[k], v)
		}
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if s, _ := first[k].(string); !okchatTime.MatchString(s) {
			t.Errorf("%s = %v, not ISO-8601 UTC", k, first[k])
		}
	}
	last, _ := first["last_message"].(map[string]any)
	if last["content"] != "A person here." || last["sender_type"] != "human" || last["id"] != "op1" {
		t.Fatalf("last_message = %v", first["last_message"])
	}
	if newest["is_human_mode"] != false {
		t.Fatalf("the second chat is in human mode: %v", newest)
	}

	// Pages: one conversation each, then none.
	p1 := e.s.apiCall("GET", base+"?limit=1", cb.Key, nil).json(t)
	cur, _ := p1["next_cursor"].(string)
	if len(p1["data"].([]any)) != 1 || cur == "" {
		t.Fatalf("first page = %v", p1)
	}
	p2 := e.s.apiCall("GET", base+"?limit=1&cursor="+cur, cb.Key, nil).json(t)
	if d := p2["data"].([]any); len(d) != 1 || d[0].(map[string]any)["id"] != first["id"] || p2["next_cursor"] != nil {
		t.Fatalf("second page = %v", p2)
	}
	if r := e.s.apiCall("GET", base+"?cursor=bogus", cb.Key, nil); r.Status != http.StatusBadRequest {
		t.Fatalf("bad cursor: status %d", r.Status)
	}

	sessionID := first["id"].(string)
	one := e.s.apiCall("GET", base+"/"+sessionID, cb.Key, nil)
	if one.Status != http.StatusOK {
		t.Fatalf("get: status %d: %s", one.Status, one.Body)
	}
	session := one.json(t)["session"].(map[string]any)
	if session["last_message"] != "A person here." || session["platform"] != "whatsapp" || session["id"] != sessionID {
		t.Fatalf("session = %v", session)
	}
	if _, has := session["state"]; has {
		t.Fatalf("Get A Conversation has state, which okchat's does not: %v", session)
	}

	msgs := e.s.apiCall("GET", base+"/"+sessionID+"/messages", cb.Key, nil)
	if msgs.Status != http.StatusOK {
		t.Fatalf("messages: status %d: %s", msgs.Status, msgs.Body)
	}
	var mp struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(msgs.Body, &mp); err != nil {
		t.Fatal(err)
	}
	type row struct{ sender, content, model, provider any }
	var got []row
	for _, m := range mp.Data {
		got = append(got, row{m["sender_type"], m["content"], m["model"], m["provider"]})
		if m["session_id"] != sessionID || m["attachments"] != nil || m["tool_calls"] != nil || m["session_token"] != nil {
			t.Errorf("message = %v", m)
		}
	}
	wantRows := []row{
		{"user", "hello", nil, nil},
		{"bot", "echo: hello", "gpt-4o-mini", "openai"},
		{"human", "A person here.", nil, nil},
	}
	if fmt.Sprint(got) != fmt.Sprint(wantRows) {
		t.Fatalf("messages = %v, want %v", got, wantRows)
	}
	if mp.Data[1]["tokens_used"].(float64) <= 0 {
		t.Errorf("bot reply tokens_used = %v", mp.Data[1]["tokens_used"])
	}

	// Another chatbot's key is refused; its routes do not know this session.
	for _, path := range []string{base, base + "/" + sessionID, base + "/" + sessionID + "/messages"} {
		if r := e.s.apiCall("GET", path, other.Key, nil); r.Status != http.StatusForbidden {
			t.Errorf("GET %s with another chatbot's key: status %d: %s", path, r.Status, r.Body)
		}
	}
	otherBase := "/api/external/chatbot/" + other.ID + "/conversations"
	for _, path := range []string{otherBase + "/" + sessionID, otherBase + "/" + sessionID + "/messages"} {
		if r := e.s.apiCall("GET", path, other.Key, nil); r.Status != http.StatusNotFound {
			t.Errorf("GET %s: status %d, want 404: %s", path, r.Status, r.Body)
		}
	}
	if r := e.s.apiCall("GET", otherBase, testAPIKey, nil).json(t); len(r["data"].([]any)) != 0 {
		t.Errorf("another chatbot lists %v", r["data"])
	}
	// Other principals: none, another organization's key, an instance token.
	for _, k := range []struct {
		name, key string
		want      int
	}{
		{"no key", "", http.StatusUnauthorized},
		{"another organization's key", e.s.createOrg("Elsewhere").Key, http.StatusNotFound},
		{"instance token", e.inst.Token, http.StatusForbidden},
	} {
		for _, path := range []string{base, base + "/" + sessionID, base + "/" + sessionID + "/messages"} {
			if r := e.s.apiCall("GET", path, k.key, nil); r.Status != k.want {
				t.Errorf("%s on %s: status %d, want %d: %s", k.name, path, r.Status, k.want, r.Body)
			} else {
				r.apiError(t)
			}
		}
	}
}

// A bot that answers as a chatbot transcribes voice notes with the
// chatbot's credentials too.
func TestChatbotTranscribes(t *testing.T) {
	e, _, botID := newChatbotEnv(t)
	e.s.must(http.StatusOK, "PATCH", "/openai/update/"+botID+"/shop", e.inst.Token, map[string]any{"speechToText": true})
	// In the session the bot opened, its voice notes are its brain's to transcribe.
	e.say("t1", "5511@s.whatsapp.net", "hello", nil)
	e.replies(1)
	e.ai.EnqueueTranscription(fakeai.Reply("a voice note"))
	e.say("v1", "5511@s.whatsapp.net", "", map[string]any{"message": map[string]any{"audioMessage": map[string]any{
		"base64": base64.StdEncoding.EncodeToString([]byte("OggS voice")), "mimetype": "audio/ogg; codecs=opus"}}})
	if got := e.replies(2)[1]; got != "echo: a voice note" {
		t.Fatalf("reply = %q", got)
	}
	if tr, ok := e.ai.LastTranscription(); !ok || tr.APIKey != chatbotProviderKey {
		t.Fatalf("transcribed with key %q, want the chatbot's credentials", tr.APIKey)
	}
}

// A bot answering as an inactive chatbot is off with it, and back on with it.
func TestInactiveChatbotSilencesItsBots(t *testing.T) {
	e, cb, _ := newChatbotEnv(t)
	e.s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbot/"+cb.ID, testAPIKey, map[string]any{"active": false})
	e.say("i1", "5511@s.whatsapp.net", "anyone there?", nil)
	eventually(t, func() bool {
		var state string
		storetest.RawDB(t, e.s.dbURL).QueryRow(`SELECT state FROM messages WHERE message_id = 'i1'`).Scan(&state)
		return state == "ignored"
	}, "the message to the inactive chatbot to be left unanswered")
	if n := len(e.ai.RequestsTo(fakeai.EndpointChat)); n != 0 {
		t.Fatalf("%d model calls for an inactive chatbot", n)
	}
	e.s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbot/"+cb.ID, testAPIKey, map[string]any{"active": true})
	e.say("i2", "5511@s.whatsapp.net", "hello?", nil)
	if got := e.replies(1)[0]; got != "echo: hello?" {
		t.Fatalf("reply after reactivating = %q", got)
	}
}
