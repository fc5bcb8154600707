package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// These tests race writers the way several requests, engine workers or
// gateway replicas do. SQLite serialises writers by itself; on PostgreSQL the
// constraints and locks of the schema and the store must give the same
// outcome.

// race runs f(0) … f(n-1) in goroutines released at the same moment and
// returns their errors.
func race(n int, f func(i int) error) []error {
	start := make(chan struct{})
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

func mustCreateBot(t *testing.T, s *store.Store, instanceID, id string) *store.Bot {
	t.Helper()
	b := &store.Bot{ID: id, InstanceID: instanceID, Enabled: true, BotType: "chatCompletion", Model: "gpt-test",
		TriggerType: "all", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateBot(t.Context(), b); err != nil {
		t.Fatalf("CreateBot: %v", err)
	}
	return b
}

func newSession(instanceID, botID, chat, id string) *store.Session {
	return &store.Session{ID: id, InstanceID: instanceID, BotID: botID, RemoteJID: chat, Status: store.SessionOpened,
		CreatedAt: t0, UpdatedAt: t0}
}

// exactlyOneWins checks that one error is nil and every other one is an
// ECONFLICT, and returns the index of the winner.
func exactlyOneWins(t *testing.T, errs []error) int {
	t.Helper()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Fatalf("writers %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		case wagate.ErrorCode(err) != wagate.ECONFLICT:
			t.Fatalf("writer %d: %v, want success or ECONFLICT", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer succeeded: %v", errs)
	}
	return winner
}

func TestConcurrentFirstSession(t *testing.T) { storetest.Run(t, testConcurrentFirstSession) }

func testConcurrentFirstSession(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	bot := mustCreateBot(t, s, a.ID, "bot-1")

	// Two first messages of one chat open a session each: the database keeps
	// one and refuses the other. Several rounds, as one may not overlap.
	for round := range 10 {
		chat := fmt.Sprintf("55%02d@s.whatsapp.net", round)
		ids := []string{fmt.Sprintf("plain-%d-a", round), fmt.Sprintf("plain-%d-b", round)}
		errs := race(2, func(i int) error { return s.CreateSession(ctx, newSession(a.ID, bot.ID, chat, ids[i])) })
		winner := exactlyOneWins(t, errs)
		live, err := s.LiveSession(ctx, a.ID, chat)
		if err != nil || live == nil || live.ID != ids[winner] {
			t.Fatalf("round %d: LiveSession = %+v, %v; want %s", round, live, err, ids[winner])
		}
	}

	// The same inside transactions that first look for a live session, as
	// the engine does: on PostgreSQL both see none, and the unique index
	// stops the second at its insert.
	for round := range 10 {
		chat := fmt.Sprintf("56%02d@s.whatsapp.net", round)
		ids := []string{fmt.Sprintf("txn-%d-a", round), fmt.Sprintf("txn-%d-b", round)}
		errs := race(2, func(i int) error {
			return s.DoTxn(ctx, func(ctx context.Context) error {
				live, err := s.LiveSession(ctx, a.ID, chat)
				if err != nil {
					return err
				}
				if live != nil {
					return wagate.Errorf(wagate.ECONFLICT, "session %s is live", live.ID)
				}
				return s.CreateSession(ctx, newSession(a.ID, bot.ID, chat, ids[i]))
			})
		})
		winner := exactlyOneWins(t, errs)
		list, err := s.ListSessions(ctx, a.ID, store.SessionFilter{RemoteJID: chat, Limit: 10})
		if err != nil || len(list) != 1 || list[0].ID != ids[winner] {
			t.Fatalf("round %d: sessions of the chat = %v, %v; want only %s", round, list, err, ids[winner])
		}
	}
}

func TestConcurrentInboundRedelivery(t *testing.T) { storetest.Run(t, testConcurrentInboundRedelivery) }

func testConcurrentInboundRedelivery(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	const writers, rounds = 4, 10

	// The same message delivered several times at once is stored once.
	for round := range rounds {
		id := fmt.Sprintf("PLAIN-%d", round)
		var created atomic.Int32
		errs := race(writers, func(int) error {
			isNew, err := s.InsertMessage(ctx, newMessage(a.ID, id, store.Inbound))
			if isNew {
				created.Add(1)
			}
			return err
		})
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: InsertMessage: %v", round, err)
			}
		}
		if n := created.Load(); n != 1 {
			t.Fatalf("round %d: %d writers stored message %s, want exactly 1", round, n, id)
		}
	}

	// And processed once: as the gateway does, each delivery stores the
	// message and, only if it was new, queues its event in one transaction.
	for round := range rounds {
		id := fmt.Sprintf("TXN-%d", round)
		var processed atomic.Int32
		errs := race(writers, func(int) error {
			return s.DoTxn(ctx, func(ctx context.Context) error {
				isNew, err := s.InsertMessage(ctx, newMessage(a.ID, id, store.Inbound))
				if err != nil || !isNew {
					return err
				}
				processed.Add(1)
				return s.InsertEvent(ctx, newEvent(a.ID, a.ID, "messages.upsert"))
			})
		})
		for _, err := range errs {
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if n := processed.Load(); n != 1 {
			t.Fatalf("round %d: message %s processed %d times, want once", round, id, n)
		}
	}
	evs, err := s.ListEvents(ctx, a.ID, "", 0, 100)
	if err != nil || len(evs) != rounds {
		t.Fatalf("outbox has %d events (%v), want one per message: %d", len(evs), err, rounds)
	}
}

// TestOutboxOrderUnderConcurrentWriters has many writers insert events
// into one lane, each one transaction after another, while a dispatcher
// delivers them as the webhook dispatcher does: the oldest pending event
// first, read from the lane's head. Each writer dawdles between drawing its
// event's seq and committing, so on PostgreSQL seqs commit out of order;
// every writer's events must still arrive in the order it wrote them.
func TestOutboxOrderUnderConcurrentWriters(t *testing.T) {
	storetest.Run(t, testOutboxOrderUnderConcurrentWriters)
}

func testOutboxOrderUnderConcurrentWriters(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	const writers, perWriter = 8, 10

	var (
		writersDone = make(chan struct{})
		delivered   []string
		dispErr     error
		dispDone    = make(chan struct{})
	)
	go func() {
		defer close(dispDone)
		for {
			// Read the flag before the outbox: once it is set, every
			// event has committed and an empty lane means the end.
			var finished bool
			select {
			case <-writersDone:
				finished = true
			default:
			}
			e, err := s.NextPendingEvent(ctx, a.ID)
			if err != nil {
				dispErr = err
				return
			}
			if e == nil {
				if finished {
					return
				}
				time.Sleep(time.Millisecond) // poll; not a timing assertion
				continue
			}
			delivered = append(delivered, e.DeliveryID)
			e.Status, e.Attempts, e.FinishedAt = store.EventDelivered, 1, t0
			if err := s.UpdateEventAttempt(ctx, e); err != nil {
				dispErr = err
				return
			}
		}
	}()

	errs := race(writers, func(w int) error {
		for i := range perWriter {
			err := s.DoTxn(ctx, func(ctx context.Context) error {
				e := newEvent(a.ID, a.ID, "messages.upsert")
				e.DeliveryID = fmt.Sprintf("w%d-%03d", w, i)
				if err := s.InsertEvent(ctx, e); err != nil {
					return err
				}
				// A read sends the insert, and its seq is drawn, before the commit.
				if _, err := s.PendingEvents(ctx, a.ID, 0, 1); err != nil {
					return err
				}
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // widen the insert-to-commit window
				return nil
			})
			if err != nil {
				return err
			}
		}
		return nil
	})
	close(writersDone)
	<-dispDone
	for _, err := range append(errs, dispErr) {
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(delivered) != writers*perWriter {
		t.Fatalf("delivered %d events, want %d", len(delivered), writers*perWriter)
	}
	byWriter := map[string][]string{}
	for _, id := range delivered {
		w := id[:strings.IndexByte(id, '-')]
		byWriter[w] = append(byWriter[w], id)
	}
	for w, ids := range byWriter {
		if !slices.IsSorted(ids) {
			t.Fatalf("writer %s's events delivered out of the order it wrote them: %v", w, ids)
		}
	}
}

// TestSequencesBeyondInt32 checks that seqs past 2^31, which a busy
// PostgreSQL outbox reaches, survive every query that takes one.
func TestSequencesBeyondInt32(t *testing.T) { storetest.Run(t, testSequencesBeyondInt32) }

func testSequencesBeyondInt32(t *testing.T, backend storetest.Backend) {
	dsn := storetest.NewURL(t, backend)
	s := open(t, dsn, key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	const big = 3_000_000_000
	db := rawDB(t, dsn)
	bump := "SELECT setval(pg_get_serial_sequence('webhook_events', 'seq'), $1)"
	if backend == storetest.SQLite {
		// A rowid table continues after its largest rowid.
		bump = `INSERT INTO webhook_events (seq, delivery_id, lane, instance_name, sender, event, data, status,
			next_attempt_at, created_at) VALUES ($1, 'filler', 'filler', '', '', 'filler', '{}', 'failed', 0, 0)`
	}
	if _, err := db.Exec(bump, big); err != nil {
		t.Fatal(err)
	}
	e1 := mustInsertEvent(t, s, newEvent(a.ID, a.ID, "messages.upsert"))
	e2 := mustInsertEvent(t, s, newEvent(a.ID, a.ID, "messages.upsert"))
	if e1.Seq <= big || e2.Seq <= e1.Seq {
		t.Fatalf("seqs %d, %d; want them past %d", e1.Seq, e2.Seq, big)
	}
	got, err := s.ListEvents(ctx, a.ID, "", e2.Seq, 10)
	if err != nil || !slices.Equal(seqs(got), []int64{e1.Seq}) {
		t.Fatalf("ListEvents before %d = %v, %v; want [%d]", e2.Seq, seqs(got), err, e1.Seq)
	}
	next, err := s.NextPendingEvent(ctx, a.ID)
	if err != nil || next == nil || next.Seq != e1.Seq {
		t.Fatalf("NextPendingEvent = %+v, %v", next, err)
	}
	next.Status, next.FinishedAt = store.EventDelivered, t0
	if err := s.UpdateEventAttempt(ctx, next); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ListEvents(ctx, a.ID, store.EventDelivered, 0, 10); err != nil || !slices.Equal(seqs(got), []int64{e1.Seq}) {
		t.Fatalf("delivered events = %v, %v", seqs(got), err)
	}
}

// TestConcurrentOpenMigratesOnce starts replicas on one empty PostgreSQL
// database at the same moment: one migrates, the others wait for it.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	storetest.Run(t, func(t *testing.T, backend storetest.Backend) {
		if backend == storetest.SQLite {
			t.Skip("a SQLite file belongs to one gateway; replicas need PostgreSQL")
		}
		dsn := storetest.NewURL(t, backend)
		errs := race(3, func(int) error {
			s, err := store.Open(t.Context(), store.Options{URL: dsn, SecretKey: key1}, discard())
			if err != nil {
				return err
			}
			return s.Close()
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("replica %d: %v", i, err)
			}
		}
		s := open(t, dsn, key1)
		mustCreate(t, s, newInstance("alpha", "5511"))
		if n := count(t, rawDB(t, dsn), "SELECT COUNT(*) FROM wagate_version"); n != 1 {
			t.Errorf("wagate_version has %d rows, want 1", n)
		}
	})
}

// TestDoTxnRetryAfterDeadlock makes two transactions update two rows in
// opposite orders. PostgreSQL aborts one as a deadlock; DoTxnRetry runs it
// again, and both commit.
func TestDoTxnRetryAfterDeadlock(t *testing.T) {
	storetest.Run(t, func(t *testing.T, backend storetest.Backend) {
		if backend == storetest.SQLite {
			t.Skip("SQLite has a single writer: its transactions cannot deadlock")
		}
		s := open(t, storetest.NewURL(t, backend), key1)
		ctx := t.Context()
		a := mustCreate(t, s, newInstance("alpha", "5511"))
		e1 := mustInsertEvent(t, s, newEvent(a.ID, a.ID, "messages.upsert"))
		e2 := mustInsertEvent(t, s, newEvent(a.ID, a.ID, "messages.upsert"))

		var runs atomic.Int32
		locked := []chan struct{}{make(chan struct{}), make(chan struct{})}
		var once [2]sync.Once
		errs := race(2, func(i int) error {
			first, second := e1, e2
			if i == 1 {
				first, second = e2, e1
			}
			return s.DoTxnRetry(ctx, func(ctx context.Context) error {
				runs.Add(1)
				if err := s.UpdateEventAttempt(ctx, first); err != nil {
					return err
				}
				// A read sends the update, which takes its row's lock, before the commit.
				if _, err := s.PendingEvents(ctx, a.ID, 0, 1); err != nil {
					return err
				}
				// Only the first run waits for the other transaction to
				// hold its row; a rerun must not wait for anything.
				once[i].Do(func() {
					close(locked[i])
					<-locked[1-i]
				})
				return s.UpdateEventAttempt(ctx, second)
			})
		})
		for i, err := range errs {
			if err != nil {
				t.Errorf("transaction %d: %v", i, err)
			}
		}
		if n := runs.Load(); n != 3 {
			t.Errorf("the transactions ran %d times, want 3 (one deadlock victim rerun)", n)
		}
	})
}

func TestSessionsSameMillisecondNewestFirst(t *testing.T) {
	storetest.Run(t, testSessionsSameMillisecondNewestFirst)
}

// Sessions created in one millisecond (a chat's session closed and the next
// opened at once) list in creation order, newest first, page by page.
func testSessionsSameMillisecondNewestFirst(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	bot := mustCreateBot(t, s, a.ID, "bot-1")
	const chat = "5511@s.whatsapp.net"
	var created []string
	for range 40 {
		se := newSession(a.ID, bot.ID, chat, store.NewID()) // all at t0
		se.Status = store.SessionClosed
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
		created = append(created, se.ID)
	}
	var got []string
	f := store.SessionFilter{RemoteJID: chat, Limit: 7}
	for {
		page, err := s.ListSessions(ctx, a.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, se := range page {
			got = append(got, se.ID)
		}
		if len(page) < f.Limit {
			break
		}
		last := page[len(page)-1]
		f.Before = &store.SessionCursor{CreatedAt: last.CreatedAt, ID: last.ID}
	}
	slices.Reverse(created)
	if !slices.Equal(got, created) {
		t.Fatalf("sessions listed\n%v\nwant newest first\n%v", got, created)
	}
}
