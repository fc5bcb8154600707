package whatsapp

import (
	"context"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/store"
)

// Send shows "composing" in the chat for msg.Delay, then sends the text
// (quoting msg.QuotedID when set) and waits for WhatsApp's server ack. The
// id is chosen before sending and remembered, so an echo of this message is
// recognised even before the gateway has recorded it; msg.ID (the gateway's
// UUID) is not a WhatsApp message id and is not used.
func (c *Channel) Send(ctx context.Context, instanceID string, msg bots.Outbound) (bots.Sent, error) {
	s := c.existing(instanceID)
	if s == nil {
		return bots.Sent{}, errNotConnected
	}
	return c.send(ctx, s, msg)
}

func (c *Channel) send(ctx context.Context, s *session, msg bots.Outbound) (bots.Sent, error) {
	cl := s.currentClient()
	if !cl.IsLoggedIn() {
		return bots.Sent{}, errNotConnected
	}
	to, err := sendTarget(msg.ChatJID)
	if err != nil {
		return bots.Sent{}, err
	}
	inst := s.instance()

	if err := s.typing(ctx, cl, to, msg.Delay, types.ChatPresenceMediaText); err != nil {
		return bots.Sent{}, err
	}
	if msg.BeforeSend != nil {
		// Once this is committed a crash leaves the message as maybe
		// sent, and it is not sent again.
		if err := msg.BeforeSend(ctx); err != nil {
			return bots.Sent{}, err
		}
	}

	content := &waE2E.Message{Conversation: proto.String(msg.Text)}
	if msg.QuotedID != "" {
		content = &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
			Text:        proto.String(msg.Text),
			ContextInfo: c.quote(ctx, inst.ID, cl, to, msg.QuotedID),
		}}
	}
	id := cl.GenerateMessageID()
	c.sent.add(inst.ID, id)
	resp, err := cl.SendMessage(ctx, to, content, id)
	if err != nil {
		s.log.Warn("whatsapp: send failed", "to", to.String(), "id", id, "error", err)
		return bots.Sent{}, &wagate.Error{Code: wagate.EUPSTREAM, Messages: []string{"WhatsApp did not accept the message"}, Err: err}
	}
	s.markRead(ctx, cl, to)
	ts := resp.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	return bots.Sent{ID: resp.ID, Status: "SERVER_ACK", Timestamp: ts}, nil
}

// sendable are the servers of JIDs a message can go to.
var sendable = map[string]bool{
	types.DefaultUserServer: true, types.HiddenUserServer: true, types.GroupServer: true,
	types.BroadcastServer: true, types.NewsletterServer: true,
}

// quote builds the context of a reply to quotedID. WhatsApp shows a quote
// from the quoted message's sender and a copy of its content, so both come
// from the stored message when there is one; otherwise the quote carries
// only the id (and, in a 1:1 chat, the other party as its sender).
func (c *Channel) quote(ctx context.Context, instanceID string, cl Client, to types.JID, quotedID string) *waE2E.ContextInfo {
	ci := &waE2E.ContextInfo{StanzaID: proto.String(quotedID)}
	m, err := c.store.Message(ctx, instanceID, quotedID, store.Inbound)
	if err != nil {
		m, err = c.store.Message(ctx, instanceID, quotedID, store.Outbound)
	}
	if err != nil {
		if to.Server != types.GroupServer {
			ci.Participant = proto.String(to.String())
		}
		return ci
	}
	participant := m.RemoteJID
	switch {
	case m.FromMe:
		participant = cl.OwnJID().ToNonAD().String()
	case m.Participant != "":
		participant = m.Participant
	}
	ci.Participant = proto.String(participant)
	ci.QuotedMessage = &waE2E.Message{Conversation: proto.String(m.Text)}
	return ci
}

// markRead marks the chat's messages read once the instance has answered
// in it, when the instance's readMessages setting asks for it: the
// customer sees the blue ticks with the reply, not before.
func (s *session) markRead(ctx context.Context, cl Client, chat types.JID) {
	s.mu.Lock()
	pending := s.unread[chat]
	delete(s.unread, chat)
	s.mu.Unlock()
	bySender := map[types.JID][]types.MessageID{}
	for _, u := range pending {
		bySender[u.sender] = append(bySender[u.sender], u.id)
	}
	for sender, ids := range bySender {
		if chat.Server != types.GroupServer {
			sender = types.EmptyJID // only group receipts name the sender
		}
		if err := cl.MarkRead(ctx, ids, time.Now(), chat, sender); err != nil {
			s.log.Debug("whatsapp: mark read", "error", err)
		}
	}
}
