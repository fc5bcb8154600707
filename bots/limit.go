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
// x-ratelimit-* headers say the budget is spent, the budget has refilled
// enough for it. It never waits past its context's deadline: a call that
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
	next       time.Time // paced start of the next call (budgets without a known limit)
	req, tok   budget
}

// budget is one of a provider's limits (requests or tokens) as its last
// answer described it, minus what was started since.
//
// OpenAI's limits refill continuously and x-ratelimit-reset-* is the time
// until the budget is full again, so with x-ratelimit-limit-* known the
// refill rate is (limit - remaining) / reset: a spent budget is waited out
// one call at a time, at the provider's own pace. Without the limit, only
// the reset is known, and what remains is spread evenly until then.
type budget struct {
	limit   float64   // 0: unknown
	left    float64   // what remained at at
	at      time.Time // zero: nothing known
	rate    float64   // refill per second; 0: unknown
	resetAt time.Time // when the provider said the budget is whole again

	started float64 // cost of every call started, to discount answers that predate them
	spent   bool    // waiting for refills; reported once per episode
}

// mark is where a call's reservation left its credential's budgets, so
// that its answer's headers are discounted by the calls started after it.
type mark struct{ req, tok float64 }

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
// returns the function that ends the call, and the call's mark for observe.
func (l *Limits) acquire(ctx context.Context, cred string, cost float64) (release func(), m mark, err error) {
	start := time.Now()
	l.mu.Lock()
	c := l.creds[cred]
	if c == nil {
		c = &credLimit{slots: make(chan struct{}, l.max)}
		l.creds[cred] = c
	}
	before := *c
	at, paused := c.reserve(start, cost)
	dl, ok := ctx.Deadline()
	late := ok && at.After(dl)
	if late {
		// It cannot start in time: undo the booking, or calls that give up
		// would push every later start further out. The pause stays known,
		// so that it is reported once.
		reqSpent, tokSpent := c.req.spent, c.tok.spent
		*c = before
		c.req.spent, c.tok.spent = reqSpent, tokSpent
		l.evict(cred, c, start)
	} else {
		c.waiting++
		m = mark{c.req.started, c.tok.started}
	}
	l.mu.Unlock()
	for _, reason := range paused {
		if l.obs.Paused != nil {
			l.obs.Paused(cred, reason)
		}
	}
	if late {
		return nil, m, errNoSlot{cred}
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
		return nil, m, err
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
	}, m, nil
}

// waitSlot sleeps until at, then takes a slot; both within ctx.
func waitSlot(ctx context.Context, slots chan struct{}, at time.Time, cred string) error {
	if d := time.Until(at); d > 0 {
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
	for _, t := range []time.Time{c.pauseUntil, c.next, c.req.resetAt, c.tok.resetAt, c.req.at, c.tok.at} {
		if now.Before(t) {
			return
		}
	}
	delete(l.creds, cred)
}

// reserve picks the start time of a call made at now costing cost tokens,
// and books it: the budgets shrink, and the next call is paced after it.
// A budget whose refill rate is known lets calls start while it lasts and
// then one as each refills; one without is spread evenly until its reset,
// so that the credential slows down as it nears the provider's limit
// instead of running into 429s. A large budget costs no wait at all.
func (c *credLimit) reserve(now time.Time, cost float64) (at time.Time, paused []string) {
	at = maxTime(now, c.pauseUntil)
	at = maxTime(at, c.next)
	for _, b := range []struct {
		b      *budget
		cost   float64
		reason string
	}{{&c.req, 1, "requests"}, {&c.tok, cost, "tokens"}} {
		start, waited := b.b.take(at, b.cost, &c.next)
		if waited && !b.b.spent {
			paused = append(paused, b.reason)
		}
		b.b.spent = waited
		at = start
	}
	return at, paused
}

// take books cost from b for a call that would start at at, and returns
// when it may start and whether it waits for the budget to refill.
func (b *budget) take(at time.Time, cost float64, next *time.Time) (time.Time, bool) {
	b.started += cost
	switch {
	case b.at.IsZero():
		return at, false
	case b.rate > 0:
		cost = min(cost, b.limit) // an estimate above the whole limit waits for a full budget, not forever
		avail := min(b.limit, b.left+b.rate*at.Sub(b.at).Seconds())
		if avail >= cost {
			b.left, b.at = avail-cost, at
			return at, false
		}
		start := at.Add(time.Duration((cost - avail) / b.rate * float64(time.Second)))
		b.left, b.at = 0, start
		return start, true
	case !at.Before(b.resetAt):
		*b = budget{started: b.started} // whole again; unknown until the next answer
		return at, false
	case b.left < cost:
		// Spent: nothing starts before the reset.
		*next = maxTime(*next, b.resetAt)
		return b.resetAt, true
	}
	gap := time.Duration(float64(b.resetAt.Sub(at)) * cost / b.left)
	b.left -= cost
	*next = maxTime(*next, at.Add(gap))
	return at, false
}

// observe takes in what a provider's answer to the call marked m says of
// its limits.
func (l *Limits) observe(cred string, m mark, status int, h http.Header, now time.Time) {
	req, reqOK := readBudget(h, "requests", now)
	tok, tokOK := readBudget(h, "tokens", now)
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
		c.req.update(req, m.req)
	}
	if tokOK {
		c.tok.update(tok, m.tok)
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

// update replaces what b knows with an answer's reading r, less what was
// started or booked after the answered call (marked at started): the
// answer predates them. What remains can go below zero, a debt of calls
// booked to start later, which refills pay off first.
func (b *budget) update(r budget, started float64) {
	r.left -= b.started - started
	if r.rate == 0 && r.limit > 0 {
		r.rate = b.rate // a full budget tells no rate; keep the last one
		if r.rate == 0 {
			r.rate = r.limit / 60 // OpenAI's limits are per minute
		}
	}
	r.started, r.spent = b.started, b.spent
	*b = r
}

// readBudget reads x-ratelimit-{limit,remaining,reset}-<kind>.
func readBudget(h http.Header, kind string, now time.Time) (budget, bool) {
	n, err := strconv.ParseFloat(strings.TrimSpace(h.Get("X-Ratelimit-Remaining-"+kind)), 64)
	if err != nil || n < 0 {
		return budget{}, false
	}
	d, ok := parseReset(h.Get("X-Ratelimit-Reset-" + kind))
	if !ok {
		return budget{}, false
	}
	b := budget{left: n, at: now, resetAt: now.Add(min(d, maxPause))}
	if limit, err := strconv.ParseFloat(strings.TrimSpace(h.Get("X-Ratelimit-Limit-"+kind)), 64); err == nil && limit >= n && limit > 0 {
		b.limit = limit
		if n < limit && d > 0 {
			b.rate = (limit - n) / d.Seconds()
		}
	}
	return b, true
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
	release, m := func() {}, mark{}
	if t.limits != nil {
		var err error
		if release, m, err = t.limits.acquire(req.Context(), t.cred, tokenCost(req)); err != nil {
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
		t.limits.observe(t.cred, m, resp.StatusCode, resp.Header, now)
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
