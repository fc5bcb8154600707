package okchat

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/webchat"
	"github.com/wagate/wagate/store"
)

// okchat's conversations are sessions: here the sessions of the instance
// bots that answer as the chatbot (WhatsApp and EVOLUTION chats), in
// okchat's shapes. Fields okchat has and wagate does not (session tokens,
// users, voice recordings, attachments, tool traces) are null.

// Sender types of okchat messages: the customer, the bot, and a person
// answering for the business (on the phone or through the API).
const (
	SenderUser  = "user"
	SenderBot   = "bot"
	SenderHuman = "human"
)

// Conversation states: okchat documents in_progress; closed is wagate's
// for a session that ended and was kept (the bot's keepOpen).
const (
	StateInProgress = "in_progress"
	StateClosed     = "closed"
)

const (
	defaultLimit = 50
	maxLimit     = 200
	platform     = "whatsapp"
	provider     = "openai"
)

// timestamp is ISO-8601 in UTC, as the family's chatbot views write it.
func timestamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// sessionFields are what both conversation shapes share.
type sessionFields struct {
	ID           string         `json:"id"`
	ChatbotID    string         `json:"chatbot_id"`
	Active       bool           `json:"active"`
	Platform     string         `json:"platform"`
	SnsUserID    string         `json:"sns_user_id"`
	SessionToken *string        `json:"session_token"`
	UserID       *string        `json:"user_id"`
	VoicePath    *string        `json:"voice_path"`
	IsHumanMode  bool           `json:"is_human_mode"`
	Metadata     map[string]any `json:"metadata"`
	MigratedData bool           `json:"migrated_data"`
	CreatedAt    string         `json:"created_at"`
	UpdatedAt    string         `json:"updated_at"`
}

// viewSessionFields shows session s of chatbot chatbotID; webID is the id
// of the chatbot's web chat instance, whose chat keys are platform:visitor.
func viewSessionFields(chatbotID string, s *store.Session, webID string) sessionFields {
	v := sessionFields{
		ID: s.ID, ChatbotID: chatbotID, Active: s.Status != store.SessionClosed, Platform: platform,
		SnsUserID: s.RemoteJID, IsHumanMode: s.Status == store.SessionPaused, Metadata: map[string]any{},
		CreatedAt: timestamp(s.CreatedAt), UpdatedAt: timestamp(s.UpdatedAt),
	}
	if s.InstanceID == webID {
		v.Platform, v.SnsUserID = webchat.SplitChatKey(s.RemoteJID)
	}
	return v
}

// webchatID is the id of the chatbot's web chat instance, "" before its
// first web conversation.
func (h *Handlers) webchatID(ctx context.Context, cb *store.Chatbot) (string, error) {
	inst, err := h.store.InstanceByName(ctx, store.WebchatInstanceName(cb.ID))
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return inst.ID, nil
}

// attachments are the images a visitor attached to m, as okchat shows
// them ([{name, url}]); nil for none.
func attachments(m *store.Message) []any {
	if m.MessageType != "imageMessage" {
		return nil
	}
	var c struct {
		Attachments []any `json:"attachments"`
	}
	if json.Unmarshal(m.Content, &c) != nil || len(c.Attachments) == 0 {
		return nil
	}
	return c.Attachments
}

// lastMessageView is a listed conversation's newest message.
type lastMessageView struct {
	ID         string `json:"id"`
	Content    string `json:"content"`
	SenderType string `json:"sender_type"`
}

// listedConversation is a conversation in Get Conversations.
type listedConversation struct {
	sessionFields
	State       string           `json:"state"`
	LastMessage *lastMessageView `json:"last_message"`
}

// conversation is Get A Conversation's shape: okchat gives last_message as
// a plain string there, and no state.
type conversation struct {
	sessionFields
	LastMessage *string `json:"last_message"`
}

