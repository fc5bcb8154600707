package gateway

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// actions returns the instance's channel actions, or the 400 that names
// the channel when it has none (EVOLUTION has no network to act on).
func (g *Gateway) actions(inst *store.Instance, what string) (channel.Actions, error) {
	a, ok := g.channelOf(inst).(channel.Actions)
	if !ok {
		return nil, wagate.Errorf(wagate.EINVALID, "%s is a WhatsApp action; the %s channel has no %s", what, inst.Integration, what)
	}
	return a, nil
}

type keyRequest struct {
	ID          string `json:"id"`
	RemoteJID   string `json:"remoteJid"`
	FromMe      bool   `json:"fromMe"`
	Participant string `json:"participant"`
}

func (k keyRequest) key() channel.Key {
	jid, _ := normalizeNumber(k.RemoteJID)
	return channel.Key{ID: k.ID, RemoteJID: jid, FromMe: k.FromMe, Participant: k.Participant}
}

func (k keyRequest) check(p *wagate.Problems, prefix string) {
	if strings.TrimSpace(k.ID) == "" {
		p.Add(prefix+"id", "required")
	}
	if _, problem := normalizeNumber(k.RemoteJID); problem != "" {
		p.Add(prefix+"remoteJid", problem)
	}
}

func (g *Gateway) whatsappNumbers(c echo.Context) error {
	var req struct {
		Numbers []string `json:"numbers"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	if len(req.Numbers) == 0 || len(req.Numbers) > 500 {
		p.Add("numbers", "must list from 1 to 500 numbers")
	}
	numbers := make([]string, len(req.Numbers))
	for i, n := range req.Numbers {
		user, _, _ := strings.Cut(n, "@")
		digits := strings.Map(func(r rune) rune {
			if r >= '0' && r <= '9' {
				return r
			}
			return -1
		}, user)
		if len(digits) < 8 {
			p.Add(fmt.Sprintf("numbers[%d]", i), "not a phone number with country code")
		}
		numbers[i] = digits
	}
	if err := p.Err(); err != nil {
		return err
	}
	a, err := g.actions(instanceOf(c), "whatsappNumbers")
	if err != nil {
		return err
	}
	out, err := a.OnWhatsApp(c.Request().Context(), instanceOf(c), numbers)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (g *Gateway) markMessageAsRead(c echo.Context) error {
	var req struct {
		ReadMessages []keyRequest `json:"readMessages"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	if len(req.ReadMessages) == 0 {
		p.Add("readMessages", "at least one message key is required")
	}
	keys := make([]channel.Key, len(req.ReadMessages))
	for i, k := range req.ReadMessages {
		k.check(&p, fmt.Sprintf("readMessages[%d].", i))
		keys[i] = k.key()
	}
	if err := p.Err(); err != nil {
		return err
	}
	a, err := g.actions(instanceOf(c), "markMessageAsRead")
	if err != nil {
		return err
	}
	if err := a.MarkRead(c.Request().Context(), instanceOf(c), keys); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"message": "Read messages", "read": "success"})
}

type lastMessageRequest struct {
	Key              keyRequest `json:"key"`
	MessageTimestamp int64      `json:"messageTimestamp"`
}

type chatStateRequest struct {
	LastMessage *lastMessageRequest `json:"lastMessage"`
	Chat        string              `json:"chat"`
	Archive     *bool               `json:"archive"`
}

// chatOf is the chat a chat-state request names: chat, or the last
// message's remoteJid, with the last message's key and time.
func (r *chatStateRequest) chatOf(p *wagate.Problems) (string, *channel.Key, time.Time) {
	raw := r.Chat
	var last *channel.Key
	at := time.Now()
	if r.LastMessage != nil {
		if raw == "" {
			raw = r.LastMessage.Key.RemoteJID
		}
		k := r.LastMessage.Key.key()
		last = &k
		if r.LastMessage.MessageTimestamp > 0 {
			at = time.Unix(r.LastMessage.MessageTimestamp, 0)
		}
	}
	jid, problem := normalizeNumber(raw)
	if problem != "" {
		p.Add("chat", problem)
	}
	return jid, last, at
}

func (g *Gateway) archiveChat(c echo.Context) error {
	var req chatStateRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	chat, last, at := req.chatOf(&p)
	if req.Archive == nil {
		p.Add("archive", "required")
	}
	if err := p.Err(); err != nil {
		return err
	}
	a, err := g.actions(instanceOf(c), "archiveChat")
	if err != nil {
		return err
	}
	if err := a.Archive(c.Request().Context(), instanceOf(c), chat, *req.Archive, last, at); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"chatId": chat, "archived": *req.Archive})
}

