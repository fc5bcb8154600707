package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wagate/wagate"
)

// Delivery states of an outbox event.
const (
	EventPending   = "pending"
	EventDelivered = "delivered"
	EventFailed    = "failed"
)

// Event is one webhook delivery in the outbox. Lane orders deliveries: events
// of one lane (the instance id when the event happened) go out one at a time,
// oldest first.
type Event struct {
	Seq           int64
	DeliveryID    string
	InstanceID    string // "" once the instance is gone (instance.delete)
	Lane          string
	InstanceName  string
	Sender        string
	Name          string // Evolution's dotted name, e.g. messages.upsert
	Data          json.RawMessage
	Target        *Target // set only for events that outlive their instance
	Status        string
	Attempts      int
	NextAttemptAt time.Time
	LastStatus    int // HTTP status of the last attempt, 0 if none
	LastError     string
	CreatedAt     time.Time
	FinishedAt    time.Time // zero while pending
}

// Target is a snapshot of where an event goes, kept for events whose
// instance (and with it the webhook row) no longer exists.
type Target struct {
	URL      string            `json:"url"`
	ByEvents bool              `json:"byEvents"`
	Headers  map[string]string `json:"headers"`
	Secret   string            `json:"secret"`
}

const eventColumns = `seq, delivery_id, instance_id, lane, instance_name, sender, event, data, target, status, attempts,
	next_attempt_at, last_status, last_error, created_at, finished_at`

