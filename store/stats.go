package store

import (
	"context"
	"fmt"
)

// Stats are counts the metrics endpoint reports; each is answered by a
// partial index, so reading them at every scrape stays cheap.
type Stats struct {
	PendingEvents   int64 // outbox backlog: webhook deliveries not yet done
	PendingMessages int64 // inbound messages the engine has not decided on (debounce buffers included)
	LiveSessions    int64 // bot sessions opened or paused
}

// Stats counts the outbox backlog, undecided inbound messages and live sessions.
func (s *Store) Stats(ctx context.Context) (Stats, error) {
	var st Stats
	for _, q := range []struct {
		dst   *int64
		query string
	}{
		{&st.PendingEvents, "SELECT COUNT(*) FROM webhook_events WHERE status = 'pending'"},
		{&st.PendingMessages, "SELECT COUNT(*) FROM messages WHERE state = 'received'"},
		{&st.LiveSessions, "SELECT COUNT(*) FROM openai_sessions WHERE status <> 'closed'"},
	} {
		if err := s.db.QueryRow(ctx, q.query).Scan(q.dst); err != nil {
			return st, fmt.Errorf("stats: %w", err)
		}
	}
	return st, nil
}
