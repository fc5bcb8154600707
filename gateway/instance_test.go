package gateway_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/wagate/wagate/config"
)

func TestInstanceLifecycle(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	inst := s.createInstance("shop", rc.URL)
	rc.setSecret(inst.Secret)
	other := s.createInstance("other", "")

	if !strings.HasPrefix(inst.Token, "wgt_") || !strings.HasPrefix(inst.Secret, "whsec_") {
		t.Fatalf("token %q / secret %q have unexpected form", inst.Token, inst.Secret)
	}

	// The global key sees every instance, a token only its own; neither
	// ever sees a token, only its prefix.
	all := s.must(http.StatusOK, "GET", "/instance/fetchInstances", testAPIKey, nil)
	for _, secret := range []string{inst.Token, other.Token} {
		if strings.Contains(string(all.Body), secret) {
			t.Fatal("fetchInstances returned a token")
		}
	}
	if !strings.Contains(string(all.Body), `"tokenPrefix":"`+inst.Token[:8]+`"`) {
		t.Fatalf("fetchInstances lacks the token prefix: %s", all.Body)
	}
	if names := instanceNames(t, all); !slices.Equal(names, []string{"other", "shop"}) {
		t.Fatalf("global fetchInstances = %v", names)
	}
	own := s.must(http.StatusOK, "GET", "/instance/fetchInstances", inst.Token, nil)
	if names := instanceNames(t, own); !slices.Equal(names, []string{"shop"}) {
		t.Fatalf("token fetchInstances = %v", names)
	}
	// A query filter narrows the list but never widens a token's view.
	if names := instanceNames(t, s.must(http.StatusOK, "GET", "/instance/fetchInstances?instanceName=other", inst.Token, nil)); len(names) != 0 {
		t.Fatalf("token saw %v through instanceName", names)
	}
	if names := instanceNames(t, s.must(http.StatusOK, "GET", "/instance/fetchInstances?instanceName=other", testAPIKey, nil)); !slices.Equal(names, []string{"other"}) {
		t.Fatalf("filtered fetchInstances = %v", names)
	}

	for _, path := range []string{"/instance/connectionState/shop", "/instance/connect/shop"} {
		got := s.must(http.StatusOK, "GET", path, inst.Token, nil).json(t)
		want := map[string]any{"instanceName": "shop", "state": "open"}
		if i := got["instance"].(map[string]any); i["instanceName"] != want["instanceName"] || i["state"] != want["state"] {
			t.Fatalf("%s = %v", path, got)
		}
	}
	s.must(http.StatusOK, "POST", "/instance/restart/shop", inst.Token, nil)
	logout := s.must(http.StatusOK, "DELETE", "/instance/logout/shop", inst.Token, nil).json(t)
	if logout["status"] != "SUCCESS" || logout["error"] != false {
		t.Fatalf("logout = %v", logout)
	}

	// Rotation: the new token works at once, the old one fails at once.
	rotated := s.must(http.StatusOK, "POST", "/instance/rotateToken/shop", inst.Token, nil).json(t)
	newToken := rotated["hash"].(string)
	if newToken == inst.Token || newToken == "" {
		t.Fatalf("rotateToken returned %q", newToken)
	}
	s.must(http.StatusUnauthorized, "GET", "/instance/connectionState/shop", inst.Token, nil)
	s.must(http.StatusOK, "GET", "/instance/connectionState/shop", newToken, nil)

	// Deleting cascades and says goodbye through the webhook.
	s.must(http.StatusOK, "DELETE", "/instance/delete/shop", newToken, nil)
	s.must(http.StatusUnauthorized, "GET", "/instance/connectionState/shop", newToken, nil)
	s.must(http.StatusNotFound, "GET", "/instance/connectionState/shop", testAPIKey, nil)
	got := rc.waitEvents(t, "instance.delete", 1)[0]
	if got.VerifyErr != nil {
		t.Fatalf("instance.delete signature: %v", got.VerifyErr)
	}
	if d := got.record(t); d["instanceName"] != "shop" || d["instanceId"] != inst.ID {
		t.Fatalf("instance.delete data = %v", d)
	}
	// The name and number are free again.
	s.createInstance("shop", "")
}

func instanceNames(t *testing.T, r response) []string {
	t.Helper()
	var list []map[string]any
	if err := json.Unmarshal(r.Body, &list); err != nil {
		t.Fatalf("fetchInstances: %v: %s", err, r.Body)
	}
	var names []string
	for _, i := range list {
		names = append(names, i["name"].(string))
	}
	slices.Sort(names)
	return names
}

