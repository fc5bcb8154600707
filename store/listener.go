package store

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// A PostgreSQL Store holds one connection outside its pool that LISTENs:
// on the configuration channel (see configversion.go), and on every
// channel a caller of Listen asks for. One connection serves them all, so
// a replica costs the server one connection beyond its pool.

// Notification is a PostgreSQL notification. The zero Notification (no
// Channel) says the listener has just started listening for its receiver,
// at first or after a reconnection: notifications sent while it was not
// are lost, and whoever listens should look at the database for what they
// would have said.
type Notification struct {
	Channel, Payload string
}

// listenKeepAlive bounds how long a connection that died silently (no
// reset from the other end: a network partition, a host gone) goes
// unnoticed: idle for this long, the kernel probes it three times this far
// apart. The listener only reads, so without probes it would wait forever.
const listenKeepAlive = 5 * time.Second

// listener is the LISTEN connection of a PostgreSQL Store and whoever
// receives from it.
type listener struct {
	st     *Store
	cfg    *pgx.ConnConfig
	log    *slog.Logger
	cancel context.CancelFunc
	done   chan struct{}
	added  chan struct{} // a subscription waits for its channels to be listened to

	mu     sync.Mutex
	subs   map[*subscription]bool // true once its channels are listened to on the current connection
	closed bool
}

// subscription is one caller of Listen.
type subscription struct {
	channels []string
	out      chan Notification
}

// send hands n to the receiver without waiting: a receiver that falls
// behind loses notifications, and is told so by a zero Notification.
func (sub *subscription) send(n Notification) {
	select {
	case sub.out <- n:
	default:
		// Full: drop the oldest, and make room for the note that some were lost.
		select {
		case <-sub.out:
		default:
		}
		select {
		case sub.out <- Notification{}:
		default:
		}
	}
}

// startListening connects the listener and keeps it connected until
// Close.
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
	cfg.RuntimeParams["application_name"] += "-listener"
	ctx, cancel := context.WithCancel(context.Background())
	l := &listener{st: s, cfg: cfg, log: log, cancel: cancel, done: make(chan struct{}),
		added: make(chan struct{}, 1), subs: map[*subscription]bool{}}
	s.listener = l
	go l.run(ctx)
}

// stopListening closes the listener connection, waits for it to end, and
// closes every Listen channel.
func (s *Store) stopListening() {
	l := s.listener
	if l == nil {
		return
	}
	l.cancel()
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	l.closed = true
	for sub := range l.subs {
		close(sub.out)
	}
	clear(l.subs)
}

// Listen receives the notifications of channels until ctx ends or the
// Store closes; then the returned channel is closed. A zero Notification
// comes first once the channels are listened to, and again after every
// reconnection or loss (see Notification). On SQLite it returns nil: one
// process needs no notifications.
func (s *Store) Listen(ctx context.Context, channels ...string) <-chan Notification {
	if !s.postgres {
		return nil
	}
	l := s.listener
	sub := &subscription{channels: slices.Clone(channels), out: make(chan Notification, 1024)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		close(sub.out)
		return sub.out
	}
	l.subs[sub] = false
	select {
	case l.added <- struct{}{}:
	default: // already told
	}
	context.AfterFunc(ctx, func() {
		l.mu.Lock()
		defer l.mu.Unlock()
		if _, ok := l.subs[sub]; ok {
			delete(l.subs, sub)
			close(sub.out)
		}
	})
	return sub.out
}

// run keeps the listener connected until ctx ends.
func (l *listener) run(ctx context.Context) {
	defer close(l.done)
	backoff := 50 * time.Millisecond
	for {
		err := l.listen(ctx)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errListened) {
			backoff = 50 * time.Millisecond
		}
		l.log.Warn("database listener disconnected; configuration is read from the database until it is back",
			"error", err, "retry_in", backoff)
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// errListened wraps the error that ended a listener connection that had
// been listening, so that the next attempt is not delayed.
var errListened = errors.New("listener connection lost")

// listen connects, LISTENs, and hands on every notification, until the
// connection fails or ctx ends.
func (l *listener) listen(ctx context.Context) error {
	conn, err := pgx.ConnectConfig(ctx, l.cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	listened := map[string]bool{}
	if err := listenOn(ctx, conn, listened, configChannel); err != nil {
		return err
	}
	// Changes committed while nobody listened went unseen: whatever was
	// cached before is stale. Moving the version before setting listening
	// lets no reader pair the old version with cacheable.
	s := l.st
	s.configChanged()
	s.listening.Store(true)
	defer s.listening.Store(false)
	defer l.unserved()
	for {
		if err := l.serve(ctx, conn, listened); err != nil {
			return errors.Join(errListened, err)
		}
		n, err := l.wait(ctx, conn)
		if err != nil {
			return errors.Join(errListened, err)
		}
		if n == nil {
			continue // a new subscription
		}
		if n.Channel == configChannel {
			s.configChanged()
			continue
		}
		l.mu.Lock()
		for sub := range l.subs {
			if slices.Contains(sub.channels, n.Channel) {
				sub.send(Notification{Channel: n.Channel, Payload: n.Payload})
			}
		}
		l.mu.Unlock()
	}
}

// serve LISTENs on the channels of subscriptions not yet served on this
// connection, and tells each it is served.
func (l *listener) serve(ctx context.Context, conn *pgx.Conn, listened map[string]bool) error {
	l.mu.Lock()
	var waiting []*subscription
	for sub, served := range l.subs {
		if !served {
			waiting = append(waiting, sub)
		}
	}
	l.mu.Unlock()
	for _, sub := range waiting {
		if err := listenOn(ctx, conn, listened, sub.channels...); err != nil {
			return err
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, sub := range waiting {
		if _, ok := l.subs[sub]; ok {
			l.subs[sub] = true
			sub.send(Notification{})
		}
	}
	return nil
}

// unserved marks every subscription as waiting for the next connection.
func (l *listener) unserved() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for sub := range l.subs {
		l.subs[sub] = false
	}
}

// wait returns the next notification, or nil when a subscription was
// added meanwhile.
func (l *listener) wait(ctx context.Context, conn *pgx.Conn) (*Notification, error) {
	waitCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		select {
		case <-l.added:
			stop()
		case <-waitCtx.Done():
		}
	}()
	n, err := conn.WaitForNotification(waitCtx)
	switch {
	case err == nil:
		return &Notification{Channel: n.Channel, Payload: n.Payload}, nil
	case ctx.Err() == nil && waitCtx.Err() != nil:
		// Interrupted for a subscription: a timeout leaves the connection
		// usable (pgconn closes it on any other error).
		if conn.IsClosed() {
			return nil, err
		}
		return nil, nil
	}
	return nil, err
}

// listenOn LISTENs on the channels not listened to yet.
func listenOn(ctx context.Context, conn *pgx.Conn, listened map[string]bool, channels ...string) error {
	for _, ch := range channels {
		if listened[ch] {
			continue
		}
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
		listened[ch] = true
	}
	return nil
}
