package gateway_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/wagate/wagate/store"
)

func TestOrganizations(t *testing.T) {
	s := startServer(t, "")
	var list []map[string]any
	json.Unmarshal(s.apiMust(http.StatusOK, "GET", "/api/v1/organizations", testAPIKey, nil).Body, &list)
	if len(list) != 1 || list[0]["default"] != true {
		t.Fatalf("organizations of a new gateway = %v", list)
	}
	created := s.apiMust(http.StatusCreated, "POST", "/api/v1/organizations", testAPIKey, map[string]any{"name": "Acme"}).json(t)
	o := org{ID: created["organization"].(map[string]any)["id"].(string), Key: created["apiKey"].(string)}
	if !strings.HasPrefix(o.Key, "wgo_") || len(o.Key) < 4+32 {
		t.Fatalf("organization key %q", o.Key)
	}
	s.apiMust(http.StatusBadRequest, "POST", "/api/v1/organizations", testAPIKey, map[string]any{"name": " "})
	s.apiMust(http.StatusForbidden, "POST", "/api/v1/organizations", o.Key, map[string]any{"name": "x"})

	// A second key, listed by prefix only; deleting it stops it at once.
	more := s.apiMust(http.StatusCreated, "POST", "/api/v1/organizations/"+o.ID+"/keys", testAPIKey, nil).json(t)
	second := more["apiKey"].(string)
	s.apiMust(http.StatusOK, "GET", "/api/external/chatbots", second, nil)
	got := s.apiMust(http.StatusOK, "GET", "/api/v1/organizations/"+o.ID, testAPIKey, nil)
	if keys := got.json(t)["keys"].([]any); len(keys) != 2 || strings.Contains(string(got.Body), second) || strings.Contains(string(got.Body), o.Key) {
		t.Errorf("organization = %s", got.Body)
	}
	s.apiMust(http.StatusOK, "DELETE", "/api/v1/organizations/"+o.ID+"/keys/"+more["key"].(map[string]any)["id"].(string), testAPIKey, nil)
	if r := s.apiCall("GET", "/api/external/chatbots", second, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("deleted key: %d", r.Status)
	}

	// An instance created with the organization key belongs to it; the
	// global key sees every instance, or one organization's by header.
	s.apiMust(http.StatusCreated, "POST", "/instance/create", o.Key, map[string]any{"instanceName": "acme", "integration": "EVOLUTION", "number": "n-acme"})
	s.createInstance("house", "")
	names := func(key, orgHeader string) []string {
		req, _ := http.NewRequest("GET", s.URL+"/instance/fetchInstances", nil)
		req.Header.Set("apikey", key)
		if orgHeader != "" {
			req.Header.Set("X-Wagate-Organization", orgHeader)
		}
		var out []map[string]any
		json.Unmarshal(s.do(req).Body, &out)
		var n []string
		for _, i := range out {
			n = append(n, i["name"].(string))
		}
		slices.Sort(n)
		return n
	}
	if got := names(o.Key, ""); !slices.Equal(got, []string{"acme"}) {
		t.Errorf("organization key lists %v", got)
	}
	if got := names(testAPIKey, ""); !slices.Equal(got, []string{"acme", "house"}) {
		t.Errorf("global key lists %v", got)
	}
	if got := names(testAPIKey, o.ID); !slices.Equal(got, []string{"acme"}) {
		t.Errorf("global key in the organization lists %v", got)
	}
	// The global key acts in the named organization.
	req, _ := http.NewRequest("POST", s.URL+"/api/v1/chatbots", strings.NewReader(`{"name":"made by the operator"}`))
	req.Header.Set("apikey", testAPIKey)
	req.Header.Set("X-Wagate-Organization", o.ID)
	if r := s.do(req); r.Status != http.StatusOK {
		t.Fatalf("global key with the header: %d %s", r.Status, r.Body)
	}
	var v1 []map[string]any
	json.Unmarshal(s.apiMust(http.StatusOK, "GET", "/api/v1/chatbots", o.Key, nil).Body, &v1)
	if len(v1) != 1 {
		t.Errorf("organization's chatbots = %v", v1)
	}
	req, _ = http.NewRequest("GET", s.URL+"/api/v1/chatbots", nil)
	req.Header.Set("apikey", testAPIKey)
	req.Header.Set("X-Wagate-Organization", "00000000-0000-0000-0000-000000000000")
	if r := s.do(req); r.Status != http.StatusNotFound {
		t.Errorf("unknown organization header: %d", r.Status)
	}

	// The default organization stays.
	s.apiMust(http.StatusConflict, "DELETE", "/api/v1/organizations/"+list[0]["id"].(string), testAPIKey, nil)
}

