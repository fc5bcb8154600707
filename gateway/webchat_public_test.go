package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// publicCall sends a request to a public web chat route as a browser on
// origin would (origin "" sends none).
func (e *webEnv) publicCall(method, path, origin, visitor string, body any) response {
	e.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, e.s.URL+"/api/public/chatbots/"+e.cb.ID+path, rd)
	req.Header.Set("Content-Type", "application/json")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if visitor != "" {
		req.Header.Set("X-Wagate-Visitor", visitor)
	}
	return e.s.do(req)
}

func (e *webEnv) makePublic(extra map[string]any) {
	e.t.Helper()
	body := map[string]any{"is_public": true}
	for k, v := range extra {
		body[k] = v
	}
	e.s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbots?id="+e.cb.ID, testAPIKey, body)
}

func TestWebchatPublicRoutes(t *testing.T) {
	e := newWebEnv(t, nil)
	// Not public: refused, saying why.
	if r := e.publicCall("GET", "", "", "", nil); r.Status != 404 || !strings.Contains(r.apiError(t).Message, "is_public") {
		t.Fatalf("private chatbot: %d %s", r.Status, r.Body)
	}
	e.makePublic(map[string]any{"settings": map[string]any{"snippet": map[string]any{"name": "Olivia", "primaryColor": "#112233"}}})
	cfg := e.publicCall("GET", "", "", "", nil).json(t)
	if cfg["name"] != "Olivia" || cfg["primaryColor"] != "#112233" || cfg["greeting"] != "Hi! I am Olivia." {
		t.Fatalf("config = %v", cfg)
	}
	tok := e.publicCall("POST", "/sessions", "", "", nil).json(t)["visitorToken"].(string)

	// No token, a forged one, another chatbot's: refused.
	other := e.s.createChatbot("Other", testAPIKey)
	for _, bad := range []string{"", "v1.00000000000000000000000000000000.00000000000000000000000000000000", tok + "x"} {
		if r := e.publicCall("POST", "/chat?stream=false", "", bad, map[string]any{"content": "hi"}); r.Status != 401 {
			t.Fatalf("token %q: %d %s", bad, r.Status, r.Body)
		}
	}
	_ = other

	a := e.publicCall("POST", "/chat?stream=false", "", tok, map[string]any{"content": "hello"})
	if a.Status != 200 || a.json(t)["message"].(map[string]any)["content"] != "echo: hello" {
		t.Fatalf("chat: %d %s", a.Status, a.Body)
	}
	h := e.publicCall("GET", "/messages", "", tok, nil).json(t)
	var roles []string
	for _, m := range h["messages"].([]any) {
		roles = append(roles, m.(map[string]any)["role"].(string)+":"+m.(map[string]any)["content"].(string))
	}
	if strings.Join(roles, "|") != "assistant:Hi! I am Olivia.|user:hello|assistant:echo: hello" {
		t.Fatalf("history = %v", roles)
	}
	// The conversation is okchat's too, on platform web.
	list := e.s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+e.cb.ID+"/conversations", e.cb.Key, nil).json(t)
	if conv := list["data"].([]any)[0].(map[string]any); conv["platform"] != "web" {
		t.Fatalf("conversation = %v", conv)
	}
	// Length cap.
	if r := e.publicCall("POST", "/chat", "", tok, map[string]any{"content": strings.Repeat("a", 2001)}); r.Status != 413 {
		t.Fatalf("long message: %d %s", r.Status, r.Body)
	}

	// Allowed origins: a listed site and the gateway itself pass, others
	// are refused; CORS headers name the origin.
	e.makePublic(map[string]any{"settings": map[string]any{"allowedOrigins": []string{"https://shop.example.com"}}})
	ok := e.publicCall("GET", "", "https://shop.example.com", "", nil)
	if ok.Status != 200 {
		t.Fatalf("allowed origin: %d %s", ok.Status, ok.Body)
	}
	for _, origin := range []string{"https://evil.example.com", ""} {
		if r := e.publicCall("GET", "", origin, "", nil); r.Status != 403 {
			t.Fatalf("origin %q: %d %s", origin, r.Status, r.Body)
		}
	}
	if r := e.publicCall("GET", "", e.s.URL, "", nil); r.Status != 200 {
		t.Fatalf("the gateway's own page: %d %s", r.Status, r.Body)
	}
	bad := e.s.apiCall("PATCH", "/api/external/chatbots?id="+e.cb.ID, testAPIKey,
		map[string]any{"settings": map[string]any{"allowedOrigins": []string{"shop.example.com/path"}}})
	if bad.Status != 400 || bad.apiError(t).Fields["settings.allowedOrigins[0]"] == "" {
		t.Fatalf("invalid origin saved: %d %s", bad.Status, bad.Body)
	}
}

func TestWebchatPublicRateLimit(t *testing.T) {
	e := newWebEnv(t, nil)
	e.makePublic(nil)
	tok := e.publicCall("POST", "/sessions", "", "", nil).json(t)["visitorToken"].(string)
	// The limit (20) counts per minute of the clock: 42 messages put at
	// least 21 in one minute even when the run crosses into the next.
	limited := 0
	for i := 0; i < 42; i++ {
		r := e.publicCall("POST", "/chat?stream=false", "", tok, map[string]any{"content": "hi"})
		if r.Status == 429 {
			limited++
		}
	}
	if limited == 0 {
		t.Fatal("42 messages in at most two minutes from one visitor were all taken")
	}
}

func TestWebchatHostedPage(t *testing.T) {
	e := newWebEnv(t, nil)
	if r := e.s.call("GET", "/c/olivia", "", nil); r.Status != 404 {
		t.Fatalf("private chatbot's page: %d", r.Status)
	}
	e.makePublic(nil)
	slug := e.s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+e.cb.ID, testAPIKey, nil).object(t, "chatbot")["slug"].(string)
	for _, ref := range []string{slug, e.cb.ID} {
		r := e.s.call("GET", "/c/"+ref, "", nil)
		if r.Status != 200 || !strings.Contains(string(r.Body), `data-chatbot="`+e.cb.ID+`"`) {
			t.Fatalf("/c/%s: %d %s", ref, r.Status, r.Body)
		}
	}
	js := e.s.call("GET", "/widget.js", "", nil)
	if js.Status != 200 || !bytes.Contains(js.Body, []byte("textContent")) {
		t.Fatalf("widget.js: %d", js.Status)
	}
	// The widget never parses model output as HTML.
	sc := bufio.NewScanner(bytes.NewReader(js.Body))
	for sc.Scan() {
		if line := sc.Text(); strings.Contains(line, "innerHTML") || strings.Contains(line, "insertAdjacentHTML") {
			t.Fatalf("widget.js uses HTML parsing: %s", line)
		}
	}
}
