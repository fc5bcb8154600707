package console

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
)

// The inbox: the organization's conversations across its channels, each
// with its messages, taking a chat over from the bot and handing it back.
// Every action is the same operation as a route of /api/v1/inbox.

// Inbox channels, as filters and views name them.
const (
	ChannelWhatsApp  = "whatsapp"
	ChannelEvolution = "evolution"
	ChannelWebchat   = "webchat"
)

// Who wrote a message, as the inbox shows it.
const (
	FromCustomer = "customer"
	FromBot      = "bot"
	FromAgent    = "agent"
)

// InboxFilter selects the inbox's conversations.
type InboxFilter struct {
	Status  string // opened (the bot answers), paused (a human does), closed; "" for all
	Channel string // a Channel*; "" for all
	BotID   string
	Before  int64 // continue below this position (a conversation's position); 0 from the top
	Limit   int
}

// InboxPage is a page of the inbox, newest activity first.
type InboxPage struct {
	Conversations []InboxConversation `json:"data"`
	// Next continues the listing (as InboxFilter.Before); 0 at the end.
	Next int64 `json:"-"`
}

// InboxConversation is one chat as the inbox lists it.
type InboxConversation struct {
	ID        string    `json:"id"`
	Instance  string    `json:"instance"`
	Channel   string    `json:"channel"`
	ChatbotID string    `json:"chatbotId,omitempty"`
	RemoteJID string    `json:"remoteJid"`
	Name      string    `json:"name"`
	Status    string    `json:"status"` // opened, paused, closed; "" when no bot ever took part
	BotID     string    `json:"botId,omitempty"`
	SessionID string    `json:"sessionId,omitempty"`
	Last      string    `json:"lastMessage"`
	LastFrom  string    `json:"lastFrom"`
	LastAt    time.Time `json:"lastMessageAt"`
	Unread    int       `json:"unread"`
	Position  int64     `json:"position"`
}

// ChannelLabel names the conversation's channel for people.
func (c *InboxConversation) ChannelLabel() string { return channelLabel(c.Channel) }

func channelLabel(ch string) string {
	switch ch {
	case ChannelWhatsApp:
		return "WhatsApp"
	case ChannelEvolution:
		return "EVOLUTION"
	case ChannelWebchat:
		return "Web chat"
	}
	return ch
}

// Handling says in words who answers the conversation.
func (c *InboxConversation) Handling() string {
	switch c.Status {
	case store.SessionOpened:
		return "Bot answering"
	case store.SessionPaused:
		return "Taken over"
	case store.SessionClosed:
		return "Closed"
	}
	return "No bot"
}

// InboxMessage is one message of a conversation with what the bot made of it.
type InboxMessage struct {
	Seq       int64         `json:"seq"`
	ID        string        `json:"id"`
	From      string        `json:"from"` // a From*
	AgentName string        `json:"agentName,omitempty"`
	Type      string        `json:"messageType"`
	Text      string        `json:"text"`
	At        time.Time     `json:"createdAt"`
	State     string        `json:"status"`           // received, ignored, answered, failed, sent
	Reason    string        `json:"reason,omitempty"` // why the bot did not answer
	Error     string        `json:"error,omitempty"`  // why the bot failed
	Sources   []InboxSource `json:"sources,omitempty"`
}

// Pending says the bot has not decided on the message yet.
func (m *InboxMessage) Pending() bool { return m.State == store.MessageReceived }

// InboxSource is a knowledge chunk a bot reply used.
type InboxSource struct {
	ChunkID    string  `json:"chunkId"`
	SourceID   string  `json:"sourceId"`
	Title      string  `json:"title"`
	Similarity float64 `json:"similarity"`
}

// InboxBot is a bot the inbox can filter by.
type InboxBot struct {
	ID    string `json:"id"`
	Label string `json:"label"`
}

// InboxOps are the inbox's operations (the routes of /api/v1/inbox).
type InboxOps interface {
	Inbox(ctx context.Context, org *store.Organization, f InboxFilter) (*InboxPage, error)
	InboxBots(ctx context.Context, org *store.Organization) ([]InboxBot, error)
	InboxConversation(ctx context.Context, org *store.Organization, id string) (*InboxConversation, error)
	// InboxMessages returns messages oldest first: those after seq after,
	// or with after 0 the newest limit.
	InboxMessages(ctx context.Context, org *store.Organization, id string, after int64, limit int) ([]InboxMessage, error)
	// InboxMessagesBySeq returns the conversation's messages among seqs.
	InboxMessagesBySeq(ctx context.Context, org *store.Organization, id string, seqs []int64) ([]InboxMessage, error)
	// InboxVersion changes whenever the conversation id (the whole inbox
	// with id "") changes.
	InboxVersion(ctx context.Context, org *store.Organization, id string) (string, error)
	// Takeover pauses the conversation's bot until Handback.
	Takeover(ctx context.Context, org *store.Organization, id string) (*InboxConversation, error)
	Handback(ctx context.Context, org *store.Organization, id string) (*InboxConversation, error)
	// InboxReply sends text as agent through the conversation's channel,
	// taking the conversation over first if its bot is answering.
	InboxReply(ctx context.Context, org *store.Organization, id string, agent *store.User, text string) (*InboxMessage, error)
}

