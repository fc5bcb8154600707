package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/fakeai"
)

// scrape returns the /metrics page, sent with an Authorization bearer token
// when token is set.
func (s *server) scrape(token string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest("GET", s.URL+"/metrics", nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestMetrics follows one answered message and one failed model call
// through the metrics an operator would graph.
func TestMetrics(t *testing.T) {
	e := newBotEnv(t)
	e.bot(nil)
	e.say("m1", "5511@s.whatsapp.net", "hello", nil)
	e.say("m1", "5511@s.whatsapp.net", "hello", nil) // redelivered
	e.replies(1)
	e.ai.Enqueue(fakeai.Fail(http.StatusBadRequest, "bad")) // not retried
	e.say("m2", "5511@s.whatsapp.net", "again", nil)
	e.waitState("5511@s.whatsapp.net", "m2")

	var page string
	eventually(t, func() bool {
		_, page = e.s.scrape("")
		return strings.Contains(page, `wagate_webhook_deliveries_total{outcome="delivered"}`)
	}, "webhook deliveries counted")
	for _, want := range []string{
		`wagate_inbound_messages_total{channel="EVOLUTION",instance="shop",outcome="stored"} 2`,
		`wagate_inbound_messages_total{channel="EVOLUTION",instance="shop",outcome="duplicate"} 1`,
		`wagate_bot_replies_total{instance="shop"} 1`,
		`wagate_model_call_seconds_count 2`,
		`wagate_model_call_errors_total{status="400"} 1`,
		`wagate_model_tokens_total{kind="completion"}`,
		`wagate_model_tokens_total{kind="prompt"}`,
		"wagate_model_calls_waiting 0",
		`wagate_model_slot_wait_seconds_count 2`,
		`wagate_webhook_delivery_seconds_bucket`,
		"wagate_webhook_backlog ",
		"wagate_pending_inbound_messages 0",
		"wagate_live_sessions 1",
		"wagate_live_conversations ",
		"go_goroutines ",
		"go_memstats_heap_alloc_bytes ",
		"process_resident_memory_bytes ",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestMetricsToken(t *testing.T) {
	s := startServer(t, "", withConfig(func(c *config.Config) { c.MetricsToken = "scrape-token" }))
	for _, tc := range []struct {
		token string
		want  int
	}{
		{"", http.StatusUnauthorized},
		{"wrong", http.StatusUnauthorized},
		{"scrape-token", http.StatusOK},
		{testAPIKey, http.StatusOK},
	} {
		if got, _ := s.scrape(tc.token); got != tc.want {
			t.Errorf("token %q: HTTP %d, want %d", tc.token, got, tc.want)
		}
	}
}

func TestPprofNeedsGlobalKey(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	s.must(http.StatusUnauthorized, "GET", "/debug/pprof/", "", nil)
	s.must(http.StatusForbidden, "GET", "/debug/pprof/heap", inst.Token, nil)
	s.must(http.StatusOK, "GET", "/debug/pprof/", testAPIKey, nil)
	s.must(http.StatusOK, "GET", "/debug/pprof/goroutine?debug=1", testAPIKey, nil)
}

// TestModelLimitMetrics holds the credential's only slot and watches the
// turn behind it wait in /metrics, then a 429 pause being counted.
func TestModelLimitMetrics(t *testing.T) {
	e := newBotEnv(t, withConfig(func(c *config.Config) { c.MaxConcurrentModelCalls = 1 }))
	e.bot(nil)
	release := make(chan struct{})
	e.ai.Enqueue(fakeai.Reply("held").Until(release))
	e.say("m1", "5511@s.whatsapp.net", "first", nil)
	if _, err := e.ai.AwaitReceived(t.Context(), fakeai.EndpointChat, 1); err != nil {
		t.Fatal(err)
	}
	e.say("m2", "5522@s.whatsapp.net", "second", nil)
	inFlight := `wagate_model_calls_in_flight{credential="` + e.creds + `"} 1`
	var page string
	eventually(t, func() bool {
		_, page = e.s.scrape("")
		return strings.Contains(page, "wagate_model_calls_waiting 1")
	}, "a turn waiting for the model slot")
	if !strings.Contains(page, inFlight) {
		t.Errorf("/metrics lacks %q while the call is held", inFlight)
	}
	if strings.Contains(page, testProviderKey) {
		t.Error("/metrics shows the provider key")
	}
	close(release)
	e.replies(2)
	eventually(t, func() bool {
		_, page = e.s.scrape("")
		return strings.Contains(page, "wagate_model_calls_waiting 0") && !strings.Contains(page, "wagate_model_calls_in_flight{")
	}, "no call waiting or in flight")

	e.ai.Enqueue(fakeai.RateLimited(10 * time.Millisecond))
	e.say("m3", "5511@s.whatsapp.net", "third", nil)
	e.replies(3)
	_, page = e.s.scrape("")
	for _, want := range []string{
		`wagate_model_rate_limit_pauses_total{credential="` + e.creds + `",reason="retry_after"} 1`,
		`wagate_model_slot_wait_seconds_count 4`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}