// messageView is a message in Get Messages.
type messageView struct {
	ID          string         `json:"id"`
	SessionID   string         `json:"session_id"`
	SenderType  string         `json:"sender_type"`
	Content     string         `json:"content"`
	Attachments []any          `json:"attachments"`
	Metadata    map[string]any `json:"metadata"`
	Model       *string        `json:"model"`
	Provider    *string        `json:"provider"`
	TokensUsed  int            `json:"tokens_used"`
	// ToolCalls and ToolResults are what a bot reply's tools did:
	// [{id, name, arguments}] and [{callId, name, output}]; null when it
	// called none.
	ToolCalls    json.RawMessage `json:"tool_calls"`
	ToolResults  json.RawMessage `json:"tool_results"`
	SessionToken *string         `json:"session_token"`
	MigratedData bool            `json:"migrated_data"`
	CreatedAt    string          `json:"created_at"`
	// Sources are the knowledge chunks a bot reply was grounded on; bot
	// messages only.
	Sources json.RawMessage `json:"sources,omitempty"`
}

// senderType tells who said m: the customer, the bot, or a person typing
// on the phone or sending through the API.
func senderType(m *store.Message) string {
	switch {
	case m.Direction == store.Inbound && !m.FromMe:
		return SenderUser
	case m.Direction == store.Outbound && m.BotID != "":
		return SenderBot
	}
	return SenderHuman
}

// content is a message's text, or its kind for media without a caption.
func content(m *store.Message) string {
	if m.Text != "" {
		return m.Text
	}
	return "[" + strings.TrimSuffix(m.MessageType, "Message") + "]"
}

func state(s *store.Session) string {
	if s.Status == store.SessionClosed {
		return StateClosed
	}
	return StateInProgress
}

// ---- pages: limit and an opaque cursor

func pageLimit(c echo.Context) (int, error) {
	raw := c.QueryParam("limit")
	if raw == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < 1 || n > maxLimit {
		return 0, wagate.Invalid("limit", "must be a number from 1 to "+strconv.Itoa(maxLimit))
	}
	return n, nil
}

func encodeCursor(parts ...string) *string {
	c := base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, ".")))
	return &c
}

// decodeCursor returns the n parts after kind of a cursor made by
// encodeCursor, or a problem under "cursor".
func decodeCursor(cur, kind string, n int) ([]string, error) {
	bad := wagate.Invalid("cursor", "not a cursor returned by this route")
	raw, err := base64.RawURLEncoding.DecodeString(cur)
	if err != nil {
		return nil, bad
	}
	parts := strings.SplitN(string(raw), ".", n+1)
	if len(parts) != n+1 || parts[0] != kind {
		return nil, bad
	}
	for _, p := range parts[1:] {
		if p == "" {
			return nil, bad
		}
	}
	return parts[1:], nil
}

// decodeTimeCursor reads a cursor of kind that holds a time and an id.
func decodeTimeCursor(cur, kind string) (time.Time, string, error) {
	parts, err := decodeCursor(cur, kind, 2)
	if err != nil {
		return time.Time{}, "", err
	}
	ms, err := strconv.ParseInt(parts[0], 10, 64)
	if err != nil {
		return time.Time{}, "", wagate.Invalid("cursor", "not a cursor returned by this route")
	}
	return time.UnixMilli(ms), parts[1], nil
}

// ---- routes

// ListConversations lists the chatbot's conversations, newest activity first, in
// pages of limit (1–200, default 50) continued with cursor=next_cursor.
func (h *Handlers) ListConversations(c echo.Context) error {
	cb, org := api.ChatbotOf(c), api.OrgOf(c)
	ctx := c.Request().Context()
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	var before *store.SessionCursor
	if cur := c.QueryParam("cursor"); cur != "" {
		at, id, err := decodeTimeCursor(cur, "s1")
		if err != nil {
			return err
		}
		before = &store.SessionCursor{CreatedAt: at, ID: id} // the position's activity
	}
	list, err := h.store.ChatbotSessions(ctx, org.ID, cb.ID, before, limit+1)
	if err != nil {
		return err
	}
	var next *string
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		next = encodeCursor("s1", strconv.FormatInt(last.UpdatedAt.UnixMilli(), 10), last.ID)
	}
	ids := make([]string, len(list))
	for i, s := range list {
		ids[i] = s.ID
	}
	lastMsgs, err := h.store.LastSessionMessages(ctx, ids)
	if err != nil {
		return err
	}
	webID, err := h.webchatID(ctx, cb)
	if err != nil {
		return err
	}
	data := make([]listedConversation, 0, len(list))
	for _, s := range list {
		v := listedConversation{sessionFields: viewSessionFields(cb.ID, s, webID), State: state(s)}
		if m := lastMsgs[s.ID]; m != nil {
			v.LastMessage = &lastMessageView{ID: m.ID, Content: content(m), SenderType: senderType(m)}
		}
		data = append(data, v)
	}
	return c.JSON(http.StatusOK, map[string]any{"data": data, "next_cursor": next})
}