func TestCreateInstanceValidation(t *testing.T) {
	s := startServer(t, "")
	s.createInstance("taken", "")
	other := s.createInstance("other", "")

	tests := []struct {
		name   string
		key    string
		body   any
		status int
		want   string // substring of one of the messages
	}{
		{"instance token", other.Token, map[string]any{"instanceName": "x", "integration": "EVOLUTION", "number": "1"}, 403, "instance token reaches only its instance"},
		{"empty body", testAPIKey, "", 400, "body: empty"},
		{"malformed JSON", testAPIKey, `{"instanceName":`, 400, "body: malformed JSON"},
		{"not an object", testAPIKey, `[1]`, 400, "body: must be an object"},
		{"null body", testAPIKey, " null ", 400, "body: null; a JSON object is required"},
		{"trailing data", testAPIKey, `{"instanceName":"a","integration":"EVOLUTION","number":"1"} {}`, 400, "body: unexpected data"},
		{"unknown field", testAPIKey, map[string]any{"instanceName": "a", "number": "1", "integration": "EVOLUTION", "colour": "red"}, 400, "colour: unknown field"},
		{"wrong type", testAPIKey, map[string]any{"instanceName": 5}, 400, "instanceName: must be a string"},
		{"missing name", testAPIKey, map[string]any{"integration": "EVOLUTION", "number": "1"}, 400, "instanceName: required"},
		{"bad name", testAPIKey, map[string]any{"instanceName": "a b", "integration": "EVOLUTION", "number": "1"}, 400, "instanceName: must be 1 to 64"},
		{"no name", testAPIKey, map[string]any{"integration": "EVOLUTION", "number": "1"}, 400, "instanceName: required: 1 to 64"},
		{"dot name", testAPIKey, map[string]any{"instanceName": ".", "integration": "EVOLUTION", "number": "1"}, 400, "instanceName: must not consist of dots only"},
		{"dot-dot name", testAPIKey, map[string]any{"instanceName": "..", "integration": "EVOLUTION", "number": "1"}, 400, "instanceName: must not consist of dots only"},
		{"dots name", testAPIKey, map[string]any{"instanceName": "....", "integration": "EVOLUTION", "number": "1"}, 400, "instanceName: must not consist of dots only"},
		{"long name", testAPIKey, map[string]any{"instanceName": strings.Repeat("a", 65), "integration": "EVOLUTION", "number": "1"}, 400, "instanceName"},
		{"duplicate name", testAPIKey, map[string]any{"instanceName": "taken", "integration": "EVOLUTION", "number": "2"}, 409, "instanceName: already used"},
		{"duplicate number", testAPIKey, map[string]any{"instanceName": "new", "integration": "EVOLUTION", "number": "num-taken"}, 409, "number: already used"},
		{"unknown integration", testAPIKey, map[string]any{"instanceName": "a", "integration": "TELEGRAM"}, 400, "integration: must be one of EVOLUTION, WHATSAPP-BAILEYS, WHATSAPP"},
		{"evolution without number", testAPIKey, map[string]any{"instanceName": "a", "integration": "EVOLUTION"}, 400, "number: required"},
		{"whatsapp number not digits", testAPIKey, map[string]any{"instanceName": "a", "integration": "WHATSAPP", "number": "abc"}, 400, "number: must be the phone number"},
		{"short token", testAPIKey, map[string]any{"instanceName": "a", "integration": "EVOLUTION", "number": "1", "token": "short"}, 400, "token: must be 16 to 256"},
		{"token is global key", testAPIKey, map[string]any{"instanceName": "a", "integration": "EVOLUTION", "number": "1", "token": testAPIKey}, 400, "token: must differ"},
		{"bad webhook url", testAPIKey, map[string]any{"instanceName": "a", "integration": "EVOLUTION", "number": "1", "webhook": map[string]any{"url": "ftp://x"}}, 400, "webhook.url: must be an absolute http"},
		{"unknown event", testAPIKey, map[string]any{"instanceName": "a", "integration": "EVOLUTION", "number": "1", "webhook": map[string]any{"url": "http://127.0.0.1:1", "events": []string{"MESSAGES_UPSERT", "NOPE"}}}, 400, "webhook.events[1]: unknown event"},
		{"reserved header", testAPIKey, map[string]any{"instanceName": "a", "integration": "EVOLUTION", "number": "1", "webhook": map[string]any{"url": "http://127.0.0.1:1", "headers": map[string]string{"x-wagate-signature": "x"}}}, 400, "cannot be overridden"},
		{"unsupported feature", testAPIKey, map[string]any{"instanceName": "a", "integration": "EVOLUTION", "number": "1", "chatwootUrl": "https://chat.example"}, 400, "chatwootUrl: not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.call("POST", "/instance/create", tt.key, tt.body)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			msgs := r.messages(t)
			if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, tt.want) }) {
				t.Fatalf("messages %q lack %q", msgs, tt.want)
			}
		})
	}

	// Several problems are reported together.
	r := s.must(400, "POST", "/instance/create", testAPIKey, map[string]any{"instanceName": "", "integration": "NOPE"})
	if msgs := r.messages(t); len(msgs) != 2 {
		t.Fatalf("want two problems, got %q", msgs)
	}
}

