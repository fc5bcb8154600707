package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// With -db the harness starts the gateway itself, on a fresh SQLite
// database in a temporary directory or on a throwaway database created in
// the PostgreSQL server -db names, so that both run the same workload the
// same way; it also measures the processor time the run cost, which is less
// sensitive than wall-clock figures to other work on the machine.

// launched is a gateway the harness started.
type launched struct {
	cmd     *exec.Cmd
	dataDir string
	pg      *pgDatabase // nil on SQLite
	exited  chan struct{}
	waitErr error
}

// pgDatabase is the throwaway database of a run.
type pgDatabase struct {
	admin string // URL of the server's maintenance database, as given
	name  string
	url   string // the throwaway database's URL
}

// gatewayBinary returns the wagate binary to start: path if given, else a
// wagate next to the running loadgen, else the one on PATH.
func gatewayBinary(path string) (string, error) {
	if path != "" {
		return path, nil
	}
	if self, err := os.Executable(); err == nil {
		next := filepath.Join(filepath.Dir(self), "wagate")
		if fi, err := os.Stat(next); err == nil && !fi.IsDir() {
			return next, nil
		}
	}
	found, err := exec.LookPath("wagate")
	if err != nil {
		return "", errors.New("no wagate binary next to loadgen or on PATH; give -wagate")
	}
	return found, nil
}

// withDatabase returns the URL u with its database name replaced by name.
func withDatabase(u, name string) (string, error) {
	parsed, err := url.Parse(u)
	if err != nil {
		return "", fmt.Errorf("-db: %w", err)
	}
	parsed.Path = "/" + name
	return parsed.String(), nil
}

// checkDB refuses a -db that is neither sqlite nor a PostgreSQL URL on
// this machine.
func checkDB(db string) error {
	if db == "sqlite" {
		return nil
	}
	u, err := url.Parse(db)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return errors.New(`must be "sqlite" or a postgres:// URL`)
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%s is not a loopback address", host)
	}
	return nil
}

// launch starts the gateway on db listening on listen, and waits until it
// is ready.
func launch(ctx context.Context, bin, db, listen, apiKey string, log *slog.Logger) (*launched, error) {
	dir, err := os.MkdirTemp("", "loadgen-gateway-")
	if err != nil {
		return nil, err
	}
	l := &launched{dataDir: dir, exited: make(chan struct{})}
	env := append(os.Environ(), "WAGATE_LISTEN="+listen, "WAGATE_DATA_DIR="+dir, "WAGATE_API_KEY="+apiKey,
		"WAGATE_LOG_LEVEL=warn", "WAGATE_DATABASE_URL=")
	if db != "sqlite" {
		if l.pg, err = createDatabase(ctx, db); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		env = append(env, "WAGATE_DATABASE_URL="+l.pg.url)
	}
	// The last of duplicated variables wins: these override loadgen's own.
	l.cmd = exec.Command(bin)
	l.cmd.Env = env
	l.cmd.Stdout, l.cmd.Stderr = os.Stderr, os.Stderr
	if err := l.cmd.Start(); err != nil {
		l.cleanup(log)
		return nil, fmt.Errorf("start %s: %w", bin, err)
	}
	go func() { l.waitErr = l.cmd.Wait(); close(l.exited) }()
	ready := "http://" + listen + "/readyz"
	deadline := time.Now().Add(30 * time.Second)
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", ready, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return l, nil
			}
		}
		select {
		case <-l.exited:
			l.cleanup(log)
			return nil, fmt.Errorf("the gateway exited before it was ready: %v", l.waitErr)
		case <-ctx.Done():
		case <-time.After(20 * time.Millisecond):
		}
		if ctx.Err() != nil || time.Now().After(deadline) {
			l.stop(log)
			return nil, errors.New("the gateway did not become ready within 30 s")
		}
	}
}

// stop ends the gateway (SIGTERM, then SIGKILL after 20 s) and removes its
// data: the temporary directory and the throwaway database.
func (l *launched) stop(log *slog.Logger) {
	l.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-l.exited:
	case <-time.After(20 * time.Second):
		l.cmd.Process.Kill()
		<-l.exited
	}
	l.cleanup(log)
}

func (l *launched) cleanup(log *slog.Logger) {
	os.RemoveAll(l.dataDir)
	if l.pg != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := l.pg.drop(ctx); err != nil {
			log.Warn("could not drop the throwaway database", "database", l.pg.name, "error", err)
		}
	}
}

func createDatabase(ctx context.Context, admin string) (*pgDatabase, error) {
	suffix := make([]byte, 4)
	rand.Read(suffix)
	d := &pgDatabase{admin: admin, name: "loadgen_" + hex.EncodeToString(suffix)}
	var err error
	if d.url, err = withDatabase(admin, d.name); err != nil {
		return nil, err
	}
	conn, err := pgx.Connect(ctx, admin)
	if err != nil {
		return nil, fmt.Errorf("-db: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+d.name); err != nil {
		return nil, fmt.Errorf("-db: create database: %w", err)
	}
	return d, nil
}

func (d *pgDatabase) drop(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.admin)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+d.name+" WITH (FORCE)")
	return err
}

