package gateway

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/wagate/wagate/store"
)

const (
	// retentionBatch bounds each purge transaction, so the message path
	// never waits long for the database's writer.
	retentionBatch = 256
	// retentionPause is left between batches for other writers.
	retentionPause = 20 * time.Millisecond
)

// retention deletes messages and closed sessions older than the configured
// number of days: once at start, then at every tick, in small batches.
type retention struct {
	store *store.Store
	log   *slog.Logger
	keep  time.Duration
	every time.Duration

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newRetention(st *store.Store, days int, every time.Duration, log *slog.Logger) *retention {
	return &retention{store: st, log: log, keep: time.Duration(days) * 24 * time.Hour, every: every}
}

// Start runs the job in the background until Stop; with no retention set
// it does nothing.
func (r *retention) Start(ctx context.Context) {
	if r.keep <= 0 {
		return
	}
	ctx, r.cancel = context.WithCancel(ctx)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(r.every)
		defer t.Stop()
		for {
			r.pass(ctx)
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
}

// Stop ends the job and waits for it; a batch in flight is rolled back.
func (r *retention) Stop() {
	if r.cancel != nil {
		r.cancel()
		r.wg.Wait()
	}
}

// pass purges every instance once. Errors are logged: the next pass tries
// again.
func (r *retention) pass(ctx context.Context) {
	before := time.Now().Add(-r.keep)
	insts, err := r.store.ListInstances(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Error("retention: listing instances failed", "error", err)
		}
		return
	}
	for _, inst := range insts {
		for _, purge := range []struct {
			what string
			fn   func(context.Context, string, time.Time, int) (int, error)
		}{
			{"messages", r.store.PurgeMessages},
			{"closed sessions", r.store.PurgeClosedSessions},
		} {
			total := 0
			for {
				n, err := purge.fn(ctx, inst.ID, before, retentionBatch)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					r.log.Error("retention: purge failed", "instance", inst.Name, "what", purge.what, "error", err)
					break
				}
				total += n
				if n < retentionBatch {
					break
				}
				select {
				case <-ctx.Done():
					return
				case <-time.After(retentionPause):
				}
			}
			if total > 0 {
				r.log.Info("retention: deleted old records", "instance", inst.Name, "what", purge.what, "count", total)
			}
		}
	}
}