func TestCreateInstanceAcceptsEvolutionBodies(t *testing.T) {
	s := startServer(t, "")
	// Fields Evolution clients send empty for features wagate lacks are fine,
	// and the instance settings are stored.
	body := map[string]any{
		"instanceName": "n8n", "integration": "EVOLUTION", "number": "5511", "qrcode": true,
		"token": "my-own-token-0123456789", "rejectCall": true, "msgCall": "no calls please",
		"chatwootAccountId": "", "chatwootSignMsg": false, "proxyHost": "", "rabbitmq": map[string]any{},
	}
	m := s.must(http.StatusCreated, "POST", "/instance/create", testAPIKey, body).json(t)
	if m["hash"] != "my-own-token-0123456789" {
		t.Fatalf("hash = %v, want the given token", m["hash"])
	}
	if i := m["instance"].(map[string]any); i["status"] != "open" || i["integration"] != "EVOLUTION" {
		t.Fatalf("instance = %v", i)
	}
	s.must(http.StatusOK, "GET", "/instance/connectionState/n8n", "my-own-token-0123456789", nil)
	list := s.must(http.StatusOK, "GET", "/instance/fetchInstances", testAPIKey, nil)
	if !strings.Contains(string(list.Body), `"msgCall":"no calls please"`) || !strings.Contains(string(list.Body), `"rejectCall":true`) {
		t.Fatalf("settings not stored: %s", list.Body)
	}

	// A second instance with the same custom token would make the token ambiguous.
	body["instanceName"], body["number"] = "n8n-2", "5512"
	s.must(http.StatusConflict, "POST", "/instance/create", testAPIKey, body)
}

func TestHealthAndErrors(t *testing.T) {
	s := startServer(t, "")
	root := s.must(http.StatusOK, "GET", "/", "", nil).json(t)
	if root["status"] != "ok" || root["version"] == nil {
		t.Fatalf("/ = %v", root)
	}
	s.must(http.StatusOK, "GET", "/healthz", "", nil)
	if r := s.must(http.StatusOK, "GET", "/readyz", "", nil).json(t); r["database"] != "ok" {
		t.Fatalf("/readyz = %v", r)
	}
	r := s.must(http.StatusNotFound, "GET", "/nope", "", nil)
	if msgs := r.messages(t); msgs[0] != "Cannot GET /nope" {
		t.Fatalf("404 message = %q", msgs)
	}
	s.must(http.StatusMethodNotAllowed, "PUT", "/instance/create", testAPIKey, nil)
}

func TestBodyLimit(t *testing.T) {
	s := startServer(t, "", withConfig(func(c *config.Config) { c.MaxBodyBytes = 512 }))
	big := `{"instanceName":"` + strings.Repeat("a", 600) + `"}`
	r := s.must(http.StatusRequestEntityTooLarge, "POST", "/instance/create", testAPIKey, big)
	if msgs := r.messages(t); !strings.Contains(msgs[0], "512 bytes") {
		t.Fatalf("413 message = %q", msgs)
	}
	// A caller with a wrong key or none hears 401 first, whatever it sends.
	s.must(http.StatusUnauthorized, "POST", "/instance/create", "wrong-key", big)
	s.must(http.StatusUnauthorized, "POST", "/instance/create", "", big)
	// Without a declared length the limit still holds while reading.
	req, _ := http.NewRequest("POST", s.URL+"/instance/create", &chunked{data: []byte(big)})
	req.Header.Set("apikey", testAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if req.ContentLength != 0 || resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("chunked: status %d, want 413", resp.StatusCode)
	}
}

// chunked is a body of unknown length, sent with chunked encoding.
type chunked struct{ data []byte }

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.data)
	c.data = c.data[n:]
	return n, nil
}

// The reference is public: the document and the page answer without a key.
func TestAPIReferenceIsPublic(t *testing.T) {
	s := startServer(t, "")
	for _, tc := range []struct{ path, contentType, contains string }{
		{"/openapi.json", "application/json", `"openapi": "3.1.0"`},
		{"/docs", "text/html; charset=UTF-8", `id="op-sendText"`},
	} {
		req, _ := http.NewRequest("GET", s.URL+tc.path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		r := s.do(req)
		if r.Status != http.StatusOK || resp.Header.Get("Content-Type") != tc.contentType || !strings.Contains(string(r.Body), tc.contains) {
			t.Errorf("GET %s: %d %q, body without %q", tc.path, r.Status, resp.Header.Get("Content-Type"), tc.contains)
		}
	}
}
