package whatsapp

import (
	"context"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/appstate"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/store"
)

var _ channel.Actions = (*Channel)(nil)

// loggedIn returns the session and client of a connected instance.
func (c *Channel) loggedIn(inst *store.Instance) (*session, Client, error) {
	s := c.existing(inst.ID)
	if s == nil || !s.currentClient().IsLoggedIn() {
		return nil, nil, errNotConnected
	}
	return s, s.currentClient(), nil
}

func upstream(what string, err error) error {
	return &wagate.Error{Code: wagate.EUPSTREAM, Messages: []string{"WhatsApp did not " + what}, Err: err}
}

func (c *Channel) OnWhatsApp(ctx context.Context, inst *store.Instance, numbers []string) ([]channel.NumberInfo, error) {
	_, cl, err := c.loggedIn(inst)
	if err != nil {
		return nil, err
	}
	phones := make([]string, len(numbers))
	for i, n := range numbers {
		phones[i] = "+" + strings.TrimPrefix(n, "+")
	}
	resp, err := cl.IsOnWhatsApp(ctx, phones)
	if err != nil {
		return nil, upstream("answer which numbers have WhatsApp", err)
	}
	out := make([]channel.NumberInfo, len(resp))
	for i, r := range resp {
		out[i] = channel.NumberInfo{Exists: r.IsIn, Number: strings.TrimPrefix(r.Query, "+"), JID: r.JID.String()}
		if !r.IsIn {
			out[i].JID = strings.TrimPrefix(r.Query, "+") + "@" + types.DefaultUserServer
		}
		if r.VerifiedName != nil && r.VerifiedName.Details != nil {
			out[i].Name = r.VerifiedName.Details.GetVerifiedName()
		}
		if r.IsIn && r.JID.Server == types.DefaultUserServer {
			// Known once WhatsApp has told (a message, a usync): the
			// address to match @lid chats and senders against.
			if lid, err := cl.LIDForPN(ctx, r.JID.ToNonAD()); err == nil && !lid.IsEmpty() {
				out[i].LID = lid.ToNonAD().String()
			}
		}
	}
	return out, nil
}

func (c *Channel) MarkRead(ctx context.Context, inst *store.Instance, keys []channel.Key) error {
	_, cl, err := c.loggedIn(inst)
	if err != nil {
		return err
	}
	type target struct{ chat, sender types.JID }
	byTarget := map[target][]types.MessageID{}
	for _, k := range keys {
		chat, err := types.ParseJID(k.RemoteJID)
		if err != nil {
			return wagate.Invalid("readMessages", "remoteJid "+k.RemoteJID+" is not a JID")
		}
		t := target{chat: chat}
		if chat.Server == types.GroupServer && k.Participant != "" {
			t.sender, _ = types.ParseJID(k.Participant)
		}
		byTarget[t] = append(byTarget[t], k.ID)
	}
	for t, ids := range byTarget {
		if err := cl.MarkRead(ctx, ids, time.Now(), t.chat, t.sender); err != nil {
			return upstream("accept the read receipt", err)
		}
	}
	return nil
}

func messageKey(k *channel.Key) *waCommon.MessageKey {
	if k == nil {
		return nil
	}
	key := &waCommon.MessageKey{RemoteJID: proto.String(k.RemoteJID), FromMe: proto.Bool(k.FromMe), ID: proto.String(k.ID)}
	if k.Participant != "" {
		key.Participant = proto.String(k.Participant)
	}
	return key
}

func (c *Channel) Archive(ctx context.Context, inst *store.Instance, chat string, archive bool, last *channel.Key, lastAt time.Time) error {
	return c.sendAppState(ctx, inst, chat, "archive the chat", func(jid types.JID) appstate.PatchInfo {
		return appstate.BuildArchive(jid, archive, lastAt, messageKey(last))
	})
}

func (c *Channel) MarkUnread(ctx context.Context, inst *store.Instance, chat string, last *channel.Key, lastAt time.Time) error {
	return c.sendAppState(ctx, inst, chat, "mark the chat unread", func(jid types.JID) appstate.PatchInfo {
		return appstate.BuildMarkChatAsRead(jid, false, lastAt, messageKey(last))
	})
}

// sendAppState sends the app state patch that build makes for chat; what
// names the action in errors.
func (c *Channel) sendAppState(ctx context.Context, inst *store.Instance, chat, what string, build func(types.JID) appstate.PatchInfo) error {
	_, cl, err := c.loggedIn(inst)
	if err != nil {
		return err
	}
	jid, err := sendTarget(chat)
	if err != nil {
		return err
	}
	if err := cl.SendAppState(ctx, build(jid)); err != nil {
		return upstream(what, err)
	}
	return nil
}

