package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
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
	r := turnReader{budget: budget}
	return s.olderTurns(ctx, sessionID, &r, math.MaxInt64, turnsPage)
}

// turnsPage is how many turns a read of a session's history asks for
// first. A read cannot end where the budget does: the server computes and
// sends a PostgreSQL result to its end, however soon its reader stops, so
// a long session is read in pages, each twice the last.
const turnsPage = 64

// recentTurnsSQL selects turns newest first; the caller adds the
// conditions, the order and the limit.
const recentTurnsSQL = "SELECT seq, session_id, role, message, tokens, created_at FROM openai_history WHERE "

// olderTurns reads the session's turns before seq into r, in pages from
// limit on, until the budget is spent or the history ends, and returns r's
// turns.
func (s *Store) olderTurns(ctx context.Context, sessionID string, r *turnReader, before int64, limit int) ([]*Turn, error) {
	for {
		rows, err := s.db.Query(ctx, recentTurnsSQL+"session_id = $1 AND seq < $2 ORDER BY seq DESC LIMIT $3",
			sessionID, before, limit)
		if err != nil {
			return nil, err
		}
		more, err := r.read(rows, limit)
		rows.Close()
		if err != nil {
			return nil, err
		}
		if !more {
			return r.turns(), nil
		}
		before, limit = r.oldest(), 2*limit
	}
}

// turnReader collects a session's turns, newest first, while their
// tokens add up to at most budget.
type turnReader struct {
	budget, used int
	newest       []*Turn
}

// read reads a page of at most limit turns and reports whether the next
// page is wanted: the budget is not spent and this page was full.
func (r *turnReader) read(rows dbutil.Rows, limit int) (more bool, err error) {
	n := 0
	for rows.Next() {
		n++
		var (
			t       Turn
			msg     string
			created int64
		)
		if err := rows.Scan(&t.Seq, &t.SessionID, &t.Role, &msg, &t.Tokens, &created); err != nil {
			return false, err
		}
		if r.used+t.Tokens > r.budget {
			// Older turns are not wanted; closing the rows discards the
			// rest of the page.
			return false, nil
		}
		r.used += t.Tokens
		t.Message, t.CreatedAt = json.RawMessage(msg), fromMillis(created)
		r.newest = append(r.newest, &t)
	}
	return n == limit, rows.Err()
}

// oldest is the seq of the oldest turn read.
func (r *turnReader) oldest() int64 { return r.newest[len(r.newest)-1].Seq }

// turns returns the turns read, oldest first.
func (r *turnReader) turns() []*Turn {
	out := slices.Clone(r.newest)
	slices.Reverse(out)
	return out
}
