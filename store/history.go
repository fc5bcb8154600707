package store

import (
	"context"
	"encoding/json"
	"time"
)

// Turn is one message of a session's conversation with the model.
type Turn struct {
	Seq       int64
	SessionID string
	Role      string          // user, assistant or tool
	Message   json.RawMessage // the message as sent to the model
	Tokens    int
	CreatedAt time.Time
}

// AppendTurns adds turns to their session's history.
func (s *Store) AppendTurns(ctx context.Context, turns ...*Turn) error {
	for _, t := range turns {
		err := s.db.QueryRow(ctx, `INSERT INTO openai_history (session_id, role, message, tokens, created_at)
			VALUES ($1, $2, $3, $4, $5) RETURNING seq`,
			t.SessionID, t.Role, string(t.Message), t.Tokens, millis(t.CreatedAt)).Scan(&t.Seq)
		if err != nil {
			return err
		}
	}
	return nil
}

// RecentTurns returns the session's newest turns whose tokens add up to at
// most budget, oldest first.
func (s *Store) RecentTurns(ctx context.Context, sessionID string, budget int) ([]*Turn, error) {
	rows, err := s.db.Query(ctx, `SELECT seq, session_id, role, message, tokens, created_at FROM openai_history
		WHERE session_id = $1 ORDER BY seq DESC`, sessionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Turn
	used := 0
	for rows.Next() {
		var (
			t       Turn
			msg     string
			created int64
		)
		if err := rows.Scan(&t.Seq, &t.SessionID, &t.Role, &msg, &t.Tokens, &created); err != nil {
			return nil, err
		}
		if used+t.Tokens > budget {
			break
		}
		used += t.Tokens
		t.Message, t.CreatedAt = json.RawMessage(msg), fromMillis(created)
		out = append(out, &t)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out, nil
}