// session resolves the sessionId in the path among the chatbot's.
func (h *Handlers) session(c echo.Context) (*store.Session, error) {
	return h.store.ChatbotSession(c.Request().Context(), api.OrgOf(c).ID, api.ChatbotOf(c).ID, c.Param("sessionId"))
}

// GetConversation shows one of the chatbot's conversations.
func (h *Handlers) GetConversation(c echo.Context) error {
	s, err := h.session(c)
	if err != nil {
		return err
	}
	last, err := h.store.LastSessionMessages(c.Request().Context(), []string{s.ID})
	if err != nil {
		return err
	}
	webID, err := h.webchatID(c.Request().Context(), api.ChatbotOf(c))
	if err != nil {
		return err
	}
	v := conversation{sessionFields: viewSessionFields(api.ChatbotOf(c).ID, s, webID)}
	if m := last[s.ID]; m != nil {
		text := content(m)
		v.LastMessage = &text
	}
	return c.JSON(http.StatusOK, map[string]any{"session": v})
}

// ListMessages lists a conversation's messages, oldest first, in pages of
// limit (1–200, default 50) continued with cursor=next_cursor.
func (h *Handlers) ListMessages(c echo.Context) error {
	ctx := c.Request().Context()
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	var after int64
	if cur := c.QueryParam("cursor"); cur != "" {
		parts, err := decodeCursor(cur, "m1", 1)
		if err != nil {
			return err
		}
		if after, err = strconv.ParseInt(parts[0], 10, 64); err != nil || after <= 0 {
			return wagate.Invalid("cursor", "not a cursor returned by this route")
		}
	}
	s, err := h.session(c)
	if err != nil {
		return err
	}
	list, err := h.store.SessionMessages(ctx, s.InstanceID, s.ID, after, limit+1)
	if err != nil {
		return err
	}
	var next *string
	if len(list) > limit {
		list = list[:limit]
		next = encodeCursor("m1", strconv.FormatInt(list[limit-1].Seq, 10))
	}
	model, err := h.model(ctx, api.ChatbotOf(c), s)
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(list))
	for _, m := range list {
		if m.Direction == store.Outbound {
			ids = append(ids, m.ID)
		}
	}
	partial, err := h.store.Partials(ctx, s.InstanceID, ids)
	if err != nil {
		return err
	}
	data := make([]messageView, 0, len(list))
	for _, m := range list {
		v := messageView{
			ID: m.ID, SessionID: s.ID, SenderType: senderType(m), Content: content(m), Metadata: map[string]any{},
			Attachments: attachments(m), CreatedAt: timestamp(m.CreatedAt),
		}
		if v.SenderType == SenderBot {
			p := provider
			v.Model, v.Provider = model, &p
			v.TokensUsed = m.PromptTokens + m.CompletionTokens
			v.Sources, v.ToolCalls, v.ToolResults = m.Sources, m.ToolCalls, m.ToolResults
			if len(v.Sources) == 0 {
				v.Sources = json.RawMessage("[]")
			}
			if partial[m.ID] {
				// The visitor went away while it streamed: what the
				// model had written by then.
				v.Metadata["partial"] = true
			}
		}
		data = append(data, v)
	}
	return c.JSON(http.StatusOK, map[string]any{"data": data, "next_cursor": next})
}

// model is the model the session's bot answers with now: the chatbot's
// settings.model, else the bot's own. Messages do not record the model
// each reply came from, so a changed model shows on earlier replies too.
func (h *Handlers) model(ctx context.Context, cb *store.Chatbot, s *store.Session) (*string, error) {
	if m := strings.TrimSpace(cb.Setting("model")); m != "" {
		return &m, nil
	}
	b, err := h.store.Bot(ctx, s.InstanceID, s.BotID)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND || (err == nil && b.Model == "") {
		return nil, nil
	} else if err != nil {
		return nil, err
	}
	return &b.Model, nil
}
