package evolution

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/store"
)

var _ channel.MessageSender = Channel{}

// SendMessage accepts a message of any kind. The external system receives
// it as the send.message event, so the message object carries everything:
// the media itself in message.base64 (and its source URL when it was given
// by URL), in the shape Evolution reports media with base64 on.
func (ch Channel) SendMessage(ctx context.Context, inst *store.Instance, m *channel.Message) (channel.SentMessage, error) {
	kind, body, err := content(m)
	if err != nil {
		return channel.SentMessage{}, err
	}
	msg := map[string]any{kind: body}
	if kind == "conversation" {
		msg[kind] = m.Text
	}
	if m.Media != nil {
		msg["base64"] = base64.StdEncoding.EncodeToString(m.Media.Data)
	}
	raw, err := json.Marshal(msg)
	if err != nil {
		return channel.SentMessage{}, err
	}
	sent, err := ch.Send(ctx, inst.ID, outboundOf(m))
	if err != nil {
		return channel.SentMessage{}, err
	}
	return channel.SentMessage{Sent: sent, MessageType: kind, Content: raw}, nil
}

// content renders m as Baileys' message object: its messageType and body.
func content(m *channel.Message) (string, map[string]any, error) {
	ci := contextInfo(m)
	with := func(body map[string]any) map[string]any {
		if ci != nil {
			body["contextInfo"] = ci
		}
		return body
	}
	switch m.Kind {
	case channel.KindText:
		if m.Status != nil {
			return "extendedTextMessage", map[string]any{"text": m.Text, "backgroundColor": m.Status.BackgroundColor, "font": m.Status.Font}, nil
		}
		if ci == nil && m.Preview == nil {
			return "conversation", nil, nil
		}
		body := map[string]any{"text": m.Text}
		if p := m.Preview; p != nil {
			body["matchedText"], body["title"] = p.MatchedText, p.Title
			if p.Description != "" {
				body["description"] = p.Description
			}
			if len(p.Thumbnail) > 0 {
				body["jpegThumbnail"] = p.Thumbnail // base64 in JSON, as Baileys renders bytes
			}
		}
		return "extendedTextMessage", with(body), nil
	case channel.KindImage, channel.KindVideo, channel.KindDocument, channel.KindAudio, channel.KindSticker:
		md := m.Media
		body := map[string]any{"mimetype": md.Mimetype, "fileLength": strconv.Itoa(len(md.Data))}
		if md.URL != "" {
			body["url"] = md.URL
		}
		switch m.Kind {
		case channel.KindDocument:
			body["fileName"], body["title"] = md.FileName, md.FileName
		case channel.KindAudio:
			body["ptt"] = true
		}
		if m.Text != "" && m.Kind != channel.KindAudio && m.Kind != channel.KindSticker {
			body["caption"] = m.Text
		}
		return m.Kind + "Message", with(body), nil
	case channel.KindLocation:
		l := m.Location
		return "locationMessage", with(map[string]any{"degreesLatitude": l.Latitude, "degreesLongitude": l.Longitude, "name": l.Name, "address": l.Address}), nil
	case channel.KindContact:
		cards := make([]map[string]any, len(m.Contacts))
		for i, c := range m.Contacts {
			cards[i] = map[string]any{"displayName": c.FullName, "vcard": channel.VCard(c)}
		}
		if len(cards) == 1 {
			return "contactMessage", with(cards[0]), nil
		}
		return "contactsArrayMessage", with(map[string]any{"displayName": fmt.Sprintf("%d contacts", len(cards)), "contacts": cards}), nil
	case channel.KindReaction:
		return "reactionMessage", map[string]any{"key": m.Reaction.Key, "text": m.Reaction.Emoji}, nil
	case channel.KindPoll:
		opts := make([]map[string]string, len(m.Poll.Values))
		for i, v := range m.Poll.Values {
			opts[i] = map[string]string{"optionName": v}
		}
		return "pollCreationMessage", with(map[string]any{"name": m.Poll.Name, "options": opts, "selectableOptionsCount": m.Poll.SelectableCount}), nil
	case channel.KindList:
		l := m.List
		sections := make([]map[string]any, len(l.Sections))
		for i, s := range l.Sections {
			rows := make([]map[string]string, len(s.Rows))
			for j, r := range s.Rows {
				rows[j] = map[string]string{"title": r.Title, "description": r.Description, "rowId": r.RowID}
			}
			sections[i] = map[string]any{"title": s.Title, "rows": rows}
		}
		return "listMessage", with(map[string]any{"title": l.Title, "description": l.Description, "footerText": l.FooterText,
			"buttonText": l.ButtonText, "listType": "SINGLE_SELECT", "sections": sections}), nil
	case channel.KindButtons:
		b := m.Buttons
		buttons := make([]map[string]any, len(b.Buttons))
		for i, bt := range b.Buttons {
			buttons[i] = map[string]any{"buttonId": bt.ID, "buttonText": map[string]string{"displayText": bt.DisplayText}, "type": "RESPONSE"}
		}
		return "buttonsMessage", with(map[string]any{"text": b.Title, "contentText": b.Description, "footerText": b.Footer, "buttons": buttons}), nil
	}
	return "", nil, wagate.Errorf(wagate.EINVALID, "kind %q cannot be sent", m.Kind)
}

// contextInfo is the quote and mentions of m, nil when it has neither.
func contextInfo(m *channel.Message) map[string]any {
	ci := map[string]any{}
	if q := m.Quoted; q != nil {
		ci["stanzaId"] = q.ID
		switch {
		case q.Participant != "":
			ci["participant"] = q.Participant
		case q.RemoteJID != "":
			ci["participant"] = q.RemoteJID
		}
	}
	if len(m.Mentioned) > 0 {
		ci["mentionedJid"] = m.Mentioned
	}
	if m.MentionsEveryOne {
		// The external system knows the group's members; say that all
		// of them are meant.
		ci["mentionsEveryOne"] = true
	}
	if len(ci) == 0 {
		return nil
	}
	return ci
}

// outboundOf is the part of m the plain send needs (the typing delay).
func outboundOf(m *channel.Message) bots.Outbound {
	return bots.Outbound{ID: strings.ToUpper(uuid.NewString()), ChatJID: m.To, Text: m.Text, Delay: m.Delay}
}
