// Package okchat serves okchat's chatbot API (/api/external/...) and the
// chatbot-management API (/api/v1/chatbots, /api/v1/credentials) over the
// same chatbots. The server authenticates each request and resolves its
// organization and chatbot (gateway/api) before a handler here runs.
package okchat

import (
	"log/slog"
	"time"

	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/webchat"
	"github.com/wagate/wagate/knowledge"
	"github.com/wagate/wagate/store"
)

// Handlers are the family's route handlers.
type Handlers struct {
	store     *store.Store
	log       *slog.Logger
	serverURL string // public base URL, for the avatar URLs
	baseURL   func(*store.Creds) string
	webchat   *webchat.Channel

	kb           *knowledge.Service
	maxFileBytes int64
}

// New returns the handlers over st. serverURL is the gateway's public base
// URL; baseURL says where a credential's requests go.
func New(st *store.Store, log *slog.Logger, serverURL string, baseURL func(*store.Creds) string) *Handlers {
	return &Handlers{store: st, log: log, serverURL: serverURL, baseURL: baseURL}
}

// WithWebchat gives the handlers the web chat channel, which answers the
// chat route and serves human takeover.
func (h *Handlers) WithWebchat(ch *webchat.Channel) *Handlers {
	h.webchat = ch
	return h
}

// stamp is the time stamped on records: UTC at the millisecond precision
// the store keeps, so a record reads back as it was returned.
func stamp() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }

const (
	// KeyPrefix starts every chatbot key, as in the management API.
	KeyPrefix = "ob_live_"
	// keyPrefixShown is how much of a chatbot key api_key_prefix shows.
	keyPrefixShown = len(KeyPrefix) + 6
)

// newKey returns a chatbot key: the prefix and 128 random bits in hex.
func newKey() string {
	return api.NewKey(KeyPrefix, 16)
}

func keyPrefix(key string) string { return key[:keyPrefixShown] + "..." }