const (
	inboxPageSize    = 50
	chatPageSize     = 200
	inboxPoll        = time.Second
	maxSessionStream = 6 // live streams one console session may hold open
)

// inboxState is what the inbox's live streams share.
type inboxState struct {
	streams streamLimits
	changes changes
}

// changes wakes the streams when this process stores a change, so they
// look at once instead of at their next poll; changes stored by another
// replica are seen at the poll.
type changes struct {
	mu sync.Mutex
	ch chan struct{}
}

// wait returns a channel closed at the next change.
func (c *changes) wait() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch == nil {
		c.ch = make(chan struct{})
	}
	return c.ch
}

func (c *changes) notify() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ch != nil {
		close(c.ch)
		c.ch = nil
	}
}

// Changed tells the inbox's live pages that a conversation changed (a
// message stored, a bot paused or resumed).
func (cs *Console) Changed() { cs.inbox.changes.notify() }

// streamLimits bounds the event streams each console session holds open,
// so that one user cannot tie up the server's connections and polls.
type streamLimits struct {
	mu   sync.Mutex
	open map[string]int
}

func (l *streamLimits) acquire(session string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open == nil {
		l.open = map[string]int{}
	}
	if l.open[session] >= maxSessionStream {
		return false
	}
	l.open[session]++
	return true
}

func (l *streamLimits) release(session string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.open[session]--; l.open[session] <= 0 {
		delete(l.open, session)
	}
}

func (cs *Console) inboxRoutes(e *echo.Echo) {
	cs.page(e, http.MethodGet, Root+"/inbox", cs.inboxPage)
	cs.page(e, http.MethodGet, Root+"/inbox/events", cs.inboxEvents)
	cs.page(e, http.MethodGet, Root+"/inbox/c/:id", cs.chatPage)
	cs.page(e, http.MethodGet, Root+"/inbox/c/:id/events", cs.chatEvents)
	cs.page(e, http.MethodPost, Root+"/inbox/c/:id/takeover", cs.chatTakeover)
	cs.page(e, http.MethodPost, Root+"/inbox/c/:id/handback", cs.chatHandback)
	cs.page(e, http.MethodPost, Root+"/inbox/c/:id/reply", cs.chatReply)
}

// inboxView is the inbox page.
type inboxView struct {
	Filter  InboxFilter
	Query   string // the filter as a query string, for the stream and the next page
	List    *InboxPage
	Bots    []InboxBot
	NextURL string
	Version string
	// Live says the page follows changes: the first page only, as an
	// older page would be replaced by the newest.
	Live bool
}

// inboxFilter reads the filter form; unknown values are errors under
// their field, as the API reports them.
func inboxFilter(c echo.Context) (InboxFilter, string, error) {
	f := InboxFilter{Status: c.QueryParam("status"), Channel: c.QueryParam("channel"), BotID: c.QueryParam("botId"), Limit: inboxPageSize}
	var p wagate.Problems
	switch f.Status {
	case "", store.SessionOpened, store.SessionPaused, store.SessionClosed:
	default:
		p.Add("status", `must be "opened", "paused" or "closed"`)
	}
	switch f.Channel {
	case "", ChannelWhatsApp, ChannelEvolution, ChannelWebchat:
	default:
		p.Add("channel", `must be "whatsapp", "evolution" or "webchat"`)
	}
	if b := c.QueryParam("before"); b != "" {
		n, err := strconv.ParseInt(b, 10, 64)
		if err != nil || n <= 0 {
			p.Add("before", "not a position from this page")
		}
		f.Before = n
	}
	q := url.Values{}
	for k, v := range map[string]string{"status": f.Status, "channel": f.Channel, "botId": f.BotID} {
		if v != "" {
			q.Set(k, v)
		}
	}
	return f, q.Encode(), p.Err()
}

