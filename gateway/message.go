package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/gateway/evolution"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// messageRecord is Evolution's message record: the sendText response and the
// data of messages.upsert and send.message events.
type messageRecord struct {
	Key              recordKey       `json:"key"`
	PushName         string          `json:"pushName"`
	Message          json.RawMessage `json:"message"`
	MessageType      string          `json:"messageType"`
	MessageTimestamp int64           `json:"messageTimestamp"`
	Status           string          `json:"status"`
	InstanceID       string          `json:"instanceId"`
}

type recordKey struct {
	ID          string `json:"id"`
	RemoteJID   string `json:"remoteJid"`
	FromMe      bool   `json:"fromMe"`
	Participant string `json:"participant,omitempty"`
}

func record(m *store.Message) messageRecord {
	return messageRecord{
		Key:              recordKey{ID: m.ID, RemoteJID: m.RemoteJID, FromMe: m.FromMe, Participant: m.Participant},
		PushName:         m.PushName,
		Message:          m.Content,
		MessageType:      m.MessageType,
		MessageTimestamp: m.Timestamp.Unix(),
		Status:           m.Status,
		InstanceID:       m.InstanceID,
	}
}

// evolutionInbound is the EVOLUTION channel's inbound route. Unlike
// Evolution's it is authenticated: the caller needs the instance's token
// (or the global key), and the numberId must be that instance's.
func (g *Gateway) evolutionInbound(c echo.Context) error {
	var p evolution.Payload
	if err := api.Decode(c, &p, false); err != nil {
		return err
	}
	ctx := c.Request().Context()
	var inst *store.Instance
	switch pr := api.PrincipalOf(c); {
	case strings.TrimSpace(p.NumberID) == "":
		return wagate.Invalid("numberId", "required")
	case pr.Chatbot != nil:
		return errChatbotKey
	case pr.Session != nil:
		return wagate.Errorf(wagate.EFORBIDDEN, "apikey: channel inbound needs the instance's token; a console session cannot post it")
	case pr.Instance == nil:
		var err error
		if inst, err = g.store.InstanceByNumber(ctx, p.NumberID); err != nil {
			return err
		}
		if org := pr.OrgID(); org != "" && inst.OrganizationID != org {
			return wagate.Errorf(wagate.ENOTFOUND, "numberId: no instance has number %q", p.NumberID)
		}
	case p.NumberID != pr.Instance.Number:
		return wagate.FieldError(wagate.EFORBIDDEN, "numberId", "does not belong to the instance of this token")
	default:
		inst = pr.Instance
	}
	parsed, err := p.Parse(inst.Number)
	if err != nil {
		return err
	}
	if inst.Integration != store.IntegrationEvolution {
		return wagate.FieldError(wagate.EUNPROCESSABLE, "numberId", "belongs to a "+inst.Integration+" instance, not an EVOLUTION one")
	}
	in := parsed.Inbound
	if in.MessageID == "" {
		in.MessageID = strings.ToUpper(uuid.NewString())
	}
	if err := g.Receive(ctx, inst, in, parsed.Content); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "success", "messageId": in.MessageID})
}

const (
	maxTextLen = 65536         // WhatsApp's own limit for one text message
	maxDelay   = 5 * 60 * 1000 /* ms */ // Evolution sets no bound; a request should not hang longer
)

type sendTextRequest struct {
	sendOptions
	Text string `json:"text"`
}

// sendText sends a text from the instance, stores it and reports it as
// send.message. On the EVOLUTION channel that event is how the external
// system receives the message.
func (g *Gateway) sendText(c echo.Context) error {
	var req sendTextRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var problems wagate.Problems
	m := req.message(&problems, channel.KindText)
	m.Text = req.Text
	switch {
	case strings.TrimSpace(req.Text) == "":
		problems.Add("text", "required")
	case utf8.RuneCountInString(req.Text) > maxTextLen:
		problems.Add("text", "longer than 65536 characters")
	}
	if err := problems.Err(); err != nil {
		return err
	}
	if m.LinkPreview {
		m.Preview = g.linkPreview(c.Request().Context(), m.Text)
	}
	return g.sendAny(c, m)
}

// send delivers out through the instance's channel, then stores it and
// reports send.message in one transaction.
func (g *Gateway) send(ctx context.Context, inst *store.Instance, out bots.Outbound) (*store.Message, error) {
	m, rec, err := g.deliver(ctx, inst, out)
	if err != nil {
		return nil, err
	}
	// The channel has sent it: record it even if the caller went away.
	if err := g.outbox.Tx(context.WithoutCancel(ctx), rec); err != nil {
		return m, err
	}
	g.recorded(inst, m)
	return m, nil
}

// recorded tells the channel and the console that m, sent on inst, is
// stored.
func (g *Gateway) recorded(inst *store.Instance, m *store.Message) {
	if r, ok := g.channelOf(inst).(channel.Recorder); ok {
		r.Recorded(inst, m)
	}
	g.console.Changed()
}

// deliver sends out through the instance's channel and returns the message
// and what records it (stores it, reports send.message and runs
// out.Recorded), to run in an outbox transaction.
func (g *Gateway) deliver(ctx context.Context, inst *store.Instance, out bots.Outbound) (*store.Message, func(ctx context.Context) error, error) {
	// Time-ordered (UUIDv7): a random id took every stored reply to a
	// random page of the messages' unique key.
	out.ID = strings.ToUpper(store.NewID())
	sent, err := g.channelOf(inst).Send(ctx, inst.ID, out)
	if err != nil {
		return nil, nil, err
	}
	content, messageType := map[string]any{"conversation": out.Text}, "conversation"
	if out.QuotedID != "" {
		content = map[string]any{"extendedTextMessage": map[string]any{
			"text": out.Text, "contextInfo": map[string]string{"stanzaId": out.QuotedID},
		}}
		messageType = "extendedTextMessage"
	}
	raw, err := json.Marshal(content)
	if err != nil {
		return nil, nil, err
	}
	m := &store.Message{
		InstanceID:  inst.ID,
		ID:          sent.ID,
		Direction:   store.Outbound,
		RemoteJID:   out.ChatJID,
		ChatKey:     out.ChatKey,
		FromMe:      true,
		MessageType: messageType,
		Content:     raw,
		Text:        out.Text,
		Status:      sent.Status,
		Timestamp:   sent.Timestamp,
		CreatedAt:   stamp(),
		QuotedID:    out.QuotedID,
		BotID:       out.BotID,
		SessionID:   out.SessionID,

		PromptTokens:     out.Usage.PromptTokens,
		CompletionTokens: out.Usage.CompletionTokens,
		LatencyMS:        int(out.Usage.Latency / time.Millisecond),
		Sources:          out.Sources,
		ToolCalls:        out.ToolCalls,
		ToolResults:      out.ToolResults,
		AgentName:        out.AgentName,
	}
	return m, func(ctx context.Context) error {
		if err := g.store.AddMessage(ctx, m); err != nil {
			return err
		}
		if err := g.outbox.Emit(ctx, inst, webhook.SendMessage, record(m)); err != nil {
			return err
		}
		if out.Recorded != nil {
			return out.Recorded(ctx)
		}
		return nil
	}, nil
}

// normalizeNumber keeps a JID as given (suffix included, unlike Evolution)
// and turns a phone number into a WhatsApp user JID: evolution.NormalizeJID,
// the rule the inbound route applies too.
func normalizeNumber(n string) (jid, problem string) { return evolution.NormalizeJID(n) }
