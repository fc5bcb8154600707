// Package openaiapi serves Evolution's OpenAI bot routes (/openai/...):
// credentials, bots, the instance's bot settings and the bots' sessions.
// The server authenticates each request and resolves its instance
// (gateway/api) before a handler here runs.
package openaiapi

import (
	"context"
	"log/slog"
	"time"

	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/store"
)

// LookupChat finds the conversation a client names with raw (a JID or a
// phone number) in the instance, reporting a problem under field when raw
// names none.
type LookupChat func(ctx context.Context, instanceID, raw, field string) (key string, ok bool, err error)

// Handlers are the family's route handlers.
type Handlers struct {
	store      *store.Store
	outbox     bots.Outbox // session changes are reported through it
	log        *slog.Logger
	clients    bots.Clients // for the credentials' base URLs and the provider's models
	lookupChat LookupChat
}

// New returns the handlers over st.
func New(st *store.Store, outbox bots.Outbox, log *slog.Logger, clients bots.Clients, lookupChat LookupChat) *Handlers {
	return &Handlers{store: st, outbox: outbox, log: log, clients: clients, lookupChat: lookupChat}
}

// stamp is the time stamped on records: UTC at the millisecond precision
// the store keeps, so a record reads back as it was returned.
func stamp() time.Time { return time.Now().UTC().Truncate(time.Millisecond) }
