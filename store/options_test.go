package store

import (
	"bytes"
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
