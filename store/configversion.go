package store

// The bot engine, the outbox and authentication read an instance's
// configuration (the instance, its webhook subscription, credentials,
// bots and settings) for every message, and it changes rarely. They keep
// what they read in memory, tagged with the configuration version, and
// read it again once the version has moved on.
//
// The version is a counter in this process, moved by every store method
// that writes configuration once its statement has run. A reader takes the
// version before its query. On SQLite that is enough: the database belongs
// to one process, and its single connection (see Open) lets no query run
// between a write and its commit, so an entry read under a version never
// hides a change made after it. On PostgreSQL other gateway replicas write
// too, unseen by this counter: there nothing is cached.

// ConfigVersion returns the configuration version, and whether what was
// read under it may be reused while it stays the same.
func (s *Store) ConfigVersion() (version uint64, cacheable bool) {
	return s.configVersion.Load(), !s.postgres
}

// configChanged moves the configuration version on. Store methods that
// write configuration defer it; a write that is then rolled back costs the
// caches one needless reload.
func (s *Store) configChanged() { s.configVersion.Add(1) }
