package store

import (
	"bytes"
	"database/sql"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/wagate/wagate/store/storetest"
)

// TestPostgresSessionSettings checks what each pooled PostgreSQL connection
// is set up with: the pool limits, the statement timeout (a URL parameter
// wins over the option) and the application name.
func TestPostgresSessionSettings(t *testing.T) {
	dsn := storetest.NewURL(t, storetest.Postgres)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	key := bytes.Repeat([]byte{1}, 32)
	tests := []struct {
		name, query, wantTimeout string
		timeout                  time.Duration
	}{
		{"option", "", "1500ms", 1500 * time.Millisecond},
		{"none", "", "0", 0},
		{"URL wins", "&statement_timeout=2s", "2s", time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(t.Context(), Options{URL: dsn + tt.query, SecretKey: key, MaxOpenConns: 3, MaxIdleConns: 2,
				ConnMaxLifetime: time.Minute, StatementTimeout: tt.timeout}, log)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if !s.postgres {
				t.Fatal("a postgres URL opened as SQLite")
			}
			var timeout, app string
			if err := s.db.QueryRow(t.Context(), "SELECT current_setting('statement_timeout'), current_setting('application_name')").Scan(&timeout, &app); err != nil {
				t.Fatal(err)
			}
			if timeout != tt.wantTimeout || app != "wagate" {
				t.Errorf("statement_timeout = %q, application_name = %q; want %q, wagate", timeout, app, tt.wantTimeout)
			}
			if n := s.db.RawDB.Stats().MaxOpenConnections; n != 3 {
				t.Errorf("MaxOpenConnections = %d, want 3", n)
			}
		})
	}
}

// TestPostgresDroppedConnections ends every server session of the store, as
// a PostgreSQL restart or failover does: the dispatcher's reads and writes
// carry on over new connections.
func TestPostgresDroppedConnections(t *testing.T) {
	dsn := storetest.NewURL(t, storetest.Postgres)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Open(t.Context(), Options{URL: dsn, SecretKey: bytes.Repeat([]byte{1}, 32), MaxOpenConns: 4, MaxIdleConns: 4}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	if _, err := s.PendingLanes(ctx); err != nil {
		t.Fatal(err)
	}
	admin := storetest.RawDB(t, dsn)
	terminate(t, admin, `SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if _, err := s.PendingLanes(ctx); err != nil {
		t.Errorf("PendingLanes after the server ended the store's sessions: %v", err)
	}
	if e, err := s.NextPendingEvent(ctx, "lane"); err != nil || e != nil {
		t.Errorf("NextPendingEvent after the server ended the store's sessions: %+v, %v", e, err)
	}
}

// TestRetryAfterConnectionLostMidStatement ends the server session of an
// outbox update while the update waits for a row lock, as a failover would:
// the store runs the update again on a new connection instead of failing.
func TestRetryAfterConnectionLostMidStatement(t *testing.T) {
	dsn := storetest.NewURL(t, storetest.Postgres)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	s, err := Open(t.Context(), Options{URL: dsn, SecretKey: bytes.Repeat([]byte{1}, 32)}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	e := &Event{DeliveryID: "d1", Lane: "lane", Name: "messages.upsert", Data: []byte("{}"), NextAttemptAt: time.Now(), CreatedAt: time.Now()}
	if err := s.InsertEvent(ctx, e); err != nil {
		t.Fatal(err)
	}

	admin := storetest.RawDB(t, dsn)
	holder, err := admin.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Rollback()
	if _, err := holder.Exec("SELECT 1 FROM webhook_events WHERE seq = $1 FOR UPDATE", e.Seq); err != nil {
		t.Fatal(err)
	}

	done := make(chan error, 1)
	go func() {
		e.Status, e.Attempts, e.FinishedAt = EventDelivered, 1, time.Now()
		done <- s.UpdateEventAttempt(ctx, e)
	}()
	// waiter waits for a session other than not to wait for the row lock
	// with the update, and returns its pid.
	waiter := func(not int) int {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			select {
			case err := <-done:
				t.Fatalf("the update finished (%v) while the row was locked", err)
			default:
			}
			var pid int
			err := admin.QueryRow(`SELECT pid FROM pg_stat_activity WHERE datname = current_database()
				AND wait_event_type = 'Lock' AND query LIKE '%UPDATE webhook_events%' AND pid <> $1`, not).Scan(&pid)
			if err == nil {
				return pid
			}
			if time.Now().After(deadline) {
				t.Fatalf("no update waiting for the row lock: %v", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	first := waiter(0)
	terminate(t, admin, "SELECT $1::integer", first)
	waiter(first) // the retry, on a new connection, waits for the lock again
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("UpdateEventAttempt after its connection was lost: %v", err)
	}
	if next, err := s.NextPendingEvent(ctx, "lane"); err != nil || next != nil {
		t.Fatalf("the event is still pending (%+v, %v): the update was lost", next, err)
	}
}

// terminate ends the server sessions whose pids query returns and waits
// until they are gone (pg_terminate_backend only waits by itself from
// PostgreSQL 14 on).
func terminate(t *testing.T, admin *sql.DB, query string, args ...any) {
	t.Helper()
	rows, err := admin.Query(query, args...)
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	rows.Close()
	for _, pid := range pids {
		if _, err := admin.Exec("SELECT pg_terminate_backend($1)", pid); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(15 * time.Second)
		for {
			var n int
			if err := admin.QueryRow("SELECT COUNT(*) FROM pg_stat_activity WHERE pid = $1", pid).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("session %d did not end", pid)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}
