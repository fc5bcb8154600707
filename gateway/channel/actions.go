package channel

import (
	"context"
	"time"

	"github.com/wagate/wagate/store"
)

// NumberInfo is whether a phone number has WhatsApp.
type NumberInfo struct {
	Exists bool   `json:"exists"`
	JID    string `json:"jid"`
	Number string `json:"number"`
	Name   string `json:"name,omitempty"`
	LID    string `json:"lid,omitempty"`
}

// Actions are what a messaging network offers besides sending (WhatsApp):
// the chat and instance actions of Evolution's API. Channels without a
// network (EVOLUTION) do not implement it.
type Actions interface {
	OnWhatsApp(ctx context.Context, inst *store.Instance, numbers []string) ([]NumberInfo, error)
	MarkRead(ctx context.Context, inst *store.Instance, keys []Key) error
	Archive(ctx context.Context, inst *store.Instance, chat string, archive bool, last *Key, lastAt time.Time) error
	MarkUnread(ctx context.Context, inst *store.Instance, chat string, last *Key, lastAt time.Time) error
	// Revoke deletes a message for everyone; Edit replaces a sent text.
	Revoke(ctx context.Context, inst *store.Instance, key Key) (SentMessage, error)
	Edit(ctx context.Context, inst *store.Instance, key Key, text string) (SentMessage, error)
	// ChatPresence shows composing, recording or paused in a chat for d.
	ChatPresence(ctx context.Context, inst *store.Instance, chat, presence string, d time.Duration) error
	Block(ctx context.Context, inst *store.Instance, jid string, block bool) error
	ProfilePicture(ctx context.Context, inst *store.Instance, jid string) (string, error)
	// SetPresence sets the account's presence: available or unavailable.
	SetPresence(ctx context.Context, inst *store.Instance, presence string) error
	// ApplySettings applies changed instance settings to a live connection.
	ApplySettings(ctx context.Context, inst *store.Instance) error
}
