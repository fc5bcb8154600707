package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// SQLite's automatic checkpoint runs in the commit that pushes the WAL past
// its limit: that commit copies every page of the WAL into the database
// file and fsyncs both before it returns, and every transaction queued
// behind it waits, which was the whole tail of the latency at 500
// messages/s (a 15–50 ms stall every few hundred milliseconds). The main
// connection therefore never checkpoints by itself (wal_autocheckpoint=0,
// see sqliteDSN); checkpointer copies the WAL from a second connection,
// beside the writer, and asks the committer for the last few pages only:
// SQLite starts the WAL again from its beginning only when a write
// transaction begins with every frame copied, which a checkpoint running
// beside a busy writer never sees.

const (
	// checkpointEvery is how often the checkpointer copies what the WAL holds.
	checkpointEvery = 100 * time.Millisecond
	// restartFrames is the WAL size, in pages, past which the committer is
	// asked to finish the checkpoint so that the WAL starts again (4 MiB at
	// SQLite's default page size).
	restartFrames = 1000
	// truncateBytes is the WAL file's size past which an idle WAL is
	// truncated.
	truncateBytes = 4 << 20
)

type checkpointer struct {
	db    *sql.DB // its own connection: a checkpoint beside the writer
	wal   string  // the WAL file's path
	group *groupCommit
	log   *slog.Logger

	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// startCheckpointer opens a second connection to the SQLite database dsn
// and starts copying its WAL in the background.
func startCheckpointer(ctx context.Context, dsn string, group *groupCommit, log *slog.Logger) (*checkpointer, error) {
	path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	// A TRUNCATE checkpoint waits for the writer lock in busy_timeout
	// steps, holding up nothing but itself; it is only tried when idle, so
	// it gives up quickly rather than queue in front of the next writer.
	if _, err := db.ExecContext(ctx, "PRAGMA busy_timeout = 20"); err != nil {
		db.Close()
		return nil, fmt.Errorf("open checkpointer: %w", err)
	}
	c := &checkpointer{db: db, wal: path + "-wal", group: group, log: log, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c, nil
}

func (c *checkpointer) run() {
	defer close(c.done)
	tick := time.NewTicker(checkpointEvery)
	defer tick.Stop()
	lastFrames := -1
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
		}
		frames, copied, err := c.checkpoint("PASSIVE")
		if err != nil {
			c.log.Warn("WAL checkpoint failed", "error", err)
			continue
		}
		switch {
		case frames > 0 && frames == copied && frames == lastFrames:
			// Nothing was written for a whole period. After a burst that
			// grew the WAL, give the disk back; after a trickle of writes
			// leave it: all of it is copied, so the next write starts it
			// again from its beginning.
			if c.walBytes() > truncateBytes {
				if _, _, err := c.checkpoint("TRUNCATE"); err != nil {
					c.log.Debug("WAL truncation deferred", "error", err)
				}
				frames = 0
			}
		case frames >= restartFrames:
			c.group.finishCheckpoint()
		}
		lastFrames = frames
	}
}

// walBytes returns the size of the WAL file, 0 if it cannot tell.
func (c *checkpointer) walBytes() int64 {
	fi, err := os.Stat(c.wal)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// checkpoint runs one checkpoint of mode and returns the WAL's size in
// frames and how many of them are now in the database file.
func (c *checkpointer) checkpoint(mode string) (frames, copied int, err error) {
	var busy int
	err = c.db.QueryRow("PRAGMA wal_checkpoint("+mode+")").Scan(&busy, &frames, &copied)
	return frames, copied, err
}

// close stops the checkpointer; the main connection's close checkpoints
// what is left.
func (c *checkpointer) close() error {
	err := errAlreadyClosed
	c.stopOnce.Do(func() {
		close(c.stop)
		<-c.done
		err = c.db.Close()
	})
	if err == errAlreadyClosed {
		return nil
	}
	return err
}

var errAlreadyClosed = errors.New("checkpointer: closed")
