package webchat

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/store"
)

// VisitorHeader carries a widget visitor's token on the public routes.
const VisitorHeader = "X-Wagate-Visitor"

// PublicPath prefixes the public routes of a chatbot.
const PublicPath = "/api/public/chatbots/"

// Routes registers the widget, the hosted page and the public routes,
// which need no secret: they answer only public chatbots, to visitors
// holding a token the gateway minted, within rate limits, from the
// origins the chatbot allows.
func (ch *Channel) Routes(e *echo.Echo) {
	e.GET("/widget.js", ch.serveAsset("widget.js", "text/javascript; charset=utf-8"))
	e.GET("/widget.css", ch.serveAsset("widget.css", "text/css; charset=utf-8"))
	e.GET("/c/:slug", ch.hostedPage)
	p := e.Group(PublicPath+":chatbotId", ch.public)
	for _, path := range []string{"", "/sessions", "/messages", "/chat", "/events"} {
		p.OPTIONS(path, func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	}
	p.GET("", ch.publicConfig)
	p.POST("/sessions", ch.mintVisitor)
	p.GET("/messages", ch.history)
	p.POST("/chat", ch.publicChat)
	p.GET("/events", ch.events)
	// Attachments are addressed by their message's random id, like a
	// storage bucket's public URLs; the chatbot need not be public.
	e.GET(PublicPath+":chatbotId/attachments/:messageId", ch.attachment)
}

const chatbotKey = "webchat.chatbot"

func chatbotOf(c echo.Context) *store.Chatbot { return c.Get(chatbotKey).(*store.Chatbot) }

// public resolves the public chatbot in the path and applies its allowed
// origins: a browser on another site is refused unless the chatbot lists
// it (with none listed, every site may embed it). The gateway's own
// hosted page is always allowed.
func (ch *Channel) public(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		cb, err := ch.st.PublicChatbot(c.Request().Context(), c.Param("chatbotId"))
		if err != nil {
			return wagate.Errorf(wagate.ENOTFOUND, "chatbotId: no public chatbot %q: it does not exist or is not public (is_public: false)", c.Param("chatbotId"))
		}
		req := c.Request()
		origin := req.Header.Get("Origin")
		if !ch.originAllowed(cb, origin, req.Header.Get("Sec-Fetch-Site")) {
			return wagate.FieldError(wagate.EFORBIDDEN, "Origin", origin+" is not among the chatbot's allowedOrigins")
		}
		h := c.Response().Header()
		h.Add("Vary", "Origin")
		if origin != "" {
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, "+VisitorHeader)
			h.Set("Access-Control-Max-Age", "600")
		}
		c.Set(chatbotKey, cb)
		return next(c)
	}
}

// AllowedOrigins is the chatbot's settings.allowedOrigins.
func AllowedOrigins(cb *store.Chatbot) []string {
	raw, _ := cb.Settings["allowedOrigins"].([]any)
	out := make([]string, 0, len(raw))
	for _, v := range raw {
		if s, ok := v.(string); ok {
			out = append(out, strings.TrimRight(strings.ToLower(s), "/"))
		}
	}
	return out
}

func (ch *Channel) originAllowed(cb *store.Chatbot, origin, fetchSite string) bool {
	list := AllowedOrigins(cb)
	if len(list) == 0 {
		return true
	}
	self := strings.ToLower(strings.TrimRight(ch.cfg.ServerURL, "/"))
	switch origin = strings.ToLower(origin); {
	case origin == "":
		// Browsers name the origin of every cross-site request; a request
		// without one is same-site, or not from a browser, and a listed
		// chatbot is for browsers on the listed sites.
		return fetchSite == "same-origin"
	case origin == self:
		return true
	}
	return slices.Contains(list, origin)
}

// ---- visitor tokens: v1.<id>.<mac>, the mac binding id to the chatbot,
// so a token works for the chatbot it was minted for only.