func TestOrganizationCredentials(t *testing.T) {
	s := startServer(t, "")
	o := s.createOrg("Acme")
	first := s.apiMust(http.StatusCreated, "POST", "/api/v1/credentials", o.Key, map[string]any{"name": "main", "apiKey": testProviderKey}).json(t)
	if first["default"] != true || first["apiKey"] == testProviderKey || !strings.HasSuffix(first["apiKey"].(string), testProviderKey[len(testProviderKey)-4:]) {
		t.Errorf("first credentials = %v", first)
	}
	second := s.apiMust(http.StatusCreated, "POST", "/api/v1/credentials", o.Key, map[string]any{"name": "spare", "apiKey": testProviderKey + "2", "baseUrl": "https://llm.example.com/v1/"}).json(t)
	if second["default"] != false || second["baseUrl"] != "https://llm.example.com/v1" {
		t.Errorf("second credentials = %v", second)
	}
	s.apiMust(http.StatusConflict, "POST", "/api/v1/credentials", o.Key, map[string]any{"name": "main", "apiKey": testProviderKey})
	e := s.apiMust(http.StatusBadRequest, "POST", "/api/v1/credentials", o.Key, map[string]any{"baseUrl": "nope"}).apiError(t)
	if e.Fields["name"] == "" || e.Fields["apiKey"] == "" || e.Fields["baseUrl"] == "" {
		t.Errorf("invalid credentials = %+v", e)
	}
	// Credentials of the organization's instances are the organization's too.
	s.apiMust(http.StatusCreated, "POST", "/instance/create", o.Key, map[string]any{"instanceName": "acme", "integration": "EVOLUTION", "number": "n-acme"})
	s.apiMust(http.StatusCreated, "POST", "/openai/creds/acme", o.Key, map[string]any{"name": "inst", "apiKey": testProviderKey + "3"})
	var list []map[string]any
	json.Unmarshal(s.apiMust(http.StatusOK, "GET", "/api/v1/credentials", o.Key, nil).Body, &list)
	if len(list) != 3 || list[2]["instanceId"] == nil || list[0]["instanceId"] != nil {
		t.Errorf("credentials = %v", list)
	}

	// A chatbot naming credentials, and one relying on the default, hold them.
	cb := s.apiMust(http.StatusOK, "POST", "/api/v1/chatbots", o.Key, map[string]any{"name": "a", "settings": map[string]any{"openaiCredsId": second["id"]}}).json(t)
	if cb["chatbot"].(map[string]any)["settings"].(map[string]any)["openaiCredsId"] != second["id"] {
		t.Errorf("chatbot settings = %v", cb)
	}
	s.apiMust(http.StatusConflict, "DELETE", "/api/v1/credentials/"+second["id"].(string), o.Key, nil)
	relying := s.apiMust(http.StatusOK, "POST", "/api/v1/chatbots", o.Key, map[string]any{"name": "b"}).json(t)["chatbot"].(map[string]any)["id"].(string)
	s.apiMust(http.StatusConflict, "DELETE", "/api/v1/credentials/"+first["id"].(string), o.Key, nil)
	// A key of its own frees the default; it is shown masked only.
	own := s.apiMust(http.StatusOK, "PATCH", "/api/external/chatbot/"+relying, o.Key, map[string]any{"openai_api_key": "sk-own-key-0123456789"}).object(t, "chatbot")
	if own["openai_api_key"] != "sk-…6789" {
		t.Errorf("own key shown as %v", own["openai_api_key"])
	}
	s.apiMust(http.StatusOK, "DELETE", "/api/v1/credentials/"+first["id"].(string), o.Key, nil)
	s.apiMust(http.StatusNotFound, "DELETE", "/api/v1/credentials/"+first["id"].(string), o.Key, nil)
	for _, secret := range []string{testProviderKey, "sk-own-key-0123456789"} {
		if strings.Contains(s.logs.String(), secret) {
			t.Error("a provider key is in the log")
		}
		assertNotInDataDir(t, s, secret)
	}
}

