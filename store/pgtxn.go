package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/stdlib"
	"go.mau.fi/util/dbutil"
)

// On PostgreSQL the cost of a statement on the message path is mostly its
// round trip: a write, a wake-up and a read on each side. Measured with
// pgbench on this kind of machine, a transaction of six trivial statements
// ran at 13,400/s one statement at a time and at 51,700/s pipelined. A
// message went through four transactions of up to seven statements each.
//
// pgTxn is a PostgreSQL transaction whose statements go out in pipelines:
// a write whose result the caller does not need before the commit
// (database.Defer) waits in a queue, and goes out with the next statement
// that must answer now, or with COMMIT. BEGIN goes with the first of them.
// A transaction whose writes are all queued takes one round trip.

// database is the store's database: dbutil's, plus pipelined transactions
// on PostgreSQL. Its Exec, Query and QueryRow run in the pgTxn of ctx when
// there is one.
type database struct {
	*dbutil.Database
}

type pgTxnKey struct{}

func pgTxnOf(ctx context.Context) *pgTxn {
	t, _ := ctx.Value(pgTxnKey{}).(*pgTxn)
	return t
}

// Exec runs a statement now.
func (d *database) Exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if t := pgTxnOf(ctx); t != nil {
		return t.exec(ctx, query, args)
	}
	return d.Database.Exec(ctx, query, args...)
}

// Query runs a query now.
func (d *database) Query(ctx context.Context, query string, args ...any) (dbutil.Rows, error) {
	if t := pgTxnOf(ctx); t != nil {
		return t.query(ctx, query, args)
	}
	return d.Database.Query(ctx, query, args...)
}

// QueryRow runs a query of one row now.
func (d *database) QueryRow(ctx context.Context, query string, args ...any) scanner {
	if t := pgTxnOf(ctx); t != nil {
		return t.queryRow(ctx, query, args)
	}
	return d.Database.QueryRow(ctx, query, args...)
}

// Defer runs a statement whose outcome matters only as part of the
// transaction's: in a PostgreSQL transaction (or pipeline) it is queued,
// and an error it meets fails the statement it goes out with, or the
// commit; elsewhere it runs now.
func (d *database) Defer(ctx context.Context, query string, args ...any) error {
	if t := pgTxnOf(ctx); t != nil {
		return t.enqueue(queued{sql: query, args: args})
	}
	_, err := d.Database.Exec(ctx, query, args...)
	return err
}

// DeferRow is Defer for a statement whose one row scan reads when it
// comes back: by the end of the transaction or pipeline, not before. scan
// sees sql.ErrNoRows for a statement that returned none. An error scan
// returns fails the transaction only if the server failed the statement:
// one it finds in the row may come after the commit.
func (d *database) DeferRow(ctx context.Context, scan func(scanner) error, query string, args ...any) error {
	if t := pgTxnOf(ctx); t != nil {
		return t.enqueue(queued{sql: query, args: args, scan: scan})
	}
	return scan(d.Database.QueryRow(ctx, query, args...))
}

// DeferRows is DeferRow for a statement of several rows, which read reads.
func (d *database) DeferRows(ctx context.Context, read func(dbutil.Rows) error, query string, args ...any) error {
	if t := pgTxnOf(ctx); t != nil {
		return t.enqueue(queued{sql: query, args: args, rows: read})
	}
	rows, err := d.Database.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if err := read(rows); err != nil {
		return err
	}
	return rows.Err()
}

// Flush sends what the PostgreSQL transaction of ctx has queued and reads
// the answers, for a caller that needs them before the commit; elsewhere
// there is nothing queued.
func (d *database) Flush(ctx context.Context) error {
	t := pgTxnOf(ctx)
	if t == nil || len(t.queue) == 0 {
		return nil
	}
	_, _, err := t.flush(ctx, nil)
	return err
}

// pgTxn is used by one goroutine at a time: its statements share one
// connection and its pipeline.
type pgTxn struct {
	conn  *sql.Conn // reserved for the transaction
	pg    *pgx.Conn // conn's
	queue []queued
	open  bool // BEGIN has been sent
	done  bool // ended: its connection is back in the pool

	results pgx.BatchResults // of the pipeline whose last answer is being read
}

