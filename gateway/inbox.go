package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/console"
	"github.com/wagate/wagate/store"
)

// The inbox: an organization's conversations across its instances and its
// chatbots' web chats, for the people who answer them. The console's inbox
// pages and the routes of /api/v1/inbox share these operations; pausing
// and resuming a bot is the web chat's human mode (the operation of
// okchat's PATCH conversation), which works on any channel's session and
// reports openai.session.paused and openai.session.opened like the engine.

var _ console.InboxOps = (*Gateway)(nil)

func (g *Gateway) inboxRoutes(auth func(method, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc)) {
	auth(http.MethodGet, "/api/v1/inbox", g.listInbox, g.orgScoped)
	auth(http.MethodGet, "/api/v1/inbox/:conversationId", g.getInboxConversation, g.orgScoped)
	auth(http.MethodGet, "/api/v1/inbox/:conversationId/messages", g.listInboxMessages, g.orgScoped)
	auth(http.MethodPost, "/api/v1/inbox/:conversationId/messages", g.postInboxMessage, g.orgScoped)
	auth(http.MethodPost, "/api/v1/inbox/:conversationId/takeover", g.takeoverInbox, g.orgScoped)
	auth(http.MethodPost, "/api/v1/inbox/:conversationId/handback", g.handbackInbox, g.orgScoped)
}

// A conversation id names an instance's chat: both parts, so that the id
// is resolved inside the caller's organization without a lookup table.
func inboxID(instanceID, chatKey string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(instanceID + "\n" + chatKey))
}

// inboxChat resolves a conversation id inside org: another organization's
// conversation is as unknown as a missing one.
func (g *Gateway) inboxChat(ctx context.Context, org *store.Organization, id string) (*store.Instance, *store.Conversation, error) {
	missing := wagate.FieldError(wagate.ENOTFOUND, "conversationId", "no such conversation in this organization")
	raw, err := base64.RawURLEncoding.DecodeString(id)
	if err != nil {
		return nil, nil, missing
	}
	instID, key, ok := strings.Cut(string(raw), "\n")
	if !ok || instID == "" || key == "" {
		return nil, nil, missing
	}
	inst, err := g.store.InstanceByID(ctx, instID)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND || (err == nil && inst.OrganizationID != org.ID) {
		return nil, nil, missing
	} else if err != nil {
		return nil, nil, err
	}
	conv, err := g.store.Conversation(ctx, inst.ID, key)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		return nil, nil, missing
	}
	return inst, conv, err
}

func inboxChannel(integration string) string {
	switch integration {
	case store.IntegrationWebchat:
		return console.ChannelWebchat
	case store.IntegrationEvolution:
		return console.ChannelEvolution
	}
	return console.ChannelWhatsApp
}

func inboxIntegrations(channel string) []string {
	switch channel {
	case console.ChannelWebchat:
		return []string{store.IntegrationWebchat}
	case console.ChannelEvolution:
		return []string{store.IntegrationEvolution}
	case console.ChannelWhatsApp:
		return []string{store.IntegrationWhatsApp, store.IntegrationWhatsAppBaileys}
	}
	return nil
}

// messageFrom says who wrote m: the customer, a bot, or a person on the
// business's side (an agent in the inbox, or someone on the phone or the
// API).
func messageFrom(m *store.Message) string {
	switch {
	case m.Direction == store.Inbound && !m.FromMe:
		return console.FromCustomer
	case m.Direction == store.Outbound && m.BotID != "":
		return console.FromBot
	}
	return console.FromAgent
}

