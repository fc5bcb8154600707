package bots

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Limits bounds the model calls in flight per credential and paces them by
// what the provider says of its own limits. Providers limit each key, not
// the gateway: one tenant's slow model or exhausted quota must not hold
// back another's, so every bound and every pause here belongs to one
// credential (its id, the same one its client is built for).
//
// A call waits (it is never rejected) until its credential has a free slot,
// its provider's Retry-After has passed and, when the provider's
// x-ratelimit-remaining-* headers say the budget runs low, its paced start
// time has come. It never waits past its context's deadline: a call that
// could not start in time fails at once, as a model call timing out does.
type Limits struct {
	max int
	obs LimitObserver

	mu    sync.Mutex
	creds map[string]*credLimit
}

// LimitObserver is told what the limits do, for metrics. Either func may be
// nil. They are called outside the limiter's lock.
type LimitObserver struct {
	// Waited is how long a call waited before it started (or gave up).
	Waited func(cred string, d time.Duration)
	// Paused is called when a credential stops starting calls for a while:
	// reason "retry_after" (the provider answered 429 or 503 with a
	// Retry-After), "requests" or "tokens" (its remaining budget ran out
	// before its reset).
	Paused func(cred, reason string)
}

// LimitStats is a snapshot of the limits.
type LimitStats struct {
	Waiting  int            // calls waiting to start, all credentials
	InFlight map[string]int // calls in flight by credential id, busy credentials only
}

// NewLimits bounds each credential to perCred calls in flight.
func NewLimits(perCred int, obs LimitObserver) *Limits {
	return &Limits{max: max(perCred, 1), obs: obs, creds: map[string]*credLimit{}}
}

// credLimit is one credential's state; guarded by Limits.mu.
type credLimit struct {
	slots    chan struct{}
	waiting  int
	inFlight int

	pauseUntil time.Time // Retry-After
	next       time.Time // paced start of the next call
	req, tok   budget
}

// budget is what the provider last said remains of one of its limits
// (requests or tokens) until resetAt, minus what was started since.
type budget struct {
	left    float64
	resetAt time.Time // zero: unknown
	counted time.Time // the resetAt whose exhaustion was reported
}

// errNoSlot fails a call that could not start before its deadline; it is
// a deadline error so that it is retried and reported as a timeout.
type errNoSlot struct{ cred string }

func (e errNoSlot) Error() string {
	return fmt.Sprintf("model call of credential %s could not start before its deadline", e.cred)
}
func (errNoSlot) Unwrap() error { return context.DeadlineExceeded }

// Stats returns how many calls wait and which are in flight.
func (l *Limits) Stats() LimitStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	st := LimitStats{InFlight: map[string]int{}}
	for id, c := range l.creds {
		st.Waiting += c.waiting
		if c.inFlight > 0 {
			st.InFlight[id] = c.inFlight
		}
	}
	return st
}

// acquire waits for cred's turn to start a call costing cost tokens and
// returns the function that ends the call.
func (l *Limits) acquire(ctx context.Context, cred string, cost float64) (release func(), err error) {
	start := time.Now()
	l.mu.Lock()
	c := l.creds[cred]
	if c == nil {
		c = &credLimit{slots: make(chan struct{}, l.max)}
		l.creds[cred] = c
	}
	c.waiting++
	at, paused := c.reserve(start, cost)
	l.mu.Unlock()
	for _, reason := range paused {
		if l.obs.Paused != nil {
			l.obs.Paused(cred, reason)
		}
	}

	err = waitSlot(ctx, c.slots, at, cred)
	l.mu.Lock()
	c.waiting--
	if err == nil {
		c.inFlight++
	} else {
		l.evict(cred, c, time.Now())
	}
	l.mu.Unlock()
	if l.obs.Waited != nil {
		l.obs.Waited(cred, time.Since(start))
	}
	if err != nil {
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-c.slots
			l.mu.Lock()
			c.inFlight--
			l.evict(cred, c, time.Now())
			l.mu.Unlock()
		})
	}, nil
}

