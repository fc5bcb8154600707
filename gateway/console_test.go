package gateway_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/gateway"
	"github.com/wagate/wagate/store/storetest"
)

// testClock is a clock tests move by hand, so expiry is tested without
// waiting.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newTestClock() *testClock { return &testClock{now: time.Now().UTC()} }

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// withClock makes the gateway's console read the time from clock.
func withClock(clock *testClock) option {
	return func(_ *config.Config, g *[]gateway.Option) { *g = append(*g, gateway.WithClock(clock.Now)) }
}

const testPassword = "correct horse battery"

// consoleUser is a user created with the global key.
type consoleUser struct {
	ID, Email, Password, OrgID string
}

// createConsoleUser creates a user with role in the organization orgID
// through the global key's route.
func (s *server) createConsoleUser(orgID, email, role string) consoleUser {
	s.t.Helper()
	m := s.must(http.StatusCreated, "POST", "/api/v1/organizations/"+orgID+"/users", testAPIKey,
		map[string]any{"email": email, "name": strings.Split(email, "@")[0], "password": testPassword, "role": role}).json(s.t)
	return consoleUser{ID: m["id"].(string), Email: email, Password: testPassword, OrgID: orgID}
}

// defaultOrgID returns the default organization's id.
func (s *server) defaultOrgID() string {
	s.t.Helper()
	var list []map[string]any
	if err := json.Unmarshal(s.must(http.StatusOK, "GET", "/api/v1/organizations", testAPIKey, nil).Body, &list); err != nil {
		s.t.Fatal(err)
	}
	for _, o := range list {
		if o["default"] == true {
			return o["id"].(string)
		}
	}
	s.t.Fatal("no default organization")
	return ""
}

// session is a signed-in console session as an API client holds it.
type session struct {
	s      *server
	Cookie *http.Cookie
	CSRF   string
}