type queued struct {
	sql  string
	args []any
	scan func(scanner) error     // reads its one row
	rows func(dbutil.Rows) error // reads its rows
	// Neither: its rows, if any, are not read.
}

// errTxnDone is the error of a statement sent with the context of a
// transaction that has ended, as database/sql's ErrTxDone.
var errTxnDone = fmt.Errorf("store: the transaction has already ended: %w", sql.ErrTxDone)

func (t *pgTxn) enqueue(q queued) error {
	if t.done {
		return errTxnDone
	}
	t.queue = append(t.queue, q)
	return nil
}

// reserve takes a connection of the pool for a pgTxn; release gives it back.
func (d *database) reserve(ctx context.Context) (t *pgTxn, release func(), err error) {
	conn, err := d.RawDB.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	t = &pgTxn{conn: conn}
	err = conn.Raw(func(dc any) error {
		c, ok := dc.(*stdlib.Conn)
		if !ok {
			return fmt.Errorf("store: a PostgreSQL connection of type %T", dc)
		}
		t.pg = c.Conn()
		return nil
	})
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	return t, func() {
		t.done = true
		if t.pg.PgConn().TxStatus() != 'I' && !t.pg.IsClosed() {
			// What failed left the transaction open: end it before the
			// connection goes back to the pool.
			if _, rbErr := t.pg.Exec(context.WithoutCancel(ctx), "ROLLBACK"); rbErr != nil {
				// Unusable: the pool must not get it back.
				_ = conn.Raw(func(any) error { return driver.ErrBadConn })
			}
		}
		conn.Close()
	}, nil
}

// pipeline runs fn, whose statements only read and are deferred (DeferRow,
// DeferRows), and sends them in one pipeline. Inside a transaction they go
// out with what it has queued.
func (d *database) pipeline(ctx context.Context, fn func(ctx context.Context) error) error {
	t := pgTxnOf(ctx)
	if t == nil {
		var release func()
		var err error
		if t, release, err = d.reserve(ctx); err != nil {
			return err
		}
		defer release()
		ctx = context.WithValue(ctx, pgTxnKey{}, t)
	}
	if err := fn(ctx); err != nil {
		return err
	}
	return d.Flush(ctx)
}

// doPgTxn runs fn in a pipelined transaction.
func (d *database) doPgTxn(ctx context.Context, fn func(ctx context.Context) error) error {
	t, release, err := d.reserve(ctx)
	if err != nil {
		return beginError(err)
	}
	defer release()
	t.queue = append(t.queue, queued{sql: "BEGIN"})
	if err := fn(context.WithValue(ctx, pgTxnKey{}, t)); err != nil {
		t.queue = nil
		return err
	}
	if len(t.queue) == 1 && !t.open {
		return nil // nothing was written or read
	}
	t.queue = append(t.queue, queued{sql: "COMMIT"})
	commit := len(t.queue) - 1
	at, byServer, err := t.flush(ctx, nil)
	if err == nil {
		return nil
	}
	if at < commit && byServer {
		// A statement before COMMIT failed: the server rolled it all back.
		return err
	}
	return fmt.Errorf("%w: %w", dbutil.ErrTxnCommit, err)
}

func beginError(err error) error { return fmt.Errorf("%w: %w", dbutil.ErrTxnBegin, err) }

// flush sends the queue, then last if it is not nil, in one pipeline, and
// reads the queue's results; last's results are the caller's to read from
// t.results. It returns the index of the first statement that failed,
// whether the server failed it (and so the transaction), and its error.
func (t *pgTxn) flush(ctx context.Context, last func(b *pgx.Batch)) (failedAt int, byServer bool, err error) {
	if t.done {
		return 0, false, errTxnDone
	}
	b := &pgx.Batch{}
	for _, q := range t.queue {
		b.Queue(q.sql, q.args...)
	}
	queue := t.queue
	t.queue = nil
	if last != nil {
		last(b)
	}
	t.results = t.pg.SendBatch(ctx, b)
	t.open = true
	failedAt = -1
	for i, q := range queue {
		var server, qerr error
		switch {
		case q.scan != nil:
			row := &answer{row: t.results.QueryRow()}
			qerr = q.scan(row)
			server = row.err
		case q.rows != nil:
			server, qerr = readRows(t.results, q.rows)
		default:
			_, server = t.results.Exec()
			qerr = server
		}
		if qerr == nil && server != nil {
			qerr = server
		}
		if qerr != nil && err == nil {
			var pgErr *pgconn.PgError
			failedAt, err, byServer = i, qerr, errors.As(server, &pgErr)
		}
	}
	if last == nil || err != nil {
		if cerr := t.closeResults(); cerr != nil && err == nil {
			failedAt, err = len(queue), cerr
		}
	}
	return failedAt, byServer, err
}

