package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func pgErr(code string) error { return &pgconn.PgError{Code: code, Message: "test"} }

func TestErrorClassification(t *testing.T) {
	wrap := func(err error) error { return fmt.Errorf("insert: %w", err) }
	tests := []struct {
		name              string
		err               error
		unique, transient bool
	}{
		{"nil", nil, false, false},
		{"unique violation", pgErr("23505"), true, false},
		{"wrapped unique violation", wrap(pgErr("23505")), true, false},
		{"foreign key violation", pgErr("23503"), false, false},
		// Only error codes count, never message text.
		{"unique message without a code", errors.New("UNIQUE constraint failed: instances.name"), false, false},
		{"serialization failure", wrap(pgErr("40001")), false, true},
		{"deadlock", pgErr("40P01"), false, true},
		{"connection failure", pgErr("08006"), false, true},
		{"server shutting down", pgErr("57P01"), false, true},
		{"server starting", pgErr("57P03"), false, true},
		// A statement timeout would only time out again.
		{"statement timeout", pgErr("57014"), false, false},
		{"syntax error", pgErr("42601"), false, false},
		{"bad connection", driver.ErrBadConn, false, true},
		{"connection reset", wrap(&net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}), false, true},
		{"broken pipe", wrap(syscall.EPIPE), false, true},
		{"cancelled", wrap(context.Canceled), false, false},
		{"deadline", context.DeadlineExceeded, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := isUniqueViolation(tt.err); got != tt.unique {
				t.Errorf("isUniqueViolation(%v) = %v, want %v", tt.err, got, tt.unique)
			}
			if got := transient(tt.err); got != tt.transient {
				t.Errorf("transient(%v) = %v, want %v", tt.err, got, tt.transient)
			}
		})
	}
}

func TestRetry(t *testing.T) {
	ctx := t.Context()
	saved := retryBackoff
	retryBackoff = []time.Duration{0, 0}
	t.Cleanup(func() { retryBackoff = saved })

	tests := []struct {
		name      string
		errs      []error // returned by successive tries; nil after the list
		wantTries int
		wantErr   bool
	}{
		{"success", nil, 1, false},
		{"transient then success", []error{pgErr("40P01")}, 2, false},
		{"transient three times", []error{pgErr("40001"), pgErr("40001"), pgErr("40001"), nil}, 3, true},
		{"permanent", []error{pgErr("23505")}, 1, true},
		{"marked not to retry", []error{noRetry{pgErr("08006")}}, 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tries := 0
			err := retry(ctx, func() error {
				tries++
				if tries <= len(tt.errs) {
					return tt.errs[tries-1]
				}
				return nil
			})
			if tries != tt.wantTries || (err != nil) != tt.wantErr {
				t.Errorf("retry: %d tries, error %v; want %d tries, error %v", tries, err, tt.wantTries, tt.wantErr)
			}
			var stop noRetry
			if errors.As(err, &stop) {
				t.Errorf("retry returned its internal marker: %v", err)
			}
		})
	}
}
