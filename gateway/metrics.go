package gateway

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/http/pprof"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// metrics are the gateway's Prometheus metrics, in a registry of its own:
// two gateways in one process (tests) never share a counter, and nothing is
// registered globally.
type metrics struct {
	reg          *prometheus.Registry
	inbound      *prometheus.CounterVec
	replies      *prometheus.CounterVec
	modelSeconds prometheus.Histogram
	modelErrors  *prometheus.CounterVec
	tokens       *prometheus.CounterVec
	deliveries   *prometheus.CounterVec
	deliverySecs prometheus.Histogram
	slotWait     prometheus.Histogram
	pauses       *prometheus.CounterVec
	limits       limitsCollector
	replicaOwned prometheus.Gauge
}

// Outcomes of an inbound message, the outcome label of wagate_inbound_messages_total.
const (
	inboundStored    = "stored"
	inboundDuplicate = "duplicate"
	inboundError     = "error"
)

// newMetrics registers the gateway's metrics; conversations and stats are
// read at each scrape, so the hot path only increments counters.
func newMetrics(conversations func() int, stats func(context.Context) (store.Stats, error),
	owners func(context.Context) (map[string]store.Owner, error)) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		inbound: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_inbound_messages_total",
			Help: "Inbound messages by instance, channel and outcome (stored, duplicate, error).",
		}, []string{"instance", "channel", "outcome"}),
		replies: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_bot_replies_total",
			Help: "Messages sent by bots (each part of a split reply counts), by instance.",
		}, []string{"instance"}),
		modelSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wagate_model_call_seconds",
			Help:    "Duration of model request attempts, successful or not.",
			Buckets: []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
		}),
		modelErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_model_call_errors_total",
			Help: "Failed model request attempts by the provider's HTTP status (0: no answer, e.g. timeout or refused connection).",
		}, []string{"status"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_model_tokens_total",
			Help: "Tokens the provider reported, by kind (prompt, completion).",
		}, []string{"kind"}),
		deliveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wagate_webhook_deliveries_total",
			Help: "Webhook delivery attempts by outcome (delivered, retry, failed, misconfigured: not sendable as configured).",
		}, []string{"outcome"}),
		deliverySecs: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "wagate_webhook_delivery_seconds",
			Help:    "How long webhook receivers took to answer a delivery attempt.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}),
		replicaOwned: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "wagate_replica_instances_owned",
			Help: "Instances this replica holds the lease of (PostgreSQL replicas; 0 on SQLite, where the one process owns every instance).",
		}),
	}
	m.slotWait = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "wagate_model_slot_wait_seconds",
		Help:    "How long model calls waited for their credential's slot and rate-limit pacing before starting.",
		Buckets: []float64{.001, .005, .025, .1, .25, .5, 1, 2.5, 5, 10, 30, 60},
	})
	m.pauses = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "wagate_model_rate_limit_pauses_total",
		Help: "Times a credential stopped starting model calls for its provider: reason retry_after (429 or 503 with Retry-After), requests or tokens (remaining budget spent before its reset).",
	}, []string{"credential", "reason"})
	m.reg.MustRegister(m.inbound, m.replies, m.modelSeconds, m.modelErrors, m.tokens, m.deliveries, m.deliverySecs,
		m.slotWait, m.pauses, &m.limits, m.replicaOwned,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "wagate_live_conversations",
			Help: "Conversations with a bot engine worker now: messages being decided on or waiting in a debounce window.",
		}, func() float64 { return float64(conversations()) }),
		&statsCollector{stats: stats},
		&ownerCollector{owners: owners},
	)
	return m
}

// ownerCollector reports which replica owns each instance, read from the
// database at each scrape: every replica reports the whole group.
type ownerCollector struct {
	owners func(context.Context) (map[string]store.Owner, error)
}

var ownerDesc = prometheus.NewDesc("wagate_instance_owner",
	"1 for the replica owning each instance (PostgreSQL replicas; none on SQLite).", []string{"instance", "replica"}, nil)

func (c *ownerCollector) Describe(ch chan<- *prometheus.Desc) { ch <- ownerDesc }

func (c *ownerCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	owners, err := c.owners(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(ownerDesc, err)
		return
	}
	for _, o := range owners {
		ch <- prometheus.MustNewConstMetric(ownerDesc, prometheus.GaugeValue, 1, o.InstanceName, o.Replica)
	}
}

func (m *metrics) modelCall(d time.Duration, status int, err error) {
	m.modelSeconds.Observe(d.Seconds())
	if err != nil {
		m.modelErrors.WithLabelValues(strconv.Itoa(status)).Inc()
	}
}

// limitObserver feeds the model-call limits' waits and pauses to metrics;
// their gauges are read from the limits at each scrape (see limitsCollector).
func (m *metrics) limitObserver() bots.LimitObserver {
	return bots.LimitObserver{
		Waited: func(_ string, d time.Duration) { m.slotWait.Observe(d.Seconds()) },
		Paused: func(cred, reason string) { m.pauses.WithLabelValues(cred, reason).Inc() },
	}
}

