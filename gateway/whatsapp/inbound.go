package whatsapp

import (
	"encoding/json"
	"fmt"
	"time"
	"unicode"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/wagate/wagate/bots"
)

// Why the engine must not answer a message (bots.Inbound.Ignore).
const (
	ignoreStatus      = "status broadcast"
	ignoreBroadcast   = "broadcast list"
	ignoreNewsletter  = "newsletter post"
	ignoreReaction    = "reaction"
	ignoreEdit        = "edit of an earlier message"
	ignoreRevoke      = "deletion of an earlier message"
	ignorePoll        = "poll"
	ignorePollVote    = "poll vote"
	ignoreUnsupported = "unsupported message kind"
	ignoreEcho        = "echo of a message the gateway sent"
)

// maxClockSkew is how far ahead of the gateway's clock a message's
// timestamp may be.
const maxClockSkew = 24 * time.Hour

// own is the instance's own account in both address forms, without device.
type own struct{ pn, lid types.JID }

func (o own) is(jid types.JID) bool {
	switch jid.Server {
	case types.DefaultUserServer:
		return o.pn.User != "" && jid.User == o.pn.User
	case types.HiddenUserServer:
		return o.lid.User != "" && jid.User == o.lid.User
	}
	return false
}

// translate turns a whatsmeow message event into the gateway's inbound
// message and Evolution-shaped content (the message object as Baileys would
// render it). drop reports events that are not messages anyone should see:
// protocol traffic between the account's own devices (key shares, history
// sync notices, …) and empty envelopes. What needs the database (echoes,
// replies to stored sends, LID mapping) is settled by the caller.
func translate(evt *events.Message, me own) (in bots.Inbound, content json.RawMessage, drop bool, err error) {
	msg := evt.Message
	if msg == nil {
		return in, nil, true, nil
	}
	info := evt.Info
	in = bots.Inbound{
		MessageID: info.ID,
		ChatJID:   info.Chat.String(),
		SenderJID: info.Chat.String(),
		FromMe:    info.IsFromMe,
		PushName:  info.PushName,
		IsGroup:   info.Chat.Server == types.GroupServer,
		Timestamp: info.Timestamp,
	}
	if now := time.Now(); in.Timestamp.IsZero() || in.Timestamp.After(now.Add(maxClockSkew)) {
		// A stanza without its t attribute, or a sender's clock far ahead:
		// the time it reached us is the best there is.
		in.Timestamp = now
	}
	if in.IsGroup {
		in.SenderJID = info.Sender.ToNonAD().String()
	}

	kind, drop := classify(evt, &in)
	if drop {
		return in, nil, true, nil
	}
	in.MessageType = kind

	switch {
	case info.Chat == types.StatusBroadcastJID:
		in.Ignore = ignoreStatus
	case info.Chat.Server == types.BroadcastServer:
		in.Ignore = ignoreBroadcast
	case info.Chat.Server == types.NewsletterServer:
		in.Ignore = ignoreNewsletter
	}

	if ci := contextInfo(msg); ci != nil {
		in.QuotedID = ci.GetStanzaID()
		if in.QuotedID != "" {
			if p, err := types.ParseJID(ci.GetParticipant()); err == nil && me.is(p) {
				in.RepliesToMe = true
			}
		}
		for _, m := range ci.GetMentionedJID() {
			if j, err := types.ParseJID(m); err == nil && me.is(j) {
				in.MentionsMe = true
			}
		}
	}

	content, err = evolutionJSON(msg)
	return in, content, false, err
}

