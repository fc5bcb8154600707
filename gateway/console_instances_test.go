package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wagate/wagate/config"
)

// TestRetryDelivery: a failed delivery is queued again by the retry
// route and delivered once the receiver works; it can be retried only
// while failed, and only through its own instance's organization.
func TestRetryDelivery(t *testing.T) {
	s := startServer(t, "", withConfig(func(c *config.Config) { c.WebhookMaxAge = 150 * time.Millisecond }))
	rc := newReceiver(t)
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	rc.setRespond(func(int, delivery) (int, http.Header) { return int(status.Load()), nil })
	inst := s.createInstance("shop", rc.URL)
	rc.setSecret(inst.Secret)
	if r := s.inbound(inst, "m1", "5511999@s.whatsapp.net", "hello"); r.Status >= 300 {
		t.Fatalf("inbound: %d %s", r.Status, r.Body)
	}
	id := failedDelivery(t, s, "shop", "messages.upsert")
	path := "/webhook/deliveries/shop/" + id + "/retry"

	other := s.createOrg("Other")
	theirs := s.createInstance("theirs", "")
	for _, tc := range []struct {
		name, path, key string
		want            int
	}{
		{"another organization's key", path, other.Key, http.StatusNotFound},
		{"another instance's token", "/webhook/deliveries/theirs/" + id + "/retry", theirs.Token, http.StatusNotFound},
		{"an unknown delivery", "/webhook/deliveries/shop/nope/retry", inst.Token, http.StatusNotFound},
		{"no key", path, "", http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.must(tc.want, "POST", tc.path, tc.key, nil)
		})
	}
	if n := len(rc.events("messages.upsert")); n == 0 {
		t.Fatal("the receiver never saw the delivery")
	}
	before := len(rc.events("messages.upsert"))

	status.Store(http.StatusOK)
	s.createConsoleUser(s.defaultOrgID(), "owner@example.com", "owner")
	owner := s.signInAPI("owner@example.com", testPassword)
	r := owner.call("POST", path, nil)
	if r.Status != http.StatusAccepted {
		t.Fatalf("retry: %d %s", r.Status, r.Body)
	}
	if d := r.json(t); d["status"] != "pending" || d["id"] != id || d["attempts"].(float64) < 1 {
		t.Fatalf("retried delivery = %v", d)
	}
	eventually(t, func() bool {
		for _, d := range s.must(http.StatusOK, "GET", "/webhook/deliveries/shop?status=delivered", inst.Token, nil).json(t)["data"].([]any) {
			if d.(map[string]any)["id"] == id {
				return true
			}
		}
		return false
	}, "the retried delivery delivered")
	got := rc.events("messages.upsert")
	if len(got) != before+1 || got[len(got)-1].Header.Get("X-Wagate-Delivery") != id {
		t.Fatalf("after the retry the receiver got %d more messages.upsert", len(got)-before)
	}
	if got[len(got)-1].VerifyErr != nil {
		t.Errorf("the retried delivery's signature: %v", got[len(got)-1].VerifyErr)
	}
	// Delivered: nothing to retry.
	s.must(http.StatusConflict, "POST", path, inst.Token, nil)
}

