// Package webchat is the web chat channel: a chatbot's conversations with
// visitors of a website (the widget, the hosted page) and with callers of
// okchat's chat API. Each chatbot's web chat is an internal WEBCHAT
// instance of its organization with one bot answering as the chatbot, so
// the engine decides its turns like any other chat's, the store keeps its
// messages and the outbox reports them; what is particular to the channel
// is that the visitor waits, connected, for the answer, which streams to
// them as the model writes it.
package webchat

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/fetch"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/store"
)

// Host is what the channel needs from the gateway.
type Host interface {
	channel.Host
	// ReceiveDecided stores and reports an inbound message the channel
	// answered itself (lead capture); the engine does not see it.
	ReceiveDecided(ctx context.Context, inst *store.Instance, in bots.Inbound, content json.RawMessage, o store.MessageOutcome) error
	// Post sends and records a message on an instance (an operator's
	// reply, the greeting), returning it as stored.
	Post(ctx context.Context, inst *store.Instance, out bots.Outbound) (*store.Message, error)
}

// Config tunes the channel.
type Config struct {
	ServerURL string        // the gateway's public URL
	Secret    []byte        // signs visitor tokens; derived from the master key
	Wait      time.Duration // the longest a visitor waits for one answer
	Heartbeat time.Duration // comment lines keeping a waiting stream open
	Limits    Limits
	// LockChat, when set, takes a conversation's turn lock across every
	// process sharing the database (replicas on PostgreSQL), held from the
	// visitor's message until its answer: the next turn waits, wherever
	// its request arrived.
	LockChat func(ctx context.Context, instanceID, chatKey string) (unlock func(), err error)
	// Published, when set, is told of each message handed to a
	// conversation's open event streams here, so that the streams open on
	// the other replicas get it too (Republish).
	Published func(instanceID, messageID string)
}

// Channel is the web chat channel driver.
type Channel struct {
	st     *store.Store
	host   Host
	outbox bots.Outbox
	fetch  *fetch.Client
	cfg    Config
	log    *slog.Logger
	hub    *hub
	limits *limiter

	mu    sync.Mutex
	chats map[string]webchatOf // by chatbot id
}

// webchatOf is a chatbot's web chat instance and bot, as last read.
type webchatOf struct {
	version uint64
	inst    *store.Instance
	bot     *store.Bot
}

var (
	_ channel.Channel  = (*Channel)(nil)
	_ channel.Recorder = (*Channel)(nil)
	_ bots.Visitors    = (*Channel)(nil)
)

// New returns the channel.
func New(st *store.Store, host Host, outbox bots.Outbox, fetcher *fetch.Client, cfg Config, log *slog.Logger) *Channel {
	if cfg.Wait <= 0 {
		cfg.Wait = 3 * time.Minute
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = 15 * time.Second
	}
	return &Channel{st: st, host: host, outbox: outbox, fetch: fetcher, cfg: cfg, log: log, hub: newHub(),
		limits: newLimiter(cfg.Limits), chats: map[string]webchatOf{}}
}

// Waiters counts the visitors waiting for an answer now.
func (ch *Channel) Waiters() int { return ch.hub.waiting() }

// instance returns chatbot cb's web chat instance and bot, made the first
// time they are needed.
func (ch *Channel) instance(ctx context.Context, cb *store.Chatbot) (*store.Instance, *store.Bot, error) {
	version, cacheable := ch.st.ConfigVersion()
	ch.mu.Lock()
	w, ok := ch.chats[cb.ID]
	ch.mu.Unlock()
	if ok && cacheable && w.version == version {
		return w.inst, w.bot, nil
	}
	// The instance needs a token hash to be stored; nobody holds the token.
	inst, bot, err := ch.st.EnsureWebchat(ctx, cb, api.HashKey(api.NewKey("webchat_", 24)))
	if err != nil {
		return nil, nil, err
	}
	if cacheable {
		version, _ = ch.st.ConfigVersion() // creating them moved it on
		ch.mu.Lock()
		if len(ch.chats) > 10_000 {
			ch.chats = map[string]webchatOf{}
		}
		ch.chats[cb.ID] = webchatOf{version: version, inst: inst, bot: bot}
		ch.mu.Unlock()
	}
	return inst, bot, nil
}

// ---- channel.Channel: there is nothing to connect, and sending is
// recording (the visitor gets the stored message).

// Send accepts every message: the visitor receives it once recorded.
func (ch *Channel) Send(_ context.Context, _ string, msg bots.Outbound) (bots.Sent, error) {
	return bots.Sent{ID: msg.ID, Status: "DELIVERY_ACK", Timestamp: time.Now().UTC().Truncate(time.Millisecond)}, nil
}

// RecordsAtOnce is always true: a visitor sees no typing delay, and
// receives the message once recorded.
func (ch *Channel) RecordsAtOnce(bots.Outbound) bool { return true }

// State is always open.
func (ch *Channel) State(context.Context, *store.Instance) channel.State {
	return channel.State{State: channel.Open}
}

// Connect has nothing to pair.
func (ch *Channel) Connect(context.Context, *store.Instance, string) (*channel.Pairing, error) {
	return nil, nil
}

// Restart has nothing to restart.
func (ch *Channel) Restart(context.Context, *store.Instance) error { return nil }

// Logout has nothing to log out of.
func (ch *Channel) Logout(context.Context, *store.Instance) error { return nil }

// Sink returns the visitor waiting for the answer in the chat, or nil
// (bots.Visitors).
func (ch *Channel) Sink(instanceID, chatKey string) bots.Sink {
	if w := ch.hub.turn(chatID(instanceID, chatKey)); w != nil {
		return w
	}
	return nil
}

// Recorded hands a message stored in a web chat to whoever waits for it:
// the bot's answer to the visitor waiting for the turn, anything else to
// the conversation's open event streams.
func (ch *Channel) Recorded(inst *store.Instance, m *store.Message) {
	key := chatID(inst.ID, m.ChatKey)
	if w := ch.hub.turn(key); w != nil && m.BotID != "" {
		partial := w.isCut()
		if partial {
			if err := ch.st.MarkPartial(context.Background(), inst.ID, m.ID); err != nil {
				ch.log.Error("web chat: marking a partial answer failed", "instance", inst.Name, "message", m.ID, "error", err)
			}
		}
		w.push(event{kind: EventDone, message: m, partial: partial}, true)
		return
	}
	ch.hub.publish(key, m)
	if ch.cfg.Published != nil {
		ch.cfg.Published(inst.ID, m.ID)
	}
}

// Republish hands a message another replica published (Config.Published)
// to the conversation's event streams open here.
func (ch *Channel) Republish(ctx context.Context, instanceID, messageID string) error {
	m, err := ch.st.Message(ctx, instanceID, messageID, store.Outbound)
	if err != nil {
		return err
	}
	ch.hub.publish(chatID(instanceID, m.ChatKey), m)
	return nil
}
