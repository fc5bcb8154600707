package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/store"
)

// ---- views

// usageView is what a bot reply cost.
type usageView struct {
	PromptTokens     int64 `json:"promptTokens"`
	CompletionTokens int64 `json:"completionTokens"`
	TotalTokens      int64 `json:"totalTokens"`
}

func usage(prompt, completion int64) usageView {
	return usageView{PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion}
}

// messageView is one message as the conversations routes show it: what was
// said, and what the gateway and its bots made of it.
type messageView struct {
	ID             string          `json:"id"`
	RemoteJID      string          `json:"remoteJid"`
	Participant    string          `json:"participant,omitempty"`
	FromMe         bool            `json:"fromMe"`
	Direction      string          `json:"direction"`
	PushName       string          `json:"pushName"`
	MessageType    string          `json:"messageType"`
	Text           string          `json:"text"`
	Message        json.RawMessage `json:"message"` // Evolution's message object, with any media reference
	Timestamp      time.Time       `json:"timestamp"`
	CreatedAt      time.Time       `json:"createdAt"`
	Status         string          `json:"status"`
	Reason         string          `json:"reason,omitempty"` // why it was ignored
	Error          string          `json:"error,omitempty"`  // why the bot failed
	DeliveryStatus string          `json:"deliveryStatus"`   // Evolution's status
	BotID          *string         `json:"botId"`
	SessionID      *string         `json:"sessionId"`
	Usage          *usageView      `json:"usage,omitempty"`       // bot replies
	LatencyMS      *int            `json:"latencyMs,omitempty"`   // bot replies: the model's answer time
	Sources        json.RawMessage `json:"sources,omitempty"`     // bot replies: the knowledge chunks used
	ToolCalls      json.RawMessage `json:"toolCalls,omitempty"`   // bot replies: the tool calls the model made
	ToolResults    json.RawMessage `json:"toolResults,omitempty"` // bot replies: what each function answered
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func viewMessage(m *store.Message) messageView {
	v := messageView{
		ID: m.ID, RemoteJID: m.RemoteJID, Participant: m.Participant, FromMe: m.FromMe, Direction: string(m.Direction),
		PushName: m.PushName, MessageType: m.MessageType, Text: m.Text, Message: m.Content, Timestamp: m.Timestamp,
		CreatedAt: m.CreatedAt, Status: m.State, DeliveryStatus: m.Status, BotID: optional(m.BotID),
		SessionID: optional(m.SessionID),
	}
	if len(v.Message) == 0 {
		v.Message = json.RawMessage("{}")
	}
	switch m.State {
	case store.MessageIgnored:
		v.Reason = m.StateReason
	case store.MessageFailed:
		v.Error = m.StateReason
	}
	if m.Direction == store.Outbound && m.BotID != "" {
		u, latency := usage(int64(m.PromptTokens), int64(m.CompletionTokens)), m.LatencyMS
		v.Usage, v.LatencyMS = &u, &latency
		v.Sources, v.ToolCalls, v.ToolResults = m.Sources, m.ToolCalls, m.ToolResults
	}
	return v
}

// previewView is a conversation's newest message, short.
type previewView struct {
	ID          string    `json:"id"`
	FromMe      bool      `json:"fromMe"`
	Direction   string    `json:"direction"`
	MessageType string    `json:"messageType"`
	Text        string    `json:"text"`
	Timestamp   time.Time `json:"timestamp"`
	Status      string    `json:"status"`
}

const previewLen = 200 // characters

func preview(m *store.Message) *previewView {
	if m == nil {
		return nil
	}
	text := m.Text
	if text == "" {
		text = "[" + strings.TrimSuffix(m.MessageType, "Message") + "]"
	} else if utf8.RuneCountInString(text) > previewLen {
		text = string([]rune(text)[:previewLen-1]) + "…"
	}
	return &previewView{
		ID: m.ID, FromMe: m.FromMe, Direction: string(m.Direction), MessageType: m.MessageType, Text: text,
		Timestamp: m.Timestamp, Status: m.State,
	}
}

type countsView struct {
	In    int `json:"in"`
	Out   int `json:"out"`
	Total int `json:"total"`
}

// conversationView is one chat: who, with which bot and session, its
// newest message, how much was said and what the bots' answers cost.
type conversationView struct {
	RemoteJID     string           `json:"remoteJid"`
	PushName      string           `json:"pushName"`
	BotID         *string          `json:"botId"`
	Status        *string          `json:"status"` // the bot session's: opened, paused, closed; null if no bot took part
	Session       *api.SessionView `json:"session"`
	LastMessage   *previewView     `json:"lastMessage"`
	LastMessageAt time.Time        `json:"lastMessageAt"`
	Messages      countsView       `json:"messages"`
	Unread        int              `json:"unread"` // customer messages since the last answer
	Usage         usageView        `json:"usage"`
	CreatedAt     time.Time        `json:"createdAt"`
}

func viewConversation(c *store.Conversation) conversationView {
	v := conversationView{
		RemoteJID: c.ChatKey, PushName: c.PushName, BotID: optional(c.ShownBotID()), Status: optional(c.Status()),
		LastMessage: preview(c.Last), LastMessageAt: c.LastAt, Unread: c.Unread,
		Messages: countsView{In: c.MessagesIn, Out: c.MessagesOut, Total: c.MessagesIn + c.MessagesOut},
		Usage:    usage(c.PromptTokens, c.CompletionTokens), CreatedAt: c.CreatedAt,
	}
	if c.Session != nil {
		s := api.ViewSession(c.Session)
		v.Session = &s
	}
	return v
}

// ---- cursors: opaque to clients, checked on the way back in

func encodeCursor(parts ...string) *string {
	c := base64.RawURLEncoding.EncodeToString([]byte(strings.Join(parts, ".")))
	return &c
}

// decodeCursor returns the numbers in a cursor made by encodeCursor with
// the same kind and n numbers.
func decodeCursor(cur, kind string, n int) ([]int64, error) {
	bad := wagate.Invalid("cursor", "not a cursor returned by this route")
	raw, err := base64.RawURLEncoding.DecodeString(cur)
	if err != nil {
		return nil, bad
	}
	parts := strings.Split(string(raw), ".")
	if len(parts) != n+1 || parts[0] != kind {
		return nil, bad
	}
	out := make([]int64, n)
	for i, p := range parts[1:] {
		if out[i], err = strconv.ParseInt(p, 10, 64); err != nil || out[i] <= 0 {
			return nil, bad
		}
	}
	return out, nil
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// ---- routes

// listConversations lists the instance's chats, newest activity first.
func (g *Gateway) listConversations(c echo.Context) error {
	inst := instanceOf(c)
	ctx := c.Request().Context()
	f := store.ConversationFilter{BotID: c.QueryParam("botId"), Status: c.QueryParam("status"), Query: strings.TrimSpace(c.QueryParam("q"))}
	var p wagate.Problems
	switch f.Status {
	case "", store.SessionOpened, store.SessionPaused, store.SessionClosed:
	default:
		p.Add("status", `must be "opened", "paused" or "closed"`)
	}
	if utf8.RuneCountInString(f.Query) > 256 {
		p.Add("q", "longer than 256 characters")
	}
	limit, err := api.PageLimit(c.QueryParam("limit"))
	if err != nil {
		return err
	}
	if cur := c.QueryParam("cursor"); cur != "" {
		if n, err := decodeCursor(cur, "c1", 2); err != nil {
			p.Add("cursor", "not a cursor returned by this route")
		} else {
			f.Snapshot, f.Before = n[0], n[1]
		}
	}
	if err := p.Err(); err != nil {
		return err
	}
	if f.BotID != "" {
		// A bot of another instance is not this instance's business.
		if _, err := g.store.Bot(ctx, inst.ID, f.BotID); wagate.ErrorCode(err) == wagate.ENOTFOUND {
			return wagate.Invalid("botId", "no bot with this id in this instance")
		} else if err != nil {
			return err
		}
	}
	f.Limit = limit + 1
	list, snapshot, err := g.store.ListConversations(ctx, inst.ID, f)
	if err != nil {
		return err
	}
	var next *string
	if len(list) > limit {
		list = list[:limit]
		next = encodeCursor("c1", itoa(snapshot), itoa(list[limit-1].Position))
	}
	data := make([]conversationView, 0, len(list))
	for _, conv := range list {
		data = append(data, viewConversation(conv))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": data, "nextCursor": next})
}

// chatKey resolves the remoteJid in the path to the instance's
// conversation: a JID as stored, a JID the chat's messages came from (a
// LID kept under the phone number), or a phone number.
func (g *Gateway) chatKey(c echo.Context) (string, error) {
	raw, err := url.PathUnescape(c.Param("remoteJid"))
	if err != nil {
		return "", wagate.Invalid("remoteJid", "not a valid JID")
	}
	key, ok, err := g.lookupChat(c.Request().Context(), instanceOf(c).ID, raw, "remoteJid")
	if err != nil {
		return "", err
	}
	if !ok {
		jid, _ := normalizeNumber(raw)
		return "", wagate.FieldError(wagate.ENOTFOUND, "remoteJid", "no conversation with "+jid+" in this instance")
	}
	return key, nil
}

// maxLegacyKeyLen is the longest remoteJid inbound ever accepted.
const maxLegacyKeyLen = 256

// lookupChat finds the conversation a client names with raw (a JID or a
// phone number), reporting a problem under field when raw names none by
// the rules and no chat is stored under it. Versions that did not check
// the inbound remoteJid stored chats under keys no rule accepts ("not a
// jid", control characters): they are found by their exact key, so that
// they stay readable.
func (g *Gateway) lookupChat(ctx context.Context, instanceID, raw, field string) (key string, ok bool, err error) {
	jid, problem := normalizeNumber(raw)
	if problem == "" {
		if key, ok, err = g.store.ConversationKey(ctx, instanceID, jid); err != nil || ok {
			return key, ok, err
		}
	}
	if raw != jid && raw != "" && len(raw) <= maxLegacyKeyLen {
		if key, ok, err = g.store.ConversationKey(ctx, instanceID, raw); err != nil || ok {
			return key, ok, err
		}
	}
	if problem != "" {
		return "", false, wagate.Invalid(field, problem)
	}
	return "", false, nil
}

// maxChatSessions bounds the sessions shown with a conversation.
const maxChatSessions = 100

// getConversation shows one chat with its sessions, newest first.
func (g *Gateway) getConversation(c echo.Context) error {
	key, err := g.chatKey(c)
	if err != nil {
		return err
	}
	inst := instanceOf(c)
	ctx := c.Request().Context()
	conv, err := g.store.Conversation(ctx, inst.ID, key)
	if err != nil {
		return err
	}
	sessions, err := g.store.ListSessions(ctx, inst.ID, store.SessionFilter{RemoteJID: key, Limit: maxChatSessions})
	if err != nil {
		return err
	}
	views := make([]api.SessionView, 0, len(sessions))
	for _, s := range sessions {
		views = append(views, api.ViewSession(s))
	}
	return c.JSON(http.StatusOK, struct {
		conversationView
		Sessions []api.SessionView `json:"sessions"`
	}{viewConversation(conv), views})
}

// listChatMessages lists a chat's messages, newest first (or oldest first
// with order=asc), paginated by seq so that arriving messages never shift
// the pages.
func (g *Gateway) listChatMessages(c echo.Context) error {
	var (
		p wagate.Problems
		f store.ChatMessagesFilter
	)
	switch d := c.QueryParam("direction"); d {
	case "", string(store.Inbound), string(store.Outbound):
		f.Direction = store.Direction(d)
	default:
		p.Add("direction", `must be "in" or "out"`)
	}
	kind := "m1d"
	switch c.QueryParam("order") {
	case "", "desc":
	case "asc":
		f.Oldest, kind = true, "m1a"
	default:
		p.Add("order", `must be "desc" (newest first) or "asc"`)
	}
	limit, err := api.PageLimit(c.QueryParam("limit"))
	if err != nil {
		return err
	}
	if cur := c.QueryParam("cursor"); cur != "" {
		if n, err := decodeCursor(cur, kind, 1); err != nil {
			p.Add("cursor", "not a cursor returned by this route with this order")
		} else {
			f.After = n[0]
		}
	}
	if err := p.Err(); err != nil {
		return err
	}
	key, err := g.chatKey(c)
	if err != nil {
		return err
	}
	f.Limit = limit + 1
	list, err := g.store.ChatMessages(c.Request().Context(), instanceOf(c).ID, key, f)
	if err != nil {
		return err
	}
	var next *string
	if len(list) > limit {
		list = list[:limit]
		next = encodeCursor(kind, itoa(list[limit-1].Seq))
	}
	data := make([]messageView, 0, len(list))
	for _, m := range list {
		data = append(data, viewMessage(m))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": data, "nextCursor": next})
}

// ---- Evolution's chat routes

// findRecord is a message in Evolution's findMessages and findChats.
type findRecord struct {
	ID string `json:"id"`
	messageRecord
}

func viewFindRecord(m *store.Message) findRecord {
	return findRecord{ID: itoa(m.Seq), messageRecord: record(m)}
}

const (
	defaultFindPageSize = 50
	maxFindPageSize     = 1000
	// maxFindPage bounds page numbers so that the offset, (page-1)·size,
	// stays far inside every integer type on the way to the database: an
	// unbounded page wrapped the offset negative. Deeper reading is the
	// cursor-paginated messages route's job.
	maxFindPage = 1_000_000
)

// findMessages is Evolution's message search: where.key filters, page
// numbers and a page size called offset, newest first. Unlike Evolution's,
// fromMe false filters too.
func (g *Gateway) findMessages(c echo.Context) error {
	var req struct {
		Where struct {
			Key struct {
				RemoteJID string `json:"remoteJid"`
				FromMe    *bool  `json:"fromMe"`
				ID        string `json:"id"`
			} `json:"key"`
		} `json:"where"`
		Page   *int `json:"page"`
		Offset *int `json:"offset"`
	}
	if c.Request().ContentLength != 0 {
		if err := api.Decode(c, &req, false); err != nil {
			return err
		}
	}
	var p wagate.Problems
	f := store.FindMessagesFilter{ID: strings.TrimSpace(req.Where.Key.ID), FromMe: req.Where.Key.FromMe}
	jid := req.Where.Key.RemoteJID
	page, size := 1, defaultFindPageSize
	if req.Page != nil {
		if page = *req.Page; page < 1 || page > maxFindPage {
			p.Add("page", fmt.Sprintf("must be from 1 to %d", maxFindPage))
		}
	}
	if req.Offset != nil {
		if size = *req.Offset; size < 1 || size > maxFindPageSize {
			p.Add("offset", fmt.Sprintf("must be a page size from 1 to %d", maxFindPageSize))
		}
	}
	if err := p.Err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	inst := instanceOf(c)
	if strings.TrimSpace(jid) != "" {
		// The chat is its whole conversation: a person's messages from a
		// LID are found by the phone number too.
		key, ok, err := g.lookupChat(ctx, inst.ID, jid, "where.key.remoteJid")
		if err != nil {
			return err
		}
		if !ok {
			return c.JSON(http.StatusOK, findMessagesBody(nil, 0, page, size))
		}
		f.ChatKey = key
	}
	list, total, err := g.store.FindMessages(ctx, inst.ID, f, (page-1)*size, size)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, findMessagesBody(list, total, page, size))
}

// findMessagesPage is Evolution's findMessages response.
type findMessagesPage struct {
	Messages struct {
		Total       int          `json:"total"`
		Pages       int          `json:"pages"`
		CurrentPage int          `json:"currentPage"`
		Records     []findRecord `json:"records"`
	} `json:"messages"`
}

func findMessagesBody(list []*store.Message, total, page, size int) findMessagesPage {
	var body findMessagesPage
	m := &body.Messages
	m.Total, m.Pages, m.CurrentPage, m.Records = total, (total+size-1)/size, page, make([]findRecord, 0, len(list))
	for _, msg := range list {
		m.Records = append(m.Records, viewFindRecord(msg))
	}
	return body
}

// chatRecord is a chat in Evolution's findChats.
type chatRecord struct {
	ID             string      `json:"id"`
	RemoteJID      string      `json:"remoteJid"`
	Name           *string     `json:"name"`
	Labels         []string    `json:"labels"`
	CreatedAt      time.Time   `json:"createdAt"`
	UpdatedAt      time.Time   `json:"updatedAt"`
	PushName       *string     `json:"pushName"`
	ProfilePicURL  *string     `json:"profilePicUrl"`
	UnreadMessages int         `json:"unreadMessages"`
	UnreadCount    int         `json:"unreadCount"` // Evolution 2.3's name for unreadMessages
	Archived       bool        `json:"archived"`
	IsSaved        bool        `json:"isSaved"` // the instance has the chat's contact
	LastMessage    *findRecord `json:"lastMessage,omitempty"`
}

// viewChatRecord shows a chat from what is known of it: its stored
// messages' summary, what the network said of it, and its contact.
func viewChatRecord(l *store.ChatListing) chatRecord {
	r := chatRecord{ID: l.Key, RemoteJID: l.Key, Labels: []string{}, IsSaved: l.Contact != nil}
	var name, pushName string
	if conv := l.Conversation; conv != nil {
		r.CreatedAt, r.UpdatedAt, r.UnreadMessages = conv.CreatedAt, conv.LastAt, conv.Unread
		if !strings.HasSuffix(l.Key, "@g.us") {
			name, pushName = conv.PushName, conv.PushName // in a group, the last sender's
		}
		if conv.Last != nil {
			last := viewFindRecord(conv.Last)
			r.LastMessage = &last
		}
	}
	if ct := l.Contact; ct != nil {
		if ct.PushName != "" {
			pushName = ct.PushName
		}
		if ct.Name() != "" {
			name = ct.Name()
		}
	}
	if ch := l.Chat; ch != nil {
		if ch.Name != "" {
			name = ch.Name
		}
		r.Archived = ch.Archived
		if l.Conversation == nil {
			r.CreatedAt, r.UpdatedAt, r.UnreadMessages = ch.CreatedAt, ch.LastAt, ch.Unread
			if ch.LastAt.IsZero() {
				r.UpdatedAt = ch.UpdatedAt
			}
		}
	}
	r.Name, r.PushName, r.UnreadCount = optional(name), optional(pushName), r.UnreadMessages
	return r
}

// defaultFindChatsPageSize is findChats' page without an offset: as many
// as a page may hold, since Evolution's clients that send no paging
// expect every chat.
const defaultFindChatsPageSize = maxFindPageSize

// findChats is Evolution's chat list: the instance's chats (or the one
// where names), newest activity first, with their last message and
// unreadMessages, the customer's messages since the last answer. Chats
// known only from the network (a history sync) are listed too. Pages are
// bounded: page numbers, and offset the page size.
func (g *Gateway) findChats(c echo.Context) error {
	where, page, size, err := readFind(c, defaultFindChatsPageSize)
	if err != nil {
		return err
	}
	inst := instanceOf(c)
	ctx := c.Request().Context()
	out := []chatRecord{}
	key := ""
	if raw, field := where.jid(); raw != "" {
		k, ok, err := g.lookupChat(ctx, inst.ID, raw, field)
		if err != nil {
			return err
		}
		if !ok {
			// Perhaps a chat only the network told of.
			if k, _ = normalizeNumber(raw); k == "" {
				return c.JSON(http.StatusOK, out)
			}
		}
		key = k
	}
	list, _, err := g.store.FindChats(ctx, inst.ID, key, (page-1)*size, size)
	if err != nil {
		return err
	}
	for _, l := range list {
		out = append(out, viewChatRecord(l))
	}
	return c.JSON(http.StatusOK, out)
}
