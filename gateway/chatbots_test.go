package gateway_test

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// seedCreate is the body of okchat's Create Chatbot example, verbatim.
const seedCreate = `{
  "description": "A helpful support assistant",
  "is_public": true,
  "name": "API Docs Demo Chatbot",
  "personality_config": {"style": "Friendly", "tone": "Professional"},
  "settings": {
    "greeting": "Hello! How can I assist you today?",
    "isRequestUserInfoEnabled": false,
    "isToolEnabled": true,
    "model": "gpt-4o-mini",
    "prompt": "You are a highly skilled customer support assistant for [company name]. Your goal is to provide accurate, polite, and concise answers to customer inquiries. If you do not know the answer, recommend the customer to contact human support or check the FAQ section. Ensure a positive tone in all responses",
    "snippet": {
      "header": "Customer Support",
      "logo": "https://example.com/logo.png",
      "name": "Support Assistant",
      "primaryColor": "#4F46E5",
      "secondaryColor": "#10B981",
      "slogan": "How can I help you today?"
    }
  },
  "slug": "api-docs-demo-chatbot"
}`

// seedUpdate is the body of okchat's Update Chatbot example, as the JSON
// object the published sample means (it shows it double-encoded, with a
// comment).
const seedUpdate = `{
  "name": "API Docs Demo Chatbot",
  "description": "A helpful support assistant",
  "personality_config": {"tone": "Professional", "style": "Friendly"},
  "settings": {
    "model": "gpt-4o-mini",
    "prompt": "You are a highly skilled customer support assistant.",
    "snippet": {
      "logo": "https://example.com/logo.png", "name": "Support Assistant", "header": "Customer Support",
      "slogan": "How can I help you today?", "primaryColor": "#4F46E5", "secondaryColor": "#10B981"
    },
    "greeting": "Hello! How can I assist you today?",
    "isToolEnabled": true,
    "isRequestUserInfoEnabled": false
  },
  "is_public": false
}`

// apiCall sends a request with key in the header x-api-key, as okchat
// clients do.
func (s *server) apiCall(method, path, key string, body any) response {
	s.t.Helper()
	return s.send(method, path, "x-api-key", key, body)
}