// TestOrganizationIsolation walks every organization-scoped route with
// another organization's key, ids of another organization, a chatbot key
// and an instance token.
func TestOrganizationIsolation(t *testing.T) {
	s := startServer(t, "")
	a, b := s.createOrg("Alpha"), s.createOrg("Bravo")
	s.apiMust(http.StatusCreated, "POST", "/instance/create", a.Key, map[string]any{"instanceName": "alpha", "integration": "EVOLUTION", "number": "n-alpha"})
	instToken := s.apiMust(http.StatusCreated, "POST", "/instance/create", b.Key, map[string]any{"instanceName": "bravo", "integration": "EVOLUTION", "number": "n-bravo"}).json(t)["hash"].(string)
	aCreds := s.apiMust(http.StatusCreated, "POST", "/api/v1/credentials", a.Key, map[string]any{"name": "secret-alpha-creds", "apiKey": testProviderKey}).json(t)["id"].(string)
	aBot := s.apiMust(http.StatusOK, "POST", "/api/v1/chatbots", a.Key, map[string]any{"name": "Secret Alpha Bot"}).json(t)
	aID, aKey := aBot["chatbot"].(map[string]any)["id"].(string), aBot["apiKey"].(string)
	bBot := s.apiMust(http.StatusOK, "POST", "/api/v1/chatbots", b.Key, map[string]any{"name": "Bravo Bot"}).json(t)
	bID, bKey := bBot["chatbot"].(map[string]any)["id"].(string), bBot["apiKey"].(string)

	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/external/chatbot/" + aID, nil},
		{"PATCH", "/api/external/chatbot/" + aID, map[string]any{"name": "x"}},
		{"DELETE", "/api/external/chatbot/" + aID, nil},
		{"PATCH", "/api/external/chatbots?id=" + aID, map[string]any{"name": "x"}},
		{"PATCH", "/api/external/chatbots", map[string]any{"id": aID, "name": "x"}},
		{"PATCH", "/api/external/chatbot/" + aID + "/chat-widget", map[string]any{"name": "x"}},
		{"PATCH", "/api/external/chatbot/" + aID + "/voice-agent", map[string]any{"voice": "x"}},
		{"PATCH", "/api/external/chatbot/" + aID + "/update-avatar", "{}"},
		{"GET", "/api/v1/chatbots/" + aID, nil},
		{"PATCH", "/api/v1/chatbots/" + aID, map[string]any{"name": "x"}},
		{"DELETE", "/api/v1/chatbots/" + aID, nil},
		{"POST", "/api/v1/chatbots/" + aID + "/rotate-key", nil},
		{"DELETE", "/api/v1/credentials/" + aCreds, nil},
		{"GET", "/instance/connectionState/alpha", nil},
		{"DELETE", "/instance/delete/alpha", nil},
		{"GET", "/openai/find/alpha", nil},
		{"POST", "/openai/creds/alpha", map[string]any{"name": "x", "apiKey": testProviderKey}},
		{"GET", "/webhook/find/alpha", nil},
		{"POST", "/message/sendText/alpha", map[string]any{"number": "5511", "text": "hi"}},
		{"GET", "/conversations/alpha", nil},
		{"POST", "/webhook/evolution", map[string]any{"numberId": "n-alpha", "key": map[string]any{"id": "m1", "remoteJid": "5511@s.whatsapp.net"}, "message": map[string]any{"conversation": "hi"}}},
	}
	for _, who := range []struct {
		name, key string
		allowed   []int
	}{
		{"another organization's key", b.Key, []int{http.StatusNotFound, http.StatusBadRequest}},
		{"a chatbot key", aKey, []int{http.StatusForbidden}},
		{"another chatbot's key", bKey, []int{http.StatusForbidden}},
		{"an instance token", instToken, []int{http.StatusForbidden}},
		{"no key", "", []int{http.StatusUnauthorized}},
		{"a made-up organization key", "wgo_" + strings.Repeat("0", 48), []int{http.StatusUnauthorized}},
		{"a made-up chatbot key", "ob_live_" + strings.Repeat("0", 32), []int{http.StatusUnauthorized}},
	} {
		for _, r := range routes {
			got := s.apiCall(r.method, r.path, who.key, r.body)
			if !slices.Contains(who.allowed, got.Status) {
				t.Errorf("%s: %s %s = %d, want one of %v: %s", who.name, r.method, r.path, got.Status, who.allowed, got.Body)
			}
			for _, secret := range []string{"Secret Alpha Bot", "secret-alpha-creds", testProviderKey[len(testProviderKey)-4:]} {
				if strings.Contains(string(got.Body), secret) {
					t.Errorf("%s: %s %s leaks %q", who.name, r.method, r.path, secret)
				}
			}
		}
	}
	// Ids of another organization in bodies are not found either.
	e := s.apiMust(http.StatusBadRequest, "PATCH", "/api/v1/chatbots/"+bID, b.Key, map[string]any{"settings": map[string]any{"openaiCredsId": aCreds}}).apiError(t)
	if e.Fields["settings.openaiCredsId"] == "" {
		t.Errorf("foreign credentials in a body = %+v", e)
	}
	// The organization routes are the global key's.
	for _, key := range []string{a.Key, aKey, instToken} {
		if got := s.apiCall("GET", "/api/v1/organizations", key, nil).Status; got != http.StatusForbidden {
			t.Errorf("organizations listed with a non-global key: %d", got)
		}
	}
	// What was refused is unchanged.
	if got := s.apiMust(http.StatusOK, "GET", "/api/v1/chatbots/"+aID, a.Key, nil).json(t); got["name"] != "Secret Alpha Bot" {
		t.Errorf("alpha's chatbot = %v", got)
	}
	s.apiMust(http.StatusOK, "GET", "/instance/connectionState/alpha", a.Key, nil)
}

