package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Conversation is one chat of an instance: every message stored under one
// chat key, summarised.
type Conversation struct {
	InstanceID       string
	ChatKey          string
	PushName         string // the customer's latest name
	BotID            string // the bot of the newest message a bot handled; "" if none
	LastSeq          int64
	LastAt           time.Time // when the newest message was stored
	MessagesIn       int
	MessagesOut      int
	Unread           int // customer messages since the last outbound or operator message
	PromptTokens     int64
	CompletionTokens int64
	CreatedAt        time.Time // when the first message was stored

	Last    *Message // the newest message; nil if it could not be read
	Session *Session // the live session, else the newest kept one; nil when none

	// Position orders a listing: LastSeq as it was when the listing began.
	Position int64
}

// Status is the conversation's bot status: its session's, or closed when a
// bot took part but no session is left, or "" when no bot ever did.
func (c *Conversation) Status() string {
	switch {
	case c.Session != nil:
		return c.Session.Status
	case c.BotID != "":
		return SessionClosed
	}
	return ""
}

// ShownBotID is the bot the conversation is with: its session's, else the
// last one that handled a message.
func (c *Conversation) ShownBotID() string {
	if c.Session != nil {
		return c.Session.BotID
	}
	return c.BotID
}

// touchConversation adds m to its conversation's summary, creating it with
// m's first message. It runs in the transaction that stored m, so the
// summary never disagrees with the messages.
func (s *Store) touchConversation(ctx context.Context, m *Message) error {
	c := conversationDelta(m)
	var n int
	err := s.db.QueryRow(ctx, `INSERT INTO conversations (instance_id, chat_key, push_name, bot_id, last_seq, last_at,
			messages_in, messages_out, unread, prompt_tokens, completion_tokens, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $6)
		`+strings.ReplaceAll(conversationConflict, "$33", "$12")+`
		RETURNING messages_in + messages_out`,
		m.InstanceID, m.ChatKey, c.pushName, nullable(m.BotID), m.Seq, millis(m.CreatedAt), c.in, c.out, c.unread,
		m.PromptTokens, m.CompletionTokens, c.resets).Scan(&n)
	if err != nil {
		return fmt.Errorf("conversation summary: %w", err)
	}
	m.NewChat = n == 1
	return nil
}

// delta is what one message adds to its conversation's summary.
type delta struct {
	in, out, unread, resets int
	pushName                string
}

func conversationDelta(m *Message) delta {
	var c delta
	switch {
	case m.Direction == Inbound && !m.FromMe: // the customer
		c.in, c.unread, c.pushName = 1, 1, m.PushName
	case m.Direction == Inbound: // typed on the phone: someone answered
		c.in, c.resets = 1, 1
	default:
		c.out, c.resets = 1, 1
	}
	return c
}

// conversationConflict folds a message into an existing summary; $33 is 1
// when the message resets the unread count. CASE instead of max(): SQLite's
// two-argument max is GREATEST in PostgreSQL.
const conversationConflict = `ON CONFLICT (instance_id, chat_key) DO UPDATE SET
			push_name = CASE WHEN excluded.push_name <> '' THEN excluded.push_name ELSE conversations.push_name END,
			bot_id = COALESCE(excluded.bot_id, conversations.bot_id),
			last_seq = CASE WHEN excluded.last_seq > conversations.last_seq THEN excluded.last_seq ELSE conversations.last_seq END,
			last_at = CASE WHEN excluded.last_at > conversations.last_at THEN excluded.last_at ELSE conversations.last_at END,
			messages_in = conversations.messages_in + excluded.messages_in,
			messages_out = conversations.messages_out + excluded.messages_out,
			unread = CASE WHEN $33 = 1 THEN 0 ELSE conversations.unread + excluded.unread END,
			prompt_tokens = conversations.prompt_tokens + excluded.prompt_tokens,
			completion_tokens = conversations.completion_tokens + excluded.completion_tokens`

