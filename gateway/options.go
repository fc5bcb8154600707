package gateway

import "github.com/wagate/wagate/gateway/whatsapp"

// Option adjusts a gateway when it is made.
type Option func(*options)

type options struct {
	whatsAppClient whatsapp.ClientFactory
}

// WithWhatsAppClient makes the WhatsApp channel's clients with f instead of
// whatsmeow. It exists for tests: a fake client emits real whatsmeow events
// and never opens a socket, so the whole gateway runs without WhatsApp.
func WithWhatsAppClient(f whatsapp.ClientFactory) Option {
	return func(o *options) { o.whatsAppClient = f }
}
