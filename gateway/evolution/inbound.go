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

const (
	maxIDLen  = 256
	maxJIDLen = 256
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
		if strings.TrimSpace(p.Key.RemoteJID) == "" {
			problems.Add("key.remoteJid", "required")
		} else if len(p.Key.RemoteJID) > maxJIDLen {
			problems.Add("key.remoteJid", "longer than 256 characters")
		}
		if len(p.Key.ID) > maxIDLen {
			problems.Add("key.id", "longer than 256 characters")
		}
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
	ts := time.Now()
	if p.MessageTimestamp > 0 {
		ts = time.Unix(p.MessageTimestamp, 0)
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

// user is the user part of a JID ("5511@s.whatsapp.net" → "5511"), without
// a device suffix.
func user(jid string) string {
	u, _, _ := strings.Cut(jid, "@")
	u, _, _ = strings.Cut(u, ":")
	return u
}
