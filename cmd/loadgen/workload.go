package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// workload is what one run sends.
type workload struct {
	messages, conversations int
	rate                    float64
	senders                 int
	drain                   time.Duration
}

// replyPrefix is how the fake model starts an echo; the rest of the reply
// is the message's text, which names the message.
const replyPrefix = "echo: "

func messageText(i int) string { return "lg" + strconv.Itoa(i) }

func chatOf(i, conversations int) string {
	return fmt.Sprintf("5599%09d@s.whatsapp.net", i%conversations)
}

// tracker records when each message was sent and when its replies came.
type tracker struct {
	mu       sync.Mutex
	sent     []time.Time // zero until the POST is sent
	accepted []bool
	replies  []int32
	first    []time.Time // arrival of the first reply
	last     time.Time   // arrival of the latest first reply
	stray    int         // replies naming no message of this run
	errs     int         // inbound POSTs refused or failed
	errText  map[string]int
	done     chan struct{} // closed when every accepted message has a reply
	pending  int
	allSent  bool
}

func newTracker(n int) *tracker {
	return &tracker{
		sent: make([]time.Time, n), accepted: make([]bool, n), replies: make([]int32, n), first: make([]time.Time, n),
		errText: map[string]int{}, done: make(chan struct{}),
	}
}

func (t *tracker) markSent(i int, at time.Time) {
	t.mu.Lock()
	t.sent[i] = at
	t.mu.Unlock()
}

func (t *tracker) markResult(i int, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err != nil {
		t.errs++
		if len(t.errText) < 20 {
			t.errText[err.Error()]++
		}
		return
	}
	t.accepted[i] = true
	if t.replies[i] == 0 {
		t.pending++ // not answered yet
	}
}

func (t *tracker) sendingDone() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.allSent = true
	t.checkDone()
}

func (t *tracker) checkDone() {
	if t.allSent && t.pending == 0 {
		select {
		case <-t.done:
		default:
			close(t.done)
		}
	}
}

// reply records a reply with text at time at.
func (t *tracker) reply(text string, at time.Time) {
	id, ok := strings.CutPrefix(text, replyPrefix+"lg")
	i, err := strconv.Atoi(id)
	t.mu.Lock()
	defer t.mu.Unlock()
	if !ok || err != nil || i < 0 || i >= len(t.replies) {
		t.stray++
		return
	}
	t.replies[i]++
	if t.replies[i] == 1 {
		t.first[i] = at
		if at.After(t.last) {
			t.last = at
		}
		if t.accepted[i] {
			t.pending--
			t.checkDone()
		}
		// A reply that beats its POST's response is counted when the
		// response comes: markResult sees replies[i] > 0.
	}
}

// receiver is the webhook endpoint replies arrive at.
type receiver struct {
	srv *http.Server
	url string
	tr  atomic.Pointer[tracker]
}

func startReceiver() (*receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("receiver: %w", err)
	}
	rc := &receiver{url: "http://" + ln.Addr().String() + "/hook"}
	rc.srv = &http.Server{Handler: rc, ReadHeaderTimeout: 10 * time.Second}
	go rc.srv.Serve(ln)
	return rc, nil
}

// envelope is the part of a webhook body the harness reads.
type envelope struct {
	Event string `json:"event"`
	Data  struct {
		Message struct {
			Conversation string `json:"conversation"`
		} `json:"message"`
	} `json:"data"`
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, "unreadable", http.StatusBadRequest)
		return
	}
	var env envelope
	if json.Unmarshal(body, &env) == nil && env.Event == "send.message" {
		if tr := rc.tr.Load(); tr != nil {
			tr.reply(env.Data.Message.Conversation, at)
		}
	}
	w.WriteHeader(http.StatusOK)
}

func (rc *receiver) close() { rc.srv.Close() }

// drive sends the workload with post and waits for the replies.
func drive(ctx context.Context, w workload, tr *tracker, post func(ctx context.Context, i int) error) (sendTime time.Duration) {
	jobs := make(chan int)
	var wg sync.WaitGroup
	for range w.senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				tr.markSent(i, time.Now())
				tr.markResult(i, post(ctx, i))
			}
		}()
	}
	begin := time.Now()
