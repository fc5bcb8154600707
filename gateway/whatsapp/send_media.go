package whatsapp

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/store"
)

var _ channel.MessageSender = (*Channel)(nil)

// voiceMimetype is what WhatsApp plays as a voice note; any other value
// shows "waiting for this message" on the phone.
const voiceMimetype = "audio/ogg; codecs=opus"

// SendMessage sends a message of any kind: it uploads the media, builds
// the protobuf, shows "composing" (or "recording" for a voice note) for
// m.Delay and sends. What was sent is returned rendered as Evolution
// renders messages, so the record names the upload (url, directPath,
// mediaKey) and the attachment can be downloaded again later.
func (c *Channel) SendMessage(ctx context.Context, inst *store.Instance, m *channel.Message) (channel.SentMessage, error) {
	s := c.existing(inst.ID)
	if s == nil {
		return channel.SentMessage{}, errNotConnected
	}
	cl := s.currentClient()
	if !cl.IsLoggedIn() {
		return channel.SentMessage{}, errNotConnected
	}
	to, err := sendTarget(m.To)
	if err != nil {
		return channel.SentMessage{}, err
	}
	content, err := c.build(ctx, inst, cl, to, m)
	if err != nil {
		return channel.SentMessage{}, err
	}
	media := types.ChatPresenceMediaText
	if m.Kind == channel.KindAudio {
		media = types.ChatPresenceMediaAudio
	}
	if m.Status == nil {
		if err := s.typing(ctx, cl, to, m.Delay, media); err != nil {
			return channel.SentMessage{}, err
		}
	}
	id := cl.GenerateMessageID()
	c.sent.add(inst.ID, id)
	resp, err := cl.SendMessage(ctx, to, content, id)
	if err != nil {
		s.log.Warn("whatsapp: send failed", "to", to.String(), "id", id, "kind", m.Kind, "error", err)
		return channel.SentMessage{}, &wagate.Error{Code: wagate.EUPSTREAM, Messages: []string{"WhatsApp did not accept the message"}, Err: err}
	}
	if m.Kind != channel.KindReaction && m.Status == nil {
		s.markRead(ctx, cl, to)
	}
	ts := resp.Timestamp
	if ts.IsZero() {
		ts = time.Now()
	}
	raw, err := evolutionJSON(content)
	if err != nil {
		return channel.SentMessage{}, err
	}
	return channel.SentMessage{
		Sent:        bots.Sent{ID: resp.ID, Status: "SERVER_ACK", Timestamp: ts},
		MessageType: firstField(content),
		Content:     raw,
	}, nil
}

// sendTarget parses and checks the JID a message goes to.
func sendTarget(jid string) (types.JID, error) {
	to, err := types.ParseJID(jid)
	if err != nil || to.User == "" || !sendable[to.Server] {
		return to, wagate.Invalid("number", "not a valid WhatsApp JID (user@s.whatsapp.net, …@lid or …@g.us)")
	}
	if to.Device > 0 {
		return to, wagate.Invalid("number", "is a device JID; send to the user or group JID")
	}
	return to, nil
}

// typing shows a chat presence for delay, then clears it.
func (s *session) typing(ctx context.Context, cl Client, to types.JID, delay time.Duration, media types.ChatPresenceMedia) error {
	if delay <= 0 {
		return nil
	}
	if err := cl.SendChatPresence(ctx, to, types.ChatPresenceComposing, media); err != nil {
		s.log.Debug("whatsapp: composing presence", "error", err)
	}
	t := time.NewTimer(delay)
	defer t.Stop()
	select {
	case <-ctx.Done():
		// Clear "typing…" even though the caller gave up.
		_ = cl.SendChatPresence(context.WithoutCancel(ctx), to, types.ChatPresencePaused, media)
		return ctx.Err()
	case <-t.C:
	}
	if err := cl.SendChatPresence(ctx, to, types.ChatPresencePaused, media); err != nil {
		s.log.Debug("whatsapp: paused presence", "error", err)
	}
	return nil
}

