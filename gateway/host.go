package gateway

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

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
	return g.receive(ctx, inst, in, content, nil)
}

// ReceiveDecided stores an inbound message that its channel has already
// decided on (the web chat's lead capture answers it without a model), and
// reports it like any other; the engine never sees it.
func (g *Gateway) ReceiveDecided(ctx context.Context, inst *store.Instance, in bots.Inbound, content json.RawMessage, o store.MessageOutcome) error {
	return g.receive(ctx, inst, in, content, &o)
}

func (g *Gateway) receive(ctx context.Context, inst *store.Instance, in bots.Inbound, content json.RawMessage, decided *store.MessageOutcome) error {
	in.InstanceID = inst.ID
	// Cut here, where every channel's messages come in.
	if text, cut := bots.CutInbound(in.Text, g.cfg.MaxInboundText); cut {
		g.log.Info("inbound text cut", "instance", inst.Name, "message_id", in.MessageID,
			"characters", utf8.RuneCountInString(in.Text), "kept", g.cfg.MaxInboundText)
		in.Text = text
	}
	m := &store.Message{
		InstanceID:  inst.ID,
		ID:          in.MessageID,
		Direction:   store.Inbound,
		RemoteJID:   in.ChatJID,
		ChatKey:     in.Key(),
		FromMe:      in.FromMe,
		PushName:    in.PushName,
		MessageType: in.MessageType,
		Content:     content,
		Text:        in.Text,
		Status:      "DELIVERY_ACK",
		Timestamp:   in.Timestamp,
		CreatedAt:   stamp(),
	}
	if in.IsGroup && in.SenderJID != in.ChatJID {
		m.Participant = in.SenderJID
	}
	m.IgnoreReason, m.MentionsMe, m.QuotedID = in.Ignore, in.MentionsMe, in.QuotedID
	if decided != nil {
		m.State, m.StateReason, m.BotID, m.SessionID = decided.State, decided.Reason, decided.BotID, decided.SessionID
	}
	event := record(m)
	if in.Media != nil {
		event.Message = g.withBase64(ctx, inst, m)
	}
	var isNew bool
	err := g.outbox.Tx(ctx, func(ctx context.Context) error {
		// The name the sender gave is saved (contacts.upsert or .update)
		// with the message's insert, in its round trip, a redelivered
		// message's too.
		var contacts []*store.Contact
		if err := g.store.SaveContactsLater(ctx, inst.ID, senderContact(in, m), &contacts); err != nil {
			return err
		}
		var err error
		if isNew, err = g.store.InsertMessage(ctx, m); err != nil {
			return err
		}
		if isNew {
			if err := g.outbox.Emit(ctx, inst, webhook.MessagesUpsert, event); err != nil {
				return err
			}
			if err := g.noteReceived(ctx, inst, in, m); err != nil {
				return err
			}
		}
		return g.contactsChanged(ctx, inst, contacts)
	})
	outcome := inboundStored
	switch {
	case err != nil:
		outcome = inboundError
	case !isNew:
		outcome = inboundDuplicate
	}
	g.metrics.inbound.WithLabelValues(inst.Name, inst.Integration, outcome).Inc()
	if err == nil && isNew && decided == nil {
		// The engine reads the message from the database; the caller never
		// waits for a bot.
		g.wakeChat(ctx, inst, store.Chat{InstanceID: inst.ID, Key: m.ChatKey})
	}
	if err == nil && isNew {
		g.console.Changed()
	}
	return err
}

// Reply sends a bot's reply (bots.Replier).
func (g *Gateway) Reply(ctx context.Context, inst *store.Instance, out bots.Outbound) error {
	_, err := g.send(ctx, inst, g.fenceReply(inst, out))
	if err == nil {
		g.metrics.reply(inst, out.Usage)
	}
	return err
}

// Record records a bot's reply as sent in the caller's transaction when
// sending it is only that (bots.Recorder).
func (g *Gateway) Record(ctx context.Context, inst *store.Instance, out bots.Outbound) (func(), bool, error) {
	if r, ok := g.channelOf(inst).(channel.Recording); !ok || !r.RecordsAtOnce(out) {
		return nil, false, nil
	}
	m, rec, err := g.deliver(ctx, inst, out)
	if err == nil {
		err = rec(ctx)
	}
	if err != nil {
		return nil, false, err
	}
	return func() {
		g.recorded(inst, m)
		g.metrics.reply(inst, out.Usage)
	}, true, nil
}

// Post sends out on inst's channel, records it (send.message) and returns
// the stored message: operators' replies and the web chat's own messages.
func (g *Gateway) Post(ctx context.Context, inst *store.Instance, out bots.Outbound) (*store.Message, error) {
	return g.send(ctx, inst, out)
}

// fetchMedia returns a message's media bytes for the engine (audio to
// transcribe), from the channel that received it.
func (g *Gateway) fetchMedia(ctx context.Context, inst *store.Instance, m *store.Message) ([]byte, string, error) {
	if src, ok := g.channelOf(inst).(channel.MediaSource); ok {
		return src.Media(ctx, inst, m)
	}
	return nil, "", wagate.Errorf(wagate.EUNPROCESSABLE, "media: the %s channel cannot fetch media", inst.Integration)
}

// signFunctionCall signs a bot's tool call like a webhook delivery. A
// chatbot's tools are signed with the chatbot's signing secret, the
// SHA-256 (hex) of its key: the operator already holds the key, the
// function server needs only its hash (which opens no route), every channel
// answering as the chatbot signs alike, and rotating the key rotates it.
// An instance bot's own tools are signed with the instance's webhook
// secret; instances without one send them unsigned.
func (g *Gateway) signFunctionCall(ctx context.Context, inst *store.Instance, cb *store.Chatbot, body []byte) string {
	if cb != nil {
		if cb.KeyHash == "" {
			return ""
		}
		return webhook.Sign(cb.KeyHash, time.Now(), body)
	}
	w, err := g.store.Webhook(ctx, inst.ID)
	if err != nil {
		return ""
	}
	return webhook.Sign(w.Secret, time.Now(), body)
}

// Emit reports an event about inst to its webhook.
func (g *Gateway) Emit(ctx context.Context, inst *store.Instance, event string, data any) error {
	err := g.outbox.Tx(ctx, func(ctx context.Context) error {
		return g.outbox.Emit(ctx, inst, event, data)
	})
	if watched(event) {
		// The state changed whether or not the event could be queued.
		g.watch.notify(inst.ID)
	}
	return err
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
