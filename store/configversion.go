package store

// The bot engine, the outbox and authentication read an instance's
// configuration (the instance, its webhook subscription, credentials,
// bots and settings, chatbots, organizations and their keys) for every
// message, and it changes rarely. They keep what they read in memory,
// tagged with the configuration version, and read it again once the
// version has moved on.
//
// The version is a counter in this process. Store methods that write
// configuration move it once their statement has run, so a process always
// reads its own writes. A reader takes the version before its query: an
// entry read under a version never hides a change made after it, as that
// change moved the version past the entry's.
//
// On SQLite that is all: the database belongs to one process, and its
// single connection (see Open) lets no query run between a write and its
// commit.
//
// On PostgreSQL other gateway replicas write too. Triggers on every
// configuration table (migration 13) send a notification on the channel
// wagate_config in the writing transaction, which PostgreSQL delivers to
// listeners when, and only if, it commits. Each Store's listener (see
// listener.go) LISTENs there, and every notification moves the
// version on: a query that starts after the move sees the committed change.
// A change made elsewhere is thus seen within the notification's delivery
// time. While that connection is down (before it first connects, after a
// drop, until it is back) nothing is cacheable, because changes may pass
// unnoticed; once it listens again the version moves on, so that whatever
// was cached before the drop is read again.

// configChannel is the notification channel of configuration changes.
const configChannel = "wagate_config"

// ConfigVersion returns the configuration version, and whether what is
// read under it may be kept and reused while it stays the same. cacheable
// is always true on SQLite; on PostgreSQL it is true while this Store is
// listening for other processes' changes. A caller takes both before
// reading the configuration, tags what it read with version, and reads
// again when ConfigVersion returns another version or cacheable is false.
func (s *Store) ConfigVersion() (version uint64, cacheable bool) {
	if !s.postgres {
		return s.configVersion.Load(), true
	}
	// listening first: it is set after the version moved on (see listen), so
	// a reader that sees it set also sees the moved version.
	listening := s.listening.Load()
	return s.configVersion.Load(), listening
}

// configChanged moves the configuration version on. Store methods that
// write configuration defer it; a write that is then rolled back costs the
// caches one needless reload.
func (s *Store) configChanged() { s.configVersion.Add(1) }
