// Package bots is the bot engine's vocabulary: what a channel hands in
// (Inbound) and how replies go out (Sender). It knows nothing about HTTP or
// WhatsApp; channels depend on these types, never the other way round.
package bots

import (
	"context"
	"time"
)

// Inbound is one message received by a channel, in channel-neutral form.
type Inbound struct {
	InstanceID  string
	MessageID   string
	ChatJID     string // the conversation: a contact, group or LID chat
	SenderJID   string // who wrote it; equals ChatJID in 1:1 chats
	FromMe      bool   // typed on the instance's own account (an operator, or our echo)
	PushName    string
	MessageType string // Evolution's message type, e.g. conversation, audioMessage
	Text        string // text or caption; "" for media without one
	IsGroup     bool
	MentionsMe  bool   // the message mentions the instance's own JID
	QuotedID    string // id of the message this one replies to, if any
	Timestamp   time.Time
}

// Outbound is one message to send on a channel.
type Outbound struct {
	ID       string // chosen by the gateway before sending, so echoes are recognisable
	ChatJID  string
	Text     string
	QuotedID string
	Delay    time.Duration // show "composing" this long before sending
}

// Sent is what a channel reports after sending.
type Sent struct {
	ID        string // the id the channel used (may differ from Outbound.ID)
	Status    string // Evolution's status: PENDING, SERVER_ACK, ...
	Timestamp time.Time
}

// Sender delivers outbound messages of one instance's channel.
type Sender interface {
	Send(ctx context.Context, instanceID string, msg Outbound) (Sent, error)
}