func TestOrganizationDelete(t *testing.T) {
	rc := newReceiver(t)
	dir := t.TempDir()
	s := startServer(t, dir)
	setup := func(name string) (org, string) {
		o := s.createOrg(name)
		s.apiMust(http.StatusCreated, "POST", "/instance/create", o.Key, map[string]any{
			"instanceName": name, "integration": "EVOLUTION", "number": "n-" + name, "webhook": map[string]any{"url": rc.URL}})
		s.apiMust(http.StatusCreated, "POST", "/api/v1/credentials", o.Key, map[string]any{"name": "main", "apiKey": testProviderKey})
		key := s.apiMust(http.StatusOK, "POST", "/api/v1/chatbots", o.Key, map[string]any{"name": "bot"}).json(t)["apiKey"].(string)
		return o, key
	}
	gone := func(s *server, o org, chatbotKey, instance string) bool {
		return s.apiCall("GET", "/api/v1/organizations/"+o.ID, testAPIKey, nil).Status == http.StatusNotFound &&
			s.apiCall("GET", "/instance/connectionState/"+instance, testAPIKey, nil).Status == http.StatusNotFound &&
			s.apiCall("GET", "/api/external/chatbots", o.Key, nil).Status == http.StatusUnauthorized
	}

	// Through the API.
	o, cbKey := setup("doomed")
	r := s.apiMust(http.StatusAccepted, "DELETE", "/api/v1/organizations/"+o.ID, testAPIKey, nil)
	if r.json(t)["status"] != "deleting" {
		t.Errorf("delete = %s", r.Body)
	}
	// Hidden at once.
	if got := s.apiCall("GET", "/api/external/chatbots", o.Key, nil).Status; got != http.StatusUnauthorized {
		t.Errorf("key of an organization being deleted: %d", got)
	}
	s.apiMust(http.StatusNotFound, "DELETE", "/api/v1/organizations/"+o.ID, testAPIKey, nil)
	eventually(t, func() bool { return gone(s, o, cbKey, "doomed") }, "organization not deleted")
	rc.waitEvents(t, "instance.delete", 1)

	// A deletion begun and interrupted before its job ran finishes after a restart.
	o2, cbKey2 := setup("interrupted")
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), store.Options{URL: s.dbURL, SecretKey: testSecretKey}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.MarkOrganizationDeleting(context.Background(), o2.ID); err != nil {
		t.Fatal(err)
	}
	st.Close()
	s = startServer(t, dir)
	eventually(t, func() bool { return gone(s, o2, cbKey2, "interrupted") }, "interrupted deletion not finished")
	rc.waitEvents(t, "instance.delete", 2)
	if got := s.apiCall("GET", "/api/v1/chatbots", cbKey2, nil).Status; got != http.StatusUnauthorized {
		t.Errorf("chatbot key of a deleted organization: %d", got)
	}
}