// sendProtocol sends a protocol message (revoke, edit) to chat.
func (c *Channel) sendProtocol(ctx context.Context, inst *store.Instance, chat string, msg *waE2E.Message) (channel.SentMessage, error) {
	s, cl, err := c.loggedIn(inst)
	if err != nil {
		return channel.SentMessage{}, err
	}
	to, err := sendTarget(chat)
	if err != nil {
		return channel.SentMessage{}, err
	}
	id := cl.GenerateMessageID()
	c.sent.add(inst.ID, id)
	resp, err := cl.SendMessage(ctx, to, msg, id)
	if err != nil {
		s.log.Warn("whatsapp: protocol message failed", "to", to.String(), "error", err)
		return channel.SentMessage{}, upstream("accept the message", err)
	}
	raw, err := evolutionJSON(msg)
	if err != nil {
		return channel.SentMessage{}, err
	}
	ts := resp.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	return channel.SentMessage{Sent: bots.Sent{ID: resp.ID, Status: "SERVER_ACK", Timestamp: ts}, MessageType: firstField(msg), Content: raw}, nil
}

func (c *Channel) Revoke(ctx context.Context, inst *store.Instance, key channel.Key) (channel.SentMessage, error) {
	msg := &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: messageKey(&key)}}
	return c.sendProtocol(ctx, inst, key.RemoteJID, msg)
}

func (c *Channel) Edit(ctx context.Context, inst *store.Instance, key channel.Key, text string) (channel.SentMessage, error) {
	msg := &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
		Type:          waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(),
		Key:           messageKey(&channel.Key{ID: key.ID, RemoteJID: key.RemoteJID, FromMe: true}),
		EditedMessage: &waE2E.Message{Conversation: proto.String(text)},
		TimestampMS:   proto.Int64(time.Now().UnixMilli()),
	}}}}
	return c.sendProtocol(ctx, inst, key.RemoteJID, msg)
}

func (c *Channel) ChatPresence(ctx context.Context, inst *store.Instance, chat, presence string, d time.Duration) error {
	s, cl, err := c.loggedIn(inst)
	if err != nil {
		return err
	}
	to, err := sendTarget(chat)
	if err != nil {
		return err
	}
	media := types.ChatPresenceMediaText
	if presence == "recording" {
		media = types.ChatPresenceMediaAudio
	}
	if presence == "paused" {
		return cl.SendChatPresence(ctx, to, types.ChatPresencePaused, media)
	}
	return s.typing(ctx, cl, to, d, media)
}

func (c *Channel) Block(ctx context.Context, inst *store.Instance, jid string, block bool) error {
	_, cl, err := c.loggedIn(inst)
	if err != nil {
		return err
	}
	to, err := sendTarget(jid)
	if err != nil {
		return err
	}
	action := events.BlocklistChangeActionUnblock
	if block {
		action = events.BlocklistChangeActionBlock
	}
	if _, err := cl.UpdateBlocklist(ctx, to, action); err != nil {
		return upstream("change the block list", err)
	}
	return nil
}

// ProfilePicture returns the URL of jid's profile picture, "" when it has
// none or hides it.
func (c *Channel) ProfilePicture(ctx context.Context, inst *store.Instance, jid string) (string, error) {
	_, cl, err := c.loggedIn(inst)
	if err != nil {
		return "", err
	}
	to, err := sendTarget(jid)
	if err != nil {
		return "", err
	}
	info, err := cl.GetProfilePictureInfo(ctx, to, &whatsmeow.GetProfilePictureParams{})
	switch {
	case err == whatsmeow.ErrProfilePictureUnauthorized || err == whatsmeow.ErrProfilePictureNotSet:
		return "", nil
	case err != nil:
		return "", upstream("return the profile picture", err)
	case info == nil:
		return "", nil
	}
	return info.URL, nil
}

func (c *Channel) SetPresence(ctx context.Context, inst *store.Instance, presence string) error {
	_, cl, err := c.loggedIn(inst)
	if err != nil {
		return err
	}
	p := types.PresenceUnavailable
	if presence == "available" {
		p = types.PresenceAvailable
	}
	if err := cl.SendPresence(ctx, p); err != nil {
		if err == whatsmeow.ErrNoPushName {
			return wagate.Errorf(wagate.ECONFLICT, "WhatsApp has not sent the account's profile name yet; try again in a moment")
		}
		return upstream("accept the presence", err)
	}
	return nil
}

// ApplySettings makes a connected instance use inst's settings at once:
// the session reads them per message, and alwaysOnline sets the presence.
func (c *Channel) ApplySettings(ctx context.Context, inst *store.Instance) error {
	s := c.existing(inst.ID)
	if s == nil {
		return nil
	}
	s.mu.Lock()
	s.inst = inst
	s.mu.Unlock()
	cl := s.currentClient()
	if !cl.IsLoggedIn() {
		return nil
	}
	p := types.PresenceUnavailable
	if inst.Settings.AlwaysOnline {
		p = types.PresenceAvailable
	}
	if err := cl.SendPresence(ctx, p); err != nil {
		s.log.Debug("whatsapp: presence for alwaysOnline", "error", err)
	}
	return nil
}
