// Package storetest gives tests an empty database of each backend the store
// supports, so that one test body runs against SQLite and PostgreSQL alike.
//
// SQLite is always available. PostgreSQL is used when WAGATE_TEST_POSTGRES_URL
// names a server on which that role may create databases, e.g.
// postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable; each test gets
// a database of its own there, dropped when the test ends, so tests stay
// isolated and may run in parallel. Without the variable the PostgreSQL runs
// are skipped, saying so.
package storetest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Backend names a database engine.
type Backend string

const (
	SQLite   Backend = "sqlite"
	Postgres Backend = "postgres"
)

// Backends lists every backend, SQLite first.
var Backends = []Backend{SQLite, Postgres}

// EnvPostgresURL names the variable holding the PostgreSQL admin URL.
const EnvPostgresURL = "WAGATE_TEST_POSTGRES_URL"

// Unavailable returns why b cannot be used in this run, or "" if it can.
func Unavailable(b Backend) string {
	if b == Postgres && os.Getenv(EnvPostgresURL) == "" {
		return EnvPostgresURL + " is not set; set it to a PostgreSQL URL whose role may create databases to run the PostgreSQL backend too"
	}
	return ""
}

// Run runs f as one subtest per backend, named after it. A backend that is
// unavailable is skipped with the reason.
func Run(t *testing.T, f func(t *testing.T, b Backend)) {
	t.Helper()
	for _, b := range Backends {
		t.Run(string(b), func(t *testing.T) {
			if why := Unavailable(b); why != "" {
				t.Skip(why)
			}
			f(t, b)
		})
	}
}

// suiteBackend is the backend of the RunSuite pass under way.
var suiteBackend = SQLite

// RunSuite is for TestMain: it runs the package's tests once per available
// backend, SQLite first, and returns the exit code for os.Exit. During each
// pass SuiteBackend names its backend, so helpers that start servers over a
// database pick it up and every test of the package runs on both.
func RunSuite(m *testing.M) int {
	code := 0
	for _, b := range Backends {
		if why := Unavailable(b); why != "" {
			fmt.Printf("storetest: skipping the %s pass of this package: %s\n", b, why)
			continue
		}
		suiteBackend = b
		fmt.Printf("storetest: running this package's tests on %s\n", b)
		if c := m.Run(); c != 0 {
			fmt.Printf("storetest: the %s pass failed\n", b)
			code = c
		}
	}
	return code
}

// SuiteBackend is the backend of the RunSuite pass under way (SQLite
// outside RunSuite).
func SuiteBackend() Backend { return suiteBackend }

// NewURL creates an empty database on b for t and returns its URL for
// store.Open. It goes away when t ends: a SQLite file in t's temp dir, or
// a PostgreSQL database that is dropped. Unavailable backends skip t.
func NewURL(t testing.TB, b Backend) string {
	t.Helper()
	if why := Unavailable(b); why != "" {
		t.Skip(why)
	}
	if b == SQLite {
		return "file:" + filepath.Join(t.TempDir(), "wagate.db")
	}
	admin := adminDB(t)
	var buf [8]byte
	if _, err := rand.Read(buf[:]); err != nil {
		t.Fatal(err)
	}
	name := "wagate_test_" + hex.EncodeToString(buf[:])
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// FORCE ends sessions a failed test left open (PostgreSQL 13+).
		if _, err := admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Errorf("storetest: drop database %s: %v", name, err)
		}
	})
	u, err := url.Parse(os.Getenv(EnvPostgresURL))
	if err != nil {
		t.Fatalf("storetest: %s: %v", EnvPostgresURL, err)
	}
	u.Path = "/" + name
	return u.String()
}

var admin struct {
	once sync.Once
	db   *sql.DB
	err  error
}

// adminDB is one shared connection pool to the server named by
// EnvPostgresURL, for creating and dropping test databases. A set but
// unreachable server fails the test rather than skipping it: CI sets the
// variable precisely so that PostgreSQL is tested.
func adminDB(t testing.TB) *sql.DB {
	t.Helper()
	admin.once.Do(func() {
		raw := os.Getenv(EnvPostgresURL)
		if !strings.HasPrefix(raw, "postgres://") && !strings.HasPrefix(raw, "postgresql://") {
			admin.err = fmt.Errorf("%s must be a postgres:// URL", EnvPostgresURL)
			return
		}
		db, err := sql.Open("pgx", raw)
		if err != nil {
			admin.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := db.PingContext(ctx); err != nil {
			db.Close()
			admin.err = err
			return
		}
		admin.db = db
	})
	if admin.err != nil {
		t.Fatalf("storetest: PostgreSQL at %s: %v", EnvPostgresURL, admin.err)
	}
	return admin.db
}

// RawDB opens the database at url directly, bypassing the store, for
// checking what is really stored; it is closed when t ends. Queries use
// $n placeholders, which both drivers accept.
func RawDB(t testing.TB, url string) *sql.DB {
	t.Helper()
	driver, dsn := "sqlite", url
	if strings.HasPrefix(url, "postgres://") || strings.HasPrefix(url, "postgresql://") {
		driver = "pgx"
	} else if !strings.Contains(dsn, "?") {
		// Like any second SQLite client, wait for the gateway's write lock
		// rather than fail at once.
		dsn += "?_pragma=busy_timeout(10000)"
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	// Tests poll with a RawDB per check, every few milliseconds: a
	// connection kept idle by each would pile up until the test ends, and
	// PostgreSQL refuses connections past max_connections (the gateway
	// under test's too). Each query connects and disconnects instead.
	db.SetMaxIdleConns(0)
	t.Cleanup(func() { db.Close() })
	return db
}

// SQLitePath returns the file path of a SQLite URL made by NewURL.
func SQLitePath(url string) string { return strings.TrimPrefix(url, "file:") }
