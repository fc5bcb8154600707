package webchat

import (
	"context"
	"time"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/store"
)

// SetHumanMode takes a conversation over (on: the bot stays silent until
// it is handed back) or hands it back to the bot. It works on any of the
// chatbot's conversations, web chat or not, like Evolution's changeStatus.
func (ch *Channel) SetHumanMode(ctx context.Context, se *store.Session, on bool) error {
	if se.Status == store.SessionClosed {
		return wagate.FieldError(wagate.ECONFLICT, "sessionId", "the conversation is closed")
	}
	inst, err := ch.st.InstanceByID(ctx, se.InstanceID)
	if err != nil {
		return err
	}
	status, event, reason := store.SessionOpened, bots.EventSessionOpened, "handed back"
	if on {
		status, event, reason = store.SessionPaused, bots.EventSessionPaused, bots.ReasonOperator
	}
	if se.Status == status && se.PausedUntil.IsZero() {
		return nil // a timed pause (an operator's phone message) becomes one until handed back
	}
	se.Status, se.Reason, se.PausedUntil = status, reason, time.Time{}
	err = ch.outbox.Tx(ctx, func(ctx context.Context) error {
		if err := ch.st.UpdateSession(ctx, se); err != nil {
			return err
		}
		return ch.outbox.Emit(ctx, inst, event, map[string]string{
			"sessionId": se.ID, "botId": se.BotID, "remoteJid": se.RemoteJID, "pushName": se.PushName,
			"status": se.Status, "reason": reason,
		})
	})
	if err != nil {
		return err
	}
	// Messages the visitor wrote meanwhile were stored in the session and
	// stay unanswered: the bot answers from the visitor's next message.
	return nil
}

// PostOperator sends an operator's reply in a conversation: stored as a
// person's message (sender human), reported as send.message, and handed
// to the visitor's open event stream, or found on their next poll.
func (ch *Channel) PostOperator(ctx context.Context, se *store.Session, text string) (*store.Message, error) {
	return ch.PostAgent(ctx, se, text, "")
}

// PostAgent is PostOperator for a console user, whose name is kept with
// the message.
func (ch *Channel) PostAgent(ctx context.Context, se *store.Session, text, agentName string) (*store.Message, error) {
	inst, err := ch.st.InstanceByID(ctx, se.InstanceID)
	if err != nil {
		return nil, err
	}
	return ch.host.Post(ctx, inst, bots.Outbound{ChatJID: se.RemoteJID, ChatKey: se.RemoteJID, Text: text,
		SessionID: se.ID, AgentName: agentName})
}
