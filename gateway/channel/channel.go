// Package channel defines what the gateway needs from a messaging channel
// driver (the EVOLUTION HTTP channel, WhatsApp, …), so drivers plug in
// without the gateway knowing their insides.
package channel

import (
	"context"
	"encoding/json"

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

// Host is what the gateway offers channel drivers.
type Host interface {
	// Receive stores an inbound message, reports it (messages.upsert) and
	// hands it to the bot engine. A message id the instance already
	// received is a no-op, so redeliveries are safe.
	Receive(ctx context.Context, inst *store.Instance, in bots.Inbound, content json.RawMessage) error
	// Emit reports an event about inst (connection.update, qrcode.updated, …)
	// to the instance's webhook.
	Emit(ctx context.Context, inst *store.Instance, event string, data any) error
	// Sent reports whether the instance itself sent messageID, so an echo
	// of it is not taken for an operator's message.
	Sent(ctx context.Context, instanceID, messageID string) (bool, error)
	// Update records a change to stored messages (a receipt, an edit or a
	// deletion by the other side) and reports it as messages.update or
	// messages.delete.
	Update(ctx context.Context, inst *store.Instance, u Update) error
	// Contacts records what the network says about contacts (names from
	// the address book or a history sync) and reports the new and changed
	// ones (contacts.upsert, contacts.update). Names in messages are
	// recorded by Receive.
	Contacts(ctx context.Context, inst *store.Instance, list []store.Contact) error
	// Chats records what the network says about chats (a history sync)
	// and reports the new and changed ones (chats.upsert, chats.update).
	Chats(ctx context.Context, inst *store.Instance, list []store.ChatInfo) error
}

// Kinds of Update.
const (
	UpdateStatus = "status" // a receipt: delivered, read, played
	UpdateEdit   = "edit"
	UpdateDelete = "delete"
)

// Update is a change to messages the instance stored.
type Update struct {
	Kind        string
	IDs         []string // the messages changed
	RemoteJID   string   // their chat
	Participant string   // who changed them, in a group
	FromMe      bool     // the messages were sent by the instance
	Status      string   // UpdateStatus: DELIVERY_ACK, READ or PLAYED
	Text        string   // UpdateEdit: the new text
	Content     json.RawMessage
}

// MediaSource is implemented by channels that can fetch a received
// message's media (audio to transcribe), size-capped.
type MediaSource interface {
	Media(ctx context.Context, inst *store.Instance, m *store.Message) (data []byte, filename string, err error)
}

// Recording is implemented by channels for which sending some messages is
// nothing but the gateway's record of them, done at once (EVOLUTION
// reports the record as send.message; the web chat hands it to the
// visitor). A bot's reply that RecordsAtOnce is recorded as sent in the
// transaction that records its turn.
type Recording interface {
	RecordsAtOnce(msg bots.Outbound) bool
}

// Recorder is implemented by channels that act once a message sent on them
// is stored (the web chat hands it to the visitor waiting for it, with its
// stored id), rather than when it is sent.
type Recorder interface {
	Recorded(inst *store.Instance, m *store.Message)
}