func (ch *Channel) mac(chatbotID, id string) string {
	m := hmac.New(sha256.New, ch.cfg.Secret)
	m.Write([]byte(chatbotID + "." + id))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// VisitorToken mints a token for a new visitor of the chatbot.
func (ch *Channel) VisitorToken(chatbotID string) string {
	b := make([]byte, 16)
	rand.Read(b)
	id := hex.EncodeToString(b)
	return "v1." + id + "." + ch.mac(chatbotID, id)
}

// visitor checks the request's token and returns the visitor id.
func (ch *Channel) visitor(c echo.Context) (string, error) {
	tok := c.Request().Header.Get(VisitorHeader)
	if tok == "" {
		tok = c.QueryParam("visitor") // EventSource cannot set headers
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 || parts[0] != "v1" || len(parts[1]) != 32 ||
		!hmac.Equal([]byte(parts[2]), []byte(ch.mac(chatbotOf(c).ID, parts[1]))) {
		return "", wagate.FieldError(wagate.EUNAUTHORIZED, VisitorHeader, "a visitor token from POST "+PublicPath+"{chatbotId}/sessions is required")
	}
	return parts[1], nil
}

func (ch *Channel) limit(c echo.Context, key string, n int) error {
	if ch.limits.allow(key, n, time.Now()) {
		return nil
	}
	c.Response().Header().Set("Retry-After", strconv.Itoa(60-time.Now().Second()))
	return wagate.Errorf(wagate.ERATELIMITED, "too many messages; try again in a minute")
}

// ---- routes

// WidgetConfig is what the widget shows: the chat-widget branding (the
// chatbot's snippet where unset), the greeting and the lead capture.
type WidgetConfig struct {
	ID             string `json:"id"`
	Name           string `json:"name"`
	Header         string `json:"header"`
	Slogan         string `json:"slogan"`
	Logo           string `json:"logo"`
	Avatar         string `json:"avatar"`
	PrimaryColor   string `json:"primaryColor"`
	SecondaryColor string `json:"secondaryColor"`
	Language       string `json:"language"`
	Greeting       string `json:"greeting"`
	RequestEmail   bool   `json:"requestEmail"`
	LeadPrompt     string `json:"leadPrompt,omitempty"`
	MaxText        int    `json:"maxText"`
}

func widgetConfig(cb *store.Chatbot, maxText int) WidgetConfig {
	get := func(key string) string {
		if v, _ := cb.ChatWidget[key].(string); v != "" {
			return v
		}
		snip, _ := cb.Settings["snippet"].(map[string]any)
		v, _ := snip[key].(string)
		return v
	}
	w := WidgetConfig{ID: cb.ID, Name: get("name"), Header: get("header"), Slogan: get("slogan"), Logo: get("logo"),
		Avatar: cb.Setting("avatar"), PrimaryColor: get("primaryColor"), SecondaryColor: get("secondaryColor"),
		Language: get("language"), Greeting: cb.Setting("greeting"), MaxText: maxText}
	if w.Name == "" {
		w.Name = cb.Name
	}
	if w.PrimaryColor == "" {
		w.PrimaryColor = "#4F46E5"
	}
	if w.SecondaryColor == "" {
		w.SecondaryColor = "#10B981"
	}
	if w.Language == "" {
		w.Language = "auto"
	}
	if on, _ := cb.Settings["isRequestUserInfoEnabled"].(bool); on {
		w.RequestEmail, w.LeadPrompt = true, LeadAsk
	}
	return w
}

func (ch *Channel) publicConfig(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "public, max-age=60")
	return c.JSON(http.StatusOK, widgetConfig(chatbotOf(c), ch.limits.limits.MaxText))
}

func (ch *Channel) mintVisitor(c echo.Context) error {
	if err := ch.limit(c, "s:"+c.RealIP(), ch.limits.limits.Sessions); err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]string{"visitorToken": ch.VisitorToken(chatbotOf(c).ID)})
}

// HistoryMessage is a message of a visitor's conversation.
type HistoryMessage struct {
	ID          string `json:"id"`
	Role        string `json:"role"` // user, assistant or human (an operator)
	Content     string `json:"content"`
	Attachments []any  `json:"attachments,omitempty"`
	Partial     bool   `json:"partial,omitempty"`
	CreatedAt   string `json:"createdAt"`
}

// history shows the visitor's conversation, oldest first, after the
// cursor: the widget shows it on reload and polls it in human mode.
func (ch *Channel) history(c echo.Context) error {
	ctx := c.Request().Context()
	vis, err := ch.visitor(c)
	if err != nil {
		return err
	}
	cb := chatbotOf(c)
	var after int64
	if cur := c.QueryParam("after"); cur != "" {
		if after, err = strconv.ParseInt(cur, 10, 64); err != nil || after < 0 {
			return wagate.Invalid("after", "not a cursor returned by this route")
		}
	}
	out := map[string]any{"sessionId": nil, "humanMode": false, "messages": []HistoryMessage{}, "cursor": strconv.FormatInt(after, 10)}
	inst, _, err := ch.instance(ctx, cb)
	if err != nil {
		return err
	}
	se, err := ch.st.LiveSession(ctx, inst.ID, ChatKey(PlatformWeb, vis))
	if err != nil || se == nil {
		return c.JSON(http.StatusOK, out)
	}
	list, err := ch.st.SessionMessages(ctx, inst.ID, se.ID, after, 200)
	if err != nil {
		return err
	}
	msgs, err := ch.historyOf(ctx, inst, list)
	if err != nil {
		return err
	}
	out["sessionId"], out["humanMode"], out["messages"] = se.ID, se.Status == store.SessionPaused, msgs
	if len(list) > 0 {
		out["cursor"] = strconv.FormatInt(list[len(list)-1].Seq, 10)
	}
	return c.JSON(http.StatusOK, out)
}

func (ch *Channel) historyOf(ctx context.Context, inst *store.Instance, list []*store.Message) ([]HistoryMessage, error) {
	var ids []string
	for _, m := range list {
		ids = append(ids, m.ID)
	}
	partial, err := ch.st.Partials(ctx, inst.ID, ids)
	if err != nil {
		return nil, err
	}
	out := make([]HistoryMessage, 0, len(list))
	for _, m := range list {
		out = append(out, historyMessage(m, partial[m.ID]))
	}
	return out, nil
}

