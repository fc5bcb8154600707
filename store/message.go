package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Direction tells inbound from outbound messages. A message id is unique per
// instance and direction: our own send echoed back by a channel is a second row.
type Direction string

const (
	Inbound  Direction = "in"
	Outbound Direction = "out"
)

// maxClockSkew is how far ahead of its receipt a message's own timestamp
// may be before it is taken for garbage when read back.
const maxClockSkew = 24 * time.Hour

// Message states. An inbound message waits in MessageReceived until the bot
// engine decides on it; outbound messages are MessageSent.
const (
	MessageReceived = "received"
	MessageIgnored  = "ignored"
	MessageAnswered = "answered"
	MessageFailed   = "failed"
	MessageSent     = "sent"
)

// Message is one stored message in Evolution's shape, with what the bot
// engine made of it.
type Message struct {
	Seq          int64
	InstanceID   string
	ID           string
	Direction    Direction
	RemoteJID    string // the chat as the channel named it; replies go here
	ChatKey      string // the conversation; "" means RemoteJID
	Participant  string // the sender in a group chat
	FromMe       bool
	PushName     string
	MessageType  string
	Content      json.RawMessage // Evolution's "message" object
	Text         string          // the text extracted from Content, for search and bots
	Status       string          // Evolution's delivery status
	Timestamp    time.Time       // when the message was sent; read back as CreatedAt when implausible
	CreatedAt    time.Time       // when the gateway stored it
	IgnoreReason string          // set by the channel: a kind of message bots never answer
	MentionsMe   bool
	QuotedID     string

	State            string // MessageReceived, …
	StateReason      string // why it was ignored or failed
	BotID            string
	SessionID        string
	PromptTokens     int
	CompletionTokens int
	LatencyMS        int // model latency, for bot replies
	// Sources are the knowledge chunks a bot reply was grounded on: a JSON
	// array of {chunkId, sourceId, title, similarity}; nil for none.
	Sources json.RawMessage
	// ToolCalls and ToolResults are what a bot reply's tools did: the
	// calls the model made ({id, name, arguments}) and what each function
	// answered ({callId, name, output}); nil when it called none.
	ToolCalls, ToolResults json.RawMessage
	// AgentName is the console user who wrote an outbound message in the
	// inbox, as named when they sent it; "" for every other message.
	AgentName string

	// NewChat is set by InsertMessage: the message began its conversation.
	NewChat bool
}

const messageColumns = `seq, instance_id, message_id, direction, remote_jid, chat_key, participant, from_me, push_name, message_type,
	message, text, status, sent_at, created_at, ignore_reason, mentions_me, quoted_id, state, state_reason, bot_id,
	session_id, prompt_tokens, completion_tokens, latency_ms, sources, tool_calls, tool_results, agent_name`

// InsertMessage stores m unless a message with the same instance, id and
// direction exists. It reports whether m was new; a redelivery is a no-op.
// An empty State becomes received (inbound) or sent (outbound).
func (s *Store) InsertMessage(ctx context.Context, m *Message) (bool, error) {
	defaultState(m)
	if s.postgres {
		// One statement, atomic by itself: a round trip to the server where
		// a transaction of the two would take four.
		return s.insertMessageAndTouch(ctx, m)
	}
	// The message and its conversation's summary change together.
	var isNew bool
	err := s.DoTxn(ctx, func(ctx context.Context) error {
		var err error
		if isNew, err = s.insertMessage(ctx, m); err != nil || !isNew {
			return err
		}
		return s.touchConversation(ctx, m)
	})
	return isNew, err
}

