package gateway

import (
	"context"
	"encoding/json"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// statusRank orders Evolution's statuses: receipts arrive out of order
// (a read receipt can overtake the delivery one) and a status never moves
// back.
var statusRank = map[string]int{"ERROR": 0, "PENDING": 1, "SERVER_ACK": 2, "DELIVERY_ACK": 3, "READ": 4, "PLAYED": 5, "DELETED": 6}

// messageUpdate is Evolution's messages.update data.
type messageUpdate struct {
	MessageID   string          `json:"messageId"`
	KeyID       string          `json:"keyId"`
	RemoteJID   string          `json:"remoteJid"`
	FromMe      bool            `json:"fromMe"`
	Participant string          `json:"participant,omitempty"`
	Status      string          `json:"status"`
	Text        string          `json:"text,omitempty"`
	Message     json.RawMessage `json:"message,omitempty"`
	InstanceID  string          `json:"instanceId"`
}

// Update records receipts, edits and deletions of stored messages and
// reports each changed message (channel.Host). Messages the gateway never
// stored are skipped: there is nothing to update, and the event would name
// a message the webhook never saw.
func (g *Gateway) Update(ctx context.Context, inst *store.Instance, u channel.Update) error {
	dir := store.Inbound
	if u.FromMe {
		dir = store.Outbound
	}
	return g.outbox.Tx(ctx, func(ctx context.Context) error {
		for _, id := range u.IDs {
			m, err := g.store.Message(ctx, inst.ID, id, dir)
			if wagate.ErrorCode(err) == wagate.ENOTFOUND {
				continue
			} else if err != nil {
				return err
			}
			ev := messageUpdate{MessageID: id, KeyID: id, RemoteJID: m.RemoteJID, FromMe: m.FromMe, Participant: u.Participant,
				Status: m.Status, InstanceID: inst.ID}
			switch u.Kind {
			case channel.UpdateStatus:
				if statusRank[u.Status] <= statusRank[m.Status] {
					continue
				}
				if err := g.store.SetMessageStatus(ctx, inst.ID, m.Seq, u.Status); err != nil {
					return err
				}
				ev.Status = u.Status
				err = g.outbox.Emit(ctx, inst, webhook.MessagesUpdate, ev)
			case channel.UpdateEdit:
				content := u.Content
				if len(content) == 0 {
					content = m.Content
				}
				if err := g.store.EditMessage(ctx, inst.ID, m.Seq, u.Text, content); err != nil {
					return err
				}
				ev.Text, ev.Message = u.Text, u.Content
				err = g.outbox.Emit(ctx, inst, webhook.MessagesUpdate, ev)
			case channel.UpdateDelete:
				if err := g.store.SetMessageStatus(ctx, inst.ID, m.Seq, "DELETED"); err != nil {
					return err
				}
				err = g.outbox.Emit(ctx, inst, webhook.MessagesDelete, recordKey{ID: id, RemoteJID: m.RemoteJID, FromMe: m.FromMe, Participant: u.Participant})
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
}