// signInAPI signs in through POST /api/v1/sessions.
func (s *server) signInAPI(email, password string) *session {
	s.t.Helper()
	r, resp := s.raw("POST", "/api/v1/sessions", nil, "", map[string]any{"email": email, "password": password})
	if r.Status != http.StatusCreated {
		s.t.Fatalf("sign-in of %s: %d %s", email, r.Status, r.Body)
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "wagate_session" {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.SameSite != http.SameSiteLaxMode || ck.Path != "/" || ck.Value == "" {
		s.t.Fatalf("session cookie = %+v", ck)
	}
	return &session{s: s, Cookie: ck, CSRF: r.json(s.t)["csrfToken"].(string)}
}

// raw sends a request with an optional cookie and CSRF header and returns
// the checked response and the HTTP one (for headers).
func (s *server) raw(method, path string, cookie *http.Cookie, csrf string, body any) (response, *http.Response) {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if cookie != nil {
		req.AddCookie(&http.Cookie{Name: cookie.Name, Value: cookie.Value})
	}
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := checkDocumented(req, resp, b); err != nil {
		s.t.Errorf("%s %s answered %d, which the OpenAPI document does not describe: %v\nbody: %.2000s", method, path, resp.StatusCode, err, b)
	}
	return response{Status: resp.StatusCode, Body: b}, resp
}

// call sends a request in the session, with its CSRF token.
func (se *session) call(method, path string, body any) response {
	se.s.t.Helper()
	r, _ := se.s.raw(method, path, se.Cookie, se.CSRF, body)
	return r
}

// apiErr returns the /api envelope's code and fields.
func apiErr(t *testing.T, r response) (string, map[string]any) {
	t.Helper()
	e, _ := r.json(t)["error"].(map[string]any)
	if e == nil {
		t.Fatalf("not an /api error envelope: %s", r.Body)
	}
	f, _ := e["fields"].(map[string]any)
	return e["code"].(string), f
}

// TestConsoleSignIn: an unknown email and a wrong password answer the
// same 401 naming the password; the right one opens a session whose cookie
// authenticates the organization's routes, and whose state changes need
// the CSRF token.
func TestConsoleSignIn(t *testing.T) {
	s := startServer(t, "")
	org := s.defaultOrgID()
	ana := s.createConsoleUser(org, "Ana@Example.com", "owner")

	wrong, _ := s.raw("POST", "/api/v1/sessions", nil, "", map[string]any{"email": "ana@example.com", "password": "not the password"})
	unknown, _ := s.raw("POST", "/api/v1/sessions", nil, "", map[string]any{"email": "nobody@example.com", "password": "not the password"})
	if wrong.Status != http.StatusUnauthorized || unknown.Status != http.StatusUnauthorized || string(wrong.Body) != string(unknown.Body) {
		t.Fatalf("wrong password %d %s; unknown email %d %s; want the same 401", wrong.Status, wrong.Body, unknown.Status, unknown.Body)
	}
	if _, fields := apiErr(t, wrong); fields["password"] == nil {
		t.Errorf("401 does not name the password field: %s", wrong.Body)
	}
	missing, _ := s.raw("POST", "/api/v1/sessions", nil, "", map[string]any{"email": ""})
	if _, fields := apiErr(t, missing); missing.Status != http.StatusBadRequest || fields["email"] == nil || fields["password"] == nil {
		t.Errorf("empty sign-in: %d %s", missing.Status, missing.Body)
	}

	se := s.signInAPI("ANA@example.com", ana.Password)
	cur := se.call("GET", "/api/v1/sessions/current", nil).json(t)
	if cur["role"] != "owner" || cur["organization"].(map[string]any)["id"] != org || cur["user"].(map[string]any)["email"] != "ana@example.com" {
		t.Fatalf("current session = %v", cur)
	}
	if r := se.call("GET", "/api/v1/chatbots", nil); r.Status != http.StatusOK {
		t.Fatalf("owner lists chatbots: %d %s", r.Status, r.Body)
	}
	// A state change with the cookie but without the token is refused.
	invite := map[string]any{"email": "bo@example.com", "role": "agent"}
	for _, csrf := range []string{"", "wrong-token"} {
		r, _ := s.raw("POST", "/api/v1/invites", se.Cookie, csrf, invite)
		if code, _ := apiErr(t, r); r.Status != http.StatusForbidden || code != "forbidden" || !strings.Contains(string(r.Body), "csrf") {
			t.Errorf("invite with CSRF token %q: %d %s, want 403", csrf, r.Status, r.Body)
		}
	}
	if r := se.call("POST", "/api/v1/invites", invite); r.Status != http.StatusCreated {
		t.Fatalf("invite with the token: %d %s", r.Status, r.Body)
	}
	// An unauthenticated request learns nothing.
	if r := s.call("GET", "/api/v1/sessions/current", "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("no cookie: %d", r.Status)
	}
	// A key is not a session.
	if r := s.call("GET", "/api/v1/sessions/current", testAPIKey, nil); r.Status != http.StatusForbidden {
		t.Errorf("global key on the session route: %d", r.Status)
	}
}

// TestConsoleSignInThrottle: five failures for one email refuse sign-in,
// even with the right password, until the window ends; a success clears
// the count.
func TestConsoleSignInThrottle(t *testing.T) {
	clock := newTestClock()
	s := startServer(t, "", withClock(clock))
	ana := s.createConsoleUser(s.defaultOrgID(), "ana@example.com", "owner")
	for range 5 {
		if r, _ := s.raw("POST", "/api/v1/sessions", nil, "", map[string]any{"email": ana.Email, "password": "wrong password"}); r.Status != http.StatusUnauthorized {
			t.Fatalf("failure: %d %s", r.Status, r.Body)
		}
	}
	r, resp := s.raw("POST", "/api/v1/sessions", nil, "", map[string]any{"email": ana.Email, "password": ana.Password})
	if code, _ := apiErr(t, r); r.Status != http.StatusTooManyRequests || code != "rate_limited" || resp.Header.Get("Retry-After") != "900" {
		t.Fatalf("after 5 failures: %d %s Retry-After %q, want 429 with 900", r.Status, r.Body, resp.Header.Get("Retry-After"))
	}
	clock.Advance(10 * time.Minute)
	if _, resp := s.raw("POST", "/api/v1/sessions", nil, "", map[string]any{"email": ana.Email, "password": ana.Password}); resp.Header.Get("Retry-After") != "300" {
		t.Fatalf("10 minutes later: Retry-After %q, want 300", resp.Header.Get("Retry-After"))
	}
	clock.Advance(5*time.Minute + time.Second)
	s.signInAPI(ana.Email, ana.Password)
	// The success cleared the count: four more failures do not lock.
	for range 4 {
		s.raw("POST", "/api/v1/sessions", nil, "", map[string]any{"email": ana.Email, "password": "wrong password"})
	}
	s.signInAPI(ana.Email, ana.Password)
}

// TestConsoleSessionExpiry: a session ends after its idle timeout without
// activity, and after its absolute timeout whatever the activity.
func TestConsoleSessionExpiry(t *testing.T) {
	clock := newTestClock()
	s := startServer(t, "", withClock(clock))
	ana := s.createConsoleUser(s.defaultOrgID(), "ana@example.com", "owner")

	se := s.signInAPI(ana.Email, ana.Password)
	clock.Advance(8*time.Hour - time.Minute)
	if r := se.call("GET", "/api/v1/sessions/current", nil); r.Status != http.StatusOK {
		t.Fatalf("before the idle timeout: %d", r.Status)
	}
	clock.Advance(8*time.Hour - time.Minute) // idle from the last request
	if r := se.call("GET", "/api/v1/sessions/current", nil); r.Status != http.StatusOK {
		t.Fatalf("activity moves the idle timeout: %d", r.Status)
	}
	clock.Advance(8*time.Hour + time.Minute)
	if r := se.call("GET", "/api/v1/sessions/current", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("after the idle timeout: %d, want 401", r.Status)
	}

	se = s.signInAPI(ana.Email, ana.Password)
	for elapsed := time.Duration(0); elapsed < 7*24*time.Hour-7*time.Hour; elapsed += 7 * time.Hour {
		clock.Advance(7 * time.Hour)
		if r := se.call("GET", "/api/v1/sessions/current", nil); r.Status != http.StatusOK {
			t.Fatalf("in use after %v: %d", elapsed+7*time.Hour, r.Status)
		}
	}
	clock.Advance(7 * time.Hour)
	if r := se.call("GET", "/api/v1/sessions/current", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("past the absolute timeout: %d, want 401", r.Status)
	}
}

// TestConsoleSignOut: signing out ends that session; signing out
// everywhere ends all of the user's.
func TestConsoleSignOut(t *testing.T) {
	s := startServer(t, "")
	ana := s.createConsoleUser(s.defaultOrgID(), "ana@example.com", "owner")
	a, b, c := s.signInAPI(ana.Email, ana.Password), s.signInAPI(ana.Email, ana.Password), s.signInAPI(ana.Email, ana.Password)
	r, resp := s.raw("DELETE", "/api/v1/sessions/current", a.Cookie, a.CSRF, nil)
	if r.Status != http.StatusNoContent || !strings.Contains(resp.Header.Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("sign out: %d, Set-Cookie %q", r.Status, resp.Header.Get("Set-Cookie"))
	}
	if r := a.call("GET", "/api/v1/sessions/current", nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("signed-out session: %d", r.Status)
	}
	if r := b.call("GET", "/api/v1/sessions/current", nil); r.Status != http.StatusOK {
		t.Fatalf("another session after sign-out: %d", r.Status)
	}
	if m := b.call("DELETE", "/api/v1/sessions", nil).json(t); m["ended"] != float64(2) {
		t.Fatalf("sign out everywhere: %v, want 2 ended", m)
	}
	for _, se := range []*session{b, c} {
		if r := se.call("GET", "/api/v1/sessions/current", nil); r.Status != http.StatusUnauthorized {
			t.Fatalf("after sign-out everywhere: %d", r.Status)
		}
	}
}

// TestConsoleUsersAndInvites: an owner invites, the invite is used once,
// the org key manages roles, the last owner stays, an admin manages no
// users.
func TestConsoleUsersAndInvites(t *testing.T) {
	s := startServer(t, "")
	o := s.createOrg("Acme")
	orgID, orgKey := o.ID, o.Key
	ana := s.createConsoleUser(orgID, "ana@example.com", "owner")
	if r := s.call("POST", "/api/v1/organizations/"+orgID+"/users", testAPIKey, map[string]any{"email": "ANA@example.com", "name": "x", "password": testPassword, "role": "agent"}); r.Status != http.StatusConflict {
		t.Errorf("same email again: %d %s", r.Status, r.Body)
	}
	bad := s.call("POST", "/api/v1/organizations/"+orgID+"/users", testAPIKey, map[string]any{"email": "nope", "name": "", "password": "short", "role": "boss"})
	if _, f := apiErr(t, bad); bad.Status != http.StatusBadRequest || f["email"] == nil || f["name"] == nil || f["password"] == nil || f["role"] == nil {
		t.Errorf("bad user: %d %s", bad.Status, bad.Body)
	}
	if r := s.call("POST", "/api/v1/organizations/"+orgID+"/users", orgKey, map[string]any{}); r.Status != http.StatusForbidden {
		t.Errorf("org key creating a user with the global route: %d", r.Status)
	}

	owner := s.signInAPI(ana.Email, ana.Password)
	inv := owner.call("POST", "/api/v1/invites", map[string]any{"email": "bo@example.com", "role": "admin"}).json(t)
	if !strings.HasPrefix(inv["url"].(string), s.URL+"/console/invite/") || inv["token"] == "" {
		t.Fatalf("invite = %v", inv)
	}
	accept := map[string]any{"token": inv["token"], "name": "Bo", "password": "another good passphrase"}
	r, _ := s.raw("POST", "/api/v1/invites/accept", nil, "", accept)
	if r.Status != http.StatusCreated || r.json(t)["role"] != "admin" {
		t.Fatalf("accept: %d %s", r.Status, r.Body)
	}
	if r, _ := s.raw("POST", "/api/v1/invites/accept", nil, "", accept); r.Status != http.StatusNotFound {
		t.Fatalf("second use of the invite: %d %s", r.Status, r.Body)
	}
	admin := s.signInAPI("bo@example.com", "another good passphrase")
	if r := admin.call("GET", "/api/v1/users", nil); r.Status != http.StatusForbidden {
		t.Errorf("admin lists users: %d", r.Status)
	}
	var users []map[string]any
	json.Unmarshal(owner.call("GET", "/api/v1/users", nil).Body, &users)
	if len(users) != 2 || users[0]["email"] != "ana@example.com" || users[1]["role"] != "admin" {
		t.Fatalf("users = %v", users)
	}
	bo := users[1]["id"].(string)
	if r := s.call("PATCH", "/api/v1/users/"+bo, orgKey, map[string]any{"role": "boss"}); r.Status != http.StatusBadRequest {
		t.Errorf("a role that is none of the three: %d %s", r.Status, r.Body)
	} else if _, f := apiErr(t, r); f["role"] == nil {
		t.Errorf("a bad role's problem is not under role: %s", r.Body)
	}
	if m := s.must(http.StatusOK, "PATCH", "/api/v1/users/"+bo, orgKey, map[string]any{"role": "agent"}).json(t); m["role"] != "agent" {
		t.Fatalf("role change by the org key: %v", m)
	}
	// The role is read at each request: the admin is now an agent.
	if r := admin.call("GET", "/api/v1/credentials", nil); r.Status != http.StatusForbidden {
		t.Errorf("demoted to agent, credentials: %d", r.Status)
	}
	if r := owner.call("PATCH", "/api/v1/users/"+ana.ID, map[string]any{"role": "admin"}); r.Status != http.StatusConflict {
		t.Errorf("demoting the last owner: %d %s", r.Status, r.Body)
	}
	if r := owner.call("DELETE", "/api/v1/users/"+bo, nil); r.Status != http.StatusNoContent {
		t.Fatalf("remove: %d %s", r.Status, r.Body)
	}
	if r := admin.call("GET", "/api/v1/sessions/current", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("removed user's session: %d", r.Status)
	}
	var list []map[string]any
	json.Unmarshal(s.must(http.StatusOK, "GET", "/api/v1/organizations/"+orgID+"/users", testAPIKey, nil).Body, &list)
	if len(list) != 1 {
		t.Errorf("users after removal = %v", list)
	}
}

// TestConsoleRoleIsolation walks routes with an agent's, an admin's and
// another organization's owner's sessions.
func TestConsoleRoleIsolation(t *testing.T) {
	s := startServer(t, "")
	org := s.defaultOrgID()
	inst := s.createInstance("shop", "")
	if r := s.inbound(inst, "m1", "5511999@s.whatsapp.net", "hello"); r.Status >= 300 {
		t.Fatalf("inbound: %d %s", r.Status, r.Body)
	}
	otherOrg := s.createOrg("Other").ID
	s.createConsoleUser(org, "agent@example.com", "agent")
	s.createConsoleUser(org, "admin@example.com", "admin")
	s.createConsoleUser(otherOrg, "owner@other.example.com", "owner")
	agent := s.signInAPI("agent@example.com", testPassword)
	admin := s.signInAPI("admin@example.com", testPassword)
	other := s.signInAPI("owner@other.example.com", testPassword)

	for _, tc := range []struct {
		who          *session
		method, path string
		body         any
		want         int
	}{
		// The inbox is the agent's.
		{agent, "GET", "/conversations/shop", nil, http.StatusOK},
		{agent, "POST", "/chat/findMessages/shop", map[string]any{}, http.StatusOK},
		{agent, "GET", "/instance/fetchInstances", nil, http.StatusOK},
		{agent, "GET", "/api/v1/overview", nil, http.StatusOK},
		// Managing instances, bots, credentials and chatbots is not.
		{agent, "POST", "/instance/create", map[string]any{"instanceName": "x", "integration": "EVOLUTION"}, http.StatusForbidden},
		{agent, "DELETE", "/instance/delete/shop", nil, http.StatusForbidden},
		{agent, "DELETE", "/instance/logout/shop", nil, http.StatusForbidden},
		{agent, "POST", "/webhook/set/shop", map[string]any{}, http.StatusForbidden},
		{agent, "GET", "/webhook/find/shop", nil, http.StatusForbidden},
		{agent, "POST", "/settings/set/shop", map[string]any{}, http.StatusForbidden},
		{agent, "POST", "/openai/create/shop", map[string]any{}, http.StatusForbidden},
		{agent, "GET", "/openai/creds/shop", nil, http.StatusForbidden},
		{agent, "POST", "/api/v1/chatbots", map[string]any{"name": "x"}, http.StatusForbidden},
		{agent, "GET", "/api/v1/credentials", nil, http.StatusForbidden},
		{agent, "POST", "/api/v1/invites", map[string]any{"email": "x@example.com", "role": "agent"}, http.StatusForbidden},
		// Admins manage the organization's instances, but not its users.
		{admin, "GET", "/webhook/find/shop", nil, http.StatusOK},
		{admin, "GET", "/instance/connectionState/shop", nil, http.StatusOK},
		{admin, "GET", "/api/v1/users", nil, http.StatusForbidden},
		// No session reaches the global key's routes or channel inbound.
		{admin, "GET", "/api/v1/organizations", nil, http.StatusForbidden},
		{admin, "POST", "/webhook/evolution", map[string]any{"numberId": inst.Number, "key": map[string]any{"id": "x", "remoteJid": "1@s.whatsapp.net"}, "message": map[string]any{"conversation": "hi"}}, http.StatusForbidden},
		// Another organization's instance does not exist for its owner.
		{other, "GET", "/instance/connectionState/shop", nil, http.StatusNotFound},
		{other, "GET", "/conversations/shop", nil, http.StatusNotFound},
		{other, "POST", "/message/sendText/shop", map[string]any{"number": "5511999", "text": "hi"}, http.StatusNotFound},
		{other, "DELETE", "/instance/delete/shop", nil, http.StatusNotFound},
	} {
		if r := tc.who.call(tc.method, tc.path, tc.body); r.Status != tc.want {
			t.Errorf("%s %s: %d, want %d: %.300s", tc.method, tc.path, r.Status, tc.want, r.Body)
		}
	}
	var list []map[string]any
	json.Unmarshal(other.call("GET", "/instance/fetchInstances", nil).Body, &list)
	if len(list) != 0 {
		t.Errorf("another organization's owner lists %v", list)
	}
	// The overview counts the organization's own messages only.
	if m := admin.call("GET", "/api/v1/overview", nil).json(t); m["messagesToday"] != float64(1) || m["instancesTotal"] != float64(1) {
		t.Errorf("overview = %v", m)
	}
	if m := other.call("GET", "/api/v1/overview", nil).json(t); m["messagesToday"] != float64(0) || m["instancesTotal"] != float64(0) {
		t.Errorf("other organization's overview = %v", m)
	}
}

// TestConsolePagesHTTP: pages send a signed-out browser to the sign-in
// page and back; a form post without the session's CSRF token is refused;
// assets are cached for good under a versioned URL.
func TestConsolePagesHTTP(t *testing.T) {
	s := startServer(t, "")
	ana := s.createConsoleUser(s.defaultOrgID(), "ana@example.com", "owner")
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(path string, ck *http.Cookie) *http.Response {
		req, _ := http.NewRequest("GET", s.URL+path, nil)
		if ck != nil {
			req.AddCookie(ck)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	if resp := get("/console/instances", nil); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console/signin?next=%2Fconsole%2Finstances" {
		t.Fatalf("signed out: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	post := func(path string, ck *http.Cookie, form string) *http.Response {
		req, _ := http.NewRequest("POST", s.URL+path, strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if ck != nil {
			req.AddCookie(ck)
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	// Another site's page cannot sign its visitor in.
	evil, _ := http.NewRequest("POST", s.URL+"/console/signin", strings.NewReader("email=ana%40example.com&password=x"))
	evil.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	evil.Header.Set("Origin", "https://evil.example")
	if resp, err := noRedirect.Do(evil); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-in from another origin: %v %v", resp, err)
	}
	// The sign-in form works without JavaScript, and goes back to next
	// only inside the console.
	resp := post("/console/signin", nil, "email=ana%40example.com&password="+strings.ReplaceAll(testPassword, " ", "+")+"&next=https%3A%2F%2Fevil.example")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/console" {
		t.Fatalf("sign-in form: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == "wagate_session" {
			ck = c
		}
	}
	if ck == nil || !ck.HttpOnly || ck.Secure {
		t.Fatalf("cookie over plain HTTP = %+v", ck)
	}
	if resp := get("/console", ck); resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("overview: %d %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	// htmx's refresh of the overview gets the figures alone.
	req, _ := http.NewRequest("GET", s.URL+"/console", nil)
	req.AddCookie(ck)
	req.Header.Set("HX-Request", "true")
	part, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(part.Body)
	part.Body.Close()
	if frag := strings.TrimSpace(string(b)); !strings.HasPrefix(frag, `<section id="figures"`) || strings.Contains(frag, "<html") {
		t.Errorf("htmx refresh answered %q", frag)
	}
	if resp := post("/console/signout", ck, ""); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-out form without the CSRF token: %d, want 403", resp.StatusCode)
	}
	se := &session{s: s, Cookie: ck}
	csrf := se.call("GET", "/api/v1/sessions/current", nil).json(t)["csrfToken"].(string)
	if resp := post("/console/signout", ck, "csrf="+csrf); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out form with the token: %d", resp.StatusCode)
	}
	if resp := get("/console", ck); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("after sign-out: %d", resp.StatusCode)
	}
	// Behind a TLS proxy the cookie is Secure.
	req, _ = http.NewRequest("POST", s.URL+"/api/v1/sessions", strings.NewReader(`{"email":"ana@example.com","password":"`+ana.Password+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Forwarded-Proto", "https")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if cs := r.Cookies(); len(cs) != 1 || !cs[0].Secure {
		t.Errorf("cookie behind TLS = %+v", cs)
	}

	page, err := http.Get(s.URL + "/console/signin")
	if err != nil {
		t.Fatal(err)
	}
	html, _ := io.ReadAll(page.Body)
	page.Body.Close()
	i := strings.Index(string(html), "/console/assets/")
	if i < 0 {
		t.Fatalf("no asset link in %s", html)
	}
	href := string(html[i:])
	href = href[:strings.IndexByte(href, '"')]
	asset := get(href, nil)
	if asset.StatusCode != http.StatusOK || !strings.Contains(asset.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("asset %s: %d %q", href, asset.StatusCode, asset.Header.Get("Cache-Control"))
	}
	if stale := get(strings.Replace(href, "/assets/", "/assets/0", 1), nil); stale.StatusCode != http.StatusNotFound {
		t.Errorf("asset under another version: %d", stale.StatusCode)
	}
}

// TestConsoleOverviewFigures: the overview counts the day's inbound
// messages, the bot's replies and the answers the model failed, from what
// the engine stored; a message typed on the phone is not a received one.
func TestConsoleOverviewFigures(t *testing.T) {
	e := newBotEnv(t)
	e.s.createConsoleUser(e.s.defaultOrgID(), "ana@example.com", "admin")
	e.bot(nil)
	e.say("m1", "5511111@s.whatsapp.net", "hello", nil)
	e.replies(1)
	e.ai.Enqueue(fakeai.Fail(500, "boom"), fakeai.Fail(500, "boom"), fakeai.Fail(500, "boom"))
	e.say("m2", "5522222@s.whatsapp.net", "are you there?", nil)
	if state, _ := e.waitState("5522222@s.whatsapp.net", "m2"); state != "failed" {
		t.Fatalf("m2 is %s, want failed", state)
	}
	e.operator("op1", "5533333@s.whatsapp.net", "typed on the phone")
	e.waitState("5533333@s.whatsapp.net", "op1")
	se := e.s.signInAPI("ana@example.com", testPassword)
	got := se.call("GET", "/api/v1/overview", nil).json(t)
	want := map[string]any{"instancesConnected": float64(1), "instancesTotal": float64(1), "messagesToday": float64(2),
		"repliesToday": float64(1), "modelErrorsToday": float64(1)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v (overview %v)", k, got[k], v, got)
		}
	}
	// The same figures with the organization's key.
	if byKey := e.s.must(http.StatusOK, "GET", "/api/v1/overview", testAPIKey, nil).json(t); byKey["repliesToday"] != float64(1) {
		t.Errorf("overview by the global key = %v", byKey)
	}
}

// TestInviteListAndRevoke: an owner sees the organization's invites
// waiting to be used, never their links, and revokes one so its link
// stops working; used, expired and other organizations' invites are not
// listed, and only the organization's owner or key may do either.
func TestInviteListAndRevoke(t *testing.T) {
	s := startServer(t, "")
	o := s.createOrg("Acme")
	ana := s.createConsoleUser(o.ID, "ana@example.com", "owner")
	s.createConsoleUser(o.ID, "ad@example.com", "admin")
	owner := s.signInAPI(ana.Email, ana.Password)
	admin := s.signInAPI("ad@example.com", testPassword)
	other := s.createOrg("Other")

	invite := func(email string) map[string]any {
		t.Helper()
		return owner.call("POST", "/api/v1/invites", map[string]any{"email": email, "role": "agent"}).json(t)
	}
	bo, cy, ex := invite("bo@example.com"), invite("cy@example.com"), invite("ex@example.com")
	byKey := s.must(http.StatusCreated, "POST", "/api/v1/invites", o.Key, map[string]any{"email": "dee@example.com", "role": "admin"}).json(t)
	s.must(http.StatusCreated, "POST", "/api/v1/invites", other.Key, map[string]any{"email": "zed@example.com", "role": "agent"})
	// ex's link has expired.
	if _, err := storetest.RawDB(t, s.dbURL).Exec("UPDATE invites SET expires_at = 1 WHERE id = $1", ex["id"]); err != nil {
		t.Fatal(err)
	}

	pending := func(who *session) []map[string]any {
		t.Helper()
		r := who.call("GET", "/api/v1/invites", nil)
		if r.Status != http.StatusOK {
			t.Fatalf("list invites: %d %s", r.Status, r.Body)
		}
		var list []map[string]any
		if err := json.Unmarshal(r.Body, &list); err != nil {
			t.Fatal(err)
		}
		return list
	}
	emails := func(list []map[string]any) []string {
		var out []string
		for _, in := range list {
			out = append(out, in["email"].(string))
		}
		return out
	}
	list := pending(owner)
	if got := emails(list); !slices.Equal(got, []string{"dee@example.com", "cy@example.com", "bo@example.com"}) {
		t.Fatalf("pending invites = %v, want dee, cy, bo (newest first)", got)
	}
	for _, in := range list {
		for _, secret := range []string{"token", "token_hash", "url"} {
			if _, ok := in[secret]; ok {
				t.Errorf("a listed invite shows its %s: %v", secret, in)
			}
		}
		if in["id"] == "" || in["role"] == "" || in["created_at"] == nil || in["expires_at"] == nil {
			t.Errorf("listed invite = %v", in)
		}
	}
	if list[0]["invited_by"] != nil || list[1]["invited_by"] != ana.ID {
		t.Errorf("invited_by = %v and %v; want null for the key's, %s for the owner's", list[0]["invited_by"], list[1]["invited_by"], ana.ID)
	}
	if byKeyList := s.must(http.StatusOK, "GET", "/api/v1/invites", o.Key, nil); !strings.Contains(string(byKeyList.Body), byKey["id"].(string)) {
		t.Errorf("the organization's key lists %s", byKeyList.Body)
	}
	if r := admin.call("GET", "/api/v1/invites", nil); r.Status != http.StatusForbidden {
		t.Errorf("admin lists invites: %d", r.Status)
	}
	if r := admin.call("DELETE", "/api/v1/invites/"+cy["id"].(string), nil); r.Status != http.StatusForbidden {
		t.Errorf("admin revokes an invite: %d", r.Status)
	}
	if r := s.call("DELETE", "/api/v1/invites/"+cy["id"].(string), other.Key, nil); r.Status != http.StatusNotFound {
		t.Errorf("another organization revokes our invite: %d", r.Status)
	}

	// Revoked, cy's link no longer works.
	if r := owner.call("DELETE", "/api/v1/invites/"+cy["id"].(string), nil); r.Status != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", r.Status, r.Body)
	}
	accept := func(inv map[string]any) int {
		r, _ := s.raw("POST", "/api/v1/invites/accept", nil, "", map[string]any{"token": inv["token"], "name": "N", "password": "another good passphrase"})
		return r.Status
	}
	if got := accept(cy); got != http.StatusNotFound {
		t.Errorf("accepting a revoked invite: %d", got)
	}
	if r := owner.call("DELETE", "/api/v1/invites/"+cy["id"].(string), nil); r.Status != http.StatusNotFound {
		t.Errorf("revoking twice: %d", r.Status)
	}
	// Used, bo's is no longer listed, nor revocable.
	if got := accept(bo); got != http.StatusCreated {
		t.Fatalf("accepting bo's invite: %d", got)
	}
	if got := emails(pending(owner)); !slices.Equal(got, []string{"dee@example.com"}) {
		t.Errorf("pending invites after a revocation and a use = %v, want dee", got)
	}
	r := owner.call("DELETE", "/api/v1/invites/"+bo["id"].(string), nil)
	if _, fields := apiErr(t, r); r.Status != http.StatusNotFound || fields["inviteId"] == nil {
		t.Errorf("revoking a used invite: %d %s", r.Status, r.Body)
	}
}

// TestSwitchOrganization: a user of two organizations moves between them,
// over REST and with the console header's picker. Each move is a new
// session in the other organization, with its role there, ending when the
// old one would have; the old session stops working. Only organizations
// the user belongs to can be chosen, and a user of one sees no picker.
func TestSwitchOrganization(t *testing.T) {
	s := startServer(t, "")
	acme, beta, gamma := s.createOrg("Acme"), s.createOrg("Beta"), s.createOrg("Gamma")
	s.createConsoleUser(acme.ID, "ana@example.com", "owner")
	s.createConsoleUser(beta.ID, "bo@example.com", "owner")
	bo := s.signInAPI("bo@example.com", testPassword)
	inv := bo.call("POST", "/api/v1/invites", map[string]any{"email": "ana@example.com", "role": "agent"}).json(t)
	if r, _ := s.raw("POST", "/api/v1/invites/accept", nil, "", map[string]any{"token": inv["token"], "password": testPassword}); r.Status != http.StatusCreated {
		t.Fatalf("accept: %d %s", r.Status, r.Body)
	}

	ana := s.signInAPI("ana@example.com", testPassword)
	cur := ana.call("GET", "/api/v1/sessions/current", nil).json(t)
	if cur["organization"].(map[string]any)["id"] != acme.ID || len(cur["organizations"].([]any)) != 2 {
		t.Fatalf("session = %v", cur)
	}
	if r := ana.call("GET", "/api/v1/users", nil); r.Status != http.StatusOK {
		t.Fatalf("an owner of Acme lists its users: %d", r.Status)
	}

	// Bad choices name the field; nothing changes.
	for _, tc := range []struct {
		body   map[string]any
		status int
	}{
		{map[string]any{}, http.StatusBadRequest},
		{map[string]any{"organization": "nope"}, http.StatusForbidden},
		{map[string]any{"organization": gamma.ID}, http.StatusForbidden},
		{map[string]any{"organisation": beta.ID}, http.StatusBadRequest},
	} {
		r := ana.call("POST", "/api/v1/sessions/current/organization", tc.body)
		if _, f := apiErr(t, r); r.Status != tc.status || (f["organization"] == nil && f["organisation"] == nil) {
			t.Errorf("switch with %v: %d %s", tc.body, r.Status, r.Body)
		}
	}
	if r, _ := s.raw("POST", "/api/v1/sessions/current/organization", ana.Cookie, "", map[string]any{"organization": beta.ID}); r.Status != http.StatusForbidden {
		t.Errorf("switch without the CSRF token: %d", r.Status)
	}
	if r := s.call("POST", "/api/v1/sessions/current/organization", acme.Key, map[string]any{"organization": beta.ID}); r.Status != http.StatusForbidden {
		t.Errorf("switch with an organization key: %d", r.Status)
	}

	r, resp := s.raw("POST", "/api/v1/sessions/current/organization", ana.Cookie, ana.CSRF, map[string]any{"organization": beta.ID})
	if r.Status != http.StatusCreated {
		t.Fatalf("switch: %d %s", r.Status, r.Body)
	}
	moved := r.json(t)
	if moved["organization"].(map[string]any)["id"] != beta.ID || moved["role"] != "agent" || moved["expires_at"] != cur["expires_at"] {
		t.Errorf("after the switch: %v (before: %v)", moved, cur)
	}
	if r, _ := s.raw("GET", "/api/v1/sessions/current", ana.Cookie, "", nil); r.Status != http.StatusUnauthorized {
		t.Errorf("the old session after the switch: %d", r.Status)
	}
	var ck *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == ana.Cookie.Name {
			ck = c
		}
	}
	if ck == nil || ck.Value == ana.Cookie.Value {
		t.Fatalf("no new cookie: %v", resp.Cookies())
	}
	inBeta := &session{s: s, Cookie: ck, CSRF: moved["csrfToken"].(string)}
	if r := inBeta.call("GET", "/api/v1/users", nil); r.Status != http.StatusForbidden {
		t.Errorf("an agent of Beta lists its users: %d", r.Status)
	}

	// The console's picker: every organization, the current one chosen.
	page := inBeta.getHTML("/console/inbox")
	if !strings.Contains(page.Body, `<select id="org-switch" name="organization">`) ||
		!strings.Contains(page.Body, `<option value="`+beta.ID+`" selected>Beta (agent)</option>`) ||
		!strings.Contains(page.Body, `<option value="`+acme.ID+`">Acme (owner)</option>`) {
		t.Errorf("the picker: %s", page.Body)
	}
	if got := inBeta.postHTML("/console/organization", url.Values{"organization": {acme.ID}}, false); got.Status != http.StatusForbidden {
		t.Errorf("picker without the CSRF token: %d", got.Status)
	}
	if got := inBeta.postHTML("/console/organization", url.Values{"organization": {gamma.ID}}, true); got.Status != http.StatusForbidden ||
		!strings.Contains(got.Body, "you are not a member of this organization") {
		t.Errorf("picker with an organization the user is not in: %d %s", got.Status, got.Body)
	}
	back := inBeta.postHTML("/console/organization", url.Values{"organization": {acme.ID}}, true)
	if back.Status != http.StatusSeeOther || back.Location != "/console" {
		t.Fatalf("picker: %d %q %s", back.Status, back.Location, back.Body)
	}
	flash := ""
	for _, c := range back.Cookies {
		if c.Name == ck.Name {
			ck = c
		} else if v, _ := url.QueryUnescape(c.Value); strings.Contains(v, "You are now in Acme.") {
			flash = v
		}
	}
	if flash == "" {
		t.Errorf("no flash saying where the user is now: %v", back.Cookies)
	}
	inAcme := &session{s: s, Cookie: ck}
	if got := inAcme.getHTML("/console"); got.Status != http.StatusOK ||
		!strings.Contains(got.Body, `<option value="`+acme.ID+`" selected>Acme (owner)</option>`) {
		t.Errorf("back in Acme: %d %s", got.Status, got.Body)
	}
	if got := bo.getHTML("/console"); strings.Contains(got.Body, "org-switch") || !strings.Contains(got.Body, `<span class="org" title="Organization">Beta</span>`) {
		t.Errorf("a user of one organization: %s", got.Body)
	}
}
