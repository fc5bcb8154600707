package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

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