func (g *Gateway) markChatUnread(c echo.Context) error {
	var req chatStateRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	chat, last, at := req.chatOf(&p)
	if req.Archive != nil {
		p.Add("archive", "unknown field")
	}
	if err := p.Err(); err != nil {
		return err
	}
	a, err := g.actions(instanceOf(c), "markChatUnread")
	if err != nil {
		return err
	}
	if err := a.MarkUnread(c.Request().Context(), instanceOf(c), chat, last, at); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"chatId": chat, "markedChatUnread": true})
}

// recordProtocol stores a revoke or edit the instance sent and reports it
// as send.message, then marks the target message as the action says.
func (g *Gateway) recordProtocol(ctx context.Context, inst *store.Instance, chat string, sent channel.SentMessage, target string, apply func(ctx context.Context, m *store.Message) error) (*store.Message, error) {
	rec := &store.Message{
		InstanceID: inst.ID, ID: sent.ID, Direction: store.Outbound, RemoteJID: chat, FromMe: true,
		MessageType: sent.MessageType, Content: sent.Content, Status: sent.Status, Timestamp: sent.Timestamp, CreatedAt: stamp(),
		IgnoreReason: "protocol message", QuotedID: target,
	}
	err := g.outbox.Tx(context.WithoutCancel(ctx), func(ctx context.Context) error {
		if _, err := g.store.InsertMessage(ctx, rec); err != nil {
			return err
		}
		if m, err := g.store.Message(ctx, inst.ID, target, store.Outbound); err == nil {
			if err := apply(ctx, m); err != nil {
				return err
			}
		}
		return g.outbox.Emit(ctx, inst, webhook.SendMessage, record(rec))
	})
	return rec, err
}

