package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestAuthMatrix calls every scoped route with every kind of key.
func TestAuthMatrix(t *testing.T) {
	s := startServer(t, "")
	a := s.createInstance("alpha", "")
	b := s.createInstance("beta", "")
	rotated := s.createInstance("gamma", "")
	s.must(http.StatusOK, "POST", "/instance/rotateToken/gamma", rotated.Token, nil)

	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/instance/connectionState/%s", nil},
		{"GET", "/instance/connect/%s", nil},
		{"POST", "/instance/restart/%s", nil},
		{"DELETE", "/instance/logout/%s", nil},
		{"GET", "/webhook/find/%s", nil},
		{"POST", "/webhook/set/%s", map[string]any{"webhook": map[string]any{"enabled": false}}},
		{"GET", "/webhook/deliveries/%s", nil},
		{"POST", "/message/sendText/%s", map[string]any{"number": "5511", "text": "hi"}},
		{"GET", "/conversations/%s", nil},
		{"POST", "/chat/findMessages/%s", map[string]any{}},
		{"POST", "/chat/findChats/%s", nil},
		{"POST", "/chat/findContacts/%s", nil},
		{"POST", "/chat/findStatusMessage/%s", nil},
	}
	keys := []struct {
		name   string
		key    string
		target string
		want   int
	}{
		{"no key", "", "alpha", http.StatusUnauthorized},
		{"wrong key", "not-a-key", "alpha", http.StatusUnauthorized},
		{"wrong key, unknown instance", "not-a-key", "nobody", http.StatusUnauthorized},
		{"no key, unknown instance", "", "nobody", http.StatusUnauthorized},
		{"rotated-out token", rotated.Token, "gamma", http.StatusUnauthorized},
		{"other instance's token", b.Token, "alpha", http.StatusForbidden},
		{"token, unknown instance", b.Token, "nobody", http.StatusForbidden},
		{"own token", a.Token, "alpha", 0},
		{"global key", testAPIKey, "alpha", 0},
		{"global key, unknown instance", testAPIKey, "nobody", http.StatusNotFound},
	}
	for _, rt := range routes {
		for _, k := range keys {
			path := strings.Replace(rt.path, "%s", k.target, 1)
			t.Run(rt.method+" "+rt.path+"/"+k.name, func(t *testing.T) {
				r := s.call(rt.method, path, k.key, rt.body)
				if k.want == 0 {
					if r.Status < 200 || r.Status > 299 {
						t.Fatalf("status %d, want 2xx: %s", r.Status, r.Body)
					}
					return
				}
				if r.Status != k.want {
					t.Fatalf("status %d, want %d: %s", r.Status, k.want, r.Body)
				}
				r.messages(t) // the Evolution error envelope
			})
		}
	}

	// Token-only and global-only routes.
	s.must(http.StatusForbidden, "POST", "/instance/create", a.Token, map[string]any{"instanceName": "x"})
	s.must(http.StatusUnauthorized, "GET", "/instance/fetchInstances", "", nil)
	s.must(http.StatusForbidden, "POST", "/instance/rotateToken/alpha", b.Token, nil)
	s.must(http.StatusForbidden, "DELETE", "/instance/delete/alpha", b.Token, nil)
	s.must(http.StatusForbidden, "POST", "/webhook/rotateSecret/alpha", b.Token, nil)

	// Authorization: Bearer works like apikey.
	req, _ := http.NewRequest("GET", s.URL+"/instance/connectionState/alpha", nil)
	req.Header.Set("Authorization", "Bearer "+a.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Bearer: status %d", resp.StatusCode)
	}

	// Nothing of any key reached the logs.
	for _, secret := range []string{testAPIKey, a.Token, b.Token, rotated.Token} {
		if strings.Contains(s.logs.String(), secret) {
			t.Fatal("a key appeared in the logs")
		}
	}
}
