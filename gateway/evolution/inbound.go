package evolution

import (
	"encoding/json"
	"strings"
	"time"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
)

// Payload is the body of POST /webhook/evolution, in Evolution's shape.
// Fields Evolution senders add beyond these (profilePicUrl, source, …) are
// accepted and ignored.
type Payload struct {
	NumberID         string          `json:"numberId"`
	Key              *Key            `json:"key"`
	PushName         string          `json:"pushName"`
	Message          json.RawMessage `json:"message"`
	MessageType      string          `json:"messageType"`
	MessageTimestamp int64           `json:"messageTimestamp"`
	ContextInfo      *ContextInfo    `json:"contextInfo"`
}

// Key identifies a message: its id, its chat and who sent it.
type Key struct {
	ID          string `json:"id"`
	RemoteJID   string `json:"remoteJid"`
	FromMe      bool   `json:"fromMe"`
	Participant string `json:"participant,omitempty"` // the sender, in groups
}

// ContextInfo carries mentions and the quoted message, at the top level or
// inside the message as WhatsApp puts it.
type ContextInfo struct {
	MentionedJID []string `json:"mentionedJid,omitempty"`
	StanzaID     string   `json:"stanzaId,omitempty"`
}

// messageKinds are the message keys wagate knows, in the order used to pick
// a message's type when the sender did not say.
var messageKinds = []string{
	"conversation", "extendedTextMessage", "imageMessage", "videoMessage", "audioMessage", "documentMessage",
	"documentWithCaptionMessage", "stickerMessage", "locationMessage", "liveLocationMessage", "contactMessage",
	"contactsArrayMessage", "reactionMessage", "protocolMessage", "editedMessage", "pollCreationMessage",
	"pollUpdateMessage", "buttonsResponseMessage", "listResponseMessage", "templateButtonReplyMessage",
}

const maxIDLen = 256

// Bounds of messageTimestamp. Senders use unix seconds (Baileys) or
// milliseconds (many others): a value from msThreshold up is read as
// milliseconds, as seconds it would be after the year 5138 and as
// milliseconds it is after 1973. A timestamp more than maxFuture ahead of
// the gateway's clock is refused rather than stored: it would sort the
// chat's messages wrongly forever, and before these checks one could not
// even be shown (a year past 9999 has no JSON form).
const (
	msThreshold = 100_000_000_000
	maxFuture   = 24 * time.Hour
)

// Parsed is a validated inbound message: the channel-neutral form for the
// engine plus what is stored and reported.
type Parsed struct {
	Inbound bots.Inbound
	Content json.RawMessage // the message object as received
}

// Parse validates p and converts it. ownNumber is the instance's number, to
// recognise mentions of the instance. A missing key.id is left empty for the
// caller to assign.
func (p *Payload) Parse(ownNumber string) (*Parsed, error) {
	var problems wagate.Problems
	if strings.TrimSpace(p.NumberID) == "" {
		problems.Add("numberId", "required")
	}
	if p.Key == nil {
		problems.Add("key", "required")
	} else {
		// The chat routes must be able to name every chat stored: the same
		// rule as theirs, a JID or a phone number made one.
		var problem string
		if p.Key.RemoteJID, problem = NormalizeJID(p.Key.RemoteJID); problem != "" {
			problems.Add("key.remoteJid", problem)
		}
		if p.Key.Participant != "" {
			if p.Key.Participant, problem = NormalizeJID(p.Key.Participant); problem != "" {
				problems.Add("key.participant", problem)
			}
		}
		if len(p.Key.ID) > maxIDLen {
			problems.Add("key.id", "longer than 256 characters")
		}
	}
	now := time.Now()
	ts, problem := messageTime(p.MessageTimestamp, now)
	if problem != "" {
		problems.Add("messageTimestamp", problem)
	}
	content, kind, text, ctxInfo := p.message(&problems)
	if err := problems.Err(); err != nil {
		return nil, err
	}
	if p.ContextInfo != nil {
		ctxInfo = p.ContextInfo
	}
	messageType := p.MessageType
	if messageType == "" {
		messageType = kind
	}
	chat := p.Key.RemoteJID
	in := bots.Inbound{
		MessageID:   p.Key.ID,
		ChatJID:     chat,
		SenderJID:   chat,
		FromMe:      p.Key.FromMe,
		PushName:    p.PushName,
		MessageType: messageType,
		Text:        text,
		IsGroup:     strings.HasSuffix(chat, "@g.us"),
		Timestamp:   ts,
	}
	if in.IsGroup && p.Key.Participant != "" {
		in.SenderJID = p.Key.Participant
	}
	if ctxInfo != nil {
		in.QuotedID = ctxInfo.StanzaID
		own := user(ownNumber)
		for _, jid := range ctxInfo.MentionedJID {
			if own != "" && user(jid) == own {
				in.MentionsMe = true
			}
		}
	}
	return &Parsed{Inbound: in, Content: content}, nil
}

// message checks the message object and extracts its kind, its text (or
// caption) and its context info.
func (p *Payload) message(problems *wagate.Problems) (content json.RawMessage, kind, text string, ci *ContextInfo) {
	if len(p.Message) == 0 || string(p.Message) == "null" {
		problems.Add("message", "required")
		return
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(p.Message, &fields); err != nil {
		problems.Add("message", "must be an object")
		return
	}
	for _, k := range messageKinds {
		if _, ok := fields[k]; ok {
			kind = k
			break
		}
	}
	if kind == "" {
		for k := range fields {
			if kind == "" || k < kind { // deterministic for unknown kinds
				kind = k
			}
		}
	}
	if kind == "" {
		problems.Add("message", "must hold a message, e.g. {\"conversation\":\"hi\"}")
		return
	}
	switch kind {
	case "conversation":
		if err := json.Unmarshal(fields[kind], &text); err != nil {
			problems.Add("message.conversation", "must be a string")
			return
		}
		if strings.TrimSpace(text) == "" {
			problems.Add("message.conversation", "must not be empty")
			return
		}
	default:
		var body struct {
			Text        *string      `json:"text"`
			Caption     string       `json:"caption"`
			ContextInfo *ContextInfo `json:"contextInfo"`
		}
		if err := json.Unmarshal(fields[kind], &body); err != nil {
			problems.Add("message."+kind, "must be an object with valid fields")
			return
		}
		if kind == "extendedTextMessage" && (body.Text == nil || strings.TrimSpace(*body.Text) == "") {
			problems.Add("message.extendedTextMessage.text", "required")
			return
		}
		text, ci = body.Caption, body.ContextInfo
		if body.Text != nil {
			text = *body.Text
		}
	}
	return p.Message, kind, text, ci
}

// messageTime reads a messageTimestamp: unix seconds, or milliseconds by
// magnitude; none (0) is now. It returns the problem with v instead when v
// cannot be a time a message was sent.
func messageTime(v int64, now time.Time) (time.Time, string) {
	var t time.Time
	switch {
	case v == 0:
		return now, ""
	case v < 0:
		return t, "must be unix time in seconds or milliseconds, not negative"
	case v >= msThreshold:
		t = time.UnixMilli(v)
	default:
		t = time.Unix(v, 0)
	}
	if t.After(now.Add(maxFuture)) {
		return time.Time{}, "more than a day in the future; send unix time in seconds or milliseconds"
	}
	return t, ""
}

// user is the user part of a JID ("5511@s.whatsapp.net" → "5511"), without
// a device suffix.
func user(jid string) string {
	u, _, _ := strings.Cut(jid, "@")
	u, _, _ = strings.Cut(u, ":")
	return u
}