func (g *Gateway) deleteMessageForEveryone(c echo.Context) error {
	var req keyRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	req.check(&p, "")
	if err := p.Err(); err != nil {
		return err
	}
	inst := instanceOf(c)
	a, err := g.actions(inst, "deleteMessageForEveryone")
	if err != nil {
		return err
	}
	key := req.key()
	ctx := c.Request().Context()
	sent, err := a.Revoke(ctx, inst, key)
	if err != nil {
		return err
	}
	rec, err := g.recordProtocol(ctx, inst, key.RemoteJID, sent, key.ID, func(ctx context.Context, m *store.Message) error {
		return g.store.SetMessageStatus(ctx, inst.ID, m.Seq, "DELETED")
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, record(rec))
}

func (g *Gateway) updateMessage(c echo.Context) error {
	var req struct {
		Number  string          `json:"number"`
		Key     keyRequest      `json:"key"`
		Text    string          `json:"text"`
		Options *map[string]any `json:"options"` // Evolution v1 clients; ignored
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	if req.Key.RemoteJID == "" {
		req.Key.RemoteJID = req.Number
	}
	req.Key.check(&p, "key.")
	if strings.TrimSpace(req.Text) == "" {
		p.Add("text", "required")
	}
	if req.Key.RemoteJID != "" && !req.Key.FromMe {
		p.Add("key.fromMe", "only the instance's own messages can be edited")
	}
	if err := p.Err(); err != nil {
		return err
	}
	inst := instanceOf(c)
	a, err := g.actions(inst, "updateMessage")
	if err != nil {
		return err
	}
	key := req.Key.key()
	ctx := c.Request().Context()
	sent, err := a.Edit(ctx, inst, key, req.Text)
	if err != nil {
		return err
	}
	rec, err := g.recordProtocol(ctx, inst, key.RemoteJID, sent, key.ID, func(ctx context.Context, m *store.Message) error {
		content := []byte(fmt.Sprintf(`{"conversation":%q}`, req.Text))
		return g.store.EditMessage(ctx, inst.ID, m.Seq, req.Text, content)
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, record(rec))
}

func (g *Gateway) sendPresence(c echo.Context) error {
	var req struct {
		Number   string `json:"number"`
		Presence string `json:"presence"`
		Delay    int64  `json:"delay"`
		Options  *struct {
			Presence string `json:"presence"`
			Delay    int64  `json:"delay"`
			Number   string `json:"number"`
		} `json:"options"` // Evolution v1 puts them here
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	if o := req.Options; o != nil {
		req.Presence, req.Delay = cmpOr(req.Presence, o.Presence), max(req.Delay, o.Delay)
		req.Number = cmpOr(req.Number, o.Number)
	}
	var p wagate.Problems
	jid, problem := normalizeNumber(req.Number)
	if problem != "" {
		p.Add("number", problem)
	}
	switch req.Presence {
	case "composing", "recording", "paused":
	case "available", "unavailable":
		p.Add("presence", "available and unavailable are the account's presence: use /instance/setPresence")
	default:
		p.Add("presence", "must be composing, recording or paused")
	}
	if req.Delay < 0 || req.Delay > maxDelay {
		p.Add("delay", "must be from 0 to 300000 milliseconds")
	}
	if err := p.Err(); err != nil {
		return err
	}
	inst := instanceOf(c)
	a, err := g.actions(inst, "sendPresence")
	if err != nil {
		return err
	}
	if err := a.ChatPresence(c.Request().Context(), inst, jid, req.Presence, time.Duration(req.Delay)*time.Millisecond); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"presence": req.Presence})
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func (g *Gateway) updateBlockStatus(c echo.Context) error {
	var req struct {
		Number string `json:"number"`
		Status string `json:"status"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	jid, problem := normalizeNumber(req.Number)
	if problem != "" {
		p.Add("number", problem)
	}
	if req.Status != "block" && req.Status != "unblock" {
		p.Add("status", "must be block or unblock")
	}
	if err := p.Err(); err != nil {
		return err
	}
	inst := instanceOf(c)
	a, err := g.actions(inst, "updateBlockStatus")
	if err != nil {
		return err
	}
	if err := a.Block(c.Request().Context(), inst, jid, req.Status == "block"); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"accepted": true})
}

func (g *Gateway) fetchProfilePictureURL(c echo.Context) error {
	var req struct {
		Number  string `json:"number"`
		Picture string `json:"picture"` // Evolution's schema shares it with updateProfilePicture; not acted on
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	jid, problem := normalizeNumber(req.Number)
	if problem != "" {
		return wagate.Invalid("number", problem)
	}
	inst := instanceOf(c)
	a, err := g.actions(inst, "fetchProfilePictureUrl")
	if err != nil {
		return err
	}
	url, err := a.ProfilePicture(c.Request().Context(), inst, jid)
	if err != nil {
		return err
	}
	var pic *string
	if url != "" {
		pic = &url
	}
	return c.JSON(http.StatusOK, map[string]any{"wuid": jid, "profilePictureUrl": pic})
}

func (g *Gateway) setInstancePresence(c echo.Context) error {
	var req struct {
		Presence string `json:"presence"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	if req.Presence != "available" && req.Presence != "unavailable" {
		return wagate.Invalid("presence", "must be available or unavailable")
	}
	inst := instanceOf(c)
	a, err := g.actions(inst, "setPresence")
	if err != nil {
		return err
	}
	if err := a.SetPresence(c.Request().Context(), inst, req.Presence); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"presence": req.Presence})
}

// instanceSettingsRequest is Evolution's settings body; fields left out keep their
// value.
type instanceSettingsRequest struct {
	RejectCall      *bool   `json:"rejectCall"`
	MsgCall         *string `json:"msgCall"`
	GroupsIgnore    *bool   `json:"groupsIgnore"`
	AlwaysOnline    *bool   `json:"alwaysOnline"`
	ReadMessages    *bool   `json:"readMessages"`
	ReadStatus      *bool   `json:"readStatus"`
	SyncFullHistory *bool   `json:"syncFullHistory"`
	WavoipToken     *string `json:"wavoipToken"` // accepted; calls are not placed
}

func (g *Gateway) setSettings(c echo.Context) error {
	var req instanceSettingsRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	inst := instanceOf(c)
	s := inst.Settings
	set := func(dst *bool, v *bool) {
		if v != nil {
			*dst = *v
		}
	}
	set(&s.RejectCall, req.RejectCall)
	set(&s.GroupsIgnore, req.GroupsIgnore)
	set(&s.AlwaysOnline, req.AlwaysOnline)
	set(&s.ReadMessages, req.ReadMessages)
	set(&s.ReadStatus, req.ReadStatus)
	set(&s.SyncFullHistory, req.SyncFullHistory)
	if req.MsgCall != nil {
		s.MsgCall = *req.MsgCall
	}
	ctx := c.Request().Context()
	if err := g.store.SetInstanceSettings(ctx, inst.ID, s); err != nil {
		return err
	}
	updated := *inst
	updated.Settings = s
	if a, ok := g.channelOf(inst).(channel.Actions); ok {
		if err := a.ApplySettings(ctx, &updated); err != nil {
			return err
		}
	}
	return c.JSON(http.StatusCreated, map[string]any{"settings": map[string]any{"instanceName": inst.Name, "settings": s}})
}

func (g *Gateway) findSettings(c echo.Context) error {
	return c.JSON(http.StatusOK, instanceOf(c).Settings)
}
