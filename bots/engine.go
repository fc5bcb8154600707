package bots

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wagate/wagate/store"
)

// Config tunes the engine.
type Config struct {
	HistoryTokens   int           // token budget of the history sent with each call
	ModelTimeout    time.Duration // per model call
	TranscribeModel string
	RetryBase       time.Duration // first delay between provider retries
	FunctionTimeout time.Duration // per tool call to a bot's functionUrl
	SweepEvery      time.Duration // how often idle sessions are expired

	// OnModelCall, when set, is told of every model request attempt: how
	// long it took, the provider's HTTP status when it failed with one (0
	// otherwise) and the error. The gateway exports it as metrics; the
	// engine itself keeps no counters.
	OnModelCall func(d time.Duration, status int, err error)

	// Visitors, when set, streams answers to visitors waiting for them.
	Visitors Visitors

	// Knowledge grounds the replies of bots that answer as a chatbot; nil
	// leaves them ungrounded.
	Knowledge Grounder

	// Owns, when set, says whether this process acts for the conversation
	// now (replicas on one database each own some instances): a chat of an
	// instance it does not own is left to the owner. Nil owns everything.
	Owns func(inst *store.Instance, chatKey string) bool
	// Fence, when set, runs inside the transaction that records a turn's
	// answer and before each part of a reply is recorded or leaves: it
	// returns store.ErrNotOwner when the instance's lease has ended, which
	// rolls the record back and stops the chat's worker with the work
	// left stored for the instance's new owner.
	Fence func(ctx context.Context, inst *store.Instance) error
}

// Outbox records events in the transaction of the change they report.
type Outbox interface {
	Tx(ctx context.Context, fn func(ctx context.Context) error) error
	Emit(ctx context.Context, inst *store.Instance, event string, data any) error
}

// Replier sends a bot's reply through the instance's channel and records
// it (reported as send.message), with out.Recorded in the same transaction.
type Replier interface {
	Reply(ctx context.Context, inst *store.Instance, out Outbound) error
}

// Recorder is implemented by a Replier whose channels may send a message
// by recording it (EVOLUTION, the web chat): a reply is then recorded as
// sent in the transaction that records its turn, instead of being stored
// to send after it.
type Recorder interface {
	// Record records out as sent in the caller's transaction, which checks
	// the lease, when inst's channel sends a message by recording it and
	// out waits for no typing delay; it returns what to run once the
	// transaction has committed. Otherwise it returns ok false having done
	// nothing, and out goes through Reply.
	Record(ctx context.Context, inst *store.Instance, out Outbound) (committed func(), ok bool, err error)
}

// MediaFetcher returns the bytes of a message's media (audio to
// transcribe), size-capped, from wherever its channel keeps them.
type MediaFetcher func(ctx context.Context, inst *store.Instance, m *store.Message) (data []byte, filename string, err error)

// Signer signs a bot's tool call as webhooks are signed: with the
// chatbot's signing secret when the tools are the chatbot's (cb not nil),
// else with its instance's webhook secret. It returns "" when there is no
// secret.
type Signer func(ctx context.Context, inst *store.Instance, cb *store.Chatbot, body []byte) string

// Engine answers inbound messages with bots. Each conversation (instance,
// chat) has at most one worker goroutine, which exists only while the chat
// has messages to decide on: messages of one chat are handled in order with
// one model call at a time, chats run in parallel, and each credential's
// Limits bound and pace its model calls. The messages table is the queue:
// a message waits in state received until decided, so nothing is lost
// across a restart.
type Engine struct {
	store   *store.Store
	outbox  Outbox
	replier Replier
	media   MediaFetcher
	sign    Signer
	clients Clients
	cfg     Config
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	workers map[store.Chat]*worker
	stopped bool

	configs configCache
}

// NewEngine returns an engine; Start begins work.
func NewEngine(st *store.Store, ob Outbox, r Replier, media MediaFetcher, sign Signer, clients Clients, cfg Config, log *slog.Logger) *Engine {
	ctx, cancel := context.WithCancel(context.Background())
	return &Engine{
		store: st, outbox: ob, replier: r, media: media, sign: sign, clients: clients, cfg: cfg, log: log,
		ctx:     ctx,
		cancel:  cancel,
		workers: map[store.Chat]*worker{},
	}
}

// Start picks up every stored message not yet decided on (debounce buffers
// included) and starts the session expiry sweeper.
func (e *Engine) Start(ctx context.Context) error {
	chats, err := e.store.PendingChats(ctx)
	if err != nil {
		return fmt.Errorf("bot engine: %w", err)
	}
	for _, c := range chats {
		e.Notify(c)
	}
	e.wg.Add(1)
	go e.sweep()
	return nil
}

// Stop cancels waits and model calls in flight (their messages stay
// pending for the next start) and returns when every worker has exited.
func (e *Engine) Stop() {
	e.mu.Lock()
	e.stopped = true
	e.mu.Unlock()
	e.cancel()
	e.wg.Wait()
}

