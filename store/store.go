// Package store is wagate's persistence: record types, their queries and the
// embedded, versioned schema migrations. SQL is written once for SQLite and
// PostgreSQL ($n placeholders, ON CONFLICT, BIGINT unix-millisecond times);
// dialect differences live in the migration files, plus the few places where
// PostgreSQL's concurrent writers need an explicit lock (see InsertEvent).
package store

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"go.mau.fi/util/dbutil"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/config"
)

//go:embed upgrades/*.sql
var upgradeFiles embed.FS

// Store is the gateway's database. Queries take a context; inside DoTxn the
// context carries the transaction, so the same methods work in and out of one.
type Store struct {
	db       *database
	seal     *sealer
	postgres bool

	configVersion atomic.Uint64 // see ConfigVersion
	listening     atomic.Bool   // PostgreSQL: the listener is listening
	listener      *listener     // PostgreSQL
	group         groupCommit   // SQLite's transactions
	ckpt          *checkpointer // SQLite's WAL checkpoints

	// pgConfig connects, on PostgreSQL, the migration lock's connection,
	// which lives outside the pool.
	pgConfig *pgx.ConnConfig
}

// Options say which database Open connects to and how.
type Options struct {
	// URL is postgres://… or postgresql://… for PostgreSQL; file:<path>,
	// sqlite:<path> or a bare path for SQLite.
	URL string
	// SecretKey (32 bytes) seals secrets at rest.
	SecretKey []byte

	// Pool settings apply to PostgreSQL; SQLite keeps its own small pool
	// because it has a single writer. A zero MaxIdleConns keeps as many
	// idle as MaxOpenConns allows open; zero for both leaves database/sql's
	// defaults (unlimited open, 2 idle), and a zero ConnMaxLifetime never
	// recycles a connection.
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
	// StatementTimeout is PostgreSQL's statement_timeout for every
	// statement the gateway runs (not migrations); zero means none. A
	// statement_timeout parameter in URL takes precedence.
	StatementTimeout time.Duration

	// upgradeTo, when set, stops migrations at that version: tests of one
	// migration take a database back before it and upgrade only through it.
	upgradeTo int
}

// OptionsFrom returns the store options of the configuration c.
func OptionsFrom(c config.Config) Options {
	return Options{
		URL:              c.DatabaseURL,
		SecretKey:        c.SecretKey,
		MaxOpenConns:     c.DBMaxOpenConns,
		MaxIdleConns:     c.DBMaxIdleConns,
		ConnMaxLifetime:  c.DBConnMaxLifetime,
		StatementTimeout: c.DBStatementTimeout,
	}
}

// isPostgresURL reports whether url names a PostgreSQL database.
func isPostgresURL(url string) bool {
	return strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://")
}

// Open connects to the database named by opts.URL, applies pending
// migrations and returns the store.
func Open(ctx context.Context, opts Options, log *slog.Logger) (*Store, error) {
	seal, err := newSealer(opts.SecretKey)
	if err != nil {
		return nil, err
	}
	if isPostgresURL(opts.URL) {
		db, cfg, err := openPostgres(ctx, opts, log)
		if err != nil {
			return nil, err
		}
		st := &Store{db: &database{db}, seal: seal, postgres: true, pgConfig: cfg}
		st.startListening(cfg, log)
		return st, nil
	}
	sqliteDSN, err := sqliteDSN(opts.URL)
	if err != nil {
		return nil, err
	}
	connector, err := newCachingConnector(sqliteDSN)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	raw := sql.OpenDB(connector)
	// One connection: SQLite has a single writer, and a writer that finds
	// the lock taken sleeps in busy_timeout steps of milliseconds, while
	// queueing for the connection in the pool wakes at once. Readers gain
	// little from parallel connections on a small machine and lose more:
	// every commit by one connection empties the page cache of the others.
	// Measured with cmd/loadgen (BENCHMARKS.md): 537 replies/s with one
	// connection, 339 with eight.
	raw.SetMaxOpenConns(1)
	raw.SetMaxIdleConns(1)
	db, err := newDatabase(raw, "sqlite", log, opts.upgradeTo)
	if err == nil {
		err = migrate(ctx, db)
	}
	if err != nil {
		raw.Close()
		return nil, err
	}
	// modernc binds $1, $2… by their numbers itself: dbutil's rewriting of
	// every statement to ?1, ?2… (a regular expression over the whole
	// text, 5 % of the CPU under load) is for the migrations only, which
	// need the dialect. DB hands components that migrate their own
	// tables a view that keeps it.
	db.Dialect = dbutil.DialectUnknown
	st := &Store{db: &database{db}, seal: seal}
	st.group.start(st)
	if st.ckpt, err = startCheckpointer(ctx, sqliteDSN, &st.group, log); err != nil {
		st.group.stop()
		raw.Close()
		return nil, err
	}
	return st, nil
}

