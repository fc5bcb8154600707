package api

import (
	"time"

	"github.com/wagate/wagate/store"
)

// SessionView is a bot session as the API shows it, in the OpenAI bot
// routes and with a conversation.
type SessionView struct {
	ID          string     `json:"id"`
	BotID       string     `json:"botId"`
	RemoteJID   string     `json:"remoteJid"`
	PushName    string     `json:"pushName"`
	Status      string     `json:"status"`
	PausedUntil *time.Time `json:"pausedUntil,omitempty"`
	CloseReason string     `json:"closeReason,omitempty"`
	Reason      string     `json:"reason,omitempty"`
	CreatedAt   time.Time  `json:"createdAt"`
	UpdatedAt   time.Time  `json:"updatedAt"`
	ClosedAt    *time.Time `json:"closedAt,omitempty"`
}

// ViewSession returns s as the API shows it.
func ViewSession(s *store.Session) SessionView {
	v := SessionView{
		ID: s.ID, BotID: s.BotID, RemoteJID: s.RemoteJID, PushName: s.PushName, Status: s.Status,
		CloseReason: s.CloseReason, Reason: s.Reason, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt,
	}
	if !s.PausedUntil.IsZero() {
		v.PausedUntil = &s.PausedUntil
	}
	if !s.ClosedAt.IsZero() {
		v.ClosedAt = &s.ClosedAt
	}
	return v
}