// refreshConversation recomputes a conversation's summary from its
// messages, after some were deleted; without messages it is deleted.
func (s *Store) refreshConversation(ctx context.Context, instanceID, chatKey string) error {
	var n int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM messages WHERE instance_id = $1 AND chat_key = $2",
		instanceID, chatKey).Scan(&n); err != nil {
		return fmt.Errorf("conversation summary: %w", err)
	}
	if n == 0 {
		_, err := s.db.Exec(ctx, "DELETE FROM conversations WHERE instance_id = $1 AND chat_key = $2", instanceID, chatKey)
		return err
	}
	_, err := s.db.Exec(ctx, `UPDATE conversations SET
		last_seq = (SELECT MAX(seq) FROM messages m WHERE m.instance_id = $1 AND m.chat_key = $2),
		last_at = (SELECT MAX(created_at) FROM messages m WHERE m.instance_id = $1 AND m.chat_key = $2),
		messages_in = (SELECT COUNT(*) FROM messages m WHERE m.instance_id = $1 AND m.chat_key = $2 AND m.direction = 'in'),
		messages_out = (SELECT COUNT(*) FROM messages m WHERE m.instance_id = $1 AND m.chat_key = $2 AND m.direction = 'out'),
		prompt_tokens = (SELECT COALESCE(SUM(prompt_tokens), 0) FROM messages m WHERE m.instance_id = $1 AND m.chat_key = $2),
		completion_tokens = (SELECT COALESCE(SUM(completion_tokens), 0) FROM messages m WHERE m.instance_id = $1 AND m.chat_key = $2),
		bot_id = (SELECT m.bot_id FROM messages m WHERE m.instance_id = $1 AND m.chat_key = $2 AND m.bot_id IS NOT NULL
			ORDER BY m.seq DESC LIMIT 1),
		unread = (SELECT COUNT(*) FROM messages m WHERE m.instance_id = $1 AND m.chat_key = $2
			AND m.direction = 'in' AND NOT m.from_me AND m.seq > COALESCE((SELECT MAX(o.seq) FROM messages o
				WHERE o.instance_id = $1 AND o.chat_key = $2 AND (o.direction = 'out' OR o.from_me)), 0))
		WHERE instance_id = $1 AND chat_key = $2`, instanceID, chatKey)
	if err != nil {
		return fmt.Errorf("conversation summary: %w", err)
	}
	return nil
}

// chatKeyOf returns the key of the conversation the instance's messages
// exchanged with jid are kept under (a LID chat under its phone number), as
// of the newest one; false if there are none.
func (s *Store) chatKeyOf(ctx context.Context, instanceID, jid string) (string, bool, error) {
	// Two lookups, each in an index: the newest message with jid kept under
	// another key (messages_remote_jid_idx holds only those), and the newest
	// kept under jid itself.
	type hit struct {
		seq int64
		key string
	}
	scan := func(row scanner) (hit, error) {
		var h hit
		return h, row.Scan(&h.seq, &h.key)
	}
	other, err := collect(scan)(s.db.Query(ctx, `SELECT seq, chat_key FROM messages
		WHERE instance_id = $1 AND remote_jid = $2 AND remote_jid <> chat_key ORDER BY seq DESC LIMIT 1`, instanceID, jid))
	if err != nil {
		return "", false, err
	}
	own, err := collect(scan)(s.db.Query(ctx, `SELECT seq, chat_key FROM messages
		WHERE instance_id = $1 AND chat_key = $2 AND remote_jid = $2 ORDER BY seq DESC LIMIT 1`, instanceID, jid))
	if err != nil {
		return "", false, err
	}
	hits := append(other, own...)
	if len(hits) == 0 {
		return "", false, nil
	}
	newest := slices.MaxFunc(hits, func(a, b hit) int { return cmp.Compare(a.seq, b.seq) })
	return newest.key, true, nil
}