// waitSlot sleeps until at, then takes a slot; both within ctx.
func waitSlot(ctx context.Context, slots chan struct{}, at time.Time, cred string) error {
	if d := time.Until(at); d > 0 {
		if dl, ok := ctx.Deadline(); ok && at.After(dl) {
			return errNoSlot{cred}
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	select {
	case slots <- struct{}{}:
		return nil
	default:
	}
	select {
	case slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		if ctx.Err() == context.DeadlineExceeded {
			return errNoSlot{cred}
		}
		return ctx.Err()
	}
}

// evict forgets an idle credential whose provider state has expired, so
// deleted credentials do not accumulate.
func (l *Limits) evict(cred string, c *credLimit, now time.Time) {
	if c.waiting > 0 || c.inFlight > 0 {
		return
	}
	for _, t := range []time.Time{c.pauseUntil, c.next, c.req.resetAt, c.tok.resetAt} {
		if now.Before(t) {
			return
		}
	}
	delete(l.creds, cred)
}

// reserve picks the start time of a call made at now costing cost tokens,
// and books it: the budgets shrink and the next call is paced after it.
// Pacing spreads what remains of a budget evenly until its reset, so a
// credential slows down as it nears the provider's limit instead of
// running into 429s; with a large budget the spacing is negligible.
func (c *credLimit) reserve(now time.Time, cost float64) (at time.Time, paused []string) {
	at = now
	if c.pauseUntil.After(at) {
		at = c.pauseUntil
	}
	if c.next.After(at) {
		at = c.next
	}
	next := at
	for _, b := range []struct {
		b      *budget
		cost   float64
		reason string
	}{{&c.req, 1, "requests"}, {&c.tok, cost, "tokens"}} {
		if b.b.resetAt.IsZero() || !at.Before(b.b.resetAt) {
			continue // unknown, or reset by the time the call starts
		}
		if b.b.left < b.cost {
			// Spent: nothing starts before the reset, whose budget is
			// unknown until the provider answers again.
			if !b.b.counted.Equal(b.b.resetAt) {
				b.b.counted = b.b.resetAt
				paused = append(paused, b.reason)
			}
			at = b.b.resetAt
			next = at
			continue
		}
		gap := time.Duration(float64(b.b.resetAt.Sub(at)) * b.cost / b.b.left)
		b.b.left -= b.cost
		next = maxTime(next, at.Add(gap))
	}
	c.next = maxTime(c.next, next)
	return at, paused
}

// observe takes in what a provider's response says of its limits.
func (l *Limits) observe(cred string, status int, h http.Header, now time.Time) {
	req, reqOK := remaining(h, "requests", now)
	tok, tokOK := remaining(h, "tokens", now)
	var pause time.Duration
	if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
		pause = retryAfter(h, now)
	}
	if !reqOK && !tokOK && pause <= 0 {
		return
	}
	l.mu.Lock()
	c := l.creds[cred]
	if c == nil {
		l.mu.Unlock()
		return
	}
	if reqOK {
		req.counted = c.req.counted
		c.req = req
	}
	if tokOK {
		tok.counted = c.tok.counted
		c.tok = tok
	}
	newPause := pause > 0 && now.Add(pause).After(c.pauseUntil)
	if newPause {
		c.pauseUntil = now.Add(pause)
	}
	l.mu.Unlock()
	if newPause && l.obs.Paused != nil {
		l.obs.Paused(cred, "retry_after")
	}
}

// remaining reads x-ratelimit-remaining-<kind> and x-ratelimit-reset-<kind>.
func remaining(h http.Header, kind string, now time.Time) (budget, bool) {
	n, err := strconv.ParseFloat(strings.TrimSpace(h.Get("X-Ratelimit-Remaining-"+kind)), 64)
	if err != nil || n < 0 {
		return budget{}, false
	}
	d, ok := parseReset(h.Get("X-Ratelimit-Reset-" + kind))
	if !ok {
		return budget{}, false
	}
	return budget{left: n, resetAt: now.Add(min(d, maxPause))}, true
}

// maxPause caps how long a provider can stop a credential with one answer.
const maxPause = time.Minute

// parseReset reads OpenAI's reset durations ("1s", "6m0s", "20ms",
// "1h2m3.5s"). A bare number is taken as seconds, as
// some compatible providers send it.
func parseReset(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		s, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil {
			return 0, false
		}
		d = time.Duration(s * float64(time.Second))
	}
	if d < 0 {
		return 0, false
	}
	return d, true
}

// retryAfter reads retry-after-ms, else Retry-After (seconds or an HTTP
// date), capped at maxPause; 0 when absent or unreadable.
func retryAfter(h http.Header, now time.Time) time.Duration {
	var d time.Duration
	if ms, err := strconv.ParseFloat(strings.TrimSpace(h.Get("Retry-After-Ms")), 64); err == nil && ms > 0 {
		d = time.Duration(ms * float64(time.Millisecond))
	} else if v := strings.TrimSpace(h.Get("Retry-After")); v != "" {
		if s, err := strconv.ParseFloat(v, 64); err == nil && s > 0 {
			d = time.Duration(s * float64(time.Second))
		} else if t, err := http.ParseTime(v); err == nil {
			d = t.Sub(now)
		}
	}
	return max(min(d, maxPause), 0)
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// limitTransport runs each request of one credential's client within that
// credential's limits, reads the provider's rate-limit headers, and passes
// a Retry-After to the engine's retry loop. A request holds its slot until
// its body is closed or read to the end, so a streamed answer counts as in
// flight while it streams.
type limitTransport struct {
	base   http.RoundTripper
	limits *Limits // nil: unbounded
	cred   string
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	release := func() {}
	if t.limits != nil {
		var err error
		if release, err = t.limits.acquire(req.Context(), t.cred, tokenCost(req)); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	resp, err := t.base.RoundTrip(req)
	if err != nil {
		release()
		return nil, err
	}
	now := time.Now()
	if t.limits != nil {
		t.limits.observe(t.cred, resp.StatusCode, resp.Header, now)
	}
	if h, ok := req.Context().Value(retryHintKey{}).(*retryHint); ok && resp.StatusCode >= 400 {
		h.after = retryAfter(resp.Header, now)
	}
	resp.Body = &releaseBody{ReadCloser: resp.Body, release: release}
	return resp, nil
}

// tokenCost estimates the tokens a request counts against the provider's
// token limit: about four bytes of JSON per token. Uploads (audio) are
// not counted in tokens.
func tokenCost(req *http.Request) float64 {
	if req.ContentLength <= 0 || !strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
		return 1
	}
	return float64(req.ContentLength)/4 + 1
}

// releaseBody ends the call when the answer has been read or abandoned.
type releaseBody struct {
	io.ReadCloser
	release func()
}

func (b *releaseBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.release()
	}
	return n, err
}

func (b *releaseBody) Close() error {
	err := b.ReadCloser.Close()
	b.release()
	return err
}
