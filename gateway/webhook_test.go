package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/gateway/webhook"
)

func TestWebhookEnvelopeAndSignature(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	inst := s.createInstance("shop", "")
	set := s.must(http.StatusOK, "POST", "/webhook/set/shop", inst.Token, map[string]any{"webhook": map[string]any{
		"enabled": true, "url": rc.URL + "/hooks", "byEvents": true,
		"headers": map[string]string{"Authorization": "Bearer receiver-secret-123"},
	}}).json(t)
	secret, _ := set["secret"].(string)
	if !strings.HasPrefix(secret, "whsec_") {
		t.Fatalf("first set returned no secret: %v", set)
	}
	if h := set["headers"].(map[string]any); h["Authorization"] != "…-123" {
		t.Fatalf("header values must be masked, got %v", h)
	}
	rc.setSecret(secret)

	s.must(http.StatusOK, "POST", "/webhook/evolution", inst.Token, map[string]any{
		"numberId": inst.Number, "key": map[string]any{"id": "M1", "remoteJid": "5511@s.whatsapp.net"},
		"message": map[string]any{"conversation": "hi"},
	})
	d := rc.waitEvents(t, "messages.upsert", 1)[0]
	if d.VerifyErr != nil {
		t.Fatalf("README verification failed: %v", d.VerifyErr)
	}
	// The library verifier agrees with the README's.
	if err := webhook.Verify(secret, d.Header.Get("X-Wagate-Signature"), d.Body, 5*time.Minute, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := webhook.Verify("whsec_other", d.Header.Get("X-Wagate-Signature"), d.Body, 5*time.Minute, time.Now()); err == nil {
		t.Fatal("a wrong secret verified")
	}
	if d.Path != "/hooks/messages-upsert" {
		t.Fatalf("byEvents path = %q", d.Path)
	}
	if d.Header.Get("Authorization") != "Bearer receiver-secret-123" || d.Header.Get("X-Wagate-Event") != "messages.upsert" ||
		d.Header.Get("X-Wagate-Delivery") == "" || d.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("headers = %v", d.Header)
	}
	env := d.Envelope
	if env.Event != "messages.upsert" || env.Instance != "shop" || env.Destination != rc.URL+"/hooks/messages-upsert" ||
		env.Sender != inst.Number || env.ServerURL == "" {
		t.Fatalf("envelope = %+v", env)
	}
	if _, err := time.Parse(time.RFC3339, env.DateTime); err != nil {
		t.Fatalf("date_time %q: %v", env.DateTime, err)
	}
	var raw map[string]any
	json.Unmarshal(d.Body, &raw)
	if len(raw) != 7 {
		t.Fatalf("envelope has fields beyond Evolution's seven: %v", raw)
	}
	for _, k := range []string{testAPIKey, inst.Token, secret} {
		if strings.Contains(string(d.Body), k) {
			t.Fatal("a key is in the webhook body")
		}
	}

	// find shows the webhook without its secret; a second set keeps the
	// secret and does not show it again.
	found := s.must(http.StatusOK, "GET", "/webhook/find/shop", inst.Token, nil)
	if strings.Contains(string(found.Body), secret) || strings.Contains(string(found.Body), "receiver-secret") {
		t.Fatalf("find leaks a secret: %s", found.Body)
	}
	again := s.must(http.StatusOK, "POST", "/webhook/set/shop", inst.Token, map[string]any{"webhook": map[string]any{
		"url": rc.URL, "events": []string{"send_message"},
	}}).json(t)
	if _, ok := again["secret"]; ok {
		t.Fatalf("second set returned the secret: %v", again)
	}
	if ev := again["events"].([]any); len(ev) != 1 || ev[0] != "SEND_MESSAGE" {
		t.Fatalf("events = %v", ev)
	}

	// Only subscribed events are delivered: this inbound is not, the send is.
	s.inbound(inst, "M2", "5511@s.whatsapp.net", "ignored by the subscription")
	s.must(http.StatusCreated, "POST", "/message/sendText/shop", inst.Token, map[string]any{"number": "5511", "text": "out"})
	sent := rc.waitEvents(t, "send.message", 1)[0]
	if sent.VerifyErr != nil || sent.Path != "/" {
		t.Fatalf("send.message: path %q, verify %v", sent.Path, sent.VerifyErr)
	}
	if n := len(rc.events("messages.upsert")); n != 1 {
		t.Fatalf("unsubscribed messages.upsert delivered: %d", n)
	}

	// After rotation, deliveries verify with the new secret only.
	rot := s.must(http.StatusOK, "POST", "/webhook/rotateSecret/shop", inst.Token, nil).json(t)
	newSecret := rot["secret"].(string)
	if newSecret == secret {
		t.Fatal("rotateSecret returned the old secret")
	}
	rc.setSecret(newSecret)
	s.must(http.StatusCreated, "POST", "/message/sendText/shop", inst.Token, map[string]any{"number": "5511", "text": "after rotation"})
	if d := rc.waitEvents(t, "send.message", 2)[1]; d.VerifyErr != nil {
		t.Fatalf("after rotation: %v", d.VerifyErr)
	}
	if strings.Contains(s.logs.String(), secret) || strings.Contains(s.logs.String(), newSecret) || strings.Contains(s.logs.String(), "receiver-secret") {
		t.Fatal("a secret is in the logs")
	}
}

