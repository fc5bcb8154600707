// Package bots is the bot engine's vocabulary: what a channel hands in
// (Inbound) and how replies go out (Sender). It knows nothing about HTTP or
// WhatsApp; channels depend on these types, never the other way round.
package bots

import (
	"context"
	"encoding/json"
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

	// RepliesToMe: the quoted message was written by the instance's own
	// account (sent through the gateway, or typed by an operator on the
	// phone), as far as the channel can tell without the engine's lookup.
	RepliesToMe bool
	// ChatKey identifies the conversation for sessions and ordering when
	// the channel knows a steadier name than ChatJID: WhatsApp may address
	// one person by phone number or by LID, and the key is the phone-number
	// JID in both cases when the mapping is known. "" means ChatJID. Replies
	// always go to ChatJID, exactly as received.
	ChatKey string
	// Ignore, when set, says why the engine must not answer this message
	// (a reaction, an edit, a protocol message, a status broadcast, a
	// newsletter post, the echo of the gateway's own send, …). The message
	// is still stored and reported to the webhook.
	Ignore string
	// Media describes the attachment of a media message; nil for text.
	Media *Media
}

// Key returns the conversation key: ChatKey, or ChatJID when the channel
// has no steadier name.
func (in *Inbound) Key() string {
	if in.ChatKey != "" {
		return in.ChatKey
	}
	return in.ChatJID
}

// Media describes an attachment. The bytes are not fetched with the
// message: the engine asks its MediaFetcher only when it needs them (to
// transcribe a voice note).
type Media struct {
	Kind     string // audio, image, video, document, sticker
	Mimetype string
	FileName string // documents
	Size     int64  // bytes, as the sender declared it; 0 when unknown
	Seconds  int    // duration of audio and video
	Voice    bool   // a voice note (push-to-talk audio)
}

// Outbound is one message to send on a channel.
type Outbound struct {
	ID       string // chosen by the gateway before sending, so echoes are recognisable
	ChatJID  string
	Text     string
	QuotedID string
	Delay    time.Duration // show "composing" this long before sending

	// Recorded with a bot's reply.
	ChatKey          string // the conversation, when the engine knows it; "" means ChatJID
	BotID, SessionID string
	Usage            Usage
	Sources          json.RawMessage // the knowledge chunks the reply used
	ToolCalls        json.RawMessage // the tool calls the model made for the reply
	ToolResults      json.RawMessage // what each function answered

	// AgentName is the console user who wrote the message in the inbox;
	// "" for a bot's reply and every other send.
	AgentName string

	// A part of a bot's reply goes out at most once, even across a crash:
	// BeforeSend, when set, commits that the part is leaving; a channel
	// whose send does more than the gateway's record of it (WhatsApp) calls
	// it after the typing delay, right before the message leaves, and does
	// not send when it fails. Recorded, when set, runs in the transaction
	// that records the message as sent.
	BeforeSend func(ctx context.Context) error
	Recorded   func(ctx context.Context) error
}

// Usage is what one model answer cost.
type Usage struct {
	PromptTokens     int
	CompletionTokens int
	Latency          time.Duration
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