feed:
	for i := range w.messages {
		if w.rate > 0 {
			due := begin.Add(time.Duration(float64(i) / w.rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				select {
				case <-ctx.Done():
					break feed
				case <-time.After(wait):
				}
			}
		}
		select {
		case <-ctx.Done():
			break feed
		case jobs <- i:
		}
	}
	close(jobs)
	wg.Wait()
	sendTime = time.Since(begin)
	tr.sendingDone()
	t := time.NewTimer(w.drain)
	defer t.Stop()
	select {
	case <-tr.done:
	case <-t.C:
	case <-ctx.Done():
	}
	return sendTime
}

// result is what one run measured.
type result struct {
	sent, accepted, answered int
	errors, lost, duplicated int
	stray                    int
	errText                  map[string]int
	elapsed                  time.Duration // first send to last reply
	sendTime                 time.Duration
	latencies                []time.Duration

	// The gateway's own figures, from /metrics (zero for -bare).
	rssBase, rssPeak, rssEnd        float64
	goroutinesBase, goroutinesPeak  float64
	goroutinesEnd                   float64
	goroutinesSettled               bool
	backlogEnd, pendingEnd, convEnd float64
	metricsErr                      error
	haveMetrics                     bool
	cpu                             *cpuFigures // -db only
}

func (t *tracker) result(sendTime time.Duration) *result {
	t.mu.Lock()
	defer t.mu.Unlock()
	r := &result{errors: t.errs, stray: t.stray, errText: t.errText, sendTime: sendTime}
	var begin time.Time
	for i := range t.sent {
		if t.sent[i].IsZero() {
			continue
		}
		r.sent++
		if begin.IsZero() || t.sent[i].Before(begin) {
			begin = t.sent[i]
		}
		if !t.accepted[i] {
			continue
		}
		r.accepted++
		switch n := t.replies[i]; {
		case n == 0:
			r.lost++
			continue
		case n > 1:
			r.duplicated += int(n - 1)
		}
		r.answered++
		r.latencies = append(r.latencies, t.first[i].Sub(t.sent[i]))
	}
	if !t.last.IsZero() {
		r.elapsed = t.last.Sub(begin)
	}
	slices.Sort(r.latencies)
	return r
}

func (r *result) throughput() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.answered) / r.elapsed.Seconds()
}

func (r *result) clean() bool {
	return r.errors == 0 && r.lost == 0 && r.duplicated == 0 && r.stray == 0 && r.accepted == r.sent
}

func (r *result) pct(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	i := int(float64(len(r.latencies))*p/100+0.5) - 1
	return r.latencies[min(max(i, 0), len(r.latencies)-1)]
}

func (r *result) print(w io.Writer, name string) {
	fmt.Fprintf(w, "%s: sent %d, accepted %d, answered %d in %s (sending took %s)\n",
		name, r.sent, r.accepted, r.answered, r.elapsed.Round(time.Millisecond), r.sendTime.Round(time.Millisecond))
	fmt.Fprintf(w, "%s: throughput %.0f replies/s\n", name, r.throughput())
	fmt.Fprintf(w, "%s: latency POST→send.message p50 %s p90 %s p99 %s max %s\n", name,
		ms(r.pct(50)), ms(r.pct(90)), ms(r.pct(99)), ms(r.pct(100)))
	fmt.Fprintf(w, "%s: errors %d, lost %d, duplicated %d, stray %d\n", name, r.errors, r.lost, r.duplicated, r.stray)
	for text, n := range r.errText {
		fmt.Fprintf(w, "%s:   error ×%d: %s\n", name, n, text)
	}
	if r.metricsErr != nil {
		fmt.Fprintf(w, "%s: /metrics unreadable: %v\n", name, r.metricsErr)
	}
	if r.haveMetrics {
		fmt.Fprintf(w, "%s: RSS base %s, peak %s, end %s\n", name, mb(r.rssBase), mb(r.rssPeak), mb(r.rssEnd))
		settled := "did not return to the baseline within -settle"
		if r.goroutinesSettled {
			settled = "back to the baseline"
		}
		fmt.Fprintf(w, "%s: goroutines base %.0f, peak %.0f, end %.0f (%s)\n", name,
			r.goroutinesBase, r.goroutinesPeak, r.goroutinesEnd, settled)
		if r.cpu != nil {
			r.cpu.print(w, r.answered)
		}
		fmt.Fprintf(w, "%s: at the end: webhook backlog %.0f, pending inbound %.0f, live conversations %.0f\n", name,
			r.backlogEnd, r.pendingEnd, r.convEnd)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func mb(b float64) string { return fmt.Sprintf("%.1f MB", b/(1<<20)) }