func newDatabase(raw *sql.DB, dialect string, log *slog.Logger, upgradeTo int) (*dbutil.Database, error) {
	db, err := dbutil.NewWithDB(raw, dialect)
	if err != nil {
		return nil, fmt.Errorf("open database: %w", err)
	}
	db.Owner = "wagate"
	db.VersionTable = "wagate_version"
	db.Log = MigrationLogger(log.With("schema", "wagate"))
	db.UpgradeTable.RegisterFSPath(upgradeFiles, "upgrades")
	if upgradeTo > 0 && upgradeTo < len(db.UpgradeTable) {
		db.UpgradeTable = db.UpgradeTable[:upgradeTo]
	}
	return db, nil
}

func migrate(ctx context.Context, db *dbutil.Database) error {
	if err := db.Upgrade(ctx); err != nil {
		return fmt.Errorf("migrate database: %w", err)
	}
	return nil
}

// migrationLock is the key of the session-level advisory lock that lets one
// gateway at a time migrate a PostgreSQL database ("wagate" in ASCII).
const migrationLock int64 = 0x776167617465

// openPostgres opens a pgx pool with the pool settings and statement
// timeout of opts, after migrating the database through a separate,
// short-lived pool: migrations may legitimately run longer than any request
// should, so they run without the statement timeout, and under an advisory
// lock so that replicas starting together do not migrate at once.
func openPostgres(ctx context.Context, opts Options, log *slog.Logger) (*dbutil.Database, *pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(opts.URL)
	if err != nil {
		// pgx masks the password in the URL it quotes.
		return nil, nil, fmt.Errorf("database: %w", err)
	}
	if _, ok := cfg.RuntimeParams["application_name"]; !ok {
		cfg.RuntimeParams["application_name"] = "wagate"
	}

	migCfg := cfg.Copy()
	migCfg.RuntimeParams["statement_timeout"] = "0"
	migRaw := stdlib.OpenDB(*migCfg)
	defer migRaw.Close()
	// One connection holds the lock, one runs the migrations.
	migRaw.SetMaxOpenConns(2)
	migDB, err := newDatabase(migRaw, "postgres", log, opts.upgradeTo)
	if err != nil {
		return nil, nil, err
	}
	if err := withMigrationLock(ctx, migCfg, func(ctx context.Context) error { return migrate(ctx, migDB) }); err != nil {
		return nil, nil, err
	}

	if _, ok := cfg.RuntimeParams["statement_timeout"]; !ok && opts.StatementTimeout > 0 {
		cfg.RuntimeParams["statement_timeout"] = strconv.FormatInt(opts.StatementTimeout.Milliseconds(), 10)
	}
	raw := stdlib.OpenDB(*cfg)
	raw.SetMaxOpenConns(opts.MaxOpenConns)
	if idle := cmp.Or(opts.MaxIdleConns, opts.MaxOpenConns); idle > 0 {
		raw.SetMaxIdleConns(idle)
	}
	raw.SetConnMaxLifetime(opts.ConnMaxLifetime)
	db, err := newDatabase(raw, "postgres", log, opts.upgradeTo)
	if err != nil {
		raw.Close()
		return nil, nil, err
	}
	return db, migCfg, nil
}

