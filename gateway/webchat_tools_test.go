package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/webhook"
)

var orderTool = map[string]any{"name": "order_status", "description": "Look up an order",
	"parameters": map[string]any{"type": "object", "properties": map[string]any{"order": map[string]any{"type": "string"}}}}

// functionServer answers tool calls on loopback, accepting only calls
// signed with secret.
func functionServer(t *testing.T, secret, answer string) (*httptest.Server, func() []map[string]string) {
	t.Helper()
	var (
		mu    sync.Mutex
		calls []map[string]string
	)
	fn := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := webhook.Verify(secret, r.Header.Get(webhook.SignatureHeader), body, time.Minute, time.Now()); err != nil {
			t.Errorf("function call: %v", err)
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var call map[string]string
		if err := json.Unmarshal(body, &call); err != nil {
			t.Errorf("function call body %s: %v", body, err)
		}
		mu.Lock()
		calls = append(calls, call)
		mu.Unlock()
		io.WriteString(w, answer)
	}))
	t.Cleanup(fn.Close)
	return fn, func() []map[string]string {
		mu.Lock()
		defer mu.Unlock()
		return append([]map[string]string(nil), calls...)
	}
}

func TestWebchatChatbotTools(t *testing.T) {
	e := newWebEnv(t, nil)
	// A chatbot's tool calls are signed with the SHA-256 of its key.
	fn, calls := functionServer(t, api.HashKey(e.cb.Key), `{"status":"shipped"}`)
	e.s.patchChatbot(e.cb.ID, map[string]any{"settings": map[string]any{
		"isToolEnabled": true, "functionUrl": fn.URL, "tools": []any{orderTool}}})
	e.ai.Enqueue(fakeai.CallTool("order_status", `{"order":"42"}`), fakeai.Reply("Your order 42 has shipped."))
	a := e.chat(e.cb.Key, chatBody("visitor-1", "where is order 42?"))
	if msg := a["message"].(map[string]any); msg["content"] != "Your order 42 has shipped." {
		t.Fatalf("answer = %v", a)
	}
	got := calls()
	if len(got) != 1 || got[0]["name"] != "order_status" || got[0]["arguments"] != `{"order":"42"}` ||
		got[0]["chatbotId"] != e.cb.ID || got[0]["callId"] == "" || got[0]["sessionId"] == "" {
		t.Fatalf("function calls = %v", got)
	}
	chats := e.ai.RequestsTo(fakeai.EndpointChat)
	if len(chats) != 2 {
		t.Fatalf("%d model calls, want 2 (the tool round, then the answer)", len(chats))
	}
	if tools := chats[0].Chat.Tools; len(tools) != 1 || tools[0].Function == nil || tools[0].Function.Name != "order_status" {
		t.Fatalf("tools sent to the model = %+v", tools)
	}
	toolOut := chats[1].Messages[len(chats[1].Messages)-1]
	if toolOut.Role != openai.ChatMessageRoleTool || toolOut.Content != `{"status":"shipped"}` {
		t.Fatalf("tool output sent to the model = %+v", toolOut)
	}
	msgs := e.messages(a["sessionId"].(string))
	bot := msgs[len(msgs)-1]
	tc, _ := json.Marshal(bot["tool_calls"])
	tr, _ := json.Marshal(bot["tool_results"])
	callID := got[0]["callId"]
	if want := `[{"arguments":"{\"order\":\"42\"}","id":"` + callID + `","name":"order_status"}]`; string(tc) != want {
		t.Fatalf("tool_calls = %s, want %s", tc, want)
	}
	if want := `[{"callId":"` + callID + `","name":"order_status","output":"{\"status\":\"shipped\"}"}]`; string(tr) != want {
		t.Fatalf("tool_results = %s, want %s", tr, want)
	}
	// The greeting and the visitor's message called no tool.
	if msgs[0]["tool_calls"] != nil || msgs[1]["tool_results"] != nil {
		t.Fatalf("messages without tools show %v / %v", msgs[0]["tool_calls"], msgs[1]["tool_results"])
	}

	// Switched off, the chatbot offers the model no tools.
	e.s.patchChatbot(e.cb.ID, map[string]any{"settings": map[string]any{"isToolEnabled": false}})
	e.chat(e.cb.Key, chatBody("visitor-1", "and now?"))
	if last, _ := e.ai.LastChat(); len(last.Chat.Tools) != 0 {
		t.Fatalf("tools sent with isToolEnabled false: %+v", last.Chat.Tools)
	}
	if n := len(calls()); n != 1 {
		t.Fatalf("%d function calls, want still 1", n)
	}
}

func TestChatbotToolSettingsValidation(t *testing.T) {
	s := startServer(t, "")
	cb := s.createChatbot("Olivia", testAPIKey)
	r := s.apiMust(http.StatusBadRequest, "PATCH", "/api/v1/chatbots/"+cb.ID, testAPIKey, map[string]any{"settings": map[string]any{
		"functionUrl": "ftp://example.com/fn",
		"tools":       []any{map[string]any{"name": "bad name!"}, map[string]any{"type": "function", "function": map[string]any{"name": "ok", "extra": 1}}},
	}})
	for _, want := range []string{"settings.functionUrl: must be an absolute http or https URL",
		"settings.tools[0].name: required", "settings.tools[1].function: must hold only"} {
		if !strings.Contains(string(r.Body), want) {
			t.Errorf("answer lacks %q: %s", want, r.Body)
		}
	}
	r = s.apiMust(http.StatusBadRequest, "PATCH", "/api/v1/chatbots/"+cb.ID, testAPIKey, map[string]any{"settings": map[string]any{
		"tools": []any{orderTool}}})
	if !strings.Contains(string(r.Body), "settings.functionUrl: required when settings.tools are defined") {
		t.Errorf("tools without functionUrl: %s", r.Body)
	}
	many := make([]any, 129)
	for i := range many {
		many[i] = map[string]any{"name": "t" + strings.Repeat("x", i%3) + string(rune('a'+i%26))}
	}
	r = s.apiMust(http.StatusBadRequest, "PATCH", "/api/v1/chatbots/"+cb.ID, testAPIKey, map[string]any{"settings": map[string]any{
		"functionUrl": "https://example.com/fn", "tools": many}})
	if !strings.Contains(string(r.Body), "settings.tools: more than 128 tools") {
		t.Errorf("129 tools: %s", r.Body)
	}
	// Bare definitions are stored in the chat completions form.
	got := s.apiMust(http.StatusOK, "PATCH", "/api/v1/chatbots/"+cb.ID, testAPIKey, map[string]any{"settings": map[string]any{
		"isToolEnabled": true, "functionUrl": "https://example.com/fn", "tools": []any{orderTool}}}).json(t)
	tools, _ := json.Marshal(got["settings"].(map[string]any)["tools"])
	if !strings.HasPrefix(string(tools), `[{"function":{"description":"Look up an order","name":"order_status"`) ||
		!strings.Contains(string(tools), `"type":"function"`) {
		t.Fatalf("stored tools = %s", tools)
	}
}