func (cs *Console) inboxView(c echo.Context) (*inboxView, error) {
	f, query, err := inboxFilter(c)
	if err != nil {
		return nil, err
	}
	ctx, org := c.Request().Context(), &SessionOf(c).Org
	// Read before the list: a change in between is sent again by the stream.
	version, err := cs.ops.InboxVersion(ctx, org, "")
	if err != nil {
		return nil, err
	}
	list, err := cs.ops.Inbox(ctx, org, f)
	if err != nil {
		return nil, err
	}
	v := &inboxView{Filter: f, Query: query, List: list, Version: version, Live: f.Before == 0}
	if list.Next > 0 {
		q, _ := url.ParseQuery(query)
		q.Set("before", strconv.FormatInt(list.Next, 10))
		v.NextURL = Root + "/inbox?" + q.Encode()
	}
	return v, nil
}

func (cs *Console) inboxPage(c echo.Context) error {
	v, err := cs.inboxView(c)
	if err != nil {
		if wagate.ErrorCode(err) == wagate.EINVALID {
			return cs.renderForm(c, http.StatusBadRequest, "inbox", &inboxView{List: &InboxPage{}}, err)
		}
		return err
	}
	if v.Bots, err = cs.ops.InboxBots(c.Request().Context(), &SessionOf(c).Org); err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "inbox", v)
}

// stream runs a live stream for the session: tick is called at once, then
// at every change this process stores and at least every second (for
// changes of other replicas), until the page goes away; it sends what
// changed.
func (cs *Console) stream(c echo.Context, tick func(ctx context.Context, es *eventStream) error) error {
	p := SessionOf(c)
	if !cs.inbox.streams.acquire(p.Session.ID) {
		return wagate.Errorf(wagate.ERATELIMITED, "events: this session has %d live pages open already; close one", maxSessionStream)
	}
	defer cs.inbox.streams.release(p.Session.ID)
	es, err := startEvents(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	t := time.NewTicker(inboxPoll)
	defer t.Stop()
	for {
		wake := cs.inbox.changes.wait() // before looking, so that no change is missed
		if err := tick(ctx, es); err != nil {
			if ctx.Err() != nil || errors.Is(err, context.Canceled) {
				return nil
			}
			// The answer has begun: end the stream; the browser reconnects.
			cs.log.Warn("inbox stream", "error", err)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-wake:
		}
	}
}

// inboxEvents streams the inbox list again whenever the organization's
// conversations change (a poll of a fingerprint per second: it works
// whichever replica stored the change).
func (cs *Console) inboxEvents(c echo.Context) error {
	org := &SessionOf(c).Org
	seen := c.QueryParam("v")
	return cs.stream(c, func(ctx context.Context, es *eventStream) error {
		version, err := cs.ops.InboxVersion(ctx, org, "")
		if err != nil || version == seen {
			return err
		}
		v, err := cs.inboxView(c)
		if err != nil {
			return err
		}
		html, err := cs.fragment(c, "inbox", "conversations", v)
		if err != nil {
			return err
		}
		seen = version
		return es.send("conversations", html)
	})
}

// chatView is the conversation page.
type chatView struct {
	Conv     *InboxConversation
	Messages []InboxMessage
	After    int64 // the newest message shown
	Version  string
	Text     string // the reply being written, after a failed send
}

// Pending lists the shown messages the bot has not decided on, for the
// stream to send again once it has.
func (v *chatView) Pending() string {
	var seqs []string
	for _, m := range v.Messages {
		if m.Pending() {
			seqs = append(seqs, strconv.FormatInt(m.Seq, 10))
		}
	}
	return strings.Join(seqs, ",")
}

// CanTakeOver says the bot is answering and may be paused.
func (v *chatView) CanTakeOver() bool { return v.Conv.Status == store.SessionOpened }

// CanHandBack says a human has the conversation.
func (v *chatView) CanHandBack() bool { return v.Conv.Status == store.SessionPaused }

func (cs *Console) chatView(c echo.Context) (*chatView, error) {
	ctx, org, id := c.Request().Context(), &SessionOf(c).Org, c.Param("id")
	version, err := cs.ops.InboxVersion(ctx, org, id)
	if err != nil {
		return nil, err
	}
	conv, err := cs.ops.InboxConversation(ctx, org, id)
	if err != nil {
		return nil, err
	}
	msgs, err := cs.ops.InboxMessages(ctx, org, id, 0, chatPageSize)
	if err != nil {
		return nil, err
	}
	v := &chatView{Conv: conv, Messages: msgs, Version: version}
	if len(msgs) > 0 {
		v.After = msgs[len(msgs)-1].Seq
	}
	return v, nil
}

func (cs *Console) chatPage(c echo.Context) error {
	v, err := cs.chatView(c)
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "inboxchat", v)
}

