package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
)

// Config tunes delivery.
type Config struct {
	ServerURL  string        // reported as server_url in every envelope
	Timeout    time.Duration // per attempt
	RetryBase  time.Duration // delay before the first retry; doubles per attempt
	MaxBackoff time.Duration // longest delay between attempts
	MaxAge     time.Duration // give up on events older than this

	// OnAttempt, when set, is told the outcome of every delivery attempt
	// (one of the Attempt* constants) and how long the receiver took to
	// answer. The gateway exports it as metrics.
	OnAttempt func(outcome string, d time.Duration)

	// Owns, when set, says whether this process delivers the lane (the
	// instance) now: replicas on one database each deliver the lanes of
	// the instances they own. Nil delivers every lane.
	Owns func(lane string) bool
	// Elsewhere, when set, is told of a wake-up for a lane this process
	// does not deliver, to pass it on to the lane's owner.
	Elsewhere func(lane string)
}

// Outcomes of a delivery attempt, as reported to Config.OnAttempt.
const (
	AttemptDelivered = "delivered" // 2xx
	AttemptRetry     = "retry"     // failed; will be tried again
	AttemptFailed    = "failed"    // failed; given up
	// AttemptMisconfigured: the request could not be made for a reason of
	// our own configuration (a header or URL net/http refuses). Retrying
	// cannot help, and in a lane it would hold every later event for the
	// maximum age: the event fails at once, saying why.
	AttemptMisconfigured = "misconfigured"
)

const (
	// sweepEvery is how often the dispatcher looks for pending lanes nobody
	// woke (events written by another process) and purges old deliveries.
	sweepEvery = time.Minute
	// keepFinished is how long delivered and failed events stay listed.
	keepFinished = 7 * 24 * time.Hour
	// errorBodyLimit caps how much of a receiver's error response is kept.
	errorBodyLimit = 512
)

// Dispatcher delivers outbox events. Each lane (instance) has at most one
// worker goroutine, which exists only while the lane has pending events:
// events of one instance go out in order, and a slow or dead receiver holds
// up only its own instance.
type Dispatcher struct {
	store  *store.Store
	cfg    Config
	log    *slog.Logger
	client *http.Client

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	workers map[string]*laneWorker // lane → its running worker
	stopped bool
}

