package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// ChatState is what the engine reads about a chat before deciding on it.
type ChatState struct {
	Session *Session     // the live session; nil if none
	Parts   []*ReplyPart // reply parts not sent yet, in order
	Pending []*Message   // inbound messages not decided on, oldest first
	// History is the live session's recent turns (RecentTurns), read only
	// when there is a session and something pending: HistoryRead says so.
	History     []*Turn
	HistoryRead bool
}

// ReadChat returns the state of the chat key of the instance, with at most
// historyBudget tokens of history. On SQLite the reads share a transaction,
// and so a commit group (see reads). On PostgreSQL they go out in one batch:
// one round trip where four statements took four.
func (s *Store) ReadChat(ctx context.Context, instanceID, chatKey string, historyBudget int) (*ChatState, error) {
	if s.postgres && !s.inTxn(ctx) {
		var st *ChatState
		err := s.retryIdempotent(ctx, func() (err error) {
			st, err = s.readChatBatch(ctx, instanceID, chatKey, historyBudget)
			return err
		})
		return st, err
	}
	st := &ChatState{}
	err := s.reads(ctx, func(ctx context.Context) error {
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
		st.HistoryRead = true
		return err
	})
	return st, err
}

// readChatBatch sends ReadChat's four statements in one pgx batch on a
// connection of the pool. The history is that of the live session, named
// by a subquery as the first statement's result is not known when the
// batch is sent; it is read whether it is needed or not.
func (s *Store) readChatBatch(ctx context.Context, instanceID, chatKey string, historyBudget int) (*ChatState, error) {
	conn, err := s.db.RawDB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	st := &ChatState{}
	err = conn.Raw(func(driverConn any) error {
		dc, ok := driverConn.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("read chat: unexpected driver connection %T", driverConn)
		}
		var b pgx.Batch
		b.Queue(liveSessionSQL, instanceID, chatKey)
		b.Queue(replyPartsSQL, instanceID, chatKey)
		b.Queue("SELECT "+messageColumns+" FROM messages "+pendingMessagesWhere, instanceID, chatKey)
		b.Queue(recentTurnsSQL+`(SELECT id FROM openai_sessions
			WHERE instance_id = $1 AND remote_jid = $2 AND status <> 'closed') ORDER BY seq DESC`, instanceID, chatKey)
		br := dc.Conn().SendBatch(ctx, &b)
		err := func() error {
			sessions, err := collectPgx(br, scanSession)
			if err != nil {
				return fmt.Errorf("read chat: session: %w", err)
			}
			if len(sessions) > 0 {
				st.Session = sessions[0]
			}
			if st.Parts, err = collectPgx(br, scanReplyPart); err != nil {
				return fmt.Errorf("read chat: reply parts: %w", err)
			}
			if st.Pending, err = collectPgx(br, scanMessage); err != nil {
				return fmt.Errorf("read chat: pending messages: %w", err)
			}
			rows, err := br.Query()
			if err != nil {
				return fmt.Errorf("read chat: history: %w", err)
			}
			history, err := recentTurns(rows, historyBudget)
			rows.Close()
			if err != nil {
				return fmt.Errorf("read chat: history: %w", err)
			}
			if st.Session != nil && len(st.Pending) > 0 {
				st.History, st.HistoryRead = history, true
			}
			return nil
		}()
		return errors.Join(err, br.Close())
	})
	return st, err
}

// collectPgx scans every row of the batch's next result with scan.
func collectPgx[T any](br pgx.BatchResults, scan func(scanner) (T, error)) ([]T, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