// TestConsoleInstancePagesHTTP: the instance pages are for owners and
// admins (an agent gets 403 on each), their forms need the CSRF token, and
// another organization's instance is as missing as an unknown one.
func TestConsoleInstancePagesHTTP(t *testing.T) {
	s := startServer(t, "")
	org := s.defaultOrgID()
	s.createInstance("shop", "")
	other := s.createOrg("Other")
	s.must(http.StatusCreated, "POST", "/instance/create", other.Key, map[string]any{"instanceName": "theirs", "integration": "EVOLUTION", "number": "num-theirs"})
	s.createConsoleUser(org, "owner@example.com", "owner")
	s.createConsoleUser(org, "agent@example.com", "agent")
	owner := s.signInAPI("owner@example.com", testPassword)
	agent := s.signInAPI("agent@example.com", testPassword)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	do := func(se *session, method, path string, form url.Values) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(&http.Cookie{Name: se.Cookie.Name, Value: se.Cookie.Value})
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	csrf := func(se *session, v url.Values) url.Values {
		out := url.Values{"csrf": {se.CSRF}}
		for k, vs := range v {
			out[k] = vs
		}
		return out
	}
	pages := []struct{ method, path string }{
		{"GET", "/console/instances/new"}, {"GET", "/console/instances/shop"}, {"GET", "/console/instances/shop/confirm/delete"},
		{"GET", "/console/instances/shop/deliveries"}, {"GET", "/console/instances/shop/events"},
		{"POST", "/console/instances"}, {"POST", "/console/instances/shop/connect"}, {"POST", "/console/instances/shop/logout"},
		{"POST", "/console/instances/shop/restart"}, {"POST", "/console/instances/shop/delete"}, {"POST", "/console/instances/shop/webhook"},
		{"POST", "/console/instances/shop/webhook/secret"}, {"POST", "/console/instances/shop/deliveries/x/retry"},
		{"GET", "/console/instances/shop/bots"}, {"GET", "/console/instances/shop/bots/new"}, {"GET", "/console/instances/shop/bots/x"},
		{"GET", "/console/instances/shop/bots/x/delete"}, {"GET", "/console/instances/shop/bot-settings"},
		{"POST", "/console/instances/shop/bots"}, {"POST", "/console/instances/shop/bots/x"}, {"POST", "/console/instances/shop/bots/x/delete"},
		{"POST", "/console/instances/shop/bot-settings"}, {"POST", "/console/instances/shop/creds"},
		{"POST", "/console/instances/shop/creds/x/delete"},
	}
	for _, p := range pages {
		if resp := do(agent, p.method, p.path, csrf(agent, nil)); resp.StatusCode != http.StatusForbidden {
			t.Errorf("agent %s %s: %d, want 403", p.method, p.path, resp.StatusCode)
		}
		if p.method == "POST" {
			if resp := do(owner, p.method, p.path, nil); resp.StatusCode != http.StatusForbidden {
				t.Errorf("owner %s %s without the CSRF token: %d, want 403", p.method, p.path, resp.StatusCode)
			}
		}
	}
	if s.must(http.StatusOK, "GET", "/instance/connectionState/shop", testAPIKey, nil).Status != http.StatusOK {
		t.Fatal("a refused delete deleted the instance")
	}
	for _, path := range []string{"/console/instances/theirs", "/console/instances/theirs/confirm/delete", "/console/instances/nope",
		"/console/instances/theirs/bots", "/console/instances/theirs/bot-settings"} {
		if resp := do(owner, "GET", path, nil); resp.StatusCode != http.StatusNotFound {
			t.Errorf("owner GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
	if resp := do(owner, "POST", "/console/instances/theirs/delete", csrf(owner, nil)); resp.StatusCode != http.StatusNotFound {
		t.Errorf("deleting another organization's instance: %d, want 404", resp.StatusCode)
	}
	s.must(http.StatusOK, "GET", "/instance/connectionState/theirs", testAPIKey, nil)

	// The webhook form is /webhook/set's body: the same rules, the same
	// field names; headers entered are stored, and kept when none are.
	if resp := do(owner, "POST", "/console/instances/shop/webhook", csrf(owner, url.Values{"webhook.enabled": {"1"}, "webhook.url": {"ftp://x"}})); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad webhook URL: %d, want 400", resp.StatusCode)
	}
	form := url.Values{"webhook.enabled": {"1"}, "webhook.url": {"http://127.0.0.1:9/hook"}, "webhook.events": {"MESSAGES_UPSERT"},
		"webhook.headers": {"Authorization: Bearer secret-value-1234"}, "keepHeaders": {"1"}}
	if resp := do(owner, "POST", "/console/instances/shop/webhook", csrf(owner, form)); resp.StatusCode != http.StatusOK {
		t.Errorf("the first webhook set (showing the secret): %d, want 200", resp.StatusCode)
	}
	form.Del("webhook.headers")
	form.Set("webhook.url", "http://127.0.0.1:9/other")
	if resp := do(owner, "POST", "/console/instances/shop/webhook", csrf(owner, form)); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("a later webhook set: %d, want 303", resp.StatusCode)
	}
	w := s.must(http.StatusOK, "GET", "/webhook/find/shop", testAPIKey, nil).json(t)
	if w["url"] != "http://127.0.0.1:9/other" || w["headers"].(map[string]any)["Authorization"] != "…1234" {
		t.Errorf("webhook after the forms = %v", w)
	}
	if ev := w["events"].([]any); len(ev) != 1 || ev[0] != "MESSAGES_UPSERT" {
		t.Errorf("webhook events = %v", ev)
	}

	// The bot settings form is /openai/settings' body: a number that does
	// not read is refused by name, as the route refuses it.
	if resp := do(owner, "POST", "/console/instances/shop/bot-settings", csrf(owner, url.Values{"expire": {"soon"}})); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("settings with expire=soon: %d, want 400", resp.StatusCode)
	}
	if resp := do(owner, "POST", "/console/instances/shop/bot-settings", csrf(owner, url.Values{"expire": {"30"}, "keepOpen": {"true"}})); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("settings: %d, want 303", resp.StatusCode)
	}
	st := s.must(http.StatusOK, "GET", "/openai/fetchSettings/shop", testAPIKey, nil).json(t)
	if st["expire"] != float64(30) || st["keepOpen"] != true {
		t.Errorf("settings after the form = %v", st)
	}
}

