package store

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/jackc/pgx/v5"
)

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
// listeners when, and only if, it commits. Each Store holds one connection
// outside its pool that LISTENs there, and every notification moves the
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

// configListener is the LISTEN connection of a PostgreSQL Store.
type configListener struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// listenKeepAlive bounds how long a connection that died silently (no
// reset from the other end: a network partition, a host gone) goes
// unnoticed: idle for this long, the kernel probes it three times this far
// apart. The listener only reads, so without probes it would wait forever.
const listenKeepAlive = 5 * time.Second

// startListening connects the listener and keeps it connected until
// Close: each notification on configChannel moves the version on.
func (s *Store) startListening(cfg *pgx.ConnConfig, log *slog.Logger) {
	cfg = cfg.Copy()
	d := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{
		Enable: true, Idle: listenKeepAlive, Interval: listenKeepAlive, Count: 3,
	}}
	cfg.DialFunc = d.DialContext
	// The listener runs no statements that could hit the timeout, and a
	// server-side timeout would not interrupt waiting anyway.
	delete(cfg.RuntimeParams, "statement_timeout")
	// So that it can be told from the pool's connections in pg_stat_activity.
	cfg.RuntimeParams["application_name"] += "-config-listener"
	ctx, cancel := context.WithCancel(context.Background())
	l := &configListener{cancel: cancel, done: make(chan struct{})}
	s.listener = l
	go func() {
		defer close(l.done)
		backoff := 50 * time.Millisecond
		for {
			err := s.listen(ctx, cfg)
			if ctx.Err() != nil {
				return
			}
			if errors.Is(err, errListened) {
				backoff = 50 * time.Millisecond
			}
			log.Warn("configuration change listener disconnected; configuration is read from the database until it is back",
				"error", err, "retry_in", backoff)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, 5*time.Second)
		}
	}()
}

// errListened wraps the error that ended a listener connection that had
// been listening, so that the next attempt is not delayed.
var errListened = errors.New("listener connection lost")

// listen connects, LISTENs, and moves the version on for every
// notification, until the connection fails or ctx ends.
func (s *Store) listen(ctx context.Context, cfg *pgx.ConnConfig) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+configChannel); err != nil {
		return err
	}
	// Changes committed while nobody listened went unseen: whatever was
	// cached before is stale. Moving the version before setting listening
	// lets no reader pair the old version with cacheable.
	s.configChanged()
	s.listening.Store(true)
	defer s.listening.Store(false)
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return errors.Join(errListened, err)
		}
		s.configChanged()
	}
}

// stopListening closes the listener connection and waits for it to end.
func (s *Store) stopListening() {
	if s.listener == nil {
		return
	}
	s.listener.cancel()
	<-s.listener.done
}