// InsertEvent adds e to the outbox as pending.
//
// Events of a lane are delivered in seq order as a lane's reader finds
// them. On PostgreSQL two transactions may draw seqs and commit in either
// order, so a reader can see seq 6 while seq 5 is still in flight; it reads
// every batch from the lane's head (gateway/webhook), where 5 shows up once
// committed. Any event of a transaction that began after 5's commit draws
// a later seq and is delivered after it: what one conversation causes
// stays in order. Inside a PostgreSQL transaction the insert goes out with
// the commit (database.Defer), and e.Seq is left 0; elsewhere it is read
// back.
func (s *Store) InsertEvent(ctx context.Context, e *Event) error {
	var target *string
	if e.Target != nil {
		b, err := json.Marshal(e.Target)
		if err != nil {
			return err
		}
		sealed := s.seal.seal(b, "webhook.target:"+e.DeliveryID)
		target = &sealed
	}
	e.Status = EventPending
	const insert = `INSERT INTO webhook_events (delivery_id, instance_id, lane, instance_name, sender, event, data,
			target, status, next_attempt_at, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
	args := []any{e.DeliveryID, nullable(e.InstanceID), e.Lane, e.InstanceName, e.Sender, e.Name, string(e.Data), target,
		e.Status, millis(e.NextAttemptAt), millis(e.CreatedAt)}
	if s.postgres && s.inTxn(ctx) {
		// The seq is drawn at commit: nothing to read back.
		e.Seq = 0
		return s.db.Defer(ctx, insert, args...)
	}
	var seq int64
	if err := s.db.QueryRow(ctx, insert+" RETURNING seq", args...).Scan(&seq); err != nil {
		return err
	}
	if !s.postgres {
		e.Seq = seq
		return nil
	}
	// The insert committed by itself, and its seq with it.
	return s.retryIdempotent(ctx, func() error {
		return s.db.QueryRow(ctx, "SELECT seq FROM webhook_events WHERE delivery_id = $1", e.DeliveryID).Scan(&e.Seq)
	})
}

func (s *Store) scanEvent(row scanner) (*Event, error) {
	var (
		e                  Event
		instanceID, target *string
		data               string
		next, created      int64
		finished           *int64
	)
	err := row.Scan(&e.Seq, &e.DeliveryID, &instanceID, &e.Lane, &e.InstanceName, &e.Sender, &e.Name, &data, &target,
		&e.Status, &e.Attempts, &next, &e.LastStatus, &e.LastError, &created, &finished)
	if err != nil {
		return nil, err
	}
	if instanceID != nil {
		e.InstanceID = *instanceID
	}
	e.Data = json.RawMessage(data)
	if target != nil {
		plain, err := s.seal.open(*target, "webhook.target:"+e.DeliveryID)
		if err != nil {
			return nil, fmt.Errorf("event %s target: %w", e.DeliveryID, err)
		}
		e.Target = new(Target)
		if err := json.Unmarshal(plain, e.Target); err != nil {
			return nil, fmt.Errorf("event %s target: %w", e.DeliveryID, err)
		}
	}
	e.NextAttemptAt, e.CreatedAt = fromMillis(next), fromMillis(created)
	if finished != nil {
		e.FinishedAt = fromMillis(*finished)
	}
	return &e, nil
}

// NextPendingEvent returns the oldest pending event of lane, or nil if none.
func (s *Store) NextPendingEvent(ctx context.Context, lane string) (*Event, error) {
	var e *Event
	err := s.retryIdempotent(ctx, func() (err error) {
		e, err = s.scanEvent(s.db.QueryRow(ctx, "SELECT "+eventColumns+` FROM webhook_events
			WHERE lane = $1 AND status = 'pending' ORDER BY seq LIMIT 1`, lane))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return e, err
}

// PendingEvents returns up to limit of the oldest pending events of lane
// after seq (0 for all), in delivery order.
func (s *Store) PendingEvents(ctx context.Context, lane string, after int64, limit int) ([]*Event, error) {
	var evs []*Event
	err := s.retryIdempotent(ctx, func() (err error) {
		evs, err = collect(s.scanEvent)(s.db.Query(ctx, "SELECT "+eventColumns+` FROM webhook_events
			WHERE lane = $1 AND status = 'pending' AND seq > $2 ORDER BY seq LIMIT $3`, lane, after, limit))
		return err
	})
	return evs, err
}

// PendingLanes returns every lane with pending events.
func (s *Store) PendingLanes(ctx context.Context) ([]string, error) {
	var lanes []string
	err := s.retryIdempotent(ctx, func() error {
		lanes = nil
		var err error
		lanes, err = collect(scanString)(s.db.Query(ctx, "SELECT DISTINCT lane FROM webhook_events WHERE status = 'pending'"))
		return err
	})
	return lanes, err
}

// UpdateEventAttempt saves the outcome of a delivery attempt: status,
// attempts, next attempt time, last status and error, and finish time.
func (s *Store) UpdateEventAttempt(ctx context.Context, e *Event) error {
	var finished *int64
	if !e.FinishedAt.IsZero() {
		ms := millis(e.FinishedAt)
		finished = &ms
	}
	// Absolute values: writing them twice is writing them once. In a
	// PostgreSQL transaction (UpdateEventAttempts) the updates of a run go
	// out together with its commit.
	return s.retryIdempotent(ctx, func() error {
		return s.db.Defer(ctx, `UPDATE webhook_events SET status = $2, attempts = $3, next_attempt_at = $4, last_status = $5,
			last_error = $6, finished_at = $7 WHERE seq = $1`,
			e.Seq, e.Status, e.Attempts, millis(e.NextAttemptAt), e.LastStatus, e.LastError, finished)
	})
}

// UpdateEventAttempts saves the outcomes of several delivery attempts in
// one transaction, as UpdateEventAttempt does for one: a dispatcher that
// delivered a run of events records them with one commit.
func (s *Store) UpdateEventAttempts(ctx context.Context, evs []*Event) error {
	if len(evs) == 1 {
		return s.UpdateEventAttempt(ctx, evs[0])
	}
	// Absolute values: the whole transaction may be repeated.
	return s.DoTxnRetry(ctx, func(ctx context.Context) error {
		for _, e := range evs {
			if err := s.UpdateEventAttempt(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
}

// ListEvents returns the instance's deliveries newest first: up to limit,
// older than the seq before (0 for the newest), only those in status if set.
func (s *Store) ListEvents(ctx context.Context, instanceID, status string, before int64, limit int) ([]*Event, error) {
	// seq < $3 comes first so that PostgreSQL types $3 as BIGINT, not as
	// the INTEGER of the literal 0, which would overflow past 2^31 events.
	return collect(s.scanEvent)(s.db.Query(ctx, "SELECT "+eventColumns+` FROM webhook_events
		WHERE instance_id = $1 AND ($2 = '' OR status = $2) AND (seq < $3 OR $3 = 0)
		ORDER BY seq DESC LIMIT $4`, instanceID, status, before, limit))
}

// PurgeFinishedEvents deletes up to limit delivered or failed events that
// finished before t, and reports how many it deleted.
func (s *Store) PurgeFinishedEvents(ctx context.Context, before time.Time, limit int) (int64, error) {
	// Repeating the delete after a lost connection deletes only what the
	// first try did not.
	var n int64
	err := s.retryIdempotent(ctx, func() error {
		res, err := s.db.Exec(ctx, `DELETE FROM webhook_events WHERE seq IN (
			SELECT seq FROM webhook_events WHERE status <> 'pending' AND finished_at < $1 LIMIT $2)`, millis(before), limit)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return n, err
}

// RetryEvent puts the instance's failed delivery back in its lane as
// pending, due at now, and returns it. The attempts so far stay counted.
// A delivery that is not the instance's is ENOTFOUND; one that is not
// failed (pending or delivered) is ECONFLICT.
func (s *Store) RetryEvent(ctx context.Context, instanceID, deliveryID string, now time.Time) (*Event, error) {
	var e *Event
	err := s.DoTxn(ctx, func(ctx context.Context) error {
		var err error
		e, err = s.scanEvent(s.db.QueryRow(ctx, "SELECT "+eventColumns+` FROM webhook_events
			WHERE instance_id = $1 AND delivery_id = $2`, instanceID, deliveryID))
		if err != nil {
			return notFound(err, "deliveryId: no delivery %q of this instance", deliveryID)
		}
		if e.Status != EventFailed {
			return wagate.Errorf(wagate.ECONFLICT, "delivery: the delivery is %s; only a failed one can be retried", e.Status)
		}
		_, err = s.db.Exec(ctx, `UPDATE webhook_events SET status = 'pending', next_attempt_at = $2, finished_at = NULL
			WHERE seq = $1`, e.Seq, millis(now))
		e.Status, e.NextAttemptAt, e.FinishedAt = EventPending, now, time.Time{}
		return err
	})
	return e, err
}