// build makes the protobuf of m, uploading its media.
func (c *Channel) build(ctx context.Context, inst *store.Instance, cl Client, to types.JID, m *channel.Message) (*waE2E.Message, error) {
	ci, err := c.contextFor(ctx, inst, cl, to, m)
	if err != nil {
		return nil, err
	}
	switch m.Kind {
	case channel.KindText:
		if m.Status != nil {
			return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{
				Text:           proto.String(m.Text),
				BackgroundArgb: proto.Uint32(argb(m.Status.BackgroundColor)),
				Font:           waE2E.ExtendedTextMessage_FontType(m.Status.Font).Enum(),
			}}, nil
		}
		if ci == nil && m.Preview == nil {
			return &waE2E.Message{Conversation: proto.String(m.Text)}, nil
		}
		et := &waE2E.ExtendedTextMessage{Text: proto.String(m.Text), ContextInfo: ci}
		if p := m.Preview; p != nil {
			et.MatchedText = proto.String(p.MatchedText)
			et.Title, et.Description = proto.String(p.Title), optString(p.Description)
			et.PreviewType = waE2E.ExtendedTextMessage_NONE.Enum()
			if len(p.Thumbnail) > 0 {
				et.JPEGThumbnail = p.Thumbnail
				et.PreviewType = waE2E.ExtendedTextMessage_IMAGE.Enum()
			}
		}
		return &waE2E.Message{ExtendedTextMessage: et}, nil

	case channel.KindImage, channel.KindVideo, channel.KindDocument, channel.KindAudio, channel.KindSticker:
		return c.buildMedia(ctx, cl, m, ci)

	case channel.KindLocation:
		l := m.Location
		return &waE2E.Message{LocationMessage: &waE2E.LocationMessage{
			DegreesLatitude: proto.Float64(l.Latitude), DegreesLongitude: proto.Float64(l.Longitude),
			Name: optString(l.Name), Address: optString(l.Address), ContextInfo: ci,
		}}, nil

	case channel.KindContact:
		cards := make([]*waE2E.ContactMessage, len(m.Contacts))
		for i, ct := range m.Contacts {
			cards[i] = &waE2E.ContactMessage{DisplayName: proto.String(ct.FullName), Vcard: proto.String(channel.VCard(ct))}
		}
		if len(cards) == 1 {
			cards[0].ContextInfo = ci
			return &waE2E.Message{ContactMessage: cards[0]}, nil
		}
		return &waE2E.Message{ContactsArrayMessage: &waE2E.ContactsArrayMessage{
			DisplayName: proto.String(fmt.Sprintf("%d contacts", len(cards))), Contacts: cards, ContextInfo: ci,
		}}, nil

	case channel.KindReaction:
		r := m.Reaction
		key := &waCommon.MessageKey{RemoteJID: proto.String(r.Key.RemoteJID), FromMe: proto.Bool(r.Key.FromMe), ID: proto.String(r.Key.ID)}
		if r.Key.Participant != "" {
			key.Participant = proto.String(r.Key.Participant)
		}
		return &waE2E.Message{ReactionMessage: &waE2E.ReactionMessage{
			Key: key, Text: proto.String(r.Emoji), SenderTimestampMS: proto.Int64(time.Now().UnixMilli()),
		}}, nil

	case channel.KindPoll:
		p := m.Poll
		opts := make([]*waE2E.PollCreationMessage_Option, len(p.Values))
		for i, v := range p.Values {
			opts[i] = &waE2E.PollCreationMessage_Option{OptionName: proto.String(v)}
		}
		// Votes are encrypted with the poll's secret: without one nobody
		// can vote.
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return nil, fmt.Errorf("poll secret: %w", err)
		}
		return &waE2E.Message{
			PollCreationMessage: &waE2E.PollCreationMessage{
				Name: proto.String(p.Name), Options: opts, SelectableOptionsCount: proto.Uint32(uint32(p.SelectableCount)), ContextInfo: ci,
			},
			MessageContextInfo: &waE2E.MessageContextInfo{MessageSecret: secret},
		}, nil

	case channel.KindList:
		l := m.List
		sections := make([]*waE2E.ListMessage_Section, len(l.Sections))
		for i, sec := range l.Sections {
			rows := make([]*waE2E.ListMessage_Row, len(sec.Rows))
			for j, r := range sec.Rows {
				rows[j] = &waE2E.ListMessage_Row{Title: proto.String(r.Title), Description: optString(r.Description), RowID: proto.String(r.RowID)}
			}
			sections[i] = &waE2E.ListMessage_Section{Title: proto.String(sec.Title), Rows: rows}
		}
		return &waE2E.Message{ListMessage: &waE2E.ListMessage{
			Title: proto.String(l.Title), Description: optString(l.Description), FooterText: optString(l.FooterText),
			ButtonText: proto.String(l.ButtonText), ListType: waE2E.ListMessage_SINGLE_SELECT.Enum(), Sections: sections, ContextInfo: ci,
		}}, nil

	case channel.KindButtons:
		b := m.Buttons
		buttons := make([]*waE2E.ButtonsMessage_Button, len(b.Buttons))
		for i, bt := range b.Buttons {
			buttons[i] = &waE2E.ButtonsMessage_Button{
				ButtonID:   proto.String(bt.ID),
				ButtonText: &waE2E.ButtonsMessage_Button_ButtonText{DisplayText: proto.String(bt.DisplayText)},
				Type:       waE2E.ButtonsMessage_Button_RESPONSE.Enum(),
			}
		}
		return &waE2E.Message{ButtonsMessage: &waE2E.ButtonsMessage{
			Header:      &waE2E.ButtonsMessage_Text{Text: b.Title},
			HeaderType:  waE2E.ButtonsMessage_TEXT.Enum(),
			ContentText: proto.String(b.Description), FooterText: optString(b.Footer), Buttons: buttons, ContextInfo: ci,
		}}, nil
	}
	return nil, wagate.Errorf(wagate.EINVALID, "kind %q cannot be sent on WhatsApp", m.Kind)
}

