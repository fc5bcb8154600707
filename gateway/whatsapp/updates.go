package whatsapp

import (
	"context"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wagate/wagate/gateway/channel"
)

// receiptStatus maps whatsmeow's receipt types to Evolution's statuses;
// the others (retries, our own devices reading, …) change nothing.
var receiptStatus = map[types.ReceiptType]string{
	types.ReceiptTypeDelivered: "DELIVERY_ACK",
	types.ReceiptTypeRead:      "READ",
	types.ReceiptTypePlayed:    "PLAYED",
}

// receipt records the other side's receipt for messages the instance sent.
func (s *session) receipt(ctx context.Context, e *events.Receipt) {
	status, ok := receiptStatus[e.Type]
	if !ok || e.IsFromMe {
		return
	}
	u := channel.Update{Kind: channel.UpdateStatus, RemoteJID: e.Chat.String(), FromMe: true, Status: status}
	if e.IsGroup {
		u.Participant = e.Sender.ToNonAD().String()
	}
	for _, id := range e.MessageIDs {
		u.IDs = append(u.IDs, id)
	}
	if err := s.c.host.Update(ctx, s.instance(), u); err != nil {
		s.log.Error("whatsapp: record receipt", "chat", u.RemoteJID, "status", status, "error", err)
	}
}

// changed reports an edit or deletion that e makes to an earlier message;
// the edit or deletion itself is stored as a message as well.
func (s *session) changed(ctx context.Context, e *events.Message) {
	pm := e.Message.GetProtocolMessage()
	target := pm.GetKey().GetID()
	if pm == nil || target == "" {
		return
	}
	u := channel.Update{IDs: []string{target}, RemoteJID: e.Info.Chat.String(), FromMe: pm.GetKey().GetFromMe()}
	if e.Info.IsGroup {
		u.Participant = e.Info.Sender.ToNonAD().String()
	}
	switch pm.GetType() {
	case waE2E.ProtocolMessage_REVOKE:
		u.Kind = channel.UpdateDelete
	case waE2E.ProtocolMessage_MESSAGE_EDIT:
		u.Kind = channel.UpdateEdit
		edited := pm.GetEditedMessage()
		u.Text = messageText(edited)
		if raw, err := evolutionJSON(edited); err == nil {
			u.Content = raw
		}
	default:
		return
	}
	if err := s.c.host.Update(ctx, s.instance(), u); err != nil {
		s.log.Error("whatsapp: record message change", "id", target, "kind", u.Kind, "error", err)
	}
}

// messageText is the text or caption of m.
func messageText(m *waE2E.Message) string {
	switch {
	case m.GetConversation() != "":
		return m.GetConversation()
	case m.GetExtendedTextMessage() != nil:
		return m.GetExtendedTextMessage().GetText()
	case m.GetImageMessage() != nil:
		return m.GetImageMessage().GetCaption()
	case m.GetVideoMessage() != nil:
		return m.GetVideoMessage().GetCaption()
	case m.GetDocumentMessage() != nil:
		return m.GetDocumentMessage().GetCaption()
	}
	return ""
}
