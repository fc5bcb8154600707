package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Leases give each instance one owner among the replicas that share a
// PostgreSQL database. A lease is a row with an expiry in the database's
// time, renewed by its owner's heartbeat, rather than a session-level
// advisory lock: a lock lives as long as the connection that took it, and
// PostgreSQL notices a replica's dead connection only when TCP does
// (minutes, on a host that vanished), while a lease ends at a time every
// replica can read. The owner knows when its lease ends too, and stops
// acting for the instance before then if it cannot renew it (fencing);
// the epoch, moved on at every change of owner, lets the statements that
// record side effects check in their own transaction that the lease they
// act under still holds (CheckLease).

// dbNow is the database's clock in unix milliseconds. clock_timestamp, not
// now(): now() is the start of the transaction.
const dbNow = "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"

// ErrNotOwner means the replica's lease on an instance has ended: another
// replica may own it, and this one must not act for it.
var ErrNotOwner = errors.New("the instance is owned by another replica")

// Lease is a replica's ownership of an instance.
type Lease struct {
	InstanceID string
	Epoch      int64
}

// Replica is a gateway process sharing the database.
type Replica struct {
	ID, Name    string
	HeartbeatAt time.Time
	Owned       int // instances it holds a live lease on
}

// Postgres reports whether the store is on PostgreSQL, where replicas may
// share it.
func (s *Store) Postgres() bool { return s.postgres }

