// Package channel defines what the gateway needs from a messaging channel
// driver (the EVOLUTION HTTP channel, WhatsApp, …), so drivers plug in
// without the gateway knowing their insides.
package channel

import (
	"context"

	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/store"
)

// Connection states, as Evolution reports them.
const (
	Open       = "open"
	Connecting = "connecting"
	Close      = "close"
)

// State is an instance's connection state; Reason explains a permanent
// failure (logged out, banned, …) and is empty otherwise.
type State struct {
	State  string
	Reason string
}

// Pairing is what a channel shows to pair a device: a QR code or a phone
// pairing code.
type Pairing struct {
	PairingCode string // code to type on the phone, when pairing by number
	Code        string // raw QR string
	Base64      string // QR as a data:image/png;base64 URL
	Count       int    // how many QR codes were shown so far
}

// Channel drives the instances of one integration.
type Channel interface {
	bots.Sender
	// State reports the connection state of inst.
	State(ctx context.Context, inst *store.Instance) State
	// Connect starts pairing or connecting; nil Pairing means already connected.
	// phone, when set, asks for a phone pairing code instead of a QR code.
	Connect(ctx context.Context, inst *store.Instance, phone string) (*Pairing, error)
	Restart(ctx context.Context, inst *store.Instance) error
	Logout(ctx context.Context, inst *store.Instance) error
}