func viewInbox(inst *store.Instance, c *store.Conversation) console.InboxConversation {
	v := console.InboxConversation{
		ID: inboxID(inst.ID, c.ChatKey), Instance: inst.Name, Channel: inboxChannel(inst.Integration),
		RemoteJID: c.ChatKey, Name: c.PushName, Status: c.Status(), BotID: c.ShownBotID(), LastAt: c.LastAt,
		Unread: c.Unread, Position: c.LastSeq,
	}
	if inst.Integration == store.IntegrationWebchat {
		v.ChatbotID = strings.TrimPrefix(inst.Name, store.WebchatInstanceName(""))
	}
	if c.Session != nil && c.Session.Status != store.SessionClosed {
		v.SessionID = c.Session.ID
	}
	if v.Name == "" {
		v.Name = c.ChatKey
		if v.Channel == console.ChannelWebchat {
			// A visitor's key is platform:random id; its start tells visitors apart.
			_, visitor, _ := strings.Cut(c.ChatKey, ":")
			v.Name = "Visitor " + string([]rune(visitor)[:min(8, utf8.RuneCountInString(visitor))])
		}
	}
	if p := preview(c.Last); p != nil {
		v.Last, v.LastFrom = p.Text, messageFrom(c.Last)
	}
	return v
}

func viewInboxMessage(m *store.Message) console.InboxMessage {
	v := console.InboxMessage{
		Seq: m.Seq, ID: m.ID, From: messageFrom(m), AgentName: m.AgentName, Type: m.MessageType, Text: m.Text,
		At: m.CreatedAt, State: m.State,
	}
	if v.Text == "" {
		v.Text = "[" + strings.TrimSuffix(m.MessageType, "Message") + "]"
	}
	switch m.State {
	case store.MessageIgnored:
		v.Reason = m.StateReason
	case store.MessageFailed:
		v.Error = m.StateReason
	}
	if len(m.Sources) > 0 && m.BotID != "" {
		_ = json.Unmarshal(m.Sources, &v.Sources) // stored by the engine in this shape; a bad one shows none
	}
	return v
}