// WithMigrationLock runs fn, which migrates a component's tables in the
// database (whatsmeow's device store), under the lock wagate's own
// migrations take on PostgreSQL: any number of replicas may start at once,
// and each component is migrated by one of them while the others wait.
// On SQLite, which one gateway owns, it just runs fn.
func (s *Store) WithMigrationLock(ctx context.Context, fn func(ctx context.Context) error) error {
	if !s.postgres {
		return fn(ctx)
	}
	return withMigrationLock(ctx, s.pgConfig, fn)
}

// withMigrationLock holds the migration lock on a connection of its own
// while fn runs on others: fn's upgrades run in transactions of their own.
// Concurrent CREATE TABLE and CREATE TYPE statements of one schema fail
// on PostgreSQL's catalog constraints rather than wait for each other.
func withMigrationLock(ctx context.Context, cfg *pgx.ConnConfig, fn func(ctx context.Context) error) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("migrate database: connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", migrationLock); err != nil {
		return fmt.Errorf("migrate database: lock: %w", err)
	}
	fnErr := fn(ctx)
	if _, err := conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLock); err != nil {
		// Closing the connection ends the session, which releases the lock anyway.
		return errors.Join(fnErr, fmt.Errorf("migrate database: unlock: %w", err))
	}
	return fnErr
}

// sqliteDSN turns "file:path", "sqlite:path" or a bare path into a modernc
// DSN with the pragmas wagate relies on: foreign keys (cascading deletes),
// WAL, a busy timeout, and BEGIN IMMEDIATE so writers queue instead of
// failing on lock upgrades. synchronous=NORMAL in WAL mode fsyncs at
// checkpoints only: a commit survives the process being killed, as it is in
// the WAL (the operating system's cache) when the commit returns, though not
// a power loss before the next checkpoint. Checkpoints are the store's
// (checkpoint.go), not the committing connection's.
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
	for _, p := range []string{"foreign_keys(1)", "journal_mode(WAL)", "busy_timeout(10000)", "synchronous(NORMAL)", "temp_store(MEMORY)", "wal_autocheckpoint(0)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	return "file:" + path + "?" + q.Encode(), nil
}

// Close closes the database.
func (s *Store) Close() error {
	if s.postgres {
		s.stopListening()
		return s.db.Close()
	}
	// The checkpointer first: the last connection to close checkpoints
	// the rest of the WAL and removes it.
	err := s.ckpt.close()
	s.group.stop()
	return errors.Join(err, s.db.Close())
}

// Ping reports whether the database answers.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.db.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// DoTxn runs fn in one transaction: the store methods fn calls with the
// context it receives join it, and it commits only if fn returns nil.
func (s *Store) DoTxn(ctx context.Context, fn func(ctx context.Context) error) error {
	return s.doTxn(ctx, fn)
}

// Reads runs fn, whose statements only read, as one unit: on SQLite in one
// transaction, so that the reads share a commit group instead of each
// queueing for the connection; on PostgreSQL statement by statement, as a
// READ COMMITTED transaction gives each statement its own snapshot all the
// same, and its BEGIN and COMMIT would be two more round trips.
func (s *Store) Reads(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.postgres {
		return fn(ctx)
	}
	return s.doTxn(ctx, fn)
}

// doTxn runs fn in a transaction. One that wrote configuration moves the
// configuration version on again when it ends: if it rolled back, what was
// read inside it, after the write, must not stay cached; if it committed,
// neither must what others read between the write and the commit (see
// ConfigVersion).
func (s *Store) doTxn(ctx context.Context, fn func(ctx context.Context) error) error {
	before := s.configVersion.Load()
	var err error
	switch {
	case s.inTxn(ctx):
		err = fn(ctx)
	case s.postgres:
		err = s.db.doPgTxn(ctx, fn)
	default:
		err = s.group.do(ctx, fn)
	}
	if s.configVersion.Load() != before {
		// Once more after the commit (or the rollback): the write moved the
		// version before it committed, and on PostgreSQL, where other
		// connections read meanwhile, what they cached under that version
		// may predate it. A notification would move it too, but later.
		s.configChanged()
	}
	return err
}

