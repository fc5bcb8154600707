package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

// SQLite commits one transaction at a time through one connection (see
// Open), and each commit appends every page it touched to the WAL: under
// load, commits were a quarter of the gateway's CPU time, and handing the
// connection from one short transaction to the next left it idle while the
// next goroutine was scheduled. groupCommit runs the transactions that
// queue up while one is running together, in one SQLite transaction: each
// in a savepoint of its own, so one that fails rolls back only its own
// writes, and one commit for all. A caller returns once the commit that
// holds its writes is done, exactly as with a transaction of its own.

// maxGroup bounds how many transactions share one commit, so that the first
// of them does not wait long for the last.
const maxGroup = 256

type groupCommit struct {
	s *Store

	mu     sync.Mutex
	queue  []*groupTxn
	closed bool
	wake   chan struct{} // buffered: the committer has work
	done   chan struct{} // closed when the committer has exited

	// checkpoint asks the committer to finish the WAL checkpoint the
	// checkpointer began (see checkpoint.go).
	checkpoint atomic.Bool
}

type groupTxn struct {
	ctx  context.Context
	fn   func(ctx context.Context) error
	err  error
	done chan struct{} // closed when err is final
}

// start starts the committer, the goroutine that runs the groups: one
// that is always ready takes the next group at once, where handing the
// connection from caller to caller waited for each to be scheduled.
func (g *groupCommit) start(s *Store) {
	g.s, g.wake, g.done = s, make(chan struct{}, 1), make(chan struct{})
	go g.commit()
}

// stop runs what is queued and stops the committer; later calls fail.
func (g *groupCommit) stop() {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return
	}
	g.closed = true
	close(g.wake)
	g.mu.Unlock()
	<-g.done
}

var errStoreClosed = errors.New("store: closed")

// do runs fn in a transaction shared with those queued beside it.
func (g *groupCommit) do(ctx context.Context, fn func(ctx context.Context) error) error {
	t := &groupTxn{ctx: ctx, fn: fn, done: make(chan struct{})}
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return errStoreClosed
	}
	g.queue = append(g.queue, t)
	g.mu.Unlock()
	select {
	case g.wake <- struct{}{}:
	default: // the committer is already told
	}
	<-t.done
	return t.err
}

func (g *groupCommit) commit() {
	defer close(g.done)
	for range g.wake {
		for {
			g.mu.Lock()
			n := min(len(g.queue), maxGroup)
			group := g.queue[:n:n]
			g.queue = g.queue[n:]
			if len(g.queue) == 0 {
				g.queue = nil
			}
			g.mu.Unlock()
			if n == 0 {
				break
			}
			g.run(group)
			g.finishCheckpointIfAsked()
		}
		g.finishCheckpointIfAsked()
	}
}

// finishCheckpoint asks the committer to copy the pages of the WAL that
// the checkpointer's last checkpoint did not see, between two groups.
func (g *groupCommit) finishCheckpoint() {
	g.checkpoint.Store(true)
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return
	}
	select {
	case g.wake <- struct{}{}:
	default:
	}
}

// finishCheckpointIfAsked runs, on the writer's own connection and outside
// any transaction, the checkpoint that lets the next write transaction
// start the WAL again: only the frames written since the checkpointer's,
// so a few pages rather than the whole WAL.
func (g *groupCommit) finishCheckpointIfAsked() {
	if !g.checkpoint.CompareAndSwap(true, false) {
		return
	}
	// An error leaves the WAL to grow until the next request: nothing to undo.
	_, _ = g.s.db.Exec(context.Background(), "PRAGMA wal_checkpoint(PASSIVE)")
}

// run runs group in one transaction and sets each one's outcome.
func (g *groupCommit) run(group []*groupTxn) {
	defer func() {
		for _, t := range group {
			close(t.done)
		}
	}()
	if len(group) == 1 {
		t := group[0]
		t.err = g.s.db.DoTxn(t.ctx, nil, t.fn)
		return
	}
	// A cancelled caller must not interrupt SQLite inside the shared
	// transaction: an interrupted write rolls back the whole transaction.
	// Its transaction runs to the end, as if the cancellation came later.
	err := g.s.db.DoTxn(context.Background(), nil, func(txCtx context.Context) error {
		for _, t := range group {
			ctx := txnContext{Context: context.WithoutCancel(t.ctx), txn: txCtx}
			if _, err := g.s.db.Exec(ctx, "SAVEPOINT grouped"); err != nil {
				return fmt.Errorf("group commit: %w", err)
			}
			t.err = t.fn(ctx)
			if t.err != nil {
				if _, err := g.s.db.Exec(ctx, "ROLLBACK TO grouped"); err != nil {
					return fmt.Errorf("group commit: %w", err)
				}
			}
			if _, err := g.s.db.Exec(ctx, "RELEASE grouped"); err != nil {
				return fmt.Errorf("group commit: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		for _, t := range group {
			if t.err == nil {
				t.err = err
			}
		}
	}
}

// txnContext is a caller's context (its values: the outbox's pending
// wake-ups, loggers) inside the shared transaction, whose values (the
// transaction itself) come first.
type txnContext struct {
	context.Context
	txn context.Context
}

func (c txnContext) Value(key any) any {
	if v := c.txn.Value(key); v != nil {
		return v
	}
	return c.Context.Value(key)
}