// buildMedia uploads m's attachment (converting voice notes to Ogg Opus
// and stickers to WebP first) and builds its message.
func (c *Channel) buildMedia(ctx context.Context, cl Client, m *channel.Message, ci *waE2E.ContextInfo) (*waE2E.Message, error) {
	md := m.Media
	data, mimetype := md.Data, md.Mimetype
	var seconds uint32
	kind := map[string]whatsmeow.MediaType{
		channel.KindImage: whatsmeow.MediaImage, channel.KindVideo: whatsmeow.MediaVideo,
		channel.KindDocument: whatsmeow.MediaDocument, channel.KindAudio: whatsmeow.MediaAudio,
		channel.KindSticker: whatsmeow.MediaImage,
	}[m.Kind]
	switch m.Kind {
	case channel.KindAudio:
		if !IsOggOpus(data) {
			var err error
			if data, err = convert(ctx, c.cfg.FFmpeg, data, voiceArgs, "media: converting "+mimetype+" to a voice note"); err != nil {
				return nil, err
			}
		}
		mimetype, seconds = voiceMimetype, OggSeconds(data)
	case channel.KindSticker:
		if !IsWebP(data) {
			var err error
			if data, err = convert(ctx, c.cfg.FFmpeg, data, stickerArgs, "media: converting "+mimetype+" to a WebP sticker"); err != nil {
				return nil, err
			}
		}
		mimetype = "image/webp"
	}
	up, err := cl.Upload(ctx, data, kind)
	if err != nil {
		return nil, &wagate.Error{Code: wagate.EUPSTREAM, Messages: []string{"media: WhatsApp did not accept the upload"}, Err: err}
	}
	url, path, length := proto.String(up.URL), proto.String(up.DirectPath), proto.Uint64(up.FileLength)
	switch m.Kind {
	case channel.KindImage:
		return &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			URL: url, DirectPath: path, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length,
			Mimetype: proto.String(mimetype), Caption: optString(m.Text), ContextInfo: ci,
		}}, nil
	case channel.KindVideo:
		return &waE2E.Message{VideoMessage: &waE2E.VideoMessage{
			URL: url, DirectPath: path, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length,
			Mimetype: proto.String(mimetype), Caption: optString(m.Text), ContextInfo: ci,
		}}, nil
	case channel.KindDocument:
		return &waE2E.Message{DocumentMessage: &waE2E.DocumentMessage{
			URL: url, DirectPath: path, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length,
			Mimetype: proto.String(mimetype), FileName: proto.String(md.FileName), Title: proto.String(md.FileName),
			Caption: optString(m.Text), ContextInfo: ci,
		}}, nil
	case channel.KindAudio:
		return &waE2E.Message{AudioMessage: &waE2E.AudioMessage{
			URL: url, DirectPath: path, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length,
			Mimetype: proto.String(mimetype), PTT: proto.Bool(true), Seconds: proto.Uint32(seconds), ContextInfo: ci,
		}}, nil
	}
	return &waE2E.Message{StickerMessage: &waE2E.StickerMessage{
		URL: url, DirectPath: path, MediaKey: up.MediaKey, FileEncSHA256: up.FileEncSHA256, FileSHA256: up.FileSHA256, FileLength: length,
		Mimetype: proto.String(mimetype), ContextInfo: ci,
	}}, nil
}