// classify finds the message's kind (Evolution's messageType), its text and
// media, and whether the engine must leave it alone.
func classify(evt *events.Message, in *bots.Inbound) (kind string, drop bool) {
	m := evt.Message
	if evt.IsEdit || evt.Info.Edit == types.EditAttributeMessageEdit {
		in.Ignore = ignoreEdit
		return "editedMessage", false
	}
	if evt.Info.Edit == types.EditAttributeSenderRevoke || evt.Info.Edit == types.EditAttributeAdminRevoke {
		in.Ignore = ignoreRevoke
		return "protocolMessage", false
	}
	switch {
	case m.Conversation != nil:
		in.Text = m.GetConversation()
		return "conversation", false
	case m.ExtendedTextMessage != nil:
		in.Text = m.GetExtendedTextMessage().GetText()
		return "extendedTextMessage", false
	case m.ImageMessage != nil:
		im := m.GetImageMessage()
		in.Text = im.GetCaption()
		in.Media = &bots.Media{Kind: "image", Mimetype: im.GetMimetype(), Size: int64(im.GetFileLength())}
		return "imageMessage", false
	case m.VideoMessage != nil, m.PtvMessage != nil:
		kind, v := "videoMessage", m.GetVideoMessage()
		if v == nil {
			kind, v = "ptvMessage", m.GetPtvMessage() // a round video note
		}
		in.Text = v.GetCaption()
		in.Media = &bots.Media{Kind: "video", Mimetype: v.GetMimetype(), Size: int64(v.GetFileLength()), Seconds: int(v.GetSeconds())}
		return kind, false
	case m.AudioMessage != nil:
		a := m.GetAudioMessage()
		in.Media = &bots.Media{Kind: "audio", Mimetype: a.GetMimetype(), Size: int64(a.GetFileLength()), Seconds: int(a.GetSeconds()), Voice: a.GetPTT()}
		return "audioMessage", false
	case m.DocumentMessage != nil:
		d := m.GetDocumentMessage()
		in.Text = d.GetCaption()
		in.Media = &bots.Media{Kind: "document", Mimetype: d.GetMimetype(), FileName: d.GetFileName(), Size: int64(d.GetFileLength())}
		return "documentMessage", false
	case m.StickerMessage != nil:
		s := m.GetStickerMessage()
		in.Media = &bots.Media{Kind: "sticker", Mimetype: s.GetMimetype(), Size: int64(s.GetFileLength())}
		return "stickerMessage", false
	case m.LocationMessage != nil:
		return "locationMessage", false
	case m.LiveLocationMessage != nil:
		return "liveLocationMessage", false
	case m.ContactMessage != nil:
		return "contactMessage", false
	case m.ContactsArrayMessage != nil:
		return "contactsArrayMessage", false
	case m.ButtonsResponseMessage != nil:
		in.Text = m.GetButtonsResponseMessage().GetSelectedDisplayText()
		return "buttonsResponseMessage", false
	case m.ListResponseMessage != nil:
		in.Text = m.GetListResponseMessage().GetTitle()
		return "listResponseMessage", false
	case m.TemplateButtonReplyMessage != nil:
		in.Text = m.GetTemplateButtonReplyMessage().GetSelectedDisplayText()
		return "templateButtonReplyMessage", false
	case m.ReactionMessage != nil, m.EncReactionMessage != nil:
		in.Ignore = ignoreReaction
		return "reactionMessage", false
	case m.PollUpdateMessage != nil:
		in.Ignore = ignorePollVote
		return "pollUpdateMessage", false
	case m.PollCreationMessage != nil, m.PollCreationMessageV2 != nil, m.PollCreationMessageV3 != nil, m.PollCreationMessageV5 != nil:
		in.Ignore = ignorePoll
		return "pollCreationMessage", false
	case m.ProtocolMessage != nil:
		switch m.GetProtocolMessage().GetType() {
		case waE2E.ProtocolMessage_REVOKE:
			in.Ignore = ignoreRevoke
			return "protocolMessage", false
		case waE2E.ProtocolMessage_MESSAGE_EDIT:
			in.Ignore = ignoreEdit
			return "editedMessage", false
		}
		return "", true // key shares, history sync notices, ephemeral settings, …
	}
	if !hasContent(m) {
		return "", true // e.g. only a sender key distribution for a later group message
	}
	in.Ignore = ignoreUnsupported
	return firstField(m), false
}

// hasContent reports whether m carries anything besides the envelope
// fields whatsmeow needs for decryption.
func hasContent(m *waE2E.Message) bool {
	return firstField(m) != ""
}

// firstField names the first set field of m other than envelope fields,
// as Evolution names an unknown message type by its key.
func firstField(m *waE2E.Message) string {
	var name string
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		switch fd.Name() {
		case "messageContextInfo", "senderKeyDistributionMessage", "fastRatchetKeySenderKeyDistributionMessage":
			return true
		}
		name = fd.JSONName()
		return false
	})
	return name
}

// contextInfo returns the context info (quote, mentions) of whichever part
// of m carries one: text, any media, buttons, …
func contextInfo(m *waE2E.Message) *waE2E.ContextInfo {
	var ci *waE2E.ContextInfo
	m.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Kind() != protoreflect.MessageKind || fd.IsList() || fd.IsMap() {
			return true
		}
		sub := v.Message()
		f := sub.Descriptor().Fields().ByName("contextInfo")
		if f == nil || !sub.Has(f) {
			return true
		}
		c, ok := sub.Get(f).Message().Interface().(*waE2E.ContextInfo)
		if ok {
			ci = c
		}
		return !ok
	})
	return ci
}

// evolutionJSON renders m as Evolution (through Baileys) reports messages:
// protobuf JSON with Baileys' field names, which spell initialisms as words
// (stanzaId, mentionedJid, url, fileSha256) where whatsmeow's protobufs
// spell them in capitals (stanzaID, mentionedJID, URL, fileSHA256).
// Clients that read message.extendedTextMessage.contextInfo.stanzaId keep
// working.
func evolutionJSON(m *waE2E.Message) (json.RawMessage, error) {
	raw, err := protojson.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("message to JSON: %w", err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, fmt.Errorf("message to JSON: %w", err)
	}
	return json.Marshal(renameKeys(v))
}

func renameKeys(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			out[baileysKey(k)] = renameKeys(val)
		}
		return out
	case []any:
		for i := range x {
			x[i] = renameKeys(x[i])
		}
	}
	return v
}

// baileysKey spells the initialisms in a whatsmeow JSON name as Baileys
// does: a run of capitals is one word ("fileSHA256" → "fileSha256"), all
// lower case at the start ("JPEGThumbnail" → "jpegThumbnail"); a capital
// that begins a lower-case word stays ("mediaKey").
func baileysKey(k string) string {
	r := []rune(k)
	out := make([]rune, 0, len(r))
	for i := 0; i < len(r); {
		if !unicode.IsUpper(r[i]) {
			out = append(out, r[i])
			i++
			continue
		}
		j := i
		for j < len(r) && unicode.IsUpper(r[j]) {
			j++
		}
		end := j
		if j < len(r) && unicode.IsLower(r[j]) && j-i > 1 {
			end = j - 1 // the last capital begins the next word
		}
		for p := i; p < end; p++ {
			if p == i && i > 0 {
				out = append(out, r[p])
			} else {
				out = append(out, unicode.ToLower(r[p]))
			}
		}
		i = end
	}
	return string(out)
}
