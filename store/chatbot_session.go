package store

import (
	"context"
	"fmt"
	"strings"
)

// A chatbot's sessions are the sessions of the instance bots that take
// their brain from it. Every query here also requires the session's
// instance to belong to the chatbot's organization: bots are checked when
// saved, and this keeps a chatbot from ever reading another
// organization's conversations whatever a row says.

const chatbotSessionColumns = `s.id, s.instance_id, s.bot_id, s.remote_jid, s.push_name, s.status, s.paused_until,
	s.previous_response_id, s.close_reason, s.created_at, s.updated_at, s.closed_at, s.status_reason`

const chatbotSessionsFrom = ` FROM openai_sessions s JOIN openai_bots b ON b.id = s.bot_id
	JOIN instances i ON i.id = s.instance_id
	WHERE i.organization_id = $1 AND b.chatbot_id = $2`

// ChatbotSessions returns the sessions of the organization's chatbot,
// newest activity first, by (updated_at, id); Before continues after a
// position (its CreatedAt holds the activity), Limit bounds the page. A
// conversation that becomes active while a client pages moves to the
// front, where the next first page shows it.
func (s *Store) ChatbotSessions(ctx context.Context, orgID, chatbotID string, before *SessionCursor, limit int) ([]*Session, error) {
	var beforeAt int64
	var beforeID string
	if before != nil {
		beforeAt, beforeID = millis(before.CreatedAt), before.ID
	}
	return collect(scanSession)(s.db.Query(ctx, "SELECT "+chatbotSessionColumns+chatbotSessionsFrom+`
			AND ($3 = '' OR s.updated_at < $4 OR (s.updated_at = $4 AND s.id < $3))
		ORDER BY s.updated_at DESC, s.id DESC LIMIT $5`,
		orgID, chatbotID, beforeID, beforeAt, limit))
}

// ChatbotSession returns session id of the organization's chatbot;
// another chatbot's session is not found.
func (s *Store) ChatbotSession(ctx context.Context, orgID, chatbotID, id string) (*Session, error) {
	se, err := scanSession(s.db.QueryRow(ctx, "SELECT "+chatbotSessionColumns+chatbotSessionsFrom+" AND s.id = $3",
		orgID, chatbotID, id))
	return se, notFound(err, "sessionId: no conversation %q of this chatbot", id)
}

// LastSessionMessages returns the newest message of each of the sessions
// that has one, by session id.
func (s *Store) LastSessionMessages(ctx context.Context, sessionIDs []string) (map[string]*Message, error) {
	out := make(map[string]*Message, len(sessionIDs))
	if len(sessionIDs) == 0 {
		return out, nil
	}
	args := make([]any, len(sessionIDs))
	marks := make([]string, len(sessionIDs))
	for i, id := range sessionIDs {
		args[i] = id
		marks[i] = fmt.Sprintf("$%d", i+1)
	}
	list, err := s.queryMessages(ctx, `WHERE seq IN (SELECT MAX(seq) FROM messages
		WHERE session_id IN (`+strings.Join(marks, ", ")+`) GROUP BY session_id)`, args...)
	if err != nil {
		return nil, err
	}
	for _, m := range list {
		out[m.SessionID] = m
	}
	return out, nil
}

// SessionMessages returns the messages of the instance's session, oldest
// first, after position after (a seq; 0 from the start), up to limit.
func (s *Store) SessionMessages(ctx context.Context, instanceID, sessionID string, after int64, limit int) ([]*Message, error) {
	return s.queryMessages(ctx, `WHERE session_id = $1 AND instance_id = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
		sessionID, instanceID, after, limit)
}
