package bots

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestParseReset(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1s", time.Second, true},
		{"6m0s", 6 * time.Minute, true},
		{"20ms", 20 * time.Millisecond, true},
		{"1h2m3.5s", time.Hour + 2*time.Minute + 3500*time.Millisecond, true},
		{" 0s ", 0, true},
		{"0.5", 500 * time.Millisecond, true}, // bare seconds
		{"", 0, false},
		{"soon", 0, false},
		{"-1s", 0, false},
		{"1x", 0, false},
	} {
		got, ok := parseReset(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseReset(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name string
		h    map[string]string
		want time.Duration
	}{
		{"none", nil, 0},
		{"seconds", map[string]string{"Retry-After": "2"}, 2 * time.Second},
		{"milliseconds first", map[string]string{"Retry-After": "2", "Retry-After-Ms": "1500"}, 1500 * time.Millisecond},
		{"http date", map[string]string{"Retry-After": now.Add(7 * time.Second).Format(http.TimeFormat)}, 7 * time.Second},
		{"date passed", map[string]string{"Retry-After": now.Add(-time.Hour).Format(http.TimeFormat)}, 0},
		{"capped", map[string]string{"Retry-After": "3600"}, maxPause},
		{"garbage", map[string]string{"Retry-After": "later", "Retry-After-Ms": "x"}, 0},
	} {
		h := http.Header{}
		for k, v := range tc.h {
			h.Set(k, v)
		}
		if got := retryAfter(h, now); got != tc.want {
			t.Errorf("%s: retryAfter = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func rateHeaders(reqLeft, reqReset, tokLeft, tokReset string) http.Header {
	h := http.Header{}
	for k, v := range map[string]string{
		"x-ratelimit-remaining-requests": reqLeft, "x-ratelimit-reset-requests": reqReset,
		"x-ratelimit-remaining-tokens": tokLeft, "x-ratelimit-reset-tokens": tokReset,
	} {
		if v != "" {
			h.Set(k, v)
		}
	}
	return h
}

// TestReserve follows the start times the limits hand out as the provider's
// headers describe its budgets.
func TestReserve(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	type call struct {
		at     time.Duration // after now
		cost   float64
		want   time.Duration
		paused []string
	}
	for _, tc := range []struct {
		name   string
		status int
		h      http.Header
		calls  []call
	}{
		{"no headers: no wait", 200, nil, []call{{0, 1, 0, nil}, {0, 1, 0, nil}}},
		{"garbage headers are ignored", 200, rateHeaders("many", "1s", "10", "soon"), []call{{0, 1, 0, nil}}},
		{"large budget: negligible spacing", 200, rateHeaders("9999", "6ms", "", ""),
			[]call{{0, 1, 0, nil}, {0, 1, 6 * time.Millisecond / 9999, nil}}},
		{"low budget is spread until the reset", 200, rateHeaders("4", "4s", "", ""),
			[]call{{0, 1, 0, nil}, {0, 1, time.Second, nil}, {0, 1, 2 * time.Second, nil}}},
		{"spent: wait for the reset, reported once", 200, rateHeaders("0", "2s", "", ""),
			[]call{{0, 1, 2 * time.Second, []string{"requests"}}, {0, 1, 2 * time.Second, nil}}},
		{"reset passed: no wait", 200, rateHeaders("0", "2s", "", ""),
			[]call{{3 * time.Second, 1, 3 * time.Second, nil}}},
		{"tokens spent by a large request", 200, rateHeaders("100", "1s", "100", "6m0s"),
			[]call{{0, 50, 0, nil}, {0, 200, maxPause, []string{"tokens"}}}},
		{"known limit: what remains, then one call per refill", 200,
			http.Header{"X-Ratelimit-Limit-Requests": {"60"}, "X-Ratelimit-Remaining-Requests": {"2"}, "X-Ratelimit-Reset-Requests": {"58s"}},
			[]call{{0, 1, 0, nil}, {0, 1, 0, nil}, {0, 1, time.Second, []string{"requests"}}, {0, 1, 2 * time.Second, nil},
				{5 * time.Second, 1, 5 * time.Second, nil}}},
		{"known limit, full: refills at the limit per minute", 200,
			http.Header{"X-Ratelimit-Limit-Tokens": {"600"}, "X-Ratelimit-Remaining-Tokens": {"600"}, "X-Ratelimit-Reset-Tokens": {"0s"}},
			[]call{{0, 500, 0, nil}, {0, 200, 10 * time.Second, []string{"tokens"}}, {0, 900, 70 * time.Second, nil}}},
		{"retry-after pauses every call", 429, http.Header{"Retry-After-Ms": {"1500"}},
			[]call{{0, 1, 1500 * time.Millisecond, nil}, {time.Second, 1, 1500 * time.Millisecond, nil}, {2 * time.Second, 1, 2 * time.Second, nil}}},
		{"retry-after of a success is ignored", 200, http.Header{"Retry-After": {"5"}},
			[]call{{0, 1, 0, nil}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var paused []string
			l := NewLimits(8, LimitObserver{Paused: func(cred, reason string) {
				if cred != "c" {
					t.Errorf("paused credential %q", cred)
				}
				paused = append(paused, reason)
			}})
			l.creds["c"] = &credLimit{slots: make(chan struct{}, 8)}
			l.observe("c", mark{}, tc.status, tc.h, now)
			if tc.status == 429 && (len(paused) != 1 || paused[0] != "retry_after") {
				t.Errorf("429 reported pauses %v", paused)
			}
			paused = nil
			for i, c := range tc.calls {
				at, p := l.creds["c"].reserve(now.Add(c.at), c.cost)
				if got := at.Sub(now); got != c.want {
					t.Errorf("call %d starts after %v, want %v", i, got, c.want)
				}
				if len(p) != len(c.paused) || (len(p) > 0 && p[0] != c.paused[0]) {
					t.Errorf("call %d paused %v, want %v", i, p, c.paused)
				}
			}
		})
	}
}

// TestObserveDiscountsLaterCalls answers the first of three calls last: the
// provider's count predates the other two, which the limits subtract.
func TestObserveDiscountsLaterCalls(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	l := NewLimits(8, LimitObserver{})
	c := &credLimit{slots: make(chan struct{}, 8)}
	l.creds["c"] = c
	var marks []mark
	for range 3 {
		c.reserve(now, 1)
		marks = append(marks, mark{c.req.started, c.tok.started})
	}
	l.observe("c", marks[0], 200, http.Header{"X-Ratelimit-Limit-Requests": {"60"},
		"X-Ratelimit-Remaining-Requests": {"2"}, "X-Ratelimit-Reset-Requests": {"58s"}}, now)
	if at, _ := c.reserve(now, 1); at.Sub(now) != time.Second {
		t.Fatalf("next call after %v, want a refill's 1s: the 2 remaining went to the calls started since", at.Sub(now))
	}
}

func TestObserveUnknownCredential(t *testing.T) {
	l := NewLimits(1, LimitObserver{})
	l.observe("gone", mark{}, 429, http.Header{"Retry-After": {"5"}}, time.Now())
	if len(l.creds) != 0 {
		t.Fatal("an answer for a forgotten credential created state")
	}
}

func TestAcquireBoundPerCredential(t *testing.T) {
	l := NewLimits(2, LimitObserver{})
	ctx := t.Context()
	r1, _, err := l.acquire(ctx, "a", 1)
	must(t, err)
	r2, _, err := l.acquire(ctx, "a", 1)
	must(t, err)

	// Another credential is not held back by a's full slots.
	rb, _, err := l.acquire(ctx, "b", 1)
	must(t, err)
	if st := l.Stats(); st.InFlight["a"] != 2 || st.InFlight["b"] != 1 || st.Waiting != 0 {
		t.Fatalf("stats %+v", st)
	}
	rb()

	// A third call of a waits, visible in the stats, until a slot frees.
	got := make(chan error, 1)
	go func() {
		r3, _, err := l.acquire(ctx, "a", 1)
		if err == nil {
			r3()
		}
		got <- err
	}()
	for l.Stats().Waiting != 1 {
		time.Sleep(time.Millisecond)
	}
	r1()
	r1() // releasing twice frees one slot only
	must(t, <-got)
	r2()
	if st := l.Stats(); st.Waiting != 0 || len(st.InFlight) != 0 || len(l.creds) != 0 {
		t.Fatalf("idle limits kept state: %+v, %d credentials", st, len(l.creds))
	}
}

func TestAcquireFailsLikeATimeout(t *testing.T) {
	l := NewLimits(1, LimitObserver{})
	release, _, err := l.acquire(t.Context(), "a", 1)
	must(t, err)

	// No slot before the deadline.
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := l.acquire(ctx, "a", 1); !errors.Is(err, context.DeadlineExceeded) || !errors.As(err, new(errNoSlot)) {
		t.Fatalf("full credential: %v", err)
	}
	release()

	// A pause that ends after the deadline fails at once, without sleeping
	// through the minute.
	release, _, err = l.acquire(t.Context(), "a", 1)
	must(t, err)
	l.observe("a", mark{}, 429, http.Header{"Retry-After": {"60"}}, time.Now())
	release()
	ctx, cancel = context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	if _, _, err := l.acquire(ctx, "a", 1); !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("paused credential: %v (context %v)", err, ctx.Err())
	}

	// Calls that gave up book nothing: with a budget refilling one request
	// a second and none left, the next call's start stays one second out
	// however many calls gave up before it.
	l3 := NewLimits(8, LimitObserver{})
	r3, _, err := l3.acquire(t.Context(), "a", 1)
	must(t, err)
	l3.observe("a", mark{req: 1}, 200, http.Header{"X-Ratelimit-Limit-Requests": {"60"},
		"X-Ratelimit-Remaining-Requests": {"0"}, "X-Ratelimit-Reset-Requests": {"60s"}}, time.Now())
	r3()
	for range 5 {
		short, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		if _, _, err := l3.acquire(short, "a", 1); !errors.As(err, new(errNoSlot)) {
			t.Fatalf("short deadline: %v", err)
		}
		cancel()
	}
	if at, _ := l3.creds["a"].reserve(time.Now(), 1); time.Until(at) > time.Second {
		t.Fatalf("next start %v out: calls that gave up were booked", time.Until(at))
	}
	// A cancelled call is not a timeout.
	cctx, ccancel := context.WithCancel(t.Context())
	ccancel()
	l2 := NewLimits(1, LimitObserver{})
	r, _, err := l2.acquire(t.Context(), "a", 1)
	must(t, err)
	defer r()
	if _, _, err := l2.acquire(cctx, "a", 1); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if st := l.Stats(); st.Waiting != 0 {
		t.Fatalf("%d still waiting", st.Waiting)
	}
}

// TestTransportHoldsTheSlotWhileStreaming checks that a call stays in flight
// from its request until its answer is read to the end or closed (a
// streamed answer keeps its slot while it streams), and that the
// provider's headers reach the limits.
func TestTransportHoldsTheSlotWhileStreaming(t *testing.T) {
	more := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		spent := r.URL.Query().Has("spent")
		if spent {
			w.Header().Set("X-Ratelimit-Remaining-Requests", "0")
			w.Header().Set("X-Ratelimit-Reset-Requests", "1m")
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		if !spent {
			<-r.Context().Done() // the client closes the stream early
			return
		}
		<-more
		_, _ = io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer srv.Close()
	var paused []string
	l := NewLimits(4, LimitObserver{Paused: func(_, reason string) { paused = append(paused, reason) }})
	client := &http.Client{Transport: limitTransport{base: http.DefaultTransport, limits: l, cred: "c"}}
	inFlight := func() int { return l.Stats().InFlight["c"] }

	// Closed before the end.
	resp, err := client.Get(srv.URL)
	must(t, err)
	if n := inFlight(); n != 1 {
		t.Fatalf("%d in flight while the answer streams", n)
	}
	resp.Body.Close()
	if n := inFlight(); n != 0 {
		t.Fatalf("%d in flight after the stream was closed", n)
	}

	// Read to the end: the slot is free before Close.
	resp, err = client.Get(srv.URL + "?spent")
	must(t, err)
	if n := inFlight(); n != 1 {
		t.Fatalf("%d in flight while the answer streams", n)
	}
	more <- struct{}{}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	if n := inFlight(); n != 0 {
		t.Fatalf("%d in flight after the answer was read", n)
	}
	resp.Body.Close()

	// That answer said no request remains for a minute: the next call
	// cannot start before its deadline and fails at once as a timeout.
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL, nil)
	must(t, err)
	if _, err := client.Do(req); !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		t.Fatalf("spent budget: %v", err)
	}
	if len(paused) != 1 || paused[0] != "requests" {
		t.Fatalf("pauses %v", paused)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
