package whatsapp

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wagate/wagate/store"
)

// keyJID names a person by the phone-number JID when whatsmeow knows it for
// a LID, as the conversations do (see chatKey); pn is the mapping the event
// itself carries, if any. It returns "" for JIDs that name nobody's chat
// (status, broadcast lists, newsletters).
func (s *session) keyJID(ctx context.Context, cl Client, raw, pn string) string {
	jid, err := types.ParseJID(raw)
	if err != nil || jid.IsEmpty() {
		return ""
	}
	switch jid.Server {
	case types.BroadcastServer, types.NewsletterServer:
		return ""
	case types.HiddenUserServer:
		if p, err := types.ParseJID(pn); err == nil && p.Server == types.DefaultUserServer {
			return p.ToNonAD().String()
		}
		if p, err := cl.PNForLID(ctx, jid.ToNonAD()); err == nil && !p.IsEmpty() {
			return p.ToNonAD().String()
		}
	}
	return jid.ToNonAD().String()
}

// contact records a change to the account's address book.
func (s *session) contact(ctx context.Context, e *events.Contact) {
	cl := s.currentClient()
	jid := s.keyJID(ctx, cl, e.JID.String(), e.Action.GetPnJID())
	name := e.Action.GetFullName()
	if name == "" {
		name = e.Action.GetFirstName()
	}
	if jid == "" || name == "" {
		return
	}
	if err := s.c.host.Contacts(ctx, s.instance(), []store.Contact{{JID: jid, FullName: name}}); err != nil {
		s.log.Error("whatsapp: record contact", "error", err)
	}
}

// historySync records the chats and push names a history sync lists; the
// messages in it are the phone's past, which the gateway does not replay
// to its bots.
func (s *session) historySync(ctx context.Context, e *events.HistorySync) {
	cl, inst := s.currentClient(), s.instance()
	var chats []store.ChatInfo
	for _, conv := range e.Data.GetConversations() {
		jid := s.keyJID(ctx, cl, conv.GetID(), conv.GetPnJID())
		if jid == "" {
			continue
		}
		name := conv.GetName()
		if name == "" {
			name = conv.GetDisplayName()
		}
		c := store.ChatInfo{JID: jid, Name: name, Unread: int(conv.GetUnreadCount()), Archived: conv.GetArchived()}
		if ts := conv.GetConversationTimestamp(); ts > 0 {
			c.LastAt = time.Unix(int64(ts), 0)
		}
		chats = append(chats, c)
	}
	var contacts []store.Contact
	for _, p := range e.Data.GetPushnames() {
		if jid := s.keyJID(ctx, cl, p.GetID(), ""); jid != "" && p.GetPushname() != "" {
			contacts = append(contacts, store.Contact{JID: jid, PushName: p.GetPushname()})
		}
	}
	if len(chats) > 0 {
		if err := s.c.host.Chats(ctx, inst, chats); err != nil {
			s.log.Error("whatsapp: record history sync chats", "chats", len(chats), "error", err)
		}
	}
	if len(contacts) > 0 {
		if err := s.c.host.Contacts(ctx, inst, contacts); err != nil {
			s.log.Error("whatsapp: record history sync contacts", "contacts", len(contacts), "error", err)
		}
	}
}
