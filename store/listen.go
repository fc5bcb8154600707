package store

import (
	"context"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
)

// Notification is a PostgreSQL notification. The zero Notification (no
// Channel) says the listener has just (re)connected: notifications sent
// while it was away are lost, and whoever listens should look at the
// database for what they would have said.
type Notification struct {
	Channel, Payload string
}

// Listen receives the notifications of channels on a connection of its
// own, outside the pool, reconnecting after a failure, until ctx ends; then
// the returned channel is closed. A receiver that falls behind loses
// notifications rather than holding the connection up, and is told so by
// a zero Notification, as after a reconnection. On SQLite it returns nil:
// one process needs no notifications.
func (s *Store) Listen(ctx context.Context, log *slog.Logger, channels ...string) <-chan Notification {
	if !s.postgres {
		return nil
	}
	out := make(chan Notification, 1024)
	go func() {
		defer close(out)
		for wait := time.Duration(0); ; wait = min(max(2*wait, 100*time.Millisecond), 5*time.Second) {
			if wait > 0 {
				select {
				case <-ctx.Done():
					return
				case <-time.After(wait):
				}
			}
			err := s.listenChannels(ctx, channels, out, func() { wait = 0 })
			if ctx.Err() != nil {
				return
			}
			log.Warn("database listener lost its connection; reconnecting", "error", err)
		}
	}()
	return out
}

// listenChannels runs one connection of Listen until it fails.
func (s *Store) listenChannels(ctx context.Context, channels []string, out chan Notification, connected func()) error {
	conn, err := pgx.ConnectConfig(ctx, s.pgConfig)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	for _, ch := range channels {
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	connected()
	send := func(n Notification) {
		select {
		case out <- n:
		default:
			// Full: drop it, and make room for the note that some were lost.
			select {
			case <-out:
			default:
			}
			select {
			case out <- Notification{}:
			default:
			}
		}
	}
	send(Notification{})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		send(Notification{Channel: n.Channel, Payload: n.Payload})
	}
}