// RegisterReplica records a replica that has started, and the address of
// its API.
func (s *Store) RegisterReplica(ctx context.Context, id, name, address string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO replicas (id, name, address, started_at, heartbeat_at) VALUES ($1, $2, $3, `+dbNow+`, `+dbNow+`)
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, address = excluded.address, heartbeat_at = excluded.heartbeat_at`, id, name, address)
	if err != nil {
		return fmt.Errorf("register replica: %w", err)
	}
	return nil
}

// Heartbeat marks the replica alive, renews its leases that have not
// ended, forgets replicas silent for a long time, and returns the leases
// it holds now.
func (s *Store) Heartbeat(ctx context.Context, replicaID string, lease time.Duration) ([]Lease, error) {
	var leases []Lease
	err := s.DoTxn(ctx, func(ctx context.Context) error {
		res, err := s.db.Exec(ctx, "UPDATE replicas SET heartbeat_at = "+dbNow+" WHERE id = $1", replicaID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			// Forgotten after a long pause: it comes back as new.
			if _, err := s.db.Exec(ctx, "INSERT INTO replicas (id, name, started_at, heartbeat_at) VALUES ($1, $1, "+dbNow+", "+dbNow+")", replicaID); err != nil {
				return err
			}
		}
		if _, err := s.db.Exec(ctx, "DELETE FROM replicas WHERE heartbeat_at < "+dbNow+" - $1", (100 * lease).Milliseconds()); err != nil {
			return err
		}
		// The leases of deleted instances whose last events are delivered.
		if _, err := s.db.Exec(ctx, `DELETE FROM instance_owners o WHERE replica_id = $1
				AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = o.instance_id)
				AND NOT EXISTS (SELECT 1 FROM webhook_events e WHERE e.lane = o.instance_id AND e.status = 'pending')`, replicaID); err != nil {
			return err
		}
		leases, err = collect(scanLease)(s.db.Query(ctx, `UPDATE instance_owners SET lease_until = `+dbNow+` + $2
			WHERE replica_id = $1 AND lease_until > `+dbNow+` RETURNING instance_id, epoch`, replicaID, lease.Milliseconds()))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("replica heartbeat: %w", err)
	}
	return leases, nil
}

func scanLease(row scanner) (Lease, error) {
	var l Lease
	return l, row.Scan(&l.InstanceID, &l.Epoch)
}

// ClaimInstances gives the replica leases on up to limit instances that
// have no live owner, oldest instances first, and returns them. Web chat
// instances are never leased: every replica answers its visitors.
// Replicas claiming at once each get different instances.
func (s *Store) ClaimInstances(ctx context.Context, replicaID string, lease time.Duration, limit int) ([]Lease, error) {
	if limit <= 0 {
		return nil, nil
	}
	leases, err := collect(scanLease)(s.db.Query(ctx, `INSERT INTO instance_owners (instance_id, replica_id, epoch, lease_until)
		SELECT i.id, $1, 1, `+dbNow+` + $2 FROM instances i LEFT JOIN instance_owners o ON o.instance_id = i.id
		WHERE i.integration <> $4 AND (o.instance_id IS NULL OR o.lease_until <= `+dbNow+`)
		ORDER BY i.created_at, i.id LIMIT $3
		ON CONFLICT (instance_id) DO UPDATE SET replica_id = excluded.replica_id, epoch = instance_owners.epoch + 1,
			lease_until = excluded.lease_until
		WHERE instance_owners.lease_until <= `+dbNow+` AND wagate_take_lease(instance_owners.instance_id)
		RETURNING instance_id, epoch`, replicaID, lease.Milliseconds(), limit, IntegrationWebchat))
	if err != nil {
		return nil, fmt.Errorf("claim instances: %w", err)
	}
	return leases, nil
}

// ClaimOrphanLanes gives the replica leases on up to limit outbox lanes of
// deleted instances that still have events to deliver and no live owner:
// those whose owner died before delivering them, and those of an instance
// deleted before any replica had claimed it. They are beyond any share.
func (s *Store) ClaimOrphanLanes(ctx context.Context, replicaID string, lease time.Duration, limit int) ([]Lease, error) {
	taken, err := collect(scanLease)(s.db.Query(ctx, `UPDATE instance_owners SET replica_id = $1, epoch = epoch + 1,
			lease_until = `+dbNow+` + $2
		WHERE instance_id IN (SELECT o.instance_id FROM instance_owners o WHERE o.lease_until <= `+dbNow+`
			AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = o.instance_id) LIMIT $3 FOR UPDATE SKIP LOCKED)
		RETURNING instance_id, epoch`, replicaID, lease.Milliseconds(), limit))
	if err != nil {
		return nil, fmt.Errorf("claim orphan lanes: %w", err)
	}
	unowned, err := collect(scanLease)(s.db.Query(ctx, `INSERT INTO instance_owners (instance_id, replica_id, epoch, lease_until)
		SELECT lane, $1, 1, `+dbNow+` + $2 FROM (SELECT DISTINCT e.lane FROM webhook_events e
			WHERE e.status = 'pending' AND e.instance_id IS NULL
			AND NOT EXISTS (SELECT 1 FROM instances i WHERE i.id = e.lane)
			AND NOT EXISTS (SELECT 1 FROM instance_owners o WHERE o.instance_id = e.lane) LIMIT $3) l
		ON CONFLICT (instance_id) DO NOTHING
		RETURNING instance_id, epoch`, replicaID, lease.Milliseconds(), limit))
	if err != nil {
		return taken, fmt.Errorf("claim orphan lanes: %w", err)
	}
	return append(taken, unowned...), nil
}

// ReleaseInstances ends the replica's leases on the instances at once, so
// that another replica may take them without waiting for them to expire.
// No instances means all of them.
func (s *Store) ReleaseInstances(ctx context.Context, replicaID string, instanceIDs ...string) error {
	var err error
	if len(instanceIDs) == 0 {
		_, err = s.db.Exec(ctx, "UPDATE instance_owners SET lease_until = 0 WHERE replica_id = $1", replicaID)
	}
	for _, id := range instanceIDs {
		if err != nil {
			break
		}
		_, err = s.db.Exec(ctx, "UPDATE instance_owners SET lease_until = 0 WHERE replica_id = $1 AND instance_id = $2", replicaID, id)
	}
	if err != nil {
		return fmt.Errorf("release instances: %w", err)
	}
	return nil
}

// RemoveReplica forgets a replica that is shutting down.
func (s *Store) RemoveReplica(ctx context.Context, replicaID string) error {
	if _, err := s.db.Exec(ctx, "DELETE FROM replicas WHERE id = $1", replicaID); err != nil {
		return fmt.Errorf("remove replica: %w", err)
	}
	return nil
}

// LiveReplicas returns the replicas heard from within lease, with how many
// instances each owns, and the number of instances to share among them.
func (s *Store) LiveReplicas(ctx context.Context, lease time.Duration) (replicas []Replica, leasable int, err error) {
	err = s.DoTxn(ctx, func(ctx context.Context) error {
		var err error
		replicas, err = collect(func(row scanner) (Replica, error) {
			var (
				r  Replica
				hb int64
			)
			err := row.Scan(&r.ID, &r.Name, &hb, &r.Owned)
			r.HeartbeatAt = fromMillis(hb)
			return r, err
		})(s.db.Query(ctx, `SELECT r.id, r.name, r.heartbeat_at,
				(SELECT COUNT(*) FROM instance_owners o WHERE o.replica_id = r.id AND o.lease_until > `+dbNow+`)
			FROM replicas r WHERE r.heartbeat_at > `+dbNow+` - $1 ORDER BY r.started_at, r.id`, lease.Milliseconds()))
		if err != nil {
			return err
		}
		return s.db.QueryRow(ctx, "SELECT COUNT(*) FROM instances WHERE integration <> $1", IntegrationWebchat).Scan(&leasable)
	})
	if err != nil {
		return nil, 0, fmt.Errorf("live replicas: %w", err)
	}
	return replicas, leasable, nil
}

// Owner is the replica holding a live lease on an instance.
type Owner struct {
	InstanceID, InstanceName, Replica string // Replica: its name
}

// InstanceOwners returns the owner of every owned instance, by instance
// id; none on SQLite, where the one process owns everything.
func (s *Store) InstanceOwners(ctx context.Context) (map[string]Owner, error) {
	owners := map[string]Owner{}
	if !s.postgres {
		return owners, nil
	}
	rows, err := s.db.Query(ctx, `SELECT o.instance_id, i.name, COALESCE(r.name, o.replica_id) FROM instance_owners o
		JOIN instances i ON i.id = o.instance_id LEFT JOIN replicas r ON r.id = o.replica_id WHERE o.lease_until > `+dbNow)
	if err != nil {
		return nil, fmt.Errorf("instance owners: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var o Owner
		if err := rows.Scan(&o.InstanceID, &o.InstanceName, &o.Replica); err != nil {
			return nil, fmt.Errorf("instance owners: %w", err)
		}
		owners[o.InstanceID] = o
	}
	return owners, rows.Err()
}

// OwnerAddress returns the id and API address of the replica holding a
// live lease on the instance; "" and "" when none does.
func (s *Store) OwnerAddress(ctx context.Context, instanceID string) (replicaID, address string, err error) {
	err = s.db.QueryRow(ctx, `SELECT r.id, r.address FROM instance_owners o JOIN replicas r ON r.id = o.replica_id
		WHERE o.instance_id = $1 AND o.lease_until > `+dbNow, instanceID).Scan(&replicaID, &address)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	if err != nil {
		return "", "", fmt.Errorf("instance owner: %w", err)
	}
	return replicaID, address, nil
}

// CheckLease returns ErrNotOwner unless the lease holds: replicaID owns the
// instance at epoch, and the lease has not ended. Inside a transaction it
// holds the instance's lease lock shared until the end (migration 18): a
// replica taking the instance over waits for this transaction, so whatever
// it records is recorded under a lease that held until its commit. In a
// PostgreSQL transaction the check goes out with the transaction's other
// statements, in their pipeline: a lease that does not hold fails the
// statement, and with it the transaction, before anything after it is done.
func (s *Store) CheckLease(ctx context.Context, instanceID, replicaID string, epoch int64) error {
	const check = "SELECT wagate_check_lease($1, $2, $3)"
	scan := func(row scanner) error {
		var held bool
		return leaseError(row.Scan(&held))
	}
	if s.inTxn(ctx) {
		return s.db.DeferRow(ctx, scan, check, instanceID, replicaID, epoch)
	}
	return scan(s.db.QueryRow(ctx, check, instanceID, replicaID, epoch))
}

// leaseError is err of a lease check, ErrNotOwner when the lease did not hold.
func leaseError(err error) error {
	var pgErr *pgconn.PgError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pgErr) && pgErr.Code == "WG001":
		return ErrNotOwner
	}
	return fmt.Errorf("check lease: %w", err)
}

// PendingChatsOf returns the instance's conversations with messages the
// engine has not decided on, or with parts of a reply not yet sent: the
// work a replica resumes when it takes the instance over.
func (s *Store) PendingChatsOf(ctx context.Context, instanceID string) ([]Chat, error) {
	return collect(func(row scanner) (Chat, error) {
		var c Chat
		return c, row.Scan(&c.InstanceID, &c.Key)
	})(s.db.Query(ctx, `SELECT instance_id, chat_key FROM messages WHERE instance_id = $1 AND state = 'received'
		UNION SELECT instance_id, chat_key FROM reply_parts WHERE instance_id = $1`, instanceID))
}

// Notify sends payload on the PostgreSQL notification channel; a no-op on
// SQLite. Inside a transaction the notification goes out at its commit.
func (s *Store) Notify(ctx context.Context, channel, payload string) error {
	if !s.postgres {
		return nil
	}
	if _, err := s.db.Exec(ctx, "SELECT pg_notify($1, $2)", channel, payload); err != nil {
		return fmt.Errorf("notify %s: %w", channel, err)
	}
	return nil
}

// chatLockClass is the first key of the advisory locks of LockChat.
const chatLockClass = 0x7767636b // "wgck"

// LockChat takes a conversation's lock across every process sharing the
// database, waiting while another holds it, and returns what releases it:
// a session-level advisory lock on a connection of the pool, held for the
// whole turn of a web chat (a visitor's message and its answer), then
// given back. A connection lost meanwhile frees the lock with it. On
// SQLite, which one process owns, it returns at once.
func (s *Store) LockChat(ctx context.Context, instanceID, chatKey string) (func(), error) {
	if !s.postgres {
		return func() {}, nil
	}
	key := instanceID + "\n" + chatKey
	// Tried rather than waited for: a turn lasts longer than the
	// statement timeout a wait would run under.
	for wait := 5 * time.Millisecond; ; wait = min(2*wait, 200*time.Millisecond) {
		conn, err := s.db.RawDB.Conn(ctx)
		if err != nil {
			return nil, fmt.Errorf("lock conversation: %w", err)
		}
		var got bool
		if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1, hashtext($2))", chatLockClass, key).Scan(&got); err != nil {
			conn.Close()
			return nil, fmt.Errorf("lock conversation: %w", err)
		}
		if got {
			return chatUnlock(conn, key), nil
		}
		conn.Close()
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func chatUnlock(conn *sql.Conn, key string) func() {
	var once sync.Once
	return func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_unlock($1, hashtext($2))", chatLockClass, key); err != nil {
				// The session may still hold it: end the session instead
				// of handing the locked connection back to the pool.
				conn.Raw(func(any) error { return driver.ErrBadConn })
			}
			conn.Close()
		})
	}
}
