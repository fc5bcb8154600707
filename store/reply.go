package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// ReplyPart is one message of a bot's reply that has not been recorded as
// sent yet. The engine stores a reply's parts in the transaction that
// records the turn, before the first goes out, and deletes each in the
// transaction that records its message: what is left after a restart is
// exactly what was not sent.
type ReplyPart struct {
	Seq        int64
	InstanceID string
	ChatKey    string
	RemoteJID  string // where the reply goes
	TurnSeq    int64  // the first inbound message of the turn answered
	Text       string
	Delay      time.Duration // "composing" before the part
	BotID      string
	SessionID  string

	PromptTokens, CompletionTokens, LatencyMS int             // the turn's usage, on its first part
	Sources                                   json.RawMessage // the knowledge the reply used, on every part
	ToolCalls, ToolResults                    json.RawMessage // what the reply's tools did, on every part

	// Sending: the part was about to leave on a channel whose send is
	// more than the gateway's record (WhatsApp) when the gateway stopped;
	// it may have gone out.
	Sending   bool
	CreatedAt time.Time
}

// InsertReplyParts stores parts, in order, and sets their Seq.
func (s *Store) InsertReplyParts(ctx context.Context, parts ...*ReplyPart) error {
	for _, p := range parts {
		// Written with the turn's other writes: p.Seq is read by the commit.
		err := s.db.DeferRow(ctx, func(row scanner) error {
			if err := row.Scan(&p.Seq); err != nil {
				return fmt.Errorf("reply part: %w", err)
			}
			return nil
		}, `INSERT INTO reply_parts (instance_id, chat_key, remote_jid, turn_seq, text, delay_ms,
				bot_id, session_id, prompt_tokens, completion_tokens, latency_ms, sending, created_at, sources, tool_calls, tool_results)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING seq`,
			p.InstanceID, p.ChatKey, p.RemoteJID, p.TurnSeq, p.Text, p.Delay.Milliseconds(), nullable(p.BotID),
			nullable(p.SessionID), p.PromptTokens, p.CompletionTokens, p.LatencyMS, p.Sending, millis(p.CreatedAt), nullableJSON(p.Sources),
			nullableJSON(p.ToolCalls), nullableJSON(p.ToolResults))
		if err != nil {
			return fmt.Errorf("reply part: %w", err)
		}
	}
	return nil
}

// ReplyParts returns the conversation's parts not yet sent, in order.
func (s *Store) ReplyParts(ctx context.Context, instanceID, chatKey string) ([]*ReplyPart, error) {
	return collect(scanReplyPart)(s.db.Query(ctx, replyPartsSQL, instanceID, chatKey))
}

const replyPartsSQL = `SELECT seq, instance_id, chat_key, remote_jid, turn_seq, text, delay_ms, bot_id, session_id,
		prompt_tokens, completion_tokens, latency_ms, sending, created_at, sources, tool_calls, tool_results
	FROM reply_parts WHERE instance_id = $1 AND chat_key = $2 ORDER BY seq`

func scanReplyPart(row scanner) (*ReplyPart, error) {
	var (
		p                ReplyPart
		delay, created   int64
		botID, sessionID *string
		sources          *string
		calls, results   *string
	)
	err := row.Scan(&p.Seq, &p.InstanceID, &p.ChatKey, &p.RemoteJID, &p.TurnSeq, &p.Text, &delay, &botID, &sessionID,
		&p.PromptTokens, &p.CompletionTokens, &p.LatencyMS, &p.Sending, &created, &sources, &calls, &results)
	if err != nil {
		return nil, err
	}
	p.Sources, p.ToolCalls, p.ToolResults = rawJSON(sources), rawJSON(calls), rawJSON(results)
	if botID != nil {
		p.BotID = *botID
	}
	if sessionID != nil {
		p.SessionID = *sessionID
	}
	p.Delay, p.CreatedAt = time.Duration(delay)*time.Millisecond, fromMillis(created)
	return &p, nil
}

// SetReplyPartSending records that the part is about to leave.
func (s *Store) SetReplyPartSending(ctx context.Context, instanceID string, seq int64) error {
	err := s.db.Defer(ctx, "UPDATE reply_parts SET sending = true WHERE instance_id = $1 AND seq = $2", instanceID, seq)
	if err != nil {
		return fmt.Errorf("reply part: %w", err)
	}
	return nil
}

// DeleteReplyPart forgets a part that was sent (or given up).
func (s *Store) DeleteReplyPart(ctx context.Context, instanceID string, seq int64) error {
	err := s.db.Defer(ctx, "DELETE FROM reply_parts WHERE instance_id = $1 AND seq = $2", instanceID, seq)
	if err != nil {
		return fmt.Errorf("reply part: %w", err)
	}
	return nil
}

// AbandonReply deletes the conversation's parts not yet sent and records
// the turn they answer (the answered messages from turnSeq on) as failed
// with reason: its reply could not be delivered.
func (s *Store) AbandonReply(ctx context.Context, instanceID, chatKey string, turnSeq int64, reason string) error {
	err := s.DoTxn(ctx, func(ctx context.Context) error {
		if _, err := s.db.Exec(ctx, "DELETE FROM reply_parts WHERE instance_id = $1 AND chat_key = $2", instanceID, chatKey); err != nil {
			return err
		}
		// Messages after the turn stay undecided while its reply is being
		// sent: the answered ones from turnSeq on are exactly the turn's.
		_, err := s.db.Exec(ctx, `UPDATE messages SET state = $4, state_reason = $5
			WHERE instance_id = $1 AND chat_key = $2 AND seq >= $3 AND direction = 'in' AND state = $6`,
			instanceID, chatKey, turnSeq, MessageFailed, reason, MessageAnswered)
		return err
	})
	if err != nil {
		return fmt.Errorf("abandon reply: %w", err)
	}
	return nil
}