func TestWebhookSetValidation(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	s.must(http.StatusNotFound, "POST", "/webhook/rotateSecret/shop", inst.Token, nil)
	found := s.must(http.StatusOK, "GET", "/webhook/find/shop", inst.Token, nil).json(t)
	if found["enabled"] != false || found["url"] != "" {
		t.Fatalf("unset webhook = %v", found)
	}
	for _, tt := range []struct {
		body any
		want string
	}{
		{map[string]any{}, "webhook: required"},
		{map[string]any{"webhook": map[string]any{"enabled": true}}, "webhook.url: must be an absolute http"},
		{map[string]any{"webhook": map[string]any{"url": "http://user:pw@127.0.0.1"}}, "webhook.url: must not carry credentials"},
		{map[string]any{"webhook": map[string]any{"url": "/relative"}}, "webhook.url"},
		{map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1", "events": []string{"MESSAGES_UPSERTED"}}}, "webhook.events[0]: unknown event"},
		{map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1", "headers": map[string]string{"Bad Name": "x"}}}, "not a valid header name"},
		{map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1", "headers": map[string]string{"X-A": "a\r\nb"}}}, "webhook.headers.X-A: must not contain control characters"},
		{map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1", "headers": map[string]string{"X-A": "a\x00b"}}}, "webhook.headers.X-A: must not contain control characters"},
		{map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1", "headers": map[string]string{"x-a": "a\x7fb"}}}, "webhook.headers.x-a: must not contain control characters"},
		{map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1", "headers": map[string]string{"X-A": strings.Repeat("v", 70_000)}}}, "webhook.headers.X-A: longer than 8192 bytes"},
		{map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1", "headers": map[string]string{"X-A": strings.Repeat("v", 900_000)}}}, "webhook.headers.X-A: longer than 8192 bytes"},
		{map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1", "headers": map[string]string{
			"X-A": strings.Repeat("a", 6000), "X-B": strings.Repeat("b", 6000), "X-C": strings.Repeat("c", 6000)}}}, "webhook.headers: 18009 bytes of names and values, more than 16384 in all"},
		{map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1", "headers": map[string]string{"Connection": "close"}}}, "webhook.headers.Connection: manages the connection"},
		{map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1", "headers": map[string]string{"transfer-encoding": "chunked"}}}, "webhook.headers.transfer-encoding: manages the connection"},
		{map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1", "byEvents": "yes"}}, "webhook.byEvents: must be a boolean"},
		{map[string]any{"webhook": map[string]any{"url": "http://127.0.0.1", "secret": "mine"}}, "secret: unknown field"},
	} {
		r := s.must(http.StatusBadRequest, "POST", "/webhook/set/shop", inst.Token, tt.body)
		if msgs := r.messages(t); !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, tt.want) }) {
			t.Fatalf("%v: messages %q lack %q", tt.body, msgs, tt.want)
		}
	}
	r := s.must(http.StatusBadRequest, "GET", "/webhook/deliveries/shop?status=lost", inst.Token, nil)
	if msgs := r.messages(t); !strings.HasPrefix(msgs[0], "status:") {
		t.Fatalf("messages %q", msgs)
	}
	for _, q := range []string{"limit=0", "limit=201", "limit=x", "cursor=abc"} {
		s.must(http.StatusBadRequest, "GET", "/webhook/deliveries/shop?"+q, inst.Token, nil)
	}
}

// deliveries reads the instance's delivery list.
func deliveries(t *testing.T, s *server, inst instance, query string) []map[string]any {
	t.Helper()
	var body struct {
		Data []map[string]any `json:"data"`
	}
	r := s.must(http.StatusOK, "GET", "/webhook/deliveries/"+inst.Name+query, inst.Token, nil)
	if err := json.Unmarshal(r.Body, &body); err != nil {
		t.Fatal(err)
	}
	return body.Data
}

func TestWebhookRetriesUntilAccepted(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	rc.setRespond(func(n int, _ delivery) (int, http.Header) {
		if n < 2 {
			return http.StatusInternalServerError, nil
		}
		return http.StatusOK, nil
	})
	inst := s.createMessagesHook("shop", rc.URL)
	rc.setSecret(inst.Secret)
	s.inbound(inst, "M1", "5511@s.whatsapp.net", "hi")

	got := rc.waitEvents(t, "messages.upsert", 3)
	if got[0].Header.Get("X-Wagate-Delivery") != got[2].Header.Get("X-Wagate-Delivery") {
		t.Fatal("a retry must keep the delivery id")
	}
	eventually(t, func() bool {
		d := deliveries(t, s, inst, "")
		return len(d) == 1 && d[0]["status"] == "delivered"
	}, "the delivery to be recorded as delivered")
	d := deliveries(t, s, inst, "?status=delivered")[0]
	if d["attempts"] != 3.0 || d["lastStatusCode"] != 200.0 || d["finishedAt"] == nil {
		t.Fatalf("delivery = %v", d)
	}
}

func TestWebhookNoRetryOnClientError(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	rc.setRespond(func(n int, _ delivery) (int, http.Header) {
		if n == 0 {
			return http.StatusBadRequest, nil
		}
		return http.StatusOK, nil
	})
	inst := s.createMessagesHook("shop", rc.URL)
	rc.setSecret(inst.Secret)
	s.inbound(inst, "M1", "5511@s.whatsapp.net", "refused")
	s.inbound(inst, "M2", "5511@s.whatsapp.net", "accepted")

	// The refused event is not retried and does not block the next one.
	got := rc.waitEvents(t, "messages.upsert", 2)
	if got[0].record(t)["key"].(map[string]any)["id"] != "M1" || got[1].record(t)["key"].(map[string]any)["id"] != "M2" {
		t.Fatal("wrong order")
	}
	eventually(t, func() bool { return len(deliveries(t, s, inst, "?status=failed")) == 1 }, "the failed delivery")
	failed := deliveries(t, s, inst, "?status=failed")[0]
	if failed["attempts"] != 1.0 || failed["lastStatusCode"] != 400.0 || !strings.Contains(failed["lastError"].(string), "400") {
		t.Fatalf("failed delivery = %v", failed)
	}
	// Nothing else arrives: the send below is the next delivery.
	s.must(http.StatusCreated, "POST", "/message/sendText/shop", inst.Token, map[string]any{"number": "5511", "text": "x"})
	rc.waitEvents(t, "send.message", 1)
	if n := len(rc.deliveries()); n != 3 {
		t.Fatalf("%d requests, want 3 (no retry of the 400)", n)
	}
}

func TestWebhookHonoursRetryAfter(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	rc.setRespond(func(int, delivery) (int, http.Header) {
		return http.StatusTooManyRequests, http.Header{"Retry-After": {"30"}}
	})
	inst := s.createMessagesHook("shop", rc.URL)
	rc.setSecret(inst.Secret)
	s.inbound(inst, "M1", "5511@s.whatsapp.net", "hi")
	eventually(t, func() bool {
		d := deliveries(t, s, inst, "")
		return len(d) == 1 && d[0]["attempts"] == 1.0
	}, "the first attempt")
	d := deliveries(t, s, inst, "")[0]
	created, _ := time.Parse(time.RFC3339, d["createdAt"].(string))
	next, _ := time.Parse(time.RFC3339, d["nextAttemptAt"].(string))
	if d["status"] != "pending" || d["lastStatusCode"] != 429.0 || next.Sub(created) < 29*time.Second {
		t.Fatalf("after a 429 with Retry-After: 30, delivery = %v", d)
	}
}

func TestWebhookGivesUpAfterMaxAge(t *testing.T) {
	s := startServer(t, "", withConfig(func(c *config.Config) { c.WebhookMaxAge = 300 * time.Millisecond }))
	rc := newReceiver(t)
	rc.setRespond(func(int, delivery) (int, http.Header) { return http.StatusServiceUnavailable, nil })
	inst := s.createMessagesHook("shop", rc.URL)
	rc.setSecret(inst.Secret)
	s.inbound(inst, "M1", "5511@s.whatsapp.net", "hi")
	eventually(t, func() bool { return len(deliveries(t, s, inst, "?status=failed")) == 1 }, "the delivery to be given up")
	d := deliveries(t, s, inst, "")[0]
	if !strings.Contains(d["lastError"].(string), "gave up after") || d["attempts"].(float64) < 1 {
		t.Fatalf("delivery = %v", d)
	}
}

func TestWebhookOrderPerInstance(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	// The first event fails twice: nothing behind it may overtake it.
	rc.setRespond(func(n int, _ delivery) (int, http.Header) {
		if n < 2 {
			return http.StatusBadGateway, nil
		}
		return http.StatusOK, nil
	})
	inst := s.createMessagesHook("shop", rc.URL)
	rc.setSecret(inst.Secret)
	const n = 20
	for i := range n {
		s.inbound(inst, fmt.Sprintf("M%02d", i), "5511@s.whatsapp.net", "hi")
	}
	rc.waitEvents(t, "messages.upsert", n+2)
	var ids []string
	for _, d := range rc.events("messages.upsert")[2:] {
		ids = append(ids, d.record(t)["key"].(map[string]any)["id"].(string))
	}
	if !slices.IsSorted(ids) || len(ids) != n {
		t.Fatalf("delivered out of order: %v", ids)
	}
}

func TestWebhookResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	rc := newReceiver(t)
	rc.setRespond(func(int, delivery) (int, http.Header) { return http.StatusServiceUnavailable, nil })

	first := startServer(t, dir)
	inst := first.createMessagesHook("shop", rc.URL)
	rc.setSecret(inst.Secret)
	first.inbound(inst, "M1", "5511@s.whatsapp.net", "hi")
	rc.waitEvents(t, "messages.upsert", 1)
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}

	rc.setRespond(nil) // the receiver recovers while the gateway is down
	before := len(rc.deliveries())
	second := startServer(t, dir)
	eventually(t, func() bool {
		d := deliveries(t, second, inst, "")
		return len(d) == 1 && d[0]["status"] == "delivered"
	}, "the pending delivery to resume")
	if len(rc.deliveries()) <= before {
		t.Fatal("no delivery after the restart")
	}
	if got := rc.deliveries(); got[len(got)-1].VerifyErr != nil {
		t.Fatal(got[len(got)-1].VerifyErr)
	}
}

func TestDeadReceiverDoesNotDelayOthers(t *testing.T) {
	s := startServer(t, "")
	// Instance A's receiver hangs until the test ends.
	release := make(chan struct{})
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hung.Close()
	defer close(release)
	a := s.createMessagesHook("alpha", hung.URL)
	rc := newReceiver(t)
	b := s.createMessagesHook("beta", rc.URL)
	rc.setSecret(b.Secret)

	for i := range 5 {
		s.inbound(a, "A"+strconv.Itoa(i), "5511@s.whatsapp.net", "hi")
	}
	s.inbound(b, "B1", "5511@s.whatsapp.net", "hi")
	rc.waitEvents(t, "messages.upsert", 1)
	if pending := deliveries(t, s, a, "?status=pending"); len(pending) != 5 {
		t.Fatalf("alpha has %d pending deliveries, want 5 (its receiver hangs)", len(pending))
	}
}

func TestDeliveriesPagination(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	inst := s.createMessagesHook("shop", rc.URL)
	for i := range 7 {
		s.inbound(inst, fmt.Sprintf("M%d", i), "5511@s.whatsapp.net", "hi")
	}
	var seen []string
	query := "?limit=3"
	for pages := 0; ; pages++ {
		var body struct {
			Data       []map[string]any `json:"data"`
			NextCursor *string          `json:"nextCursor"`
		}
		json.Unmarshal(s.must(http.StatusOK, "GET", "/webhook/deliveries/shop"+query, inst.Token, nil).Body, &body)
		for _, d := range body.Data {
			seen = append(seen, d["id"].(string))
		}
		if body.NextCursor == nil {
			break
		}
		if pages > 3 {
			t.Fatal("pagination does not end")
		}
		query = "?limit=3&cursor=" + *body.NextCursor
	}
	if len(seen) != 7 {
		t.Fatalf("paged through %d deliveries, want 7", len(seen))
	}
	slices.Sort(seen)
	if len(slices.Compact(seen)) != 7 {
		t.Fatal("a delivery was listed twice")
	}
}

func TestGracefulShutdownFinishesRequests(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	inst := s.createMessagesHook("shop", rc.URL)
	rc.setSecret(inst.Secret)

	done := make(chan response, 1)
	go func() {
		done <- s.call("POST", "/message/sendText/shop", inst.Token, map[string]any{"number": "5511", "text": "slow", "delay": 1500})
	}()
	time.Sleep(300 * time.Millisecond) // let the request reach its typing delay
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	if r := <-done; r.Status != http.StatusCreated {
		t.Fatalf("in-flight request: status %d: %s", r.Status, r.Body)
	}
	// The event was committed with the message: delivered before the
	// dispatcher stopped, or by the next start.
	startServer(t, s.dir)
	rc.waitEvents(t, "send.message", 1)
}

// A webhook stored by a version that did not check its headers, with one
// net/http refuses to send, fails each delivery at once as misconfigured
// instead of retrying it for a day: the lane moves on, the deliveries say
// why, the metrics count it, and a corrected webhook delivers again.
func TestWebhookMisconfiguredHeaderDoesNotStallTheLane(t *testing.T) {
	dir := t.TempDir()
	rc := newReceiver(t)
	s := startServer(t, dir)
	inst := s.createMessagesHook("shop", rc.URL)
	rc.setSecret(inst.Secret)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, dir)
	w, err := st.Webhook(context.Background(), inst.ID)
	if err == nil {
		w.Headers = map[string]string{"X-Token": "a\x00b"}
		err = st.PutWebhook(context.Background(), w)
	}
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = startServer(t, dir)
	s.inbound(inst, "M1", "5511@s.whatsapp.net", "one")
	s.inbound(inst, "M2", "5511@s.whatsapp.net", "two")
	eventually(t, func() bool { return len(deliveries(t, s, inst, "?status=failed")) == 2 }, "both deliveries failed")
	for _, d := range deliveries(t, s, inst, "?status=failed") {
		if d["attempts"] != 0.0 || !strings.Contains(d["lastError"].(string), "webhook misconfigured: header X-Token: must not contain control characters") {
			t.Fatalf("delivery = %v", d)
		}
	}
	if n := len(deliveries(t, s, inst, "?status=pending")); n != 0 {
		t.Fatalf("%d deliveries still pending", n)
	}
	if _, page := s.scrape(testAPIKey); !strings.Contains(page, `wagate_webhook_deliveries_total{outcome="misconfigured"} 2`) {
		t.Fatalf("metrics lack the misconfigured outcome:\n%s", page)
	}
	if len(rc.deliveries()) != 0 {
		t.Fatalf("receiver got %d requests", len(rc.deliveries()))
	}
	// Setting the webhook again (now validated) delivers what comes next.
	s.must(http.StatusOK, "POST", "/webhook/set/shop", inst.Token, map[string]any{"webhook": map[string]any{"url": rc.URL, "headers": map[string]string{"X-Token": "ab"}}})
	s.inbound(inst, "M3", "5511@s.whatsapp.net", "three")
	if got := rc.waitEvents(t, "messages.upsert", 1)[0]; got.Header.Get("X-Token") != "ab" || got.record(t)["key"].(map[string]any)["id"] != "M3" {
		t.Fatalf("delivery after the fix: %v", got.Header)
	}
}

// createMessagesHook creates an EVOLUTION instance whose webhook takes
// messages.upsert and send.message only: one event per inbound message, whatever else a new
// chat reports (chats.upsert, contacts.upsert).
func (s *server) createMessagesHook(name, hookURL string) instance {
	s.t.Helper()
	m := s.must(http.StatusCreated, "POST", "/instance/create", testAPIKey, map[string]any{
		"instanceName": name, "integration": "EVOLUTION", "number": "num-" + name,
		"webhook": map[string]any{"url": hookURL, "events": []string{"MESSAGES_UPSERT", "SEND_MESSAGE"}},
	}).json(s.t)
	inst := instance{Name: name, Token: m["hash"].(string), Number: "num-" + name}
	inst.ID = m["instance"].(map[string]any)["instanceId"].(string)
	inst.Secret = m["webhook"].(map[string]any)["secret"].(string)
	return inst
}
