package okchat

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/webchat"
	"github.com/wagate/wagate/store"
)

// maxChatText caps one message of the chat API (the public routes have
// their own, smaller cap).
const maxChatText = 32 << 10

// chatRequest is okchat's chat body. messages may carry history as
// clients of chat APIs send it; the server keeps the conversation's
// history itself, so only the last user message is the turn.
type chatRequest struct {
	Messages     []ChatMessage `json:"messages"`
	Platform     string        `json:"platform"`
	SessionToken string        `json:"sessionToken"`
}

// ChatMessage is one message of a chat body: content is a string, or
// OpenAI's parts ({"type":"text","text"}, {"type":"image_url","image_url":{"url"}});
// attachments are okchat's [{name, url}].
type ChatMessage struct {
	Role        string          `json:"role"`
	Content     json.RawMessage `json:"content"`
	Attachments []struct {
		Name string `json:"name"`
		URL  string `json:"url"`
	} `json:"attachments"`
}

// TurnOf reads the turn from a chat body's messages: the last one, which
// must be the user's, with its text and at most one image.
func TurnOf(msgs []ChatMessage, maxText int) (text, image string, err error) {
	if len(msgs) == 0 {
		return "", "", wagate.Invalid("messages", "required: at least the user's message")
	}
	i := len(msgs) - 1
	m := msgs[i]
	field := "messages[" + strconv.Itoa(i) + "]"
	if m.Role != "user" {
		return "", "", wagate.Invalid(field+".role", `the last message must be the user's ("user")`)
	}
	var images []string
	var s string
	if err := json.Unmarshal(m.Content, &s); err == nil {
		text = s
	} else {
		var parts []struct {
			Type     string `json:"type"`
			Text     string `json:"text"`
			ImageURL struct {
				URL string `json:"url"`
			} `json:"image_url"`
		}
		if len(m.Content) > 0 && json.Unmarshal(m.Content, &parts) != nil {
			return "", "", wagate.Invalid(field+".content", "must be a string or an array of text and image_url parts")
		}
		var texts []string
		for _, p := range parts {
			switch p.Type {
			case "text":
				texts = append(texts, p.Text)
			case "image_url":
				images = append(images, p.ImageURL.URL)
			default:
				return "", "", wagate.Invalid(field+".content", `parts are "text" or "image_url"`)
			}
		}
		text = strings.Join(texts, "\n")
	}
	for _, a := range m.Attachments {
		images = append(images, a.URL)
	}
	switch {
	case len(images) > 1:
		return "", "", wagate.Invalid(field+".attachments", "at most one image per message")
	case len(images) == 1:
		image = images[0]
		if strings.TrimSpace(text) == "" {
			return text, image, nil
		}
	}
	return text, image, webchat.CheckText(field+".content", text, maxText)
}

// Chat answers okchat's chat route: the conversation of (chatbot,
// platform, sessionToken) is found or opened, the last user message
// answered, as JSON or (stream=true) server-sent events.
func (h *Handlers) Chat(c echo.Context) error {
	var req chatRequest
	if err := api.Decode(c, &req, false); err != nil {
		return err
	}
	var p wagate.Problems
	stream := false
	switch v := c.QueryParam("stream"); v {
	case "", "false":
	case "true":
		stream = true
	default:
		p.Add("stream", `must be "true" or "false"`)
	}
	if req.Platform == "" {
		req.Platform = webchat.PlatformAPI
	}
	if req.Platform != webchat.PlatformWeb && req.Platform != webchat.PlatformAPI {
		p.Add("platform", `must be "web" or "api"`)
	}
	if !webchat.ValidVisitor(req.SessionToken) {
		p.Add("sessionToken", "required: 1 to 128 printable characters without spaces, the caller's id of the conversation")
	}
	text, image, err := TurnOf(req.Messages, maxChatText)
	if err != nil {
		p = append(p, wagate.ErrorMessages(err)...)
	}
	if err := p.Err(); err != nil {
		return err
	}
	return h.webchat.Serve(c, api.ChatbotOf(c), webchat.Turn{Platform: req.Platform, Visitor: req.SessionToken,
		Text: text, ImageURL: image}, stream)
}

// UpdateConversation takes a conversation over ({"is_human_mode": true}:
// the bot stays silent) or hands it back (false).
func (h *Handlers) UpdateConversation(c echo.Context) error {
	var req struct {
		IsHumanMode *bool `json:"is_human_mode"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	if req.IsHumanMode == nil {
		return wagate.Invalid("is_human_mode", "required: true or false")
	}
	s, err := h.session(c)
	if err != nil {
		return err
	}
	if err := h.webchat.SetHumanMode(c.Request().Context(), s, *req.IsHumanMode); err != nil {
		return err
	}
	return h.GetConversation(c)
}

// PostMessage sends an operator's reply in a conversation.
func (h *Handlers) PostMessage(c echo.Context) error {
	var req struct {
		Content string `json:"content"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	if err := webchat.CheckText("content", req.Content, maxChatText); err != nil {
		return err
	}
	s, err := h.session(c)
	if err != nil {
		return err
	}
	m, err := h.webchat.PostOperator(c.Request().Context(), s, req.Content)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"message": messageView{
		ID: m.ID, SessionID: s.ID, SenderType: SenderHuman, Content: m.Text, Metadata: map[string]any{},
		CreatedAt: timestamp(m.CreatedAt),
	}})
}

// leadView is a lead in the leads list.
type leadView struct {
	ID        string `json:"id"`
	ChatbotID string `json:"chatbot_id"`
	SessionID string `json:"session_id"`
	Platform  string `json:"platform"`
	SnsUserID string `json:"sns_user_id"`
	Email     string `json:"email"`
	CreatedAt string `json:"created_at"`
}

// ListLeads lists the emails visitors gave the chatbot, newest first.
func (h *Handlers) ListLeads(c echo.Context) error {
	limit, err := pageLimit(c)
	if err != nil {
		return err
	}
	var before *store.LeadCursor
	if cur := c.QueryParam("cursor"); cur != "" {
		at, id, err := decodeTimeCursor(cur, "l1")
		if err != nil {
			return err
		}
		before = &store.LeadCursor{CreatedAt: at, ID: id}
	}
	list, err := h.store.Leads(c.Request().Context(), api.ChatbotOf(c).ID, before, limit+1)
	if err != nil {
		return err
	}
	var next *string
	if len(list) > limit {
		list = list[:limit]
		last := list[limit-1]
		next = encodeCursor("l1", strconv.FormatInt(last.CreatedAt.UnixMilli(), 10), last.ID)
	}
	data := make([]leadView, 0, len(list))
	for _, l := range list {
		data = append(data, leadView{ID: l.ID, ChatbotID: l.ChatbotID, SessionID: l.SessionID, Platform: l.Platform,
			SnsUserID: l.SnsUserID, Email: l.Email, CreatedAt: timestamp(l.CreatedAt)})
	}
	return c.JSON(http.StatusOK, map[string]any{"data": data, "next_cursor": next})
}