func (s *server) apiMust(want int, method, path, key string, body any) response {
	s.t.Helper()
	r := s.apiCall(method, path, key, body)
	if r.Status != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// apiError is the /api error envelope.
type apiError struct {
	Code    string            `json:"code"`
	Message string            `json:"message"`
	Fields  map[string]string `json:"fields"`
}

func (r response) apiError(t *testing.T) apiError {
	t.Helper()
	var env struct {
		Error *apiError `json:"error"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil || env.Error == nil || env.Error.Code == "" {
		t.Fatalf("not an /api error envelope: %v: %s", err, r.Body)
	}
	return *env.Error
}

func (r response) object(t *testing.T, key string) map[string]any {
	t.Helper()
	m, ok := r.json(t)[key].(map[string]any)
	if !ok {
		t.Fatalf("no object %q in %s", key, r.Body)
	}
	return m
}

// org is an organization created through the API, with its first key.
type org struct{ ID, Key string }

func (s *server) createOrg(name string) org {
	s.t.Helper()
	m := s.apiMust(http.StatusCreated, "POST", "/api/v1/organizations", testAPIKey, map[string]any{"name": name}).json(s.t)
	return org{ID: m["organization"].(map[string]any)["id"].(string), Key: m["apiKey"].(string)}
}

var chatbotKeyPattern = regexp.MustCompile(`^ob_live_[0-9a-f]{32}$`)

func TestChatbotsSeedBodies(t *testing.T) {
	s := startServer(t, "")
	o := s.createOrg("Acme")

	created := s.apiMust(http.StatusCreated, "POST", "/api/external/chatbots", o.Key, seedCreate)
	cb := created.object(t, "chatbot")
	id := cb["id"].(string)
	if created.json(t)["message"] != "Chatbot created successfully" {
		t.Errorf("create message: %s", created.Body)
	}
	want := map[string]any{
		"organization_id": o.ID, "name": "API Docs Demo Chatbot", "slug": "api-docs-demo-chatbot",
		"description": "A helpful support assistant", "active": true, "is_public": true,
		"suggestions": nil, "enabled_plugins": nil, "docs_metadata": nil, "managers": nil, "openai_api_key": nil,
		"migrated_data": false, "v1_chatbot_id": nil, "version_id": nil, "voice_widget_config": nil,
	}
	for k, v := range want {
		if cb[k] != v {
			t.Errorf("chatbot.%s = %v, want %v", k, cb[k], v)
		}
	}
	settings := cb["settings"].(map[string]any)
	if settings["model"] != "gpt-4o-mini" || settings["isToolEnabled"] != true ||
		settings["snippet"].(map[string]any)["primaryColor"] != "#4F46E5" {
		t.Errorf("settings = %v", settings)
	}
	if p := cb["personality_config"].(map[string]any); p["tone"] != "Professional" || p["style"] != "Friendly" {
		t.Errorf("personality_config = %v", p)
	}
	for _, k := range []string{"created_at", "updated_at"} {
		if ts, _ := cb[k].(string); !strings.HasSuffix(ts, "Z") || !strings.Contains(ts, "T") {
			t.Errorf("%s = %q, want ISO-8601 UTC", k, cb[k])
		}
	}

	// The same slug again is a conflict; a name alone derives a free one.
	if e := s.apiMust(http.StatusConflict, "POST", "/api/external/chatbots", o.Key, seedCreate).apiError(t); e.Fields["slug"] == "" {
		t.Errorf("slug conflict = %+v", e)
	}
	second := s.apiMust(http.StatusCreated, "POST", "/api/external/chatbots", o.Key, map[string]any{"name": "API Docs Demo Chatbot"}).object(t, "chatbot")
	if second["slug"] != "api-docs-demo-chatbot-2" {
		t.Errorf("derived slug = %v", second["slug"])
	}
	// Slugs are per organization.
	other := s.createOrg("Other")
	if got := s.apiMust(http.StatusCreated, "POST", "/api/external/chatbots", other.Key, seedCreate).object(t, "chatbot"); got["slug"] != "api-docs-demo-chatbot" {
		t.Errorf("other organization's slug = %v", got["slug"])
	}

	// Update by ?id= with the seed body, then by the id in the body, then by path.
	up := s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbots?id="+id, o.Key, seedUpdate)
	if c := up.object(t, "chatbot"); c["is_public"] != false || c["settings"].(map[string]any)["prompt"] != "You are a highly skilled customer support assistant." {
		t.Errorf("updated = %s", up.Body)
	}
	if up.json(t)["message"] != "Chatbot updated successfully" {
		t.Errorf("update message: %s", up.Body)
	}
	s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbots", o.Key, map[string]any{"id": id, "description": "by body id"})
	s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbot/"+id, o.Key, map[string]any{"active": false})
	got := s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+id, o.Key, nil).object(t, "chatbot")
	if got["description"] != "by body id" || got["active"] != false || got["slug"] != "api-docs-demo-chatbot" {
		t.Errorf("after updates = %v", got)
	}
	if e := s.apiMust(http.StatusBadRequest, "PATCH", "/api/external/chatbots", o.Key, map[string]any{"name": "x"}).apiError(t); e.Fields["id"] == "" {
		t.Errorf("update without id = %+v", e)
	}

	// Both surfaces show the same chatbots.
	var v1 []map[string]any
	json.Unmarshal(s.apiMust(http.StatusOK, "GET", "/api/v1/chatbots", o.Key, nil).Body, &v1)
	if len(v1) != 2 || v1[0]["id"] != id || v1[0]["name"] != "API Docs Demo Chatbot" || v1[0]["settings"].(map[string]any)["model"] != "gpt-4o-mini" {
		t.Errorf("v1 list = %v", v1)
	}
	var ext struct {
		Chatbots []map[string]any `json:"chatbots"`
	}
	json.Unmarshal(s.apiMust(http.StatusOK, "GET", "/api/external/chatbots", o.Key, nil).Body, &ext)
	if len(ext.Chatbots) != 2 {
		t.Errorf("external list = %v", ext.Chatbots)
	}
	// A chatbot made through the management API is edited through okchat's.
	made := s.apiMust(http.StatusOK, "POST", "/api/v1/chatbots", o.Key, map[string]any{"name": "My Chatbot"}).json(t)
	mid := made["chatbot"].(map[string]any)["id"].(string)
	s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbot/"+mid, o.Key, map[string]any{"settings": map[string]any{"greeting": "Hi"}})
	if g := s.apiMust(http.StatusOK, "GET", "/api/v1/chatbots/"+mid, o.Key, nil).json(t); g["settings"].(map[string]any)["greeting"] != "Hi" {
		t.Errorf("v1 view after external edit = %v", g)
	}
}

func TestChatbotValidation(t *testing.T) {
	s := startServer(t, "")
	o := s.createOrg("Acme")
	r := s.apiMust(http.StatusBadRequest, "POST", "/api/external/chatbots", o.Key, map[string]any{
		"slug": "Not A Slug", "is_public": "yes", "colour": 1,
		"personality_config": map[string]any{"tone": 3},
		"settings": map[string]any{
			"model": 4, "isToolEnabled": "true", "openaiCredsId": 5,
			"snippet": map[string]any{"primaryColor": "blue", "logo": "ftp://x", "extra": true},
		},
	})
	e := r.apiError(t)
	for _, field := range []string{"name", "slug", "is_public", "colour", "personality_config.tone", "settings.model",
		"settings.isToolEnabled", "settings.openaiCredsId", "settings.snippet.primaryColor", "settings.snippet.logo",
		"settings.snippet.extra"} {
		if e.Fields[field] == "" {
			t.Errorf("no problem reported for %s: %s", field, r.Body)
		}
	}
	if e.Code != "invalid" {
		t.Errorf("code = %q", e.Code)
	}
	// Credentials of another organization cannot be named.
	other := s.createOrg("Other")
	cr := s.apiMust(http.StatusCreated, "POST", "/api/v1/credentials", other.Key, map[string]any{"name": "main", "apiKey": testProviderKey}).json(t)
	e = s.apiMust(http.StatusBadRequest, "POST", "/api/v1/chatbots", o.Key, map[string]any{"name": "x", "settings": map[string]any{"openaiCredsId": cr["id"]}}).apiError(t)
	if e.Fields["settings.openaiCredsId"] == "" {
		t.Errorf("foreign credentials = %+v", e)
	}
	// The management API takes name and settings only; bodies must be objects.
	s.apiMust(http.StatusBadRequest, "POST", "/api/v1/chatbots", o.Key, map[string]any{"name": "x", "slug": "y"})
	for _, body := range []string{"null", "[]", `"x"`, "{", ""} {
		s.apiMust(http.StatusBadRequest, "POST", "/api/v1/chatbots", o.Key, body)
	}
	s.apiMust(http.StatusNotFound, "GET", "/api/v1/chatbots/00000000-0000-0000-0000-000000000000", o.Key, nil).apiError(t)
}

func TestChatbotDeepMergeAndKeys(t *testing.T) {
	s := startServer(t, "")
	o := s.createOrg("Acme")
	made := s.apiMust(http.StatusOK, "POST", "/api/v1/chatbots", o.Key, map[string]any{"name": "Support Bot"}).json(t)
	key := made["apiKey"].(string)
	cb := made["chatbot"].(map[string]any)
	id := cb["id"].(string)
	if made["ok"] != true || !chatbotKeyPattern.MatchString(key) || cb["api_key_prefix"] != key[:14]+"..." {
		t.Fatalf("create = %s", made)
	}
	if m, _ := cb["settings"].(map[string]any); m == nil || len(m) != 0 {
		t.Errorf("new settings = %v", cb["settings"])
	}
	s.apiMust(http.StatusOK, "PATCH", "/api/v1/chatbots/"+id, o.Key, map[string]any{"settings": map[string]any{
		"onboarded": true, "theme": map[string]any{"dark": true, "accent": "#000000"}, "tags": []string{"a", "b"}}})
	// The reference's example: the name changes, settings merge.
	got := s.apiMust(http.StatusOK, "PATCH", "/api/v1/chatbots/"+id, o.Key, map[string]any{
		"name": "New Name", "settings": map[string]any{"userAnalysisEnabled": false,
			"theme": map[string]any{"accent": nil, "font": "serif"}, "tags": []string{"c"}}}).json(t)
	wantSettings := `{"onboarded":true,"tags":["c"],"theme":{"dark":true,"font":"serif"},"userAnalysisEnabled":false}`
	if b, _ := json.Marshal(got["settings"]); string(b) != wantSettings || got["name"] != "New Name" || got["id"] != id {
		t.Errorf("merged = %s, want settings %s", b, wantSettings)
	}
	if _, ok := got["apiKey"]; ok {
		t.Errorf("PATCH returned the key: %v", got)
	}

	// The key reaches no management route and no Evolution route.
	for _, r := range []struct{ method, path string }{
		{"GET", "/api/v1/chatbots"}, {"GET", "/api/v1/chatbots/" + id}, {"GET", "/api/external/chatbots"},
		{"GET", "/api/external/chatbot/" + id}, {"POST", "/api/v1/chatbots/" + id + "/rotate-key"},
		{"GET", "/api/v1/credentials"}, {"GET", "/instance/fetchInstances"},
	} {
		if got := s.apiCall(r.method, r.path, key, nil).Status; got != http.StatusForbidden {
			t.Errorf("chatbot key on %s %s: %d, want 403", r.method, r.path, got)
		}
	}
	// Rotation: a new key at once, the old one answers 401.
	rot := s.apiMust(http.StatusOK, "POST", "/api/v1/chatbots/"+id+"/rotate-key", o.Key, nil).json(t)
	newKey := rot["apiKey"].(string)
	if rot["ok"] != true || newKey == key || !chatbotKeyPattern.MatchString(newKey) ||
		rot["chatbot"].(map[string]any)["api_key_prefix"] != newKey[:14]+"..." {
		t.Fatalf("rotate = %s", rot)
	}
	if got := s.apiCall("GET", "/api/v1/chatbots", key, nil); got.Status != http.StatusUnauthorized {
		t.Errorf("old key after rotation: %d", got.Status)
	}
	if got := s.apiCall("GET", "/api/v1/chatbots", newKey, nil).Status; got != http.StatusForbidden {
		t.Errorf("new key on a management route: %d, want 403", got)
	}
	// Neither key is stored or logged in clear.
	for _, secret := range []string{key, newKey, o.Key} {
		if strings.Contains(s.logs.String(), secret) {
			t.Errorf("a key is in the log")
		}
		assertNotInDataDir(t, s, secret)
	}

	s.apiMust(http.StatusOK, "DELETE", "/api/v1/chatbots/"+id, o.Key, nil)
	s.apiMust(http.StatusNotFound, "GET", "/api/v1/chatbots/"+id, o.Key, nil)
	if got := s.apiCall("GET", "/api/v1/chatbots", newKey, nil).Status; got != http.StatusUnauthorized {
		t.Errorf("key of a deleted chatbot: %d", got)
	}
}

// assertNotInDataDir fails if secret appears in any file of the data dir
// (the SQLite database, its WAL and the key files).
func assertNotInDataDir(t *testing.T, s *server, secret string) {
	t.Helper()
	filepath.Walk(s.dir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return nil
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds a secret in clear", path)
		}
		return nil
	})
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 200, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// uploadAvatar sends data as the multipart field avatar with the declared
// content type.
func (s *server) uploadAvatar(id, key string, data []byte, declared string) response {
	s.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="avatar"; filename="avatar.png"`)
	h.Set("Content-Type", declared)
	part, _ := w.CreatePart(h)
	part.Write(data)
	w.Close()
	req, _ := http.NewRequest("PATCH", s.URL+"/api/external/chatbot/"+id+"/update-avatar", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("x-api-key", key)
	return s.do(req)
}

func TestChatbotAvatar(t *testing.T) {
	s := startServer(t, "")
	o := s.createOrg("Acme")
	id := s.apiMust(http.StatusCreated, "POST", "/api/external/chatbots", o.Key, seedCreate).object(t, "chatbot")["id"].(string)

	img := pngBytes(t)
	r := s.uploadAvatar(id, o.Key, img, "application/octet-stream")
	if r.Status != http.StatusOK || r.json(t)["message"] != "Avatar updated successfully" {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	url1, _ := r.object(t, "chatbot")["settings"].(map[string]any)["avatar"].(string)
	if !strings.HasPrefix(url1, s.URL+"/api/public/avatars/") || !strings.HasSuffix(url1, ".png") {
		t.Fatalf("avatar URL = %q", url1)
	}
	resp, err := http.Get(url1) // public: no key
	if err != nil {
		t.Fatal(err)
	}
	served, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Equal(served, img) || resp.Header.Get("Content-Type") != "image/png" ||
		!strings.Contains(resp.Header.Get("Cache-Control"), "max-age=31536000") {
		t.Errorf("served %d %q %q, %d bytes", resp.StatusCode, resp.Header.Get("Content-Type"), resp.Header.Get("Cache-Control"), len(served))
	}

	// A text file that claims to be a PNG is refused; the type is the bytes'.
	lie := s.uploadAvatar(id, o.Key, []byte("<html><script>alert(1)</script></html>"), "image/png")
	if lie.Status != http.StatusBadRequest || lie.apiError(t).Fields["avatar"] == "" {
		t.Errorf("lying upload: %d %s", lie.Status, lie.Body)
	}
	// Too large, and a missing field.
	big := append(pngBytes(t), make([]byte, 5<<20)...)
	if got := s.uploadAvatar(id, o.Key, big, "image/png").Status; got != http.StatusBadRequest && got != http.StatusRequestEntityTooLarge {
		t.Errorf("6 MiB avatar: %d", got)
	}
	s.apiMust(http.StatusBadRequest, "PATCH", "/api/external/chatbot/"+id+"/update-avatar", o.Key, `{"avatar":"x"}`)

	// A new upload is a new URL; the old one is gone.
	url2 := s.uploadAvatar(id, o.Key, img, "image/png").object(t, "chatbot")["settings"].(map[string]any)["avatar"].(string)
	if url2 == url1 {
		t.Fatal("a new upload kept the URL")
	}
	if resp, _ := http.Get(url1); resp.StatusCode != http.StatusNotFound {
		t.Errorf("old avatar: %d", resp.StatusCode)
	}
	// settings.avatar is set only by upload.
	e := s.apiMust(http.StatusBadRequest, "PATCH", "/api/external/chatbot/"+id, o.Key, map[string]any{"settings": map[string]any{"avatar": "https://x/y.png"}}).apiError(t)
	if e.Fields["settings.avatar"] == "" {
		t.Errorf("avatar by PATCH = %+v", e)
	}
	// Deleting the chatbot deletes its avatar.
	s.apiMust(http.StatusOK, "DELETE", "/api/external/chatbot/"+id, o.Key, nil)
	if resp, _ := http.Get(url2); resp.StatusCode != http.StatusNotFound {
		t.Errorf("avatar of a deleted chatbot: %d", resp.StatusCode)
	}
}

func TestChatbotWidgets(t *testing.T) {
	s := startServer(t, "")
	o := s.createOrg("Acme")
	id := s.apiMust(http.StatusCreated, "POST", "/api/external/chatbots", o.Key, seedCreate).object(t, "chatbot")["id"].(string)

	w := s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbot/"+id+"/chat-widget", o.Key, map[string]any{
		"name": "Helper", "primaryColor": "#000000", "language": "auto"}).json(t)
	if w["message"] != "Chat widget config updated successfully" {
		t.Errorf("chat-widget = %v", w)
	}
	cfg := w["chat_widget_config"].(map[string]any)
	if cfg["name"] != "Helper" || cfg["primaryColor"] != "#000000" || cfg["language"] != "auto" || cfg["slogan"] != "How can I help you today?" {
		t.Errorf("chat_widget_config = %v", cfg)
	}
	cb := s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+id, o.Key, nil).object(t, "chatbot")
	snippet := cb["settings"].(map[string]any)["snippet"].(map[string]any)
	if snippet["name"] != "Helper" || snippet["secondaryColor"] != "#10B981" || snippet["language"] != nil {
		t.Errorf("snippet after chat-widget = %v", snippet)
	}
	// And the other way: the snippet edited keeps the widget in step.
	s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbot/"+id, o.Key, map[string]any{"settings": map[string]any{"snippet": map[string]any{"header": "Hi there"}}})
	cb = s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+id, o.Key, nil).object(t, "chatbot")
	if cw := cb["chat_widget_config"].(map[string]any); cw["header"] != "Hi there" || cw["language"] != "auto" {
		t.Errorf("chat_widget_config after snippet edit = %v", cw)
	}
	e := s.apiMust(http.StatusBadRequest, "PATCH", "/api/external/chatbot/"+id+"/chat-widget", o.Key, map[string]any{
		"primaryColor": "red", "logo": "javascript:alert(1)", "language": "not a language", "size": 3}).apiError(t)
	for _, f := range []string{"primaryColor", "logo", "language", "size"} {
		if e.Fields[f] == "" {
			t.Errorf("chat-widget: no problem for %s: %+v", f, e)
		}
	}

	voice := map[string]any{
		"agentId": id, "voice": "shimmer",
		"model":      map[string]any{"temperature": 0.7, "max_output_tokens": 2048},
		"vad":        map[string]any{"threshold": 0.8, "prefix_padding_ms": 500, "silence_duration_ms": 1000},
		"avatar":     map[string]any{"imageUrl": "https://example.com/image.jpg"},
		"appearance": map[string]any{"backgroundColor": "#ffffff", "borderColor": "#e1e1e1", "buttonColor": "#000000", "buttonTextColor": "#ffffff", "buttonRadius": 32, "cardRadius": 20, "focusOutlineColor": "#000000", "textColor": "#000000"},
		"text":       map[string]any{"startCall": "Start a call", "endCall": "End", "callToAction": "Appointment?", "listeningStatus": "Listening", "speakingStatus": "Talk to interrupt"},
	}
	v := s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbot/"+id+"/voice-agent", o.Key, voice).json(t)
	if v["message"] != "Voice widget config updated successfully" {
		t.Errorf("voice-agent = %v", v)
	}
	b1, _ := json.Marshal(voice)
	b2, _ := json.Marshal(v["voice_widget_config"])
	if string(b1) != string(b2) {
		t.Errorf("voice_widget_config = %s, want %s", b2, b1)
	}
	if got := s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+id, o.Key, nil).object(t, "chatbot")["voice_widget_config"]; got == nil {
		t.Error("voice_widget_config not on the chatbot")
	}
	e = s.apiMust(http.StatusBadRequest, "PATCH", "/api/external/chatbot/"+id+"/voice-agent", o.Key, map[string]any{
		"vad": map[string]any{"threshold": 2}, "model": map[string]any{"temperature": "hot"},
		"appearance": map[string]any{"textColor": "#12"}, "text": map[string]any{"startCall": 1}}).apiError(t)
	for _, f := range []string{"vad.threshold", "model.temperature", "appearance.textColor", "text.startCall"} {
		if e.Fields[f] == "" {
			t.Errorf("voice-agent: no problem for %s: %+v", f, e)
		}
	}
}