// Inbox lists the organization's conversations, newest activity first.
func (g *Gateway) Inbox(ctx context.Context, org *store.Organization, f console.InboxFilter) (*console.InboxPage, error) {
	insts, err := g.store.ListOrganizationInstances(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	byID := make(map[string]*store.Instance, len(insts))
	for _, in := range insts {
		byID[in.ID] = in
	}
	list, err := g.store.ListInbox(ctx, org.ID, store.InboxFilter{
		Integrations: inboxIntegrations(f.Channel), BotID: f.BotID, Status: f.Status, Before: f.Before, Limit: f.Limit + 1,
	})
	if err != nil {
		return nil, err
	}
	page := &console.InboxPage{Conversations: []console.InboxConversation{}}
	if len(list) > f.Limit {
		list = list[:f.Limit]
		page.Next = list[f.Limit-1].LastSeq
	}
	for _, c := range list {
		if inst := byID[c.InstanceID]; inst != nil {
			page.Conversations = append(page.Conversations, viewInbox(inst, c))
		}
	}
	return page, nil
}

// InboxBots lists the organization's bots, web chats' included, to filter
// the inbox by.
func (g *Gateway) InboxBots(ctx context.Context, org *store.Organization) ([]console.InboxBot, error) {
	insts, err := g.store.ListOrganizationInstances(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	chatbots, err := g.store.ListChatbots(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, cb := range chatbots {
		names[cb.ID] = cb.Name
	}
	out := []console.InboxBot{}
	for _, inst := range insts {
		list, err := g.store.ListBots(ctx, inst.ID)
		if err != nil {
			return nil, err
		}
		for _, b := range list {
			label := b.Description
			switch {
			case inst.Integration == store.IntegrationWebchat:
				label = "Web chat · " + names[b.ChatbotID]
			case b.ChatbotID != "" && names[b.ChatbotID] != "":
				label = inst.Name + " · " + names[b.ChatbotID]
			case label == "":
				label = inst.Name + " · bot " + b.ID[:min(8, len(b.ID))]
			default:
				label = inst.Name + " · " + label
			}
			out = append(out, console.InboxBot{ID: b.ID, Label: label})
		}
	}
	return out, nil
}

// InboxConversation returns one conversation of the organization.
func (g *Gateway) InboxConversation(ctx context.Context, org *store.Organization, id string) (*console.InboxConversation, error) {
	inst, conv, err := g.inboxChat(ctx, org, id)
	if err != nil {
		return nil, err
	}
	v := viewInbox(inst, conv)
	return &v, nil
}

// InboxMessages returns a conversation's messages oldest first: those
// after seq after, or with after 0 the newest limit.
func (g *Gateway) InboxMessages(ctx context.Context, org *store.Organization, id string, after int64, limit int) ([]console.InboxMessage, error) {
	inst, conv, err := g.inboxChat(ctx, org, id)
	if err != nil {
		return nil, err
	}
	f := store.ChatMessagesFilter{Oldest: after > 0, After: after, Limit: limit}
	list, err := g.store.ChatMessages(ctx, inst.ID, conv.ChatKey, f)
	if err != nil {
		return nil, err
	}
	if after == 0 {
		slices.Reverse(list)
	}
	out := make([]console.InboxMessage, 0, len(list))
	for _, m := range list {
		out = append(out, viewInboxMessage(m))
	}
	return out, nil
}

// InboxMessagesBySeq returns the conversation's messages among seqs.
func (g *Gateway) InboxMessagesBySeq(ctx context.Context, org *store.Organization, id string, seqs []int64) ([]console.InboxMessage, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	inst, conv, err := g.inboxChat(ctx, org, id)
	if err != nil {
		return nil, err
	}
	list, err := g.store.MessagesBySeq(ctx, inst.ID, conv.ChatKey, seqs)
	if err != nil {
		return nil, err
	}
	out := make([]console.InboxMessage, 0, len(list))
	for _, m := range list {
		out = append(out, viewInboxMessage(m))
	}
	return out, nil
}

// InboxVersion is the fingerprint a live page polls: of conversation id,
// or with id "" of the organization's whole inbox.
func (g *Gateway) InboxVersion(ctx context.Context, org *store.Organization, id string) (string, error) {
	if id == "" {
		return g.store.InboxVersion(ctx, org.ID)
	}
	inst, conv, err := g.inboxChat(ctx, org, id)
	if err != nil {
		return "", err
	}
	return g.store.ChatVersion(ctx, inst.ID, conv.ChatKey)
}

// liveSession is the conversation's opened or paused session.
func (g *Gateway) liveSession(ctx context.Context, inst *store.Instance, conv *store.Conversation) (*store.Session, error) {
	se, err := g.store.LiveSession(ctx, inst.ID, conv.ChatKey)
	if err == nil && se == nil {
		err = wagate.FieldError(wagate.ECONFLICT, "conversationId", "no bot is in this conversation now: there is nothing to take over or hand back")
	}
	return se, err
}

// setHuman takes the conversation over (on) or hands it back.
func (g *Gateway) setHuman(ctx context.Context, org *store.Organization, id string, on bool) (*console.InboxConversation, error) {
	inst, conv, err := g.inboxChat(ctx, org, id)
	if err != nil {
		return nil, err
	}
	se, err := g.liveSession(ctx, inst, conv)
	if err != nil {
		return nil, err
	}
	if err := g.webchat.SetHumanMode(ctx, se, on); err != nil {
		return nil, err
	}
	g.console.Changed()
	return g.InboxConversation(ctx, org, id)
}

// Takeover pauses the conversation's bot until it is handed back: the
// customer's messages are stored and shown, and the bot stays silent.
func (g *Gateway) Takeover(ctx context.Context, org *store.Organization, id string) (*console.InboxConversation, error) {
	return g.setHuman(ctx, org, id, true)
}

// Handback resumes the bot: it answers from the customer's next message.
func (g *Gateway) Handback(ctx context.Context, org *store.Organization, id string) (*console.InboxConversation, error) {
	return g.setHuman(ctx, org, id, false)
}

// InboxReply sends an agent's text through the conversation's channel:
// the web chat's operator message, or the instance's send (what
// /message/sendText does), stored as an outbound message without a bot so
// the engine never answers it. A conversation whose bot is answering is
// taken over first: a person answering means the bot should not.
func (g *Gateway) InboxReply(ctx context.Context, org *store.Organization, id string, agent *store.User, text string) (*console.InboxMessage, error) {
	switch {
	case strings.TrimSpace(text) == "":
		return nil, wagate.Invalid("text", "required")
	case utf8.RuneCountInString(text) > maxTextLen:
		return nil, wagate.Invalid("text", "longer than 65536 characters")
	}
	inst, conv, err := g.inboxChat(ctx, org, id)
	if err != nil {
		return nil, err
	}
	name := ""
	if agent != nil {
		name = agent.Name
	}
	se, err := g.store.LiveSession(ctx, inst.ID, conv.ChatKey)
	if err != nil {
		return nil, err
	}
	if se != nil && se.Status == store.SessionOpened {
		if err := g.webchat.SetHumanMode(ctx, se, true); err != nil {
			return nil, err
		}
	}
	var m *store.Message
	if inst.Integration == store.IntegrationWebchat {
		if se == nil {
			return nil, wagate.FieldError(wagate.ECONFLICT, "conversationId", "the visitor's conversation is closed")
		}
		m, err = g.webchat.PostAgent(ctx, se, text, name)
	} else {
		out := bots.Outbound{ChatJID: conv.ChatKey, ChatKey: conv.ChatKey, Text: text, AgentName: name}
		if se != nil {
			out.SessionID = se.ID
		}
		m, err = g.Post(ctx, inst, out)
	}
	if err != nil {
		return nil, err
	}
	v := viewInboxMessage(m)
	return &v, nil
}

// ---- routes

func (g *Gateway) listInbox(c echo.Context) error {
	f := console.InboxFilter{Status: c.QueryParam("status"), Channel: c.QueryParam("channel"), BotID: c.QueryParam("botId")}
	var p wagate.Problems
	switch f.Status {
	case "", store.SessionOpened, store.SessionPaused, store.SessionClosed:
	default:
		p.Add("status", `must be "opened", "paused" or "closed"`)
	}
	switch f.Channel {
	case "", console.ChannelWhatsApp, console.ChannelEvolution, console.ChannelWebchat:
	default:
		p.Add("channel", `must be "whatsapp", "evolution" or "webchat"`)
	}
	limit, err := api.PageLimit(c.QueryParam("limit"))
	if err != nil {
		return err
	}
	f.Limit = limit
	if cur := c.QueryParam("cursor"); cur != "" {
		if n, err := decodeCursor(cur, "i1", 1); err != nil {
			p.Add("cursor", "not a cursor returned by this route")
		} else {
			f.Before = n[0]
		}
	}
	if err := p.Err(); err != nil {
		return err
	}
	page, err := g.Inbox(c.Request().Context(), api.OrgOf(c), f)
	if err != nil {
		return err
	}
	var next *string
	if page.Next > 0 {
		next = encodeCursor("i1", itoa(page.Next))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": page.Conversations, "nextCursor": next})
}

func (g *Gateway) getInboxConversation(c echo.Context) error {
	v, err := g.InboxConversation(c.Request().Context(), api.OrgOf(c), c.Param("conversationId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (g *Gateway) listInboxMessages(c echo.Context) error {
	var after int64
	if a := c.QueryParam("after"); a != "" {
		n, err := strconv.ParseInt(a, 10, 64)
		if err != nil || n < 0 {
			return wagate.Invalid("after", "must be the seq of a message")
		}
		after = n
	}
	limit, err := api.PageLimit(c.QueryParam("limit"))
	if err != nil {
		return err
	}
	list, err := g.InboxMessages(c.Request().Context(), api.OrgOf(c), c.Param("conversationId"), after, limit)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"data": list})
}

func (g *Gateway) postInboxMessage(c echo.Context) error {
	var req struct {
		Text string `json:"text"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var agent *store.User
	if s := api.PrincipalOf(c).Session; s != nil {
		agent = &s.User
	}
	m, err := g.InboxReply(c.Request().Context(), api.OrgOf(c), c.Param("conversationId"), agent, req.Text)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, m)
}

func (g *Gateway) takeoverInbox(c echo.Context) error {
	v, err := g.Takeover(c.Request().Context(), api.OrgOf(c), c.Param("conversationId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (g *Gateway) handbackInbox(c echo.Context) error {
	v, err := g.Handback(c.Request().Context(), api.OrgOf(c), c.Param("conversationId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}