// chatEvents streams a conversation: its new messages as they are stored
// ("message", appended to the log), a message again when the bot decides
// on it (swapped in place), and its status and actions ("status").
func (cs *Console) chatEvents(c echo.Context) error {
	org, id := &SessionOf(c).Org, c.Param("id")
	after, _ := strconv.ParseInt(c.QueryParam("after"), 10, 64)
	seen := c.QueryParam("v")
	var pending []int64
	for _, s := range strings.Split(c.QueryParam("pending"), ",") {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 && len(pending) < chatPageSize {
			pending = append(pending, n)
		}
	}
	// The status block is sent when it changed only: swapping it while
	// the agent reaches for its button would swallow the click.
	status := ""
	statusOf := func(ctx context.Context) (string, error) {
		conv, err := cs.ops.InboxConversation(ctx, org, id)
		if err != nil {
			return "", err
		}
		return cs.fragment(c, "inboxchat", "status", &chatView{Conv: conv})
	}
	return cs.stream(c, func(ctx context.Context, es *eventStream) error {
		version, err := cs.ops.InboxVersion(ctx, org, id)
		if err != nil {
			return err
		}
		if version == seen {
			if status == "" { // as the page showed it
				status, err = statusOf(ctx)
			}
			return err
		}
		decided, err := cs.ops.InboxMessagesBySeq(ctx, org, id, pending)
		if err != nil {
			return err
		}
		fresh, err := cs.ops.InboxMessages(ctx, org, id, after, chatPageSize)
		if err != nil {
			return err
		}
		pending = pending[:0]
		var changed []InboxMessage
		for _, m := range decided {
			if m.Pending() {
				pending = append(pending, m.Seq)
			} else {
				changed = append(changed, m)
			}
		}
		for _, m := range fresh {
			if m.Pending() {
				pending = append(pending, m.Seq)
			}
			after = max(after, m.Seq)
		}
		if len(fresh) > 0 || len(changed) > 0 {
			html, err := cs.fragment(c, "inboxchat", "newmessages", map[string]any{"New": fresh, "Changed": changed})
			if err != nil {
				return err
			}
			if err := es.send("message", html); err != nil {
				return err
			}
		}
		html, err := statusOf(ctx)
		if err != nil || html == status {
			seen = version
			return err
		}
		status, seen = html, version
		return es.send("status", html)
	})
}

// chatAction answers a take over, hand back or reply: htmx gets the
// status block again, a plain form the page (303).
func (cs *Console) chatAction(c echo.Context, do func(ctx context.Context, org *store.Organization, id string) (*InboxConversation, error), done string) error {
	id := c.Param("id")
	conv, err := do(c.Request().Context(), &SessionOf(c).Org, id)
	if err != nil {
		return err
	}
	if isHTMX(c) {
		return cs.renderPartial(c, http.StatusOK, "inboxchat", "status", &chatView{Conv: conv})
	}
	cs.flash(c, done)
	return c.Redirect(http.StatusSeeOther, Root+"/inbox/c/"+url.PathEscape(id))
}

func (cs *Console) chatTakeover(c echo.Context) error {
	return cs.chatAction(c, cs.ops.Takeover, "You have the conversation: the bot stays silent until you hand it back.")
}

func (cs *Console) chatHandback(c echo.Context) error {
	return cs.chatAction(c, cs.ops.Handback, "The bot answers this conversation again.")
}

func (cs *Console) chatReply(c echo.Context) error {
	p, id, text := SessionOf(c), c.Param("id"), c.FormValue("text")
	_, err := cs.ops.InboxReply(c.Request().Context(), &p.Org, id, &p.User, text)
	if wagate.ErrorCode(err) == wagate.EINVALID {
		if isHTMX(c) {
			return cs.partialForm(c, http.StatusBadRequest, "inboxchat", "replyform", &chatView{Conv: &InboxConversation{ID: id}, Text: text}, err)
		}
		v, verr := cs.chatView(c)
		if verr != nil {
			return verr
		}
		v.Text = text
		return cs.renderForm(c, http.StatusBadRequest, "inboxchat", v, err)
	}
	if err != nil {
		return err
	}
	if isHTMX(c) {
		return cs.renderPartial(c, http.StatusOK, "inboxchat", "replyform", &chatView{Conv: &InboxConversation{ID: id}})
	}
	return c.Redirect(http.StatusSeeOther, Root+"/inbox/c/"+url.PathEscape(id))
}

// partialForm answers htmx with one block of a page drawn again after a
// failed post, with err's problems by their fields.
func (cs *Console) partialForm(c echo.Context, status int, name, block string, data any, err error) error {
	t, ok := cs.pages[name]
	if !ok {
		return wagate.Errorf(wagate.EINTERNAL, "console: no page %q", name)
	}
	v := view{Page: data, Errors: toFormErrors(err)}
	if p := SessionOf(c); p != nil {
		v.Session, v.CSRF = p, p.Session.CSRFToken
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, block, v); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTML(status, b.String())
}