// Conversations is the number of chats with a worker now: chats whose
// messages are being decided or wait in a debounce window.
func (e *Engine) Conversations() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.workers)
}

// worker is a chat's running worker.
type worker struct {
	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	again  bool // notified while being stopped; guarded by Engine.mu
}

// Notify tells the chat's worker that it has a new message, starting one
// if needed. It never blocks.
func (e *Engine) Notify(chat store.Chat) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.stopped {
		return
	}
	if w, ok := e.workers[chat]; ok {
		if w.ctx.Err() != nil {
			// Being stopped (StopInstance): a new worker starts once it
			// has exited, never beside it.
			w.again = true
			return
		}
		select {
		case w.wake <- struct{}{}:
		default:
		}
		return
	}
	e.startLocked(chat)
}

// startLocked starts the chat's worker; e.mu is held.
func (e *Engine) startLocked(chat store.Chat) {
	ctx, cancel := context.WithCancel(e.ctx)
	w := &worker{wake: make(chan struct{}, 1), ctx: ctx, cancel: cancel, done: make(chan struct{})}
	e.workers[chat] = w
	e.wg.Add(1)
	go e.work(chat, w)
}

// exitLocked forgets the worker w of chat as it ends, and starts the next
// if a notification came while it was being stopped; e.mu is held.
func (e *Engine) exitLocked(chat store.Chat, w *worker) {
	if e.workers[chat] != w {
		return
	}
	delete(e.workers, chat)
	select {
	case <-w.wake: // notified as it was leaving
		w.again = true
	default:
	}
	if w.again && !e.stopped {
		e.startLocked(chat)
	}
}

// Resume starts the workers of the instance's chats that have work
// pending: after this process took the instance over from another.
func (e *Engine) Resume(ctx context.Context, instanceID string) error {
	chats, err := e.store.PendingChatsOf(ctx, instanceID)
	if err != nil {
		return fmt.Errorf("bot engine: %w", err)
	}
	for _, c := range chats {
		e.Notify(c)
	}
	return nil
}

// StopInstance stops the workers of the instance's chats and returns when
// they have exited: the instance has gone to another process, which picks
// up what they left (everything is stored). A chat notified meanwhile gets
// a new worker once the old one has exited, which leaves the chat to the
// owner if this process no longer owns it (Config.Owns).
func (e *Engine) StopInstance(instanceID string) {
	e.mu.Lock()
	var stopping []*worker
	for chat, w := range e.workers {
		if chat.InstanceID == instanceID {
			w.cancel()
			stopping = append(stopping, w)
		}
	}
	e.mu.Unlock()
	for _, w := range stopping {
		<-w.done
	}
}

// work decides on the chat's pending messages until there are none.
func (e *Engine) work(chat store.Chat, w *worker) {
	defer func() {
		w.cancel()
		e.mu.Lock()
		e.exitLocked(chat, w)
		e.mu.Unlock()
		close(w.done)
		e.wg.Done()
	}()
	wake := w.wake
	log := e.log.With("instance_id", chat.InstanceID, "chat", chat.Key)
	for {
		// A wake-up from before this step's read is answered by it: step
		// sees every message stored before it reads the chat.
		select {
		case <-wake:
		default:
		}
		wait, err := e.step(w.ctx, chat, log)
		switch {
		case w.ctx.Err() != nil:
			return
		case errors.Is(err, store.ErrNotOwner):
			// Another process owns the instance now; it resumes the chat.
			return
		case err != nil:
			log.Error("bot engine step failed", "error", err)
			wait = time.Second
		case wait < 0: // nothing pending
			e.mu.Lock()
			select {
			case <-wake: // woken between the read and the lock
				e.mu.Unlock()
				continue
			default:
				e.exitLocked(chat, w)
				e.mu.Unlock()
				return
			}
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-w.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			case <-wake:
				t.Stop()
			}
		}
	}
}

// sweep closes sessions idle for longer than their bot's expire, so the
// close event is reported even when the chat never writes again.
func (e *Engine) sweep() {
	defer e.wg.Done()
	t := time.NewTicker(e.cfg.SweepEvery)
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-t.C:
		}
		if err := e.expireIdle(e.ctx); err != nil && e.ctx.Err() == nil {
			e.log.Error("session sweep failed", "error", err)
		}
	}
}

// expireIdle hands chats whose session has been idle for a minute to their
// worker, which closes the session if its bot's expire has passed: the
// worker is the only one changing a chat's session.
func (e *Engine) expireIdle(ctx context.Context) error {
	idle, err := e.store.LiveSessionsIdleSince(ctx, time.Now().Add(-time.Minute), 1000)
	if err != nil {
		return err
	}
	for _, se := range idle {
		e.Notify(store.Chat{InstanceID: se.InstanceID, Key: se.RemoteJID})
	}
	return nil
}