// NewDispatcher returns a dispatcher; call Start to begin delivering.
func NewDispatcher(s *store.Store, cfg Config, log *slog.Logger) *Dispatcher {
	ctx, cancel := context.WithCancel(context.Background())
	return &Dispatcher{
		store: s,
		cfg:   cfg,
		log:   log,
		client: &http.Client{
			Timeout: cfg.Timeout,
			// A redirect is the receiver's misconfiguration; following it
			// would resend a signed body to a URL nobody configured.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		ctx:     ctx,
		cancel:  cancel,
		workers: map[string]*laneWorker{},
	}
}

// Start resumes every lane with pending events and starts the sweeper.
func (d *Dispatcher) Start(ctx context.Context) error {
	lanes, err := d.store.PendingLanes(ctx)
	if err != nil {
		return fmt.Errorf("webhook dispatcher: %w", err)
	}
	for _, lane := range lanes {
		d.wake(lane)
	}
	d.wg.Add(1)
	go d.sweep()
	return nil
}

// Stop ends delivery: waits are cancelled, attempts in flight are abandoned
// (their events stay pending and are retried on the next start), and Stop
// returns when every worker has exited.
func (d *Dispatcher) Stop() {
	d.mu.Lock()
	d.stopped = true
	d.mu.Unlock()
	d.cancel()
	d.wg.Wait()
}

// laneWorker is a lane's running worker.
type laneWorker struct {
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	again  bool // woken while being stopped; guarded by Dispatcher.mu
}

// Wake tells the lane's worker that it has new events, starting one if needed.
func (d *Dispatcher) Wake(lane string) {
	if d.cfg.Owns != nil && !d.cfg.Owns(lane) {
		if d.cfg.Elsewhere != nil {
			d.cfg.Elsewhere(lane)
		}
		return
	}
	d.wake(lane)
}

// wake starts or wakes the lane's worker if this process delivers the
// lane; the owner of any other lane resumes it itself.
func (d *Dispatcher) wake(lane string) {
	if d.cfg.Owns != nil && !d.cfg.Owns(lane) {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return
	}
	if w, ok := d.workers[lane]; ok {
		if w.ctx.Err() != nil {
			// Being stopped (StopLane): a new worker starts once it has
			// exited, never beside it.
			w.again = true
			return
		}
		select {
		case w.wake <- struct{}{}:
		default: // a wake-up is already pending
		}
		return
	}
	d.startLocked(lane)
}

// startLocked starts the lane's worker; d.mu is held.
func (d *Dispatcher) startLocked(lane string) {
	ctx, cancel := context.WithCancel(d.ctx)
	w := &laneWorker{wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	d.workers[lane] = w
	d.wg.Add(1)
	go d.work(lane, w)
}

// exitLocked forgets the lane's worker w as it ends, and starts the next
// if the lane was woken meanwhile and this process still delivers it;
// d.mu is held.
func (d *Dispatcher) exitLocked(lane string, w *laneWorker) {
	if d.workers[lane] != w {
		return
	}
	delete(d.workers, lane)
	select {
	case <-w.wake:
		w.again = true
	default:
	}
	if w.again && !d.stopped && (d.cfg.Owns == nil || d.cfg.Owns(lane)) {
		d.startLocked(lane)
	}
}

// StopLane stops the lane's worker and returns when it has exited, with
// the outcomes of its attempts saved: the lane has gone to another
// process. An attempt it abandoned stays pending, and is made again.
func (d *Dispatcher) StopLane(lane string) {
	d.mu.Lock()
	w, ok := d.workers[lane]
	if ok {
		w.cancel()
	}
	d.mu.Unlock()
	if ok {
		<-w.done
	}
}

func (d *Dispatcher) work(lane string, w *laneWorker) {
	defer func() {
		w.cancel()
		d.mu.Lock()
		d.exitLocked(lane, w)
		d.mu.Unlock()
		close(w.done)
		d.wg.Done()
	}()
	ctx, wake := w.ctx, w.wake
	rec := d.newRecorder()
	defer rec.close()
	// Each read starts at the lane's head, where an event committed late
	// by a transaction that drew its seq early shows up; the events sent
	// whose outcomes may not be saved yet are skipped. restart waits for
	// those outcomes and forgets them, when the lane must see its head as
	// it is.
	sent := map[int64]bool{}
	restart := func() { rec.flush(); clear(sent) }
	for {
		evs, err := d.store.PendingEvents(ctx, lane, 0, batchSize)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			d.log.Error("webhook outbox read failed", "lane", lane, "error", err)
			restart()
			if !d.sleep(ctx, time.Second, nil) {
				return
			}
			continue
		}
		fresh := evs[:0:0]
		for _, ev := range evs {
			if !sent[ev.Seq] {
				fresh = append(fresh, ev)
			}
		}
		forgetSaved(sent, evs, len(evs) == batchSize)
		if len(fresh) == 0 {
			if len(sent) > 0 {
				restart() // make sure by reading the head as it is
				continue
			}
			d.mu.Lock()
			select {
			case <-wake: // woken between the read and the lock: look again
				d.mu.Unlock()
				continue
			default:
				d.exitLocked(lane, w)
				d.mu.Unlock()
				return
			}
		}
		if wait := time.Until(fresh[0].NextAttemptAt); wait > 0 {
			if len(sent) > 0 {
				restart()
				continue
			}
			if !d.sleep(ctx, wait, wake) {
				return
			}
			continue // re-read: the event may have been purged with its instance
		}
		done, stopped := d.deliver(ctx, fresh)
		if len(done) > 0 {
			rec.add(done)
			for _, ev := range done {
				sent[ev.Seq] = true
			}
		}
		if stopped {
			restart()
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// forgetSaved removes from sent the events whose outcomes are saved: those
// no longer pending, as the read evs of the lane's head shows. When the
// read was cut short by its limit (full), only those before its last.
func forgetSaved(sent map[int64]bool, evs []*store.Event, full bool) {
	if len(sent) == 0 {
		return
	}
	pending := make(map[int64]bool, len(evs))
	for _, ev := range evs {
		pending[ev.Seq] = true
	}
	for seq := range sent {
		if !pending[seq] && (!full || seq < evs[len(evs)-1].Seq) {
			delete(sent, seq)
		}
	}
}

// batchSize is how many pending events of a lane are read at once; their
// outcomes are recorded with one commit. A crash between a delivery and
// that commit sends those events again, which receivers tell by the
// delivery id, as after any crash mid-attempt.
const batchSize = 256

// deliver attempts evs in lane order and returns those attempted. It stops
// early, reporting so, at an event that must wait for a retry (the events
// behind it wait too) or at shutdown.
func (d *Dispatcher) deliver(ctx context.Context, evs []*store.Event) (done []*store.Event, stopped bool) {
	targets := map[string]targetResult{}
	done = evs[:0:0]
	for _, ev := range evs {
		if time.Until(ev.NextAttemptAt) > 0 {
			return done, true
		}
		outcome, attempted := d.attempt(ctx, ev, targets)
		if !attempted {
			return done, true // shutting down: the event stays pending
		}
		done = append(done, ev)
		if outcome == AttemptRetry {
			return done, true
		}
	}
	return done, false
}

// recorder saves a lane's delivery outcomes in order, in the background:
// the lane posts the next events while the last ones are being committed,
// instead of waiting for each commit.
type recorder struct {
	d       *Dispatcher
	batches chan []*store.Event
	pending sync.WaitGroup
	done    chan struct{}
}

func (d *Dispatcher) newRecorder() *recorder {
	r := &recorder{d: d, batches: make(chan []*store.Event, 4), done: make(chan struct{})}
	go r.run()
	return r
}

func (r *recorder) run() {
	defer close(r.done)
	for evs := range r.batches {
		// The attempts happened; record them even if shutdown began meanwhile.
		if err := r.d.store.UpdateEventAttempts(context.WithoutCancel(r.d.ctx), evs); err != nil {
			r.d.log.Error("recording webhook attempts failed", "lane", evs[0].Lane, "events", len(evs), "error", err)
		}
		r.pending.Done()
	}
}

func (r *recorder) add(evs []*store.Event) {
	r.pending.Add(1)
	r.batches <- evs
}

// flush waits until everything added is saved.
func (r *recorder) flush() { r.pending.Wait() }

func (r *recorder) close() {
	close(r.batches)
	<-r.done
}

// sleep waits for d, a wake-up or shutdown, and reports false on shutdown.
func (d *Dispatcher) sleep(ctx context.Context, wait time.Duration, wake <-chan struct{}) bool {
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-wake:
	}
	return true
}

// envelope is Evolution's webhook body, without the API key Evolution puts in it.
type envelope struct {
	Event       string          `json:"event"`
	Instance    string          `json:"instance"`
	Data        json.RawMessage `json:"data"`
	Destination string          `json:"destination"`
	DateTime    string          `json:"date_time"`
	Sender      string          `json:"sender"`
	ServerURL   string          `json:"server_url"`
}

// targetResult is an instance's webhook target as read for one batch.
type targetResult struct {
	target *store.Target
	err    error
}

// attempt delivers ev once and sets its outcome on it, without saving it.
// It reports the outcome (an Attempt* constant), and false when shutdown
// began: then the attempt does not count.
func (d *Dispatcher) attempt(ctx context.Context, ev *store.Event, targets map[string]targetResult) (string, bool) {
	tr, ok := targets[ev.InstanceID]
	if !ok || ev.Target != nil {
		tr.target, tr.err = d.target(ctx, ev)
		if ev.Target == nil {
			targets[ev.InstanceID] = tr
		}
	}
	target, err := tr.target, tr.err
	if err != nil {
		if wagate.ErrorCode(err) == wagate.ENOTFOUND {
			return d.finish(ev, store.EventFailed, 0, "webhook is no longer set"), true
		}
		if ctx.Err() != nil {
			return "", false
		}
		d.log.Error("webhook target unreadable", "instance", ev.InstanceName, "event", ev.Name, "delivery", ev.DeliveryID, "error", err)
		return d.retry(ev, 0, "webhook target unreadable", 0), true
	}
	if target == nil {
		return d.finish(ev, store.EventFailed, 0, "webhook is disabled"), true
	}
	if err := CheckHeaders(target.Headers); err != nil {
		return d.misconfigured(ev, err), true
	}
	url := target.URL
	if target.ByEvents {
		url += "/" + PathSuffix(ev.Name)
	}
	body, err := json.Marshal(envelope{
		Event:       ev.Name,
		Instance:    ev.InstanceName,
		Data:        ev.Data,
		Destination: url,
		DateTime:    ev.CreatedAt.Format("2006-01-02T15:04:05.000Z07:00"),
		Sender:      ev.Sender,
		ServerURL:   d.cfg.ServerURL,
	})
	if err != nil {
		return d.finish(ev, store.EventFailed, 0, "event data is not valid JSON"), true
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return d.misconfigured(ev, fmt.Errorf("invalid URL: %w", err)), true
	}
	for k, v := range target.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wagate/"+wagate.Version)
	req.Header.Set(EventHeader, ev.Name)
	req.Header.Set(DeliveryHeader, ev.DeliveryID)
	req.Header.Set(SignatureHeader, Sign(target.Secret, time.Now(), body))

	start := time.Now()
	resp, err := d.client.Do(req)
	if ctx.Err() != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return "", false
	}
	ev.Attempts++
	var outcome string
	if err != nil {
		outcome = d.retry(ev, 0, err.Error(), 0)
	} else {
		detail, _ := io.ReadAll(io.LimitReader(resp.Body, errorBodyLimit))
		resp.Body.Close()
		switch code := resp.StatusCode; {
		case code >= 200 && code < 300:
			outcome = d.finish(ev, store.EventDelivered, code, "")
		case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
			outcome = d.retry(ev, code, httpError(resp, detail), retryAfter(resp.Header.Get("Retry-After")))
		default:
			// Other 4xx (and 3xx): the receiver refuses this event; resending
			// the same body cannot change its answer.
			outcome = d.finish(ev, store.EventFailed, code, httpError(resp, detail))
		}
	}
	if d.cfg.OnAttempt != nil {
		d.cfg.OnAttempt(outcome, time.Since(start))
	}
	return outcome, true
}

// target returns where ev goes now: the instance's current webhook (so a
// corrected URL or rotated secret applies to the backlog), or the snapshot
// of an instance that no longer exists; nil if the webhook is disabled.
func (d *Dispatcher) target(ctx context.Context, ev *store.Event) (*store.Target, error) {
	if ev.Target != nil {
		return ev.Target, nil
	}
	w, err := d.store.Webhook(ctx, ev.InstanceID)
	if err != nil {
		return nil, err
	}
	if !w.Enabled || w.URL == "" {
		return nil, nil
	}
	return &store.Target{URL: w.URL, ByEvents: w.ByEvents, Headers: w.Headers, Secret: w.Secret}, nil
}

// retry schedules ev's next attempt, or gives it up when that would be past
// the maximum age; it returns which (AttemptRetry or AttemptFailed).
func (d *Dispatcher) retry(ev *store.Event, code int, msg string, after time.Duration) string {
	delay := after
	if delay <= 0 {
		delay = backoff(d.cfg.RetryBase, d.cfg.MaxBackoff, ev.Attempts)
	}
	next := time.Now().Add(delay)
	if next.Sub(ev.CreatedAt) > d.cfg.MaxAge {
		return d.finish(ev, store.EventFailed, code, fmt.Sprintf("gave up after %d attempts: %s", ev.Attempts, msg))
	}
	ev.NextAttemptAt, ev.LastStatus, ev.LastError = next, code, msg
	d.log.Warn("webhook delivery failed, will retry", "instance", ev.InstanceName, "event", ev.Name, "delivery", ev.DeliveryID,
		"attempt", ev.Attempts, "status", code, "error", msg, "retry_in", delay)
	return AttemptRetry
}

// misconfigured fails ev because the webhook as configured cannot be
// sent, reports it, and returns AttemptMisconfigured.
func (d *Dispatcher) misconfigured(ev *store.Event, err error) string {
	d.log.Error("webhook misconfigured; delivery failed without being sent", "instance", ev.InstanceName, "event", ev.Name,
		"delivery", ev.DeliveryID, "error", err)
	ev.Status, ev.LastStatus, ev.LastError, ev.FinishedAt = store.EventFailed, 0, "webhook misconfigured: "+err.Error(), time.Now()
	if d.cfg.OnAttempt != nil {
		d.cfg.OnAttempt(AttemptMisconfigured, 0)
	}
	return AttemptMisconfigured
}

// finish ends ev as delivered or failed and returns the outcome.
func (d *Dispatcher) finish(ev *store.Event, status string, code int, msg string) string {
	ev.Status, ev.LastStatus, ev.LastError, ev.FinishedAt = status, code, msg, time.Now()
	if status == store.EventFailed {
		d.log.Warn("webhook delivery given up", "instance", ev.InstanceName, "event", ev.Name, "delivery", ev.DeliveryID,
			"attempts", ev.Attempts, "status", code, "error", msg)
		return AttemptFailed
	}
	return AttemptDelivered
}

// backoff is base·2^(attempt-1), capped at max, with "equal jitter": half
// fixed, half random, so retries of many events spread out.
func backoff(base, max time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d/2 + rand.N(d/2+1)
}

// retryAfter parses a Retry-After header (seconds or an HTTP date).
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s >= 0 {
		return time.Duration(min(s, int64(math.MaxInt64/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return time.Until(t)
	}
	return 0
}

func httpError(resp *http.Response, body []byte) string {
	msg := "HTTP " + resp.Status
	if b := bytes.TrimSpace(body); len(b) > 0 {
		msg += ": " + string(b)
	}
	return msg
}

// sweep periodically wakes lanes with pending events that no Wake reached
// and purges old finished deliveries.
func (d *Dispatcher) sweep() {
	defer d.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-t.C:
		}
		lanes, err := d.store.PendingLanes(d.ctx)
		if err != nil && !errors.Is(err, context.Canceled) {
			d.log.Error("webhook sweep failed", "error", err)
		}
		for _, lane := range lanes {
			d.wake(lane)
		}
		for {
			n, err := d.store.PurgeFinishedEvents(d.ctx, time.Now().Add(-keepFinished), 500)
			if err != nil || n < 500 {
				break
			}
		}
	}
}

func ignoreNotFound(err error) error {
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		return nil
	}
	return err
}