// ConversationKey resolves jid, as a client names a chat, to the key of the
// instance's conversation with it: jid itself when it is a key, else the
// key its messages are kept under (a LID chat kept under the phone number).
// It reports false when the instance has no such conversation.
func (s *Store) ConversationKey(ctx context.Context, instanceID, jid string) (string, bool, error) {
	if s.postgres && strings.ContainsRune(jid, 0) {
		return "", false, nil // PostgreSQL text cannot hold NUL: no key has one, and binding one fails
	}
	var n int
	err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM conversations WHERE instance_id = $1 AND chat_key = $2",
		instanceID, jid).Scan(&n)
	if err != nil || n > 0 {
		return jid, n > 0, err
	}
	return s.chatKeyOf(ctx, instanceID, jid)
}

// ConversationFilter selects and pages an instance's conversations.
type ConversationFilter struct {
	BotID  string // conversations this bot took part in
	Status string // opened, paused or closed (see Conversation.Status)
	Query  string // part of the push name or the chat key, any case

	// Snapshot is the highest message seq when the listing began (0 on its
	// first page); Before continues after this position (0: from the top).
	Snapshot int64
	Before   int64
	Limit    int
}

const conversationColumns = `c.instance_id, c.chat_key, c.push_name, c.bot_id, c.last_seq, c.last_at, c.messages_in,
	c.messages_out, c.unread, c.prompt_tokens, c.completion_tokens, c.created_at`

func scanConversation(row scanner) (*Conversation, error) {
	var (
		c                 Conversation
		botID             *string
		lastAt, createdAt int64
	)
	err := row.Scan(&c.InstanceID, &c.ChatKey, &c.PushName, &botID, &c.LastSeq, &lastAt, &c.MessagesIn, &c.MessagesOut,
		&c.Unread, &c.PromptTokens, &c.CompletionTokens, &createdAt, &c.Position)
	if err != nil {
		return nil, err
	}
	if botID != nil {
		c.BotID = *botID
	}
	c.LastAt, c.CreatedAt = fromMillis(lastAt), fromMillis(createdAt)
	return &c, nil
}

// query builds a statement with numbered placeholders.
type query struct {
	sql  strings.Builder
	args []any
}

func (q *query) add(sql string) *query { q.sql.WriteString(sql); return q }

// arg adds v and returns its placeholder.
func (q *query) arg(v any) string {
	q.args = append(q.args, v)
	return fmt.Sprintf("$%d", len(q.args))
}

// in adds vs and returns their placeholders, separated by commas, for an IN
// list. The list is padded with pad (a value that matches nothing) to one of
// a few lengths, so that the statement cache keeps a few statements rather
// than one per length.
func (q *query) in(vs []any, pad any) string {
	size := len(vs)
	for _, n := range []int{16, 64, 256, 1024} {
		if size <= n {
			size = n
			break
		}
	}
	marks := make([]string, size)
	for i := range marks {
		v := pad
		if i < len(vs) {
			v = vs[i]
		}
		marks[i] = q.arg(v)
	}
	return strings.Join(marks, ", ")
}

// conversationFilters adds f's conditions on the conversation c; inst is
// the placeholder of the instance id.
func conversationFilters(q *query, inst string, f ConversationFilter) {
	if f.BotID != "" {
		b := q.arg(f.BotID)
		q.add(` AND (c.bot_id = ` + b + `
			OR EXISTS (SELECT 1 FROM messages mb WHERE mb.bot_id = ` + b + ` AND mb.instance_id = ` + inst + ` AND mb.chat_key = c.chat_key)
			OR EXISTS (SELECT 1 FROM openai_sessions sb WHERE sb.instance_id = ` + inst + ` AND sb.remote_jid = c.chat_key AND sb.bot_id = ` + b + `))`)
	}
	// status <> 'closed' lets the planner use the index of live sessions.
	live := `SELECT 1 FROM openai_sessions ss WHERE ss.instance_id = ` + inst + ` AND ss.remote_jid = c.chat_key AND ss.status <> 'closed'`
	switch f.Status {
	case SessionOpened, SessionPaused:
		q.add(` AND EXISTS (` + live + ` AND ss.status = ` + q.arg(f.Status) + `)`)
	case SessionClosed:
		q.add(` AND NOT EXISTS (` + live + `) AND (c.bot_id IS NOT NULL OR EXISTS (SELECT 1 FROM openai_sessions sc
			WHERE sc.instance_id = ` + inst + ` AND sc.remote_jid = c.chat_key AND sc.status = 'closed'))`)
	}
	if f.Query != "" {
		like := q.arg("%" + likeEscaper.Replace(strings.ToLower(f.Query)) + "%")
		q.add(` AND (LOWER(c.push_name) LIKE ` + like + ` ESCAPE '\' OR LOWER(c.chat_key) LIKE ` + like + ` ESCAPE '\')`)
	}
}

