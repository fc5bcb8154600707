// Package store is wagate's persistence: record types, their queries and the
// embedded, versioned schema migrations. SQL is written once for SQLite and
// PostgreSQL ($n placeholders, ON CONFLICT, BIGINT unix-millisecond times);
// dialect differences live only in the migration files.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"go.mau.fi/util/dbutil"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/wagate/wagate"
)

//go:embed upgrades/*.sql
var upgradeFiles embed.FS

// Store is the gateway's database. Queries take a context; inside DoTxn the
// context carries the transaction, so the same methods work in and out of one.
type Store struct {
	db   *dbutil.Database
	seal *sealer
}

// Open connects to the database named by dsn, applies pending migrations and
// returns the store. secretKey (32 bytes) seals secrets at rest.
func Open(ctx context.Context, dsn string, secretKey []byte, log *slog.Logger) (*Store, error) {
	seal, err := newSealer(secretKey)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		return nil, errors.New("database: PostgreSQL URLs are recognised but this build supports only SQLite")
	}
	sqliteDSN, err := sqliteDSN(dsn)
	if err != nil {
		return nil, err
	}
	raw, err := sql.Open("sqlite", sqliteDSN)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	// SQLite has a single writer; queueing in the pool is cheaper than
	// connections spinning on busy_timeout.
	raw.SetMaxOpenConns(8)
	raw.SetMaxIdleConns(8)
	db, err := dbutil.NewWithDB(raw, "sqlite")
	if err != nil {
		raw.Close()
		return nil, err
	}
	db.Owner = "wagate"
	db.VersionTable = "wagate_version"
	db.Log = upgradeLogger{log}
	db.UpgradeTable.RegisterFSPath(upgradeFiles, "upgrades")
	if err := db.Upgrade(ctx); err != nil {
		raw.Close()
		return nil, fmt.Errorf("migrate database: %w", err)
	}
	return &Store{db: db, seal: seal}, nil
}

// sqliteDSN turns "file:path", "sqlite:path" or a bare path into a modernc
// DSN with the pragmas wagate relies on: foreign keys (cascading deletes),
// WAL, a busy timeout, and BEGIN IMMEDIATE so writers queue instead of
// failing on lock upgrades.
func sqliteDSN(dsn string) (string, error) {
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	query := ""
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path, query = path[:i], path[i+1:]
	}
	if path == "" {
		return "", errors.New("database: empty SQLite path")
	}
	q, err := url.ParseQuery(query)
	if err != nil {
		return "", fmt.Errorf("database: %w", err)
	}
	if path == ":memory:" || q.Get("mode") == "memory" {
		// Each pooled connection would get its own empty database.
		return "", errors.New("database: in-memory SQLite is not supported; give a file path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("database: %w", err)
	}
	for _, p := range []string{"foreign_keys(1)", "journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode(), nil
}

// Close closes the database.
func (s *Store) Close() error { return s.db.Close() }

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.db.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// DoTxn runs fn in one transaction: the store methods fn calls with the
// context it receives join it, and it commits only if fn returns nil.
func (s *Store) DoTxn(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.db.DoTxn(ctx, nil, fn)
}

// millis and fromMillis convert between time.Time and the stored unix milliseconds.
func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

func isUniqueViolation(err error) bool {
	if err == nil {
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "UNIQUE constraint failed") || strings.Contains(msg, "SQLSTATE 23505")
}

func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return wagate.Errorf(wagate.ENOTFOUND, format, args...)
	}
	return err
}

type upgradeLogger struct{ log *slog.Logger }

func (l upgradeLogger) QueryTiming(context.Context, string, string, []any, int, time.Duration, error) {
}
func (l upgradeLogger) WarnUnsupportedVersion(current, compat, latest int) {
	l.log.Warn("database schema is newer than this wagate", "version", current, "compatible", compat, "known", latest)
}
func (l upgradeLogger) PrepareUpgrade(current, compat, latest int) {
	if current < latest {
		l.log.Info("migrating database", "from", current, "to", latest)
	}
}
func (l upgradeLogger) DoUpgrade(from, to int, message string, _ dbutil.TxnMode) {
	l.log.Info("applying migration", "from", from, "to", to, "change", message)
}
func (l upgradeLogger) Warn(msg string, args ...any) { l.log.Warn(fmt.Sprintf(msg, args...)) }

// mustAffect turns an update or delete that touched no row into ENOTFOUND.
func mustAffect(res sql.Result, err error, format string, args ...any) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return wagate.Errorf(wagate.ENOTFOUND, format, args...)
	}
	return nil
}
