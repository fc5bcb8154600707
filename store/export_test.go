package store

import "context"

// UpgradeTo returns opts with migrations stopping at version v.
func UpgradeTo(opts Options, v int) Options {
	opts.upgradeTo = v
	return opts
}

// StopCheckpoints stops the store's WAL checkpoints and empties the WAL,
// which from then on keeps every page written (see WALFrames).
func StopCheckpoints(s *Store) error {
	if err := s.ckpt.close(); err != nil {
		return err
	}
	_, err := s.db.RawDB.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
	return err
}

// WALFrames returns how many pages the WAL of s holds.
func WALFrames(s *Store) (int, error) {
	var busy, frames, copied int
	err := s.db.RawDB.QueryRow("PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &frames, &copied)
	return frames, err
}

// InsertOldMessage writes m with the columns messages have had since v13,
// for tests of migrations from versions whose InsertMessage is gone.
func InsertOldMessage(ctx context.Context, s *Store, m *Message) error {
	if m.ChatKey == "" {
		m.ChatKey = m.RemoteJID
	}
	_, err := s.db.Exec(ctx, `INSERT INTO messages (instance_id, message_id, direction, remote_jid, participant,
		from_me, push_name, message_type, message, text, status, sent_at, created_at, chat_key, bot_id, session_id)
		VALUES ($1, $2, $3, $4, '', false, '', 'conversation', $5, '', '', $6, $6, $7, $8, $9)`,
		m.InstanceID, m.ID, string(m.Direction), m.RemoteJID, string(m.Content), millis(m.CreatedAt), m.ChatKey,
		nullable(m.BotID), nullable(m.SessionID))
	return err
}
