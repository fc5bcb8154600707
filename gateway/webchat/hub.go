package webchat

import (
	"context"
	"sync"
	"time"

	"github.com/wagate/wagate/store"
)

// Event kinds a waiting visitor receives, as SSE event names.
const (
	EventStart   = "start"   // the turn is accepted: its session
	EventDelta   = "delta"   // a piece of the answer
	EventReset   = "reset"   // the text so far is void (a retried model call)
	EventDone    = "done"    // the answer, stored: id, session, usage, sources
	EventError   = "error"   // no answer will come
	EventHuman   = "human"   // a person answers this conversation; the bot is silent
	EventMessage = "message" // a message of the conversation from someone else (an operator)
)

// event is one thing to tell a visitor.
type event struct {
	kind    string
	text    string         // delta
	message *store.Message // done, message
	code    string         // error
	partial bool           // done: the answer was cut short
}

// waiter is a visitor waiting for one turn's answer: the engine's sink
// for that turn. It outlives the visitor's request when the visitor goes
// away, until the answer (cut short) is recorded or the wait times out,
// and holds its chat's lock until then: the next turn of the same chat
// cannot take this turn's answer.
type waiter struct {
	ctx context.Context // the visitor's request

	mu      sync.Mutex
	queue   []event
	wake    chan struct{}
	done    bool
	cut     bool
	release func()
	timer   *time.Timer
}

func newWaiter(ctx context.Context) *waiter {
	return &waiter{ctx: ctx, wake: make(chan struct{}, 1)}
}

func (w *waiter) push(e event, last bool) {
	w.mu.Lock()
	if w.done {
		w.mu.Unlock()
		return
	}
	w.queue = append(w.queue, e)
	var release func()
	if last {
		w.done, release = true, w.release
		if w.timer != nil {
			w.timer.Stop()
		}
	}
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
	if release != nil {
		release()
	}
}

// take returns the events queued since the last call.
func (w *waiter) take() []event {
	w.mu.Lock()
	defer w.mu.Unlock()
	q := w.queue
	w.queue = nil
	return q
}

// The engine's side (bots.Sink).

func (w *waiter) Context() context.Context { return w.ctx }
func (w *waiter) Delta(text string)        { w.push(event{kind: EventDelta, text: text}, false) }
func (w *waiter) Reset()                   { w.push(event{kind: EventReset}, false) }
func (w *waiter) Failed(reason string) {
	w.push(event{kind: EventError, code: "upstream", text: reason}, true)
}

func (w *waiter) Cut() {
	w.mu.Lock()
	w.cut = true
	w.mu.Unlock()
}

func (w *waiter) isCut() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cut
}

// hub keeps the visitors waiting for answers and the open event streams,
// by chat (instance id and chat key). It is in-memory: the process that
// holds a visitor's request answers the turn (with replicas, every
// replica answers the web chat visitors it holds, under a turn lock that
// spans the replicas: Config.LockChat).
type hub struct {
	mu    sync.Mutex
	turns map[string]*waiter
	locks map[string]*chatLock
	subs  map[string]map[*subscriber]struct{}
}

type chatLock struct {
	ch   chan struct{}
	refs int
}

// subscriber is an open event stream of a conversation: it receives what
// operators (and the bot) post to it outside a turn.
type subscriber struct {
	ch chan *store.Message
}

func newHub() *hub {
	return &hub{turns: map[string]*waiter{}, locks: map[string]*chatLock{}, subs: map[string]map[*subscriber]struct{}{}}
}

func chatID(instanceID, chatKey string) string { return instanceID + "\x00" + chatKey }

// lock takes the chat's turn lock, waiting while another turn of the chat
// is answered; the returned function releases it.
func (h *hub) lock(ctx context.Context, key string) (func(), error) {
	h.mu.Lock()
	l := h.locks[key]
	if l == nil {
		l = &chatLock{ch: make(chan struct{}, 1)}
		h.locks[key] = l
	}
	l.refs++
	h.mu.Unlock()
	drop := func() {
		h.mu.Lock()
		if l.refs--; l.refs == 0 {
			delete(h.locks, key)
		}
		h.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		var once sync.Once
		return func() {
			once.Do(func() {
				<-l.ch
				drop()
			})
		}, nil
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	}
}

// wait registers w as the chat's turn until its last event or timeout;
// release then runs (it frees the chat's lock).
func (h *hub) wait(key string, w *waiter, timeout time.Duration, release func()) {
	h.mu.Lock()
	h.turns[key] = w
	h.mu.Unlock()
	w.mu.Lock()
	w.release = func() {
		h.mu.Lock()
		if h.turns[key] == w {
			delete(h.turns, key)
		}
		h.mu.Unlock()
		release()
	}
	w.timer = time.AfterFunc(timeout, func() {
		w.push(event{kind: EventError, code: "unprocessable", text: "no answer came in time"}, true)
	})
	w.mu.Unlock()
}

func (h *hub) turn(key string) *waiter {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.turns[key]
}

// Waiting reports whether a visitor waits on this process for the answer
// to a turn of the conversation: with replicas, the process that holds the
// visitor's request answers it.
func (ch *Channel) Waiting(instanceID, chatKey string) bool {
	return ch.hub.turn(chatID(instanceID, chatKey)) != nil
}

// waiting counts the turns waited for, for measurements.
func (h *hub) waiting() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.turns)
}

func (h *hub) subscribe(key string) (*subscriber, func()) {
	s := &subscriber{ch: make(chan *store.Message, 16)}
	h.mu.Lock()
	if h.subs[key] == nil {
		h.subs[key] = map[*subscriber]struct{}{}
	}
	h.subs[key][s] = struct{}{}
	h.mu.Unlock()
	return s, func() {
		h.mu.Lock()
		delete(h.subs[key], s)
		if len(h.subs[key]) == 0 {
			delete(h.subs, key)
		}
		h.mu.Unlock()
	}
}

// publish hands m to the chat's open event streams; a stream too slow to
// take it misses it and finds it in the history on its next poll.
func (h *hub) publish(key string, m *store.Message) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s := range h.subs[key] {
		select {
		case s.ch <- m:
		default:
		}
	}
}
