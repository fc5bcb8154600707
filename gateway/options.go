package gateway

import (
	"time"

	"github.com/wagate/wagate/gateway/whatsapp"
)

// Option adjusts a gateway when it is made.
type Option func(*options)

type options struct {
	whatsAppClient whatsapp.ClientFactory
	now            func() time.Time
}

// WithClock makes the console's accounts read the time from now: tests
// move it past a session's expiry instead of waiting.
func WithClock(now func() time.Time) Option {
	return func(o *options) { o.now = now }
}

// WithWhatsAppClient makes the WhatsApp channel's clients with f instead of
// whatsmeow. It exists for tests: a fake client emits real whatsmeow events
// and never opens a socket, so the whole gateway runs without WhatsApp.
func WithWhatsAppClient(f whatsapp.ClientFactory) Option {
	return func(o *options) { o.whatsAppClient = f }
}