var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ListConversations returns a page of the instance's conversations, newest
// activity first, and the snapshot to continue from.
//
// The order is the conversations' activity as it was when the listing began
// (the snapshot): a chat that gets a message while a client pages keeps its
// place instead of jumping to the top, so that no conversation is listed
// twice or skipped. Conversations that begin after the snapshot are left
// to the next listing.
func (s *Store) ListConversations(ctx context.Context, instanceID string, f ConversationFilter) ([]*Conversation, int64, error) {
	snapshot := f.Snapshot
	if snapshot == 0 {
		if err := s.db.QueryRow(ctx, "SELECT COALESCE(MAX(last_seq), 0) FROM conversations WHERE instance_id = $1",
			instanceID).Scan(&snapshot); err != nil {
			return nil, 0, err
		}
	}
	// Unchanged since the snapshot: in index order.
	var q query
	inst := q.arg(instanceID)
	q.add(`SELECT ` + conversationColumns + `, c.last_seq FROM conversations c WHERE c.instance_id = ` + inst +
		` AND c.last_seq <= ` + q.arg(snapshot))
	if f.Before > 0 {
		q.add(` AND c.last_seq < ` + q.arg(f.Before))
	}
	conversationFilters(&q, inst, f)
	q.add(` ORDER BY c.last_seq DESC LIMIT ` + q.arg(f.Limit))
	list, err := collect(scanConversation)(s.db.Query(ctx, q.sql.String(), q.args...))
	if err != nil {
		return nil, 0, err
	}
	// Active since the snapshot: placed by their newest message up to it.
	// These are the chats that got messages while the client paged, few.
	var moved query
	inst = moved.arg(instanceID)
	snap := moved.arg(snapshot)
	moved.add(`SELECT ` + strings.ReplaceAll(conversationColumns, "c.", "p.") + `, p.pos FROM (
		SELECT ` + conversationColumns + `, (SELECT MAX(m.seq) FROM messages m
			WHERE m.instance_id = ` + inst + ` AND m.chat_key = c.chat_key AND m.seq <= ` + snap + `) AS pos
		FROM conversations c WHERE c.instance_id = ` + inst + ` AND c.last_seq > ` + snap)
	conversationFilters(&moved, inst, f)
	moved.add(`) p WHERE p.pos IS NOT NULL`)
	if f.Before > 0 {
		moved.add(` AND p.pos < ` + moved.arg(f.Before))
	}
	moved.add(` ORDER BY p.pos DESC LIMIT ` + moved.arg(f.Limit))
	more, err := collect(scanConversation)(s.db.Query(ctx, moved.sql.String(), moved.args...))
	if err != nil {
		return nil, 0, err
	}
	if len(more) > 0 {
		// A chat that got a message between the two queries is in both,
		// at the same position (its newest message up to the snapshot).
		// The other way round it could be in neither, hence this order.
		for _, c := range more {
			if !slices.ContainsFunc(list, func(l *Conversation) bool { return l.ChatKey == c.ChatKey }) {
				list = append(list, c)
			}
		}
		slices.SortFunc(list, func(a, b *Conversation) int { return cmp.Compare(b.Position, a.Position) })
		if len(list) > f.Limit {
			list = list[:f.Limit]
		}
	}
	if err := s.completeConversations(ctx, instanceID, list); err != nil {
		return nil, 0, err
	}
	return list, snapshot, nil
}