// TestConsoleDeleteCreds: credentials a bot uses stay, and the bots page
// says which bot; unused ones are deleted; another instance's are not
// found.
func TestConsoleDeleteCreds(t *testing.T) {
	s := startServer(t, "")
	shop := s.createInstance("shop", "")
	other := s.createInstance("other", "")
	s.createConsoleUser(s.defaultOrgID(), "owner@example.com", "owner")
	owner := s.signInAPI("owner@example.com", testPassword)
	creds := s.createCreds(shop, "main", "sk-test-0123456789abcdef", "")
	theirs := s.createCreds(other, "theirs", "sk-test-fedcba9876543210", "")
	bot := s.createBot(shop, simpleBot(creds, nil))["id"].(string)

	page := owner.getHTML("/console/instances/shop/bots")
	if !strings.Contains(page.Body, `action="/console/instances/shop/creds/`+creds+`/delete"`) {
		t.Fatalf("the bots page has no delete form for the credentials: %s", page.Body)
	}
	used := owner.postHTML("/console/instances/shop/creds/"+creds+"/delete", nil, true)
	if used.Status != http.StatusConflict || !strings.Contains(used.Body, bot) || !strings.Contains(used.Body, `role="alert"`) {
		t.Errorf("deleting credentials a bot uses: %d %s", used.Status, used.Body)
	}
	if got := owner.postHTML("/console/instances/shop/creds/"+theirs+"/delete", nil, true); got.Status != http.StatusNotFound {
		t.Errorf("deleting another instance's credentials through shop: %d", got.Status)
	}
	s.must(http.StatusOK, "DELETE", "/openai/delete/"+bot+"/shop", shop.Token, nil)
	if got := owner.postHTML("/console/instances/shop/creds/"+creds+"/delete", nil, true); got.Status != http.StatusSeeOther ||
		got.Location != "/console/instances/shop/bots#creds" {
		t.Fatalf("deleting unused credentials: %d %s", got.Status, got.Location)
	}
	var left []map[string]any
	json.Unmarshal(s.must(http.StatusOK, "GET", "/openai/creds/shop", shop.Token, nil).Body, &left)
	if len(left) != 0 {
		t.Errorf("credentials left: %v", left)
	}
	json.Unmarshal(s.must(http.StatusOK, "GET", "/openai/creds/other", other.Token, nil).Body, &left)
	if len(left) != 1 {
		t.Errorf("the other instance's credentials: %v", left)
	}
}
