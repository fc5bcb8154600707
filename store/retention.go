package store

import (
	"context"
	"fmt"
	"time"
)

// PurgeMessages deletes up to limit of the instance's oldest messages, those
// stored before t, in one short transaction, and updates their
// conversations. Messages the engine has not decided on yet stay: they are
// its queue. It reports how many it deleted; fewer than limit means none
// are left.
func (s *Store) PurgeMessages(ctx context.Context, instanceID string, before time.Time, limit int) (int, error) {
	var n int
	err := s.DoTxn(ctx, func(ctx context.Context) error {
		type old struct {
			seq, at            int64
			chat, dir          string
			prompt, completion int64
		}
		// Messages are stored in seq order at the time they are stored, so
		// the oldest come first and the first newer one ends the batch:
		// asking for created_at < t instead would read every newer message
		// once none older is left.
		rows, err := s.db.Query(ctx, `SELECT seq, created_at, chat_key, direction, prompt_tokens, completion_tokens
			FROM messages WHERE instance_id = $1 AND state <> 'received' ORDER BY seq LIMIT $2`, instanceID, limit)
		if err != nil {
			return err
		}
		var batch []old
		for rows.Next() {
			var o old
			if err := rows.Scan(&o.seq, &o.at, &o.chat, &o.dir, &o.prompt, &o.completion); err != nil {
				rows.Close()
				return err
			}
			if o.at >= millis(before) {
				break
			}
			batch = append(batch, o)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(batch) == 0 {
			return err
		}
		n = len(batch)

		// What each conversation loses, and the newest seq it loses.
		type loss struct {
			in, out, prompt, completion int64
			newest                      int64
		}
		losses := map[string]*loss{}
		seqs := make([]any, len(batch))
		for i, o := range batch {
			l := losses[o.chat]
			if l == nil {
				l = &loss{}
				losses[o.chat] = l
			}
			if o.dir == string(Inbound) {
				l.in++
			} else {
				l.out++
			}
			l.prompt += o.prompt
			l.completion += o.completion
			l.newest = max(l.newest, o.seq)
			seqs[i] = o.seq
		}
		var del query
		del.add("DELETE FROM messages WHERE instance_id = " + del.arg(instanceID) + " AND seq IN (" + del.in(seqs, int64(0)) + ")")
		if _, err := s.db.Exec(ctx, del.sql.String(), del.args...); err != nil {
			return err
		}
		for chat, l := range losses {
			// Subtracting is enough while the conversation keeps its newest
			// message; unread cannot exceed the inbound messages left.
			res, err := s.db.Exec(ctx, `UPDATE conversations SET messages_in = messages_in - $3,
					messages_out = messages_out - $4, prompt_tokens = prompt_tokens - $5,
					completion_tokens = completion_tokens - $6,
					unread = CASE WHEN unread > messages_in - $3 THEN messages_in - $3 ELSE unread END
				WHERE instance_id = $1 AND chat_key = $2 AND last_seq > $7`,
				instanceID, chat, l.in, l.out, l.prompt, l.completion, l.newest)
			if err != nil {
				return err
			}
			if changed, err := res.RowsAffected(); err != nil {
				return err
			} else if changed == 0 {
				// Its newest message went too: little or nothing is left.
				if err := s.refreshConversation(ctx, instanceID, chat); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("purge messages: %w", err)
	}
	return n, nil
}

// PurgeClosedSessions deletes up to limit of the instance's closed sessions
// that closed before t, with their model history, and reports how many.
// Their messages stay, without a session id.
func (s *Store) PurgeClosedSessions(ctx context.Context, instanceID string, before time.Time, limit int) (int, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM openai_sessions WHERE id IN (SELECT id FROM openai_sessions
		WHERE instance_id = $1 AND status = 'closed' AND closed_at < $2 LIMIT $3)`, instanceID, millis(before), limit)
	if err != nil {
		return 0, fmt.Errorf("purge sessions: %w", err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}