// Conversation returns the instance's conversation with chatKey.
func (s *Store) Conversation(ctx context.Context, instanceID, chatKey string) (*Conversation, error) {
	c, err := scanConversation(s.db.QueryRow(ctx, `SELECT `+conversationColumns+`, c.last_seq FROM conversations c
		WHERE c.instance_id = $1 AND c.chat_key = $2`, instanceID, chatKey))
	if err != nil {
		return nil, notFound(err, "remoteJid: no conversation with %q in this instance", chatKey)
	}
	return c, s.completeConversations(ctx, instanceID, []*Conversation{c})
}

// completeConversations reads the newest message and the session of each
// conversation, in one query each.
func (s *Store) completeConversations(ctx context.Context, instanceID string, list []*Conversation) error {
	if len(list) == 0 {
		return nil
	}
	var q query
	seqs := make([]any, len(list))
	for i, c := range list {
		seqs[i] = c.LastSeq
	}
	q.add("SELECT " + messageColumns + " FROM messages WHERE instance_id = " + q.arg(instanceID) +
		" AND seq IN (" + q.in(seqs, int64(0)) + ")")
	msgs, err := collect(scanMessage)(s.db.Query(ctx, q.sql.String(), q.args...))
	if err != nil {
		return err
	}
	bySeq := make(map[int64]*Message, len(msgs))
	for _, m := range msgs {
		bySeq[m.Seq] = m
	}
	// Each chat's live session, else its newest kept one.
	q = query{}
	q.add(`SELECT ` + sessionColumns + ` FROM (SELECT ` + sessionColumns + `, ROW_NUMBER() OVER (PARTITION BY remote_jid
			ORDER BY CASE WHEN status <> 'closed' THEN 0 ELSE 1 END, created_at DESC, id DESC) AS rn
		FROM openai_sessions WHERE instance_id = ` + q.arg(instanceID) + ` AND remote_jid IN (`)
	keys := make([]any, len(list))
	for i, c := range list {
		keys[i] = c.ChatKey
	}
	sessions, err := collect(scanSession)(s.db.Query(ctx, q.add(q.in(keys, "")+")) ranked WHERE rn = 1").sql.String(), q.args...))
	if err != nil {
		return err
	}
	byChat := make(map[string]*Session, len(sessions))
	for _, se := range sessions {
		byChat[se.RemoteJID] = se
	}
	for _, c := range list {
		c.Last, c.Session = bySeq[c.LastSeq], byChat[c.ChatKey]
	}
	return nil
}

// ChatMessagesFilter selects and pages a conversation's messages.
type ChatMessagesFilter struct {
	Direction Direction // "" for both
	Oldest    bool      // oldest first; newest first otherwise
	After     int64     // continue after this seq (0: from the start)
	Limit     int
}

// ChatMessages returns a page of a conversation's messages, newest first
// unless f.Oldest. Paging by seq keeps the pages stable while messages
// arrive: new ones are never slipped between pages already read.
func (s *Store) ChatMessages(ctx context.Context, instanceID, chatKey string, f ChatMessagesFilter) ([]*Message, error) {
	var q query
	q.add("WHERE instance_id = " + q.arg(instanceID) + " AND chat_key = " + q.arg(chatKey))
	if f.Direction != "" {
		q.add(" AND direction = " + q.arg(string(f.Direction)))
	}
	order := "DESC"
	if f.Oldest {
		order = "ASC"
		if f.After > 0 {
			q.add(" AND seq > " + q.arg(f.After))
		}
	} else if f.After > 0 {
		q.add(" AND seq < " + q.arg(f.After))
	}
	q.add(" ORDER BY seq " + order + " LIMIT " + q.arg(f.Limit))
	return s.queryMessages(ctx, q.sql.String(), q.args...)
}