// contextFor builds the quote and mentions of m; nil when it has neither.
func (c *Channel) contextFor(ctx context.Context, inst *store.Instance, cl Client, to types.JID, m *channel.Message) (*waE2E.ContextInfo, error) {
	var ci *waE2E.ContextInfo
	if q := m.Quoted; q != nil && m.Kind != channel.KindReaction {
		ci = c.quote(ctx, inst.ID, cl, to, q.ID)
		if ci.QuotedMessage == nil {
			// Not a message the gateway stored: the key says who wrote it.
			switch {
			case q.FromMe:
				ci.Participant = proto.String(cl.OwnJID().ToNonAD().String())
			case q.Participant != "":
				ci.Participant = proto.String(q.Participant)
			case q.RemoteJID != "" && to.Server != types.GroupServer:
				ci.Participant = proto.String(q.RemoteJID)
			}
		}
	}
	var mentions []string
	for _, j := range m.Mentioned {
		mentions = append(mentions, j)
	}
	if m.MentionsEveryOne && to.Server == types.GroupServer {
		g, err := cl.GetGroupInfo(ctx, to)
		if err != nil {
			return nil, &wagate.Error{Code: wagate.EUPSTREAM, Messages: []string{"mentionsEveryOne: could not read the group's participants"}, Err: err}
		}
		for _, p := range g.Participants {
			mentions = append(mentions, p.JID.ToNonAD().String())
		}
	}
	if len(mentions) > 0 {
		if ci == nil {
			ci = &waE2E.ContextInfo{}
		}
		ci.MentionedJID = dedupe(mentions)
	}
	return ci, nil
}

func dedupe(list []string) []string {
	seen := map[string]bool{}
	out := list[:0]
	for _, s := range list {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return proto.String(s)
}

// argb turns #RRGGBB (or #AARRGGBB) into WhatsApp's ARGB; opaque black
// when unset or malformed.
func argb(color string) uint32 {
	hex := strings.TrimPrefix(strings.TrimSpace(color), "#")
	v, err := strconv.ParseUint(hex, 16, 32)
	switch {
	case err != nil:
		return 0xff000000
	case len(hex) == 6:
		return 0xff000000 | uint32(v)
	case len(hex) == 8:
		return uint32(v)
	}
	return 0xff000000
}