func (s *Store) insertMessage(ctx context.Context, m *Message) (bool, error) {
	if err := s.resolveChatKey(ctx, m); err != nil {
		return false, err
	}
	err := s.db.QueryRow(ctx, insertMessageSQL, insertMessageArgs(m)...).Scan(&m.Seq)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

const insertMessageSQL = `INSERT INTO messages (instance_id, message_id, direction, remote_jid, participant, from_me,
		push_name, message_type, message, text, status, sent_at, created_at, ignore_reason, mentions_me, quoted_id,
		state, state_reason, bot_id, session_id, prompt_tokens, completion_tokens, latency_ms, chat_key, sources, tool_calls, tool_results,
		agent_name)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28)
	ON CONFLICT (instance_id, message_id, direction) DO NOTHING RETURNING seq`

func insertMessageArgs(m *Message) []any {
	return []any{m.InstanceID, m.ID, string(m.Direction), m.RemoteJID, m.Participant, m.FromMe, m.PushName, m.MessageType,
		string(m.Content), m.Text, m.Status, millis(m.Timestamp), millis(m.CreatedAt), m.IgnoreReason, m.MentionsMe,
		m.QuotedID, m.State, m.StateReason, nullable(m.BotID), nullable(m.SessionID), m.PromptTokens,
		m.CompletionTokens, m.LatencyMS, m.ChatKey, nullableJSON(m.Sources), nullableJSON(m.ToolCalls),
		nullableJSON(m.ToolResults), m.AgentName}
}

// insertMessageAndTouch is insertMessage and touchConversation in one
// PostgreSQL statement: the conversation's summary is updated from the
// inserted row, and not at all when the message was there already.
func (s *Store) insertMessageAndTouch(ctx context.Context, m *Message) (bool, error) {
	if err := s.resolveChatKey(ctx, m); err != nil {
		return false, err
	}
	query, args := insertAndTouchSQL(m)
	return readInserted(s.db.QueryRow(ctx, query, args...), m)
}

// AddMessage is InsertMessage for a caller that needs to know neither
// whether m was new nor its Seq before its transaction commits: inside a
// PostgreSQL transaction the insert goes out with the commit, and sets
// m.Seq then.
func (s *Store) AddMessage(ctx context.Context, m *Message) error {
	if !s.postgres || !s.inTxn(ctx) || (m.ChatKey == "" && m.Direction == Outbound) {
		_, err := s.InsertMessage(ctx, m)
		return err
	}
	defaultState(m)
	if err := s.resolveChatKey(ctx, m); err != nil {
		return err
	}
	query, args := insertAndTouchSQL(m)
	return s.db.DeferRow(ctx, func(row scanner) error {
		_, err := readInserted(row, m)
		return err
	}, query, args...)
}

func defaultState(m *Message) {
	if m.State == "" {
		m.State = MessageReceived
		if m.Direction == Outbound {
			m.State = MessageSent
		}
	}
}

// resolveChatKey names the chat of m when the caller did not.
func (s *Store) resolveChatKey(ctx context.Context, m *Message) error {
	if m.ChatKey == "" && m.Direction == Outbound {
		// A send through the API names the chat as the channel does; it
		// belongs with the messages exchanged with that JID.
		key, ok, err := s.chatKeyOf(ctx, m.InstanceID, m.RemoteJID)
		if err != nil {
			return err
		}
		if ok {
			m.ChatKey = key
		}
	}
	if m.ChatKey == "" {
		m.ChatKey = m.RemoteJID
	}
	return nil
}

// insertAndTouchSQL is PostgreSQL's insert of m with its conversation's
// summary, one statement, atomic by itself.
func insertAndTouchSQL(m *Message) (string, []any) {
	c := conversationDelta(m)
	args := append(insertMessageArgs(m), c.pushName, c.in, c.out, c.unread, c.resets)
	return `WITH m AS (` + insertMessageSQL + `), c AS (
		INSERT INTO conversations (instance_id, chat_key, push_name, bot_id, last_seq, last_at,
			messages_in, messages_out, unread, prompt_tokens, completion_tokens, created_at)
		SELECT $1, $24, $29, $19, m.seq, $13, $30, $31, $32, $21, $22, $13 FROM m
		` + conversationConflict + `
		RETURNING messages_in + messages_out AS n)
		SELECT m.seq, c.n FROM m, c`, args
}

// readInserted reads what insertAndTouchSQL returns into m, and whether m
// was new: no row means the message was there already.
func readInserted(row scanner, m *Message) (bool, error) {
	var n int
	err := row.Scan(&m.Seq, &n)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	m.NewChat = n == 1
	return true, nil
}

func scanMessage(row scanner) (*Message, error) {
	var (
		m                Message
		content, dir     string
		sent, at         int64
		botID, sessionID *string
		sources          *string
		calls, results   *string
	)
	err := row.Scan(&m.Seq, &m.InstanceID, &m.ID, &dir, &m.RemoteJID, &m.ChatKey, &m.Participant, &m.FromMe, &m.PushName,
		&m.MessageType, &content, &m.Text, &m.Status, &sent, &at, &m.IgnoreReason, &m.MentionsMe, &m.QuotedID,
		&m.State, &m.StateReason, &botID, &sessionID, &m.PromptTokens, &m.CompletionTokens, &m.LatencyMS, &sources,
		&calls, &results, &m.AgentName)
	if err != nil {
		return nil, err
	}
	m.Sources, m.ToolCalls, m.ToolResults = rawJSON(sources), rawJSON(calls), rawJSON(results)
	if botID != nil {
		m.BotID = *botID
	}
	if sessionID != nil {
		m.SessionID = *sessionID
	}
	m.Direction, m.Content = Direction(dir), json.RawMessage(content)
	m.Timestamp, m.CreatedAt = fromMillis(sent), fromMillis(at)
	if sent < 0 || sent > at+maxClockSkew.Milliseconds() {
		// Not a time the message can have been sent (stored by a version
		// that did not check): when it was received is the best guess.
		m.Timestamp = m.CreatedAt
	}
	return &m, nil
}

// Message returns one message of the instance.
func (s *Store) Message(ctx context.Context, instanceID, id string, dir Direction) (*Message, error) {
	m, err := scanMessage(s.db.QueryRow(ctx, "SELECT "+messageColumns+` FROM messages
		WHERE instance_id = $1 AND message_id = $2 AND direction = $3`, instanceID, id, string(dir)))
	return m, notFound(err, "message %q not found", id)
}

func (s *Store) queryMessages(ctx context.Context, query string, args ...any) ([]*Message, error) {
	return collect(scanMessage)(s.db.Query(ctx, "SELECT "+messageColumns+" FROM messages "+query, args...))
}

// PendingMessages returns the conversation's inbound messages the engine
// has not decided on yet, oldest first.
func (s *Store) PendingMessages(ctx context.Context, instanceID, chatKey string) ([]*Message, error) {
	return s.queryMessages(ctx, pendingMessagesSQL, instanceID, chatKey)
}

const pendingMessagesSQL = `WHERE instance_id = $1 AND chat_key = $2 AND state = 'received' ORDER BY seq`

// Chat identifies one conversation: an instance and a chat key.
type Chat struct{ InstanceID, Key string }

// PendingChats returns every conversation with messages the engine has not
// decided on, or with parts of a reply not yet sent.
func (s *Store) PendingChats(ctx context.Context) ([]Chat, error) {
	return collect(func(row scanner) (Chat, error) {
		var c Chat
		return c, row.Scan(&c.InstanceID, &c.Key)
	})(s.db.Query(ctx, `SELECT instance_id, chat_key FROM messages WHERE state = 'received'
		UNION SELECT instance_id, chat_key FROM reply_parts`))
}

// MessageOutcome is what the engine decided for inbound messages.
type MessageOutcome struct {
	State, Reason    string
	BotID, SessionID string
}

// SetMessagesState records the outcome for the instance's messages seqs.
func (s *Store) SetMessagesState(ctx context.Context, instanceID string, seqs []int64, o MessageOutcome) error {
	if len(seqs) == 0 {
		return nil
	}
	args := []any{instanceID, o.State, o.Reason, nullable(o.BotID), nullable(o.SessionID)}
	marks := make([]string, len(seqs))
	for i, seq := range seqs {
		args = append(args, seq)
		marks[i] = fmt.Sprintf("$%d", len(args))
	}
	return s.db.Defer(ctx, `UPDATE messages SET state = $2, state_reason = $3, bot_id = $4, session_id = $5
		WHERE instance_id = $1 AND seq IN (`+strings.Join(marks, ", ")+")", args...)
}

// IsOutbound reports whether the instance sent messageID.
func (s *Store) IsOutbound(ctx context.Context, instanceID, messageID string) (bool, error) {
	var n int
	err := s.db.QueryRow(ctx, `SELECT COUNT(*) FROM messages WHERE instance_id = $1 AND message_id = $2 AND direction = 'out'`,
		instanceID, messageID).Scan(&n)
	return n > 0, err
}

// SetMessageText replaces the text of one of the instance's messages, as
// when an audio message is transcribed.
func (s *Store) SetMessageText(ctx context.Context, instanceID string, seq int64, text string) error {
	_, err := s.db.Exec(ctx, "UPDATE messages SET text = $3 WHERE instance_id = $1 AND seq = $2", instanceID, seq, text)
	return err
}

// SetMessageStatus records a message's delivery status (a receipt, or
// DELETED when its sender deleted it).
func (s *Store) SetMessageStatus(ctx context.Context, instanceID string, seq int64, status string) error {
	_, err := s.db.Exec(ctx, "UPDATE messages SET status = $3 WHERE instance_id = $1 AND seq = $2", instanceID, seq, status)
	return err
}

// EditMessage replaces a message's text and content after its sender
// edited it.
func (s *Store) EditMessage(ctx context.Context, instanceID string, seq int64, text string, content json.RawMessage) error {
	_, err := s.db.Exec(ctx, "UPDATE messages SET text = $3, message = $4 WHERE instance_id = $1 AND seq = $2",
		instanceID, seq, text, string(content))
	return err
}

// nullableJSON stores an absent JSON value as NULL.
func nullableJSON(b json.RawMessage) any {
	if len(b) == 0 {
		return nil
	}
	return string(b)
}

// rawJSON is a nullable JSON column as read.
func rawJSON(s *string) json.RawMessage {
	if s == nil {
		return nil
	}
	return json.RawMessage(*s)
}