// FindMessagesFilter is Evolution's findMessages where.key.
type FindMessagesFilter struct {
	ChatKey string // a conversation (see ConversationKey)
	ID      string
	FromMe  *bool
	// Status is Evolution's delivery status (findStatusMessage); a
	// participant filters a group's messages by their sender.
	Status      string
	Participant string
}

// FindMessages returns the instance's messages matching f, newest first,
// skipping offset, and how many match in all. It pages by offset because
// Evolution's clients ask for page numbers; ChatMessages is the stable way.
func (s *Store) FindMessages(ctx context.Context, instanceID string, f FindMessagesFilter, offset, limit int) ([]*Message, int, error) {
	var q query
	q.add("WHERE instance_id = " + q.arg(instanceID))
	if f.ChatKey != "" {
		q.add(" AND chat_key = " + q.arg(f.ChatKey))
	}
	if f.ID != "" {
		q.add(" AND message_id = " + q.arg(f.ID))
	}
	if f.FromMe != nil {
		q.add(" AND from_me = " + q.arg(*f.FromMe))
	}
	if f.Status != "" {
		q.add(" AND status = " + q.arg(f.Status))
	}
	if f.Participant != "" {
		q.add(" AND participant = " + q.arg(f.Participant))
	}
	var total int
	var err error
	if f.ID == "" && f.FromMe == nil && f.Status == "" && f.Participant == "" {
		// The summaries count the same messages without reading them all.
		var c query
		c.add("SELECT COALESCE(SUM(messages_in + messages_out), 0) FROM conversations WHERE instance_id = " + c.arg(instanceID))
		if f.ChatKey != "" {
			c.add(" AND chat_key = " + c.arg(f.ChatKey))
		}
		err = s.db.QueryRow(ctx, c.sql.String(), c.args...).Scan(&total)
	} else {
		err = s.db.QueryRow(ctx, "SELECT COUNT(*) FROM messages "+q.sql.String(), q.args...).Scan(&total)
	}
	if err != nil {
		return nil, 0, err
	}
	if offset >= total {
		return nil, total, nil
	}
	q.add(" ORDER BY seq DESC LIMIT " + q.arg(limit) + " OFFSET " + q.arg(offset))
	list, err := s.queryMessages(ctx, q.sql.String(), q.args...)
	return list, total, err
}

// ---- deletion

// DeleteBotHistory deletes the messages the instance's bot handled or sent,
// in every chat, and updates those conversations. It reports how many
// messages it deleted. The bot's sessions go with the bot itself.
func (s *Store) DeleteBotHistory(ctx context.Context, instanceID, botID string) (int64, error) {
	var n int64
	err := s.DoTxn(ctx, func(ctx context.Context) error {
		chats, err := collect(scanString)(s.db.Query(ctx, `SELECT DISTINCT chat_key FROM messages
			WHERE bot_id = $1 AND instance_id = $2`, botID, instanceID))
		if err != nil {
			return err
		}
		res, err := s.db.Exec(ctx, "DELETE FROM messages WHERE bot_id = $1 AND instance_id = $2", botID, instanceID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		for _, chat := range chats {
			if err := s.refreshConversation(ctx, instanceID, chat); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete bot history: %w", err)
	}
	return n, nil
}

// DeleteChatHistory deletes a conversation's messages (with botID, only
// those that bot handled or sent) and reports how many.
func (s *Store) DeleteChatHistory(ctx context.Context, instanceID, chatKey, botID string) (int64, error) {
	var n int64
	err := s.DoTxn(ctx, func(ctx context.Context) error {
		res, err := s.db.Exec(ctx, `DELETE FROM messages WHERE instance_id = $1 AND chat_key = $2 AND ($3 = '' OR bot_id = $3)`,
			instanceID, chatKey, botID)
		if err != nil {
			return err
		}
		if n, err = res.RowsAffected(); err != nil {
			return err
		}
		return s.refreshConversation(ctx, instanceID, chatKey)
	})
	if err != nil {
		return 0, fmt.Errorf("delete chat history: %w", err)
	}
	return n, nil
}