func (m *metrics) webhookAttempt(outcome string, d time.Duration) {
	m.deliveries.WithLabelValues(outcome).Inc()
	if outcome != webhook.AttemptMisconfigured { // nothing was sent: no receiver's time to measure
		m.deliverySecs.Observe(d.Seconds())
	}
}

func (m *metrics) reply(inst *store.Instance, u bots.Usage) {
	m.replies.WithLabelValues(inst.Name).Inc()
	if u.PromptTokens > 0 {
		m.tokens.WithLabelValues("prompt").Add(float64(u.PromptTokens))
	}
	if u.CompletionTokens > 0 {
		m.tokens.WithLabelValues("completion").Add(float64(u.CompletionTokens))
	}
}

// limitsCollector reports the model-call limits at each scrape: calls
// waiting to start, and calls in flight by credential id (never the key;
// the label set is bounded by the credentials that exist).
type limitsCollector struct {
	limits *bots.Limits // set once the clients exist; nil reports nothing
}

var (
	waitingDesc  = prometheus.NewDesc("wagate_model_calls_waiting", "Model calls waiting for a slot of their credential or for its provider's rate limit.", nil, nil)
	inFlightDesc = prometheus.NewDesc("wagate_model_calls_in_flight", "Model calls in flight by credential id.", []string{"credential"}, nil)
)

func (c *limitsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- waitingDesc
	ch <- inFlightDesc
}

func (c *limitsCollector) Collect(ch chan<- prometheus.Metric) {
	if c.limits == nil {
		return
	}
	st := c.limits.Stats()
	ch <- prometheus.MustNewConstMetric(waitingDesc, prometheus.GaugeValue, float64(st.Waiting))
	for cred, n := range st.InFlight {
		ch <- prometheus.MustNewConstMetric(inFlightDesc, prometheus.GaugeValue, float64(n), cred)
	}
}

// statsCollector reports the database's counts at each scrape.
type statsCollector struct {
	stats func(context.Context) (store.Stats, error)
}

var (
	backlogDesc  = prometheus.NewDesc("wagate_webhook_backlog", "Webhook deliveries pending in the outbox.", nil, nil)
	pendingDesc  = prometheus.NewDesc("wagate_pending_inbound_messages", "Inbound messages the bot engine has not decided on yet (debounce buffers included).", nil, nil)
	sessionsDesc = prometheus.NewDesc("wagate_live_sessions", "Bot sessions opened or paused.", nil, nil)
)

func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- backlogDesc
	ch <- pendingDesc
	ch <- sessionsDesc
}

func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := c.stats(ctx)
	if err != nil {
		for _, d := range []*prometheus.Desc{backlogDesc, pendingDesc, sessionsDesc} {
			ch <- prometheus.NewInvalidMetric(d, err)
		}
		return
	}
	ch <- prometheus.MustNewConstMetric(backlogDesc, prometheus.GaugeValue, float64(st.PendingEvents))
	ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(st.PendingMessages))
	ch <- prometheus.MustNewConstMetric(sessionsDesc, prometheus.GaugeValue, float64(st.LiveSessions))
}

// metricsRoutes adds GET /metrics (open, or behind WAGATE_METRICS_TOKEN)
// and /debug/pprof (global key only: profiles show memory contents and
// cost CPU to take).
func (g *Gateway) metricsRoutes(e *echo.Echo, auth func(method, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc)) {
	scrape := echo.WrapHandler(promhttp.HandlerFor(g.metrics.reg, promhttp.HandlerOpts{}))
	token := digest(g.cfg.MetricsToken)
	e.GET("/metrics", func(c echo.Context) error {
		if g.cfg.MetricsToken != "" {
			key := requestKey(c)
			d := digest(key)
			if key == "" || (subtle.ConstantTimeCompare(d[:], token[:]) != 1 && subtle.ConstantTimeCompare(d[:], g.apiKey[:]) != 1) {
				return wagate.Errorf(wagate.EUNAUTHORIZED, "metrics: send Authorization: Bearer <WAGATE_METRICS_TOKEN>")
			}
		}
		return scrape(c)
	})
	index := echo.WrapHandler(http.HandlerFunc(pprof.Index))
	for path, h := range map[string]echo.HandlerFunc{
		"/debug/pprof/":        index,
		"/debug/pprof/:name":   index, // heap, goroutine, allocs, block, mutex, threadcreate
		"/debug/pprof/cmdline": echo.WrapHandler(http.HandlerFunc(pprof.Cmdline)),
		"/debug/pprof/profile": echo.WrapHandler(http.HandlerFunc(pprof.Profile)),
		"/debug/pprof/symbol":  echo.WrapHandler(http.HandlerFunc(pprof.Symbol)),
		"/debug/pprof/trace":   echo.WrapHandler(http.HandlerFunc(pprof.Trace)),
	} {
		auth(http.MethodGet, path, h, globalOnly)
	}
}
