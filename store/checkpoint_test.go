package store

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestWALCheckpointedBesideWriter: the main connection never checkpoints
// by itself, so the WAL is copied into the database file and given back by
// the checkpointer alone. After a burst of writes far past truncateBytes,
// an idle WAL is truncated; without the checkpointer it would keep the
// whole burst.
func TestWALCheckpointedBesideWriter(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "wagate.db")
	s, err := Open(ctx, Options{URL: path, SecretKey: make([]byte, 32)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var auto int
	if err := s.db.QueryRow(ctx, "PRAGMA wal_autocheckpoint").Scan(&auto); err != nil || auto != 0 {
		t.Fatalf("wal_autocheckpoint = %d, %v; want 0", auto, err)
	}
	if _, err := s.db.Exec(ctx, "CREATE TABLE burst (v TEXT)"); err != nil {
		t.Fatal(err)
	}
	// 3,000 transactions of a 16 KiB row: about 15,000 pages, 60 MiB.
	row := strings.Repeat("x", 16<<10)
	for range 3000 {
		err := s.DoTxn(ctx, func(ctx context.Context) error {
			_, err := s.db.Exec(ctx, "INSERT INTO burst (v) VALUES ($1)", row)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Waiting, not timing: the checkpointer works at its own pace.
	deadline := time.Now().Add(time.Minute)
	for {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() <= truncateBytes {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the idle WAL still holds %d bytes", fi.Size())
		}
		time.Sleep(20 * time.Millisecond)
	}
	var n int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM burst").Scan(&n); err != nil || n != 3000 {
		t.Fatalf("rows = %d, %v", n, err)
	}
}