// answer is a deferred statement's row, keeping what reading it met.
type answer struct {
	row pgx.Row
	err error
}

func (a *answer) Scan(dest ...any) error {
	err := a.row.Scan(dest...)
	if !errors.Is(err, pgx.ErrNoRows) { // no row is an answer, not a failure
		a.err = err
	}
	return err
}

// readRows reads a deferred statement's rows with read; server is what the
// server answered, err what read made of it.
func readRows(results pgx.BatchResults, read func(dbutil.Rows) error) (server, err error) {
	rows, err := results.Query()
	if err != nil {
		return err, err
	}
	defer rows.Close()
	err = read(&pgRows{rows: rows})
	rows.Close()
	server = rows.Err()
	if err == nil {
		err = server
	}
	return server, err
}

func (t *pgTxn) closeResults() error {
	if t.results == nil {
		return nil
	}
	err := t.results.Close()
	t.results = nil
	return err
}

func (t *pgTxn) exec(ctx context.Context, query string, args []any) (sql.Result, error) {
	if _, _, err := t.flush(ctx, func(b *pgx.Batch) { b.Queue(query, args...) }); err != nil {
		return nil, err
	}
	tag, err := t.results.Exec()
	if cerr := t.closeResults(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return driver.RowsAffected(tag.RowsAffected()), nil
}

func (t *pgTxn) queryRow(ctx context.Context, query string, args []any) scanner {
	if _, _, err := t.flush(ctx, func(b *pgx.Batch) { b.Queue(query, args...) }); err != nil {
		return errRow{err}
	}
	return pgRow{t: t, row: t.results.QueryRow()}
}

func (t *pgTxn) query(ctx context.Context, query string, args []any) (dbutil.Rows, error) {
	if _, _, err := t.flush(ctx, func(b *pgx.Batch) { b.Queue(query, args...) }); err != nil {
		return nil, err
	}
	rows, err := t.results.Query()
	if err != nil {
		t.closeResults()
		return nil, err
	}
	return &pgRows{t: t, rows: rows}, nil
}

// errRow is a row that could not be read.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// pgRow is the answer to queryRow; Scan ends the pipeline it came in.
type pgRow struct {
	t   *pgTxn
	row pgx.Row
}

func (r pgRow) Scan(dest ...any) error {
	err := r.row.Scan(dest...)
	if cerr := r.t.closeResults(); err == nil {
		err = cerr
	}
	return err
}

// pgRows adapts pgx's rows to dbutil.Rows; Close ends the pipeline they
// came in, when they are its last answer (t is set).
type pgRows struct {
	t    *pgTxn
	rows pgx.Rows
}

func (r *pgRows) Close() error {
	r.rows.Close()
	err := r.rows.Err()
	if r.t == nil {
		return err
	}
	if cerr := r.t.closeResults(); err == nil {
		err = cerr
	}
	return err
}

func (r *pgRows) ColumnTypes() ([]*sql.ColumnType, error) {
	return nil, errors.New("store: column types are not available in a pipelined transaction")
}

func (r *pgRows) Columns() ([]string, error) {
	fields := r.rows.FieldDescriptions()
	names := make([]string, len(fields))
	for i, f := range fields {
		names[i] = f.Name
	}
	return names, nil
}

func (r *pgRows) Err() error             { return r.rows.Err() }
func (r *pgRows) Next() bool             { return r.rows.Next() }
func (r *pgRows) NextResultSet() bool    { return false }
func (r *pgRows) Scan(dest ...any) error { return r.rows.Scan(dest...) }