func historyMessage(m *store.Message, partial bool) HistoryMessage {
	h := HistoryMessage{ID: m.ID, Role: "user", Content: m.Text, Partial: partial,
		CreatedAt: m.CreatedAt.UTC().Format(time.RFC3339Nano)}
	switch {
	case m.Direction == store.Outbound && m.BotID != "":
		h.Role = "assistant"
	case m.Direction == store.Outbound:
		h.Role = "human"
	}
	if m.MessageType == "imageMessage" {
		var c struct {
			Attachments []any `json:"attachments"`
		}
		if json.Unmarshal(m.Content, &c) == nil {
			h.Attachments = c.Attachments
		}
	}
	return h
}

// publicChat is the widget's chat: {"content", "image"?} from a visitor.
func (ch *Channel) publicChat(c echo.Context) error {
	vis, err := ch.visitor(c)
	if err != nil {
		return err
	}
	var req struct {
		Content string `json:"content"`
		Image   string `json:"image"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	if req.Image == "" || strings.TrimSpace(req.Content) != "" {
		if err := CheckText("content", req.Content, ch.limits.limits.MaxText); err != nil {
			return err
		}
	}
	if err := ch.limit(c, "i:"+c.RealIP(), ch.limits.limits.PerIP); err != nil {
		return err
	}
	if err := ch.limit(c, "v:"+vis, ch.limits.limits.PerVisitor); err != nil {
		return err
	}
	return ch.Serve(c, chatbotOf(c), Turn{Platform: PlatformWeb, Visitor: vis, Text: req.Content, ImageURL: req.Image},
		c.QueryParam("stream") != "false")
}

// events streams what is posted in the visitor's conversation outside a
// turn (an operator's replies), with heartbeats, until the visitor leaves.
func (ch *Channel) events(c echo.Context) error {
	vis, err := ch.visitor(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	inst, _, err := ch.instance(ctx, chatbotOf(c))
	if err != nil {
		return err
	}
	sub, cancel := ch.hub.subscribe(chatID(inst.ID, ChatKey(PlatformWeb, vis)))
	defer cancel()
	out := startSSE(c)
	out.comment("open")
	hb := time.NewTicker(ch.cfg.Heartbeat)
	defer hb.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-hb.C:
			out.comment("heartbeat")
		case m := <-sub.ch:
			partial := false
			out.send(EventMessage, historyMessage(m, partial))
		}
	}
}

// attachment serves an image a visitor attached.
func (ch *Channel) attachment(c echo.Context) error {
	ctx := c.Request().Context()
	inst, err := ch.st.InstanceByName(ctx, store.WebchatInstanceName(c.Param("chatbotId")))
	if err != nil {
		return wagate.Errorf(wagate.ENOTFOUND, "no such attachment")
	}
	m, err := ch.st.Message(ctx, inst.ID, c.Param("messageId"), store.Inbound)
	if err != nil || m.MessageType != "imageMessage" {
		return wagate.Errorf(wagate.ENOTFOUND, "no such attachment")
	}
	var content struct {
		Image struct {
			Mimetype string `json:"mimetype"`
			Base64   string `json:"base64"`
		} `json:"imageMessage"`
	}
	if json.Unmarshal(m.Content, &content) != nil {
		return wagate.Errorf(wagate.ENOTFOUND, "no such attachment")
	}
	data, err := base64.StdEncoding.DecodeString(content.Image.Base64)
	if err != nil {
		return wagate.Errorf(wagate.ENOTFOUND, "no such attachment")
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, content.Image.Mimetype, data)
}

var pageTemplate = template.Must(template.New("page").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Name}}</title>
<link rel="stylesheet" href="{{.Base}}/widget.css">
</head>
<body class="wagate-page">
<main id="wagate-chat" aria-label="{{.Name}}"></main>
<script src="{{.Base}}/widget.js" data-chatbot="{{.ID}}" data-mode="page" data-target="wagate-chat"></script>
</body>
</html>
`))

// hostedPage is a public chatbot's full-page chat: /c/<slug> (the oldest
// public chatbot with that slug across organizations) or /c/<chatbotId>.
func (ch *Channel) hostedPage(c echo.Context) error {
	ctx := c.Request().Context()
	ref := c.Param("slug")
	cb, err := ch.st.PublicChatbotBySlug(ctx, ref)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		cb, err = ch.st.PublicChatbot(ctx, ref)
	}
	if err != nil {
		return wagate.Errorf(wagate.ENOTFOUND, "no public chatbot %q", ref)
	}
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextHTMLCharsetUTF8)
	c.Response().Header().Set("Content-Security-Policy", "default-src 'self'; img-src * data:; style-src 'self' 'unsafe-inline'")
	c.Response().WriteHeader(http.StatusOK)
	return pageTemplate.Execute(c.Response(), map[string]string{"Name": widgetConfig(cb, 0).Name, "ID": cb.ID, "Base": ""})
}
