package gateway

import (
	"context"
	"encoding/json"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

var _ channel.Host = (*Gateway)(nil)

// Receive stores an inbound message and reports it as messages.upsert, in
// one transaction. A message the instance already received (same id) is
// acknowledged without being stored or reported again.
func (g *Gateway) Receive(ctx context.Context, inst *store.Instance, in bots.Inbound, content json.RawMessage) error {
	in.InstanceID = inst.ID
	m := &store.Message{
		InstanceID:  inst.ID,
		ID:          in.MessageID,
		Direction:   store.Inbound,
		RemoteJID:   in.ChatJID,
		FromMe:      in.FromMe,
		PushName:    in.PushName,
		MessageType: in.MessageType,
		Content:     content,
		Text:        in.Text,
		Status:      "DELIVERY_ACK",
		Timestamp:   in.Timestamp,
		CreatedAt:   now(),
	}
	if in.IsGroup && in.SenderJID != in.ChatJID {
		m.Participant = in.SenderJID
	}
	return g.outbox.Tx(ctx, func(ctx context.Context) error {
		isNew, err := g.store.InsertMessage(ctx, m)
		if err != nil || !isNew {
			return err
		}
		return g.outbox.Emit(ctx, inst, webhook.MessagesUpsert, record(m))
	})
}

// Emit reports an event about inst to its webhook.
func (g *Gateway) Emit(ctx context.Context, inst *store.Instance, event string, data any) error {
	return g.outbox.Tx(ctx, func(ctx context.Context) error {
		return g.outbox.Emit(ctx, inst, event, data)
	})
}

// Sent reports whether the instance itself sent the message id, so that a
// channel's echo of it is never taken for a human operator.
func (g *Gateway) Sent(ctx context.Context, instanceID, messageID string) (bool, error) {
	_, err := g.store.Message(ctx, instanceID, messageID, store.Outbound)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		return false, nil
	}
	return err == nil, err
}
