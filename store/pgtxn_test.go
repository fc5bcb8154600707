package store_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// TestTransactionPipeline pins down what a transaction promises whose
// writes go out with its commit on PostgreSQL (and at once on SQLite): a
// read in the transaction sees its earlier writes; an update that finds no
// row fails the whole transaction, writes sent before it included; results
// of deferred writes are read by the commit; and a statement sent with the
// context of an ended transaction fails instead of running.
func TestTransactionPipeline(t *testing.T) { storetest.Run(t, testTransactionPipeline) }

func testTransactionPipeline(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	bot := mustCreateBot(t, s, a.ID, "bot-1")

	// Read your writes.
	var seen int
	err := s.DoTxn(ctx, func(ctx context.Context) error {
		if err := s.InsertEvent(ctx, newEvent(a.ID, a.ID, "messages.upsert")); err != nil {
			return err
		}
		evs, err := s.PendingEvents(ctx, a.ID, 0, 10)
		seen = len(evs)
		return err
	})
	if err != nil || seen != 1 {
		t.Fatalf("read in the transaction saw %d events (%v), want its own 1", seen, err)
	}

	// A failure in the pipeline undoes what went before it.
	ghost := newSession(a.ID, bot.ID, "5599@s.whatsapp.net", "ghost")
	err = s.DoTxn(ctx, func(ctx context.Context) error {
		if err := s.InsertEvent(ctx, newEvent(a.ID, a.ID, "messages.upsert")); err != nil {
			return err
		}
		return s.UpdateSession(ctx, ghost)
	})
	if wagate.ErrorCode(err) != wagate.ENOTFOUND {
		t.Fatalf("updating a missing session in a transaction: %v, want ENOTFOUND", err)
	}
	if evs, err := s.PendingEvents(ctx, a.ID, 0, 10); err != nil || len(evs) != 1 {
		t.Fatalf("after the failed transaction %d events (%v), want 1: its insert rolled back", len(evs), err)
	}

	// Deferred results are there once the transaction has committed.
	se := newSession(a.ID, bot.ID, "5511@s.whatsapp.net", "se-1")
	if err := s.CreateSession(ctx, se); err != nil {
		t.Fatal(err)
	}
	turns := []*store.Turn{
		{SessionID: se.ID, Role: "user", Message: []byte(`{"role":"user","content":"hi"}`), CreatedAt: t0},
		{SessionID: se.ID, Role: "assistant", Message: []byte(`{"role":"assistant","content":"hello"}`), CreatedAt: t0},
	}
	err = s.DoTxn(ctx, func(ctx context.Context) error { return s.AppendTurns(ctx, turns...) })
	if err != nil || turns[0].Seq == 0 || turns[1].Seq <= turns[0].Seq {
		t.Fatalf("turns' seqs after the commit: %d, %d (%v)", turns[0].Seq, turns[1].Seq, err)
	}

	// An ended transaction runs nothing more.
	var ended context.Context
	if err := s.DoTxn(ctx, func(ctx context.Context) error {
		ended = ctx
		_, err := s.PendingEvents(ctx, a.ID, 0, 1)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.InsertEvent(ended, newEvent(a.ID, a.ID, "messages.upsert")); !errors.Is(err, sql.ErrTxDone) {
		t.Fatalf("insert with an ended transaction's context: %v, want sql.ErrTxDone", err)
	}
	if evs, err := s.PendingEvents(ctx, a.ID, 0, 10); err != nil || len(evs) != 1 {
		t.Fatalf("%d events (%v), want 1", len(evs), err)
	}
}