// DoTxnRetry is DoTxn for a fn that may run more than once: it reruns the
// whole transaction, up to three times in all, after a serialization
// failure, a deadlock or a connection lost before the commit was sent, as
// each of those rolled everything back. fn must have no effect outside the
// transaction that a rerun would repeat. Inside another transaction it is
// plain DoTxn: only the outermost transaction can be retried.
func (s *Store) DoTxnRetry(ctx context.Context, fn func(ctx context.Context) error) error {
	if s.inTxn(ctx) {
		return fn(ctx)
	}
	return retry(ctx, func() error {
		err := s.doTxn(ctx, fn)
		if errors.Is(err, dbutil.ErrTxnCommit) && !rolledBack(err) {
			// The commit may have happened: running fn again could apply it twice.
			return noRetry{err}
		}
		return err
	})
}

// retryIdempotent runs op, statements that may be repeated even if an
// earlier try took effect (reads, updates to absolute values), retrying
// after transient errors. Inside a transaction it runs op once: the failure
// aborted the transaction, and a retry would lose its earlier statements.
func (s *Store) retryIdempotent(ctx context.Context, op func() error) error {
	if s.inTxn(ctx) {
		return op()
	}
	return retry(ctx, op)
}

func (s *Store) inTxn(ctx context.Context) bool {
	if pgTxnOf(ctx) != nil {
		return true
	}
	_, ok := s.db.Execable(ctx).(dbutil.Transaction)
	return ok
}

// millis and fromMillis convert between time.Time and the stored unix milliseconds.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis clamps what it reads to the years 1 to 9999: a time outside
// them has no JSON (RFC 3339) form, and one such value stored by an older
// version (a sender's millisecond timestamp taken for seconds) made every
// route that shows it fail.
func fromMillis(ms int64) time.Time { return time.UnixMilli(min(max(ms, minMillis), maxMillis)).UTC() }

var (
	minMillis = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()
	maxMillis = time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC).UnixMilli()
)

func notFound(err error, format string, args ...any) error {
	if errors.Is(err, sql.ErrNoRows) {
		return wagate.Errorf(wagate.ENOTFOUND, format, args...)
	}
	return err
}

// MigrationLogger reports the migrations of a schema in the database (its
// log says which, as wagate's and whatsmeow's share the database) and
// nothing of its queries.
func MigrationLogger(log *slog.Logger) dbutil.DatabaseLogger { return upgradeLogger{log} }

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

// updateFound runs update, which must change a row: ENOTFOUND with
// notFound when it changes none; mapErr makes the error of a failed update
// the caller's. Inside a PostgreSQL transaction it goes out with the
// commit, and the server fails the transaction when it finds no row
// (wagate_found, migration 18).
func (s *Store) updateFound(ctx context.Context, notFound string, mapErr func(error) error, update string, args ...any) error {
	if !s.postgres || !s.inTxn(ctx) {
		res, err := s.db.Exec(ctx, update, args...)
		if err != nil {
			return mapErr(err)
		}
		return mustAffect(res, nil, "%s", notFound)
	}
	return s.db.DeferRow(ctx, func(row scanner) error {
		var n int64
		err := row.Scan(&n)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "WG002" {
			return wagate.Errorf(wagate.ENOTFOUND, "%s", notFound)
		}
		return mapErr(err)
	}, "WITH u AS ("+update+" RETURNING 1) SELECT wagate_found(COUNT(*)) FROM u", args...)
}

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

// scanner is a row: *sql.Row or dbutil.Rows.
type scanner interface{ Scan(...any) error }

// collect returns a function that scans every row of a query with scan:
// collect(scanBot)(s.db.Query(ctx, …)).
func collect[T any](scan func(scanner) (T, error)) func(dbutil.Rows, error) ([]T, error) {
	return func(rows dbutil.Rows, err error) ([]T, error) {
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		var out []T
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, rows.Err()
	}
}

func scanString(row scanner) (string, error) {
	var v string
	return v, row.Scan(&v)
}
