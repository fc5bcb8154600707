package store

import (
	"context"
	"database/sql"
	"errors"

	"go.mau.fi/util/dbutil"
)

// ChatState is what the engine reads of a conversation before it decides
// on its new messages.
type ChatState struct {
	Session *Session     // live (opened or paused), or nil
	Parts   []*ReplyPart // of a reply not sent yet
	Pending []*Message   // inbound, not decided on yet
	// History is the live session's recent turns within the token budget,
	// read when there is a session and something pending.
	History []*Turn
}

// ChatState reads the conversation's state. On PostgreSQL the four reads
// go out in one pipeline: a round trip each was most of their cost.
func (s *Store) ChatState(ctx context.Context, instanceID, chatKey string, historyBudget int) (*ChatState, error) {
	var st ChatState
	if !s.postgres {
		err := s.Reads(ctx, func(ctx context.Context) error {
			var err error
			if st.Session, err = s.LiveSession(ctx, instanceID, chatKey); err != nil {
				return err
			}
			if st.Parts, err = s.ReplyParts(ctx, instanceID, chatKey); err != nil {
				return err
			}
			if st.Pending, err = s.PendingMessages(ctx, instanceID, chatKey); err != nil || st.Session == nil || len(st.Pending) == 0 {
				return err
			}
			st.History, err = s.RecentTurns(ctx, st.Session.ID, historyBudget)
			return err
		})
		return &st, err
	}
	history, more := turnReader{budget: historyBudget}, false
	err := s.db.pipeline(ctx, func(ctx context.Context) error {
		return errors.Join(
			s.db.DeferRow(ctx, func(row scanner) (err error) {
				st.Session, err = scanSession(row)
				if errors.Is(err, sql.ErrNoRows) {
					return nil
				}
				return err
			}, liveSessionSQL, instanceID, chatKey),
			s.db.DeferRows(ctx, func(rows dbutil.Rows) (err error) {
				st.Parts, err = collect(scanReplyPart)(rows, nil)
				return err
			}, replyPartsSQL, instanceID, chatKey),
			s.db.DeferRows(ctx, func(rows dbutil.Rows) (err error) {
				st.Pending, err = collect(scanMessage)(rows, nil)
				return err
			}, "SELECT "+messageColumns+" FROM messages "+pendingMessagesSQL, instanceID, chatKey),
			s.db.DeferRows(ctx, func(rows dbutil.Rows) (err error) {
				more, err = history.read(rows, turnsPage)
				return err
			}, recentTurnsSQL+`session_id = (SELECT id FROM openai_sessions
				WHERE instance_id = $1 AND remote_jid = $2 AND status <> 'closed')
				AND EXISTS (SELECT 1 FROM messages WHERE instance_id = $1 AND chat_key = $2 AND state = 'received')
				ORDER BY seq DESC LIMIT $3`, instanceID, chatKey, turnsPage),
		)
	})
	if err != nil {
		return nil, err
	}
	if more && st.Session != nil {
		// A long session: the rest of its history within the budget.
		if st.History, err = s.olderTurns(ctx, st.Session.ID, &history, history.oldest(), 2*turnsPage); err != nil {
			return nil, err
		}
		return &st, nil
	}
	st.History = history.turns()
	return &st, nil
}