// clockTicks is Linux's USER_HZ, the unit of the times in /proc/<pid>/stat
// (100 on every architecture Go supports on Linux).
const clockTicks = 100

// procCPU returns the processor time (user and system) process pid has
// used, from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	return parseStatCPU(b)
}

// parseStatCPU reads utime and stime, the 14th and 15th fields, counting
// after the command name: it is in parentheses and may hold spaces and
// parentheses itself, so the fields start after the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	// f[0] is the state, the 3rd field; utime is the 14th.
	if len(f) < 13 {
		return 0, errors.New("malformed /proc stat")
	}
	var ticks int64
	for _, s := range f[11:13] {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed /proc stat: %w", err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// cpuMeter adds up the processor time of the gateway and, on PostgreSQL,
// of the server processes serving its database between start and finish.
// Backends are found in pg_stat_activity every sample (the server runs on
// this machine: -db is loopback only); one that exits between two samples
// loses what it used since the last, so the pool's connection churn, if
// any, is undercounted, and reported as sessions opened.
type cpuMeter struct {
	gatewayPID int
	pg         *pgx.Conn
	db         string

	mu       sync.Mutex
	gateway0 time.Duration
	gateway  time.Duration
	base     map[int]time.Duration // backends' time at start (0 for those born later)
	last     map[int]time.Duration
	sessions int64 // pg_stat_database.sessions at start
	stop     chan struct{}
	done     chan struct{}
}

// cpuFigures is what a cpuMeter measured.
type cpuFigures struct {
	gateway, postgres time.Duration
	sessions          int64 // PostgreSQL sessions opened during the run
	postgresMeasured  bool
}

func startCPUMeter(ctx context.Context, l *launched) (*cpuMeter, error) {
	m := &cpuMeter{gatewayPID: l.cmd.Process.Pid, base: map[int]time.Duration{}, last: map[int]time.Duration{},
		stop: make(chan struct{}), done: make(chan struct{})}
	var err error
	if m.gateway0, err = procCPU(m.gatewayPID); err != nil {
		return nil, err
	}
	if l.pg != nil {
		// The meter's own connection is to the maintenance database, so it
		// does not count itself.
		if m.pg, err = pgx.Connect(ctx, l.pg.admin); err != nil {
			return nil, err
		}
		m.db = l.pg.name
		if err := m.pg.QueryRow(ctx, "SELECT sessions FROM pg_stat_database WHERE datname = $1", m.db).Scan(&m.sessions); err != nil {
			m.pg.Close(ctx)
			return nil, err
		}
		pids, err := m.backends(ctx)
		if err != nil {
			m.pg.Close(ctx)
			return nil, err
		}
		for _, pid := range pids {
			if t, err := procCPU(pid); err == nil {
				m.base[pid], m.last[pid] = t, t
			}
		}
	}
	go m.run(ctx)
	return m, nil
}

func (m *cpuMeter) backends(ctx context.Context) ([]int, error) {
	rows, err := m.pg.Query(ctx, "SELECT pid FROM pg_stat_activity WHERE datname = $1", m.db)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[int])
}

func (m *cpuMeter) sample(ctx context.Context) {
	if t, err := procCPU(m.gatewayPID); err == nil {
		m.mu.Lock()
		m.gateway = t
		m.mu.Unlock()
	}
	if m.pg == nil {
		return
	}
	pids, err := m.backends(ctx)
	if err != nil {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, pid := range pids {
		if t, err := procCPU(pid); err == nil {
			m.last[pid] = t
		}
	}
}

func (m *cpuMeter) run(ctx context.Context) {
	defer close(m.done)
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-m.stop:
			return
		case <-t.C:
			m.sample(ctx)
		}
	}
}

func (m *cpuMeter) finish(ctx context.Context) cpuFigures {
	close(m.stop)
	<-m.done
	m.sample(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	f := cpuFigures{gateway: m.gateway - m.gateway0}
	if m.pg != nil {
		defer m.pg.Close(ctx)
		f.postgresMeasured = true
		for pid, t := range m.last {
			f.postgres += t - m.base[pid]
		}
		var now int64
		if err := m.pg.QueryRow(ctx, "SELECT sessions FROM pg_stat_database WHERE datname = $1", m.db).Scan(&now); err == nil {
			f.sessions = now - m.sessions
		}
	}
	return f
}

func (f cpuFigures) print(w io.Writer, answered int) {
	if answered == 0 {
		return
	}
	per := func(d time.Duration) string {
		return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond)/float64(answered))
	}
	if !f.postgresMeasured {
		fmt.Fprintf(w, "gateway: CPU %s per message (gateway %s in all)\n", per(f.gateway), f.gateway.Round(10*time.Millisecond))
		return
	}
	fmt.Fprintf(w, "gateway: CPU %s per message: gateway %s, PostgreSQL %s (%s and %s in all; %d PostgreSQL sessions opened)\n",
		per(f.gateway+f.postgres), per(f.gateway), per(f.postgres),
		f.gateway.Round(10*time.Millisecond), f.postgres.Round(10*time.Millisecond), f.sessions)
}
