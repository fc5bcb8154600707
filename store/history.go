package store

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"
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

// AppendTurns adds turns to their session's history, in one statement (a
// turn's question and answer are stored together).
func (s *Store) AppendTurns(ctx context.Context, turns ...*Turn) error {
	if len(turns) == 0 {
		return nil
	}
	var q strings.Builder
	q.WriteString("INSERT INTO openai_history (session_id, role, message, tokens, created_at) VALUES ")
	args := make([]any, 0, 5*len(turns))
	for i, t := range turns {
		if i > 0 {
			q.WriteString(", ")
		}
		n := len(args)
		fmt.Fprintf(&q, "($%d, $%d, $%d, $%d, $%d)", n+1, n+2, n+3, n+4, n+5)
		args = append(args, t.SessionID, t.Role, string(t.Message), t.Tokens, millis(t.CreatedAt))
	}
	q.WriteString(" RETURNING seq")
	// Written with the turn's other writes: the seqs are read by the commit.
	return s.db.DeferRows(ctx, func(rows dbutil.Rows) error {
		seqs, err := collect(func(row scanner) (int64, error) {
			var seq int64
			return seq, row.Scan(&seq)
		})(rows, nil)
		if err != nil {
			return err
		}
		if len(seqs) != len(turns) {
			return fmt.Errorf("history: %d turns inserted, %d seqs returned", len(turns), len(seqs))
		}
		// Rows take increasing seqs in the order of VALUES; RETURNING's
		// order is not promised.
		slices.Sort(seqs)
		for i, t := range turns {
			t.Seq = seqs[i]
		}
		return nil
	}, q.String(), args...)
}

// RecentTurns returns the session's newest turns whose tokens add up to at
// most budget, oldest first.
func (s *Store) RecentTurns(ctx context.Context, sessionID string, budget int) ([]*Turn, error) {
	rows, err := s.db.Query(ctx, recentTurnsSQL+"session_id = $1 ORDER BY seq DESC", sessionID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	return readTurns(rows, budget)
}

const recentTurnsSQL = "SELECT seq, session_id, role, message, tokens, created_at FROM openai_history WHERE "

// readTurns reads turns newest first until they add up to budget, and
// returns them oldest first.
func readTurns(rows dbutil.Rows, budget int) ([]*Turn, error) {
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
	slices.Reverse(out)
	return out, nil
}
