package store

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
