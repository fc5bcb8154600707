package store

import (
	"context"
	"encoding/json"
	"time"
)

// Direction tells inbound from outbound messages. A message id is unique per
// instance and direction: our own send echoed back by a channel is a second row.
type Direction string

const (
	Inbound  Direction = "in"
	Outbound Direction = "out"
)

// Message is one stored message in Evolution's shape.
type Message struct {
	Seq         int64
	InstanceID  string
	ID          string
	Direction   Direction
	RemoteJID   string
	Participant string // the sender in a group chat
	FromMe      bool
	PushName    string
	MessageType string
	Content     json.RawMessage // Evolution's "message" object
	Text        string          // the text extracted from Content, for search and bots
	Status      string
	Timestamp   time.Time // when the message was sent
	CreatedAt   time.Time // when the gateway stored it
}

const messageColumns = "seq, instance_id, message_id, direction, remote_jid, participant, from_me, push_name, message_type, message, text, status, sent_at, created_at"

// InsertMessage stores m unless a message with the same instance, id and
// direction exists. It reports whether m was new; a redelivery is a no-op.
func (s *Store) InsertMessage(ctx context.Context, m *Message) (bool, error) {
	res, err := s.db.Exec(ctx, `INSERT INTO messages (instance_id, message_id, direction, remote_jid, participant, from_me,
			push_name, message_type, message, text, status, sent_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (instance_id, message_id, direction) DO NOTHING`,
		m.InstanceID, m.ID, string(m.Direction), m.RemoteJID, m.Participant, m.FromMe, m.PushName, m.MessageType, string(m.Content),
		m.Text, m.Status, millis(m.Timestamp), millis(m.CreatedAt))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Message returns one message of the instance.
func (s *Store) Message(ctx context.Context, instanceID, id string, dir Direction) (*Message, error) {
	var (
		m        Message
		content  string
		dirText  string
		sent, at int64
	)
	err := s.db.QueryRow(ctx, "SELECT "+messageColumns+" FROM messages WHERE instance_id = $1 AND message_id = $2 AND direction = $3",
		instanceID, id, string(dir)).
		Scan(&m.Seq, &m.InstanceID, &m.ID, &dirText, &m.RemoteJID, &m.Participant, &m.FromMe, &m.PushName, &m.MessageType, &content,
			&m.Text, &m.Status, &sent, &at)
	if err != nil {
		return nil, notFound(err, "message %q not found", id)
	}
	m.Direction, m.Content = Direction(dirText), json.RawMessage(content)
	m.Timestamp, m.CreatedAt = fromMillis(sent), fromMillis(at)
	return &m, nil
}
