package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// isUniqueViolation reports whether err is a unique constraint violation,
// from either driver.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505" // unique_violation
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		code := liteErr.Code()
		return code == sqlite3.SQLITE_CONSTRAINT_UNIQUE || code == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// PostgreSQL error codes after which the same work may simply be tried again.
var transientCodes = map[string]bool{
	"40001": true, // serialization_failure
	"40P01": true, // deadlock_detected
	"57P01": true, // admin_shutdown: the server restarted or the backend was killed
	"57P02": true, // crash_shutdown
	"57P03": true, // cannot_connect_now: the server is still starting
}

// transient reports whether err may go away by itself: a serialization
// failure, a deadlock, or a connection that broke or could not be made.
// SQLite's only such error, "database is locked", is already waited out by
// its busy timeout.
func transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return transientCodes[pgErr.Code] || strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	if errors.Is(err, driver.ErrBadConn) || pgconn.SafeToRetry(err) {
		return true
	}
	var netErr net.Error
	return errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, syscall.ECONNREFUSED)
}

// rolledBack reports whether a failed commit certainly rolled back; any
// other commit failure (a connection lost while committing) leaves the
// outcome unknown.
func rolledBack(commitErr error) bool {
	var pgErr *pgconn.PgError
	return errors.As(commitErr, &pgErr) && (pgErr.Code == "40001" || pgErr.Code == "40P01")
}

// retryBackoff are the waits before the second and third try: long enough
// for a deadlock's winner to commit or a restarted server to accept
// connections, short enough not to hold up a request for long.
var retryBackoff = []time.Duration{20 * time.Millisecond, 200 * time.Millisecond}

// retry runs op until it succeeds, fails with an error that is not
// transient, or has been tried len(retryBackoff)+1 times.
func retry(ctx context.Context, op func() error) error {
	for i := 0; ; i++ {
		err := op()
		var stop noRetry
		if errors.As(err, &stop) {
			return stop.err
		}
		if err == nil || i == len(retryBackoff) || !transient(err) {
			return err
		}
		t := time.NewTimer(retryBackoff[i])
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// noRetry wraps an error that retry must return at once, whatever it is.
type noRetry struct{ err error }

func (e noRetry) Error() string { return e.err.Error() }
func (e noRetry) Unwrap() error { return e.err }
