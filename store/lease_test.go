package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// TestClaimOrphanLanes: the outbox lane of a deleted instance with events
// left to deliver gets an owner, whether its owner died or no replica had
// claimed the instance before it was deleted; a lane with a live owner, or
// with nothing pending, is left alone.
func TestClaimOrphanLanes(t *testing.T) {
	dsn := storetest.NewURL(t, storetest.Postgres)
	s := open(t, dsn, key1)
	ctx := t.Context()
	const lease = 10 * time.Second
	if err := s.RegisterReplica(ctx, "r1", "r1", ""); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"owned", "died", "never"} {
		in := mustCreate(t, s, newInstance(name, "55"+name))
		if name != "never" {
			if _, err := s.ClaimInstances(ctx, "r1", lease, 3); err != nil {
				t.Fatal(err)
			}
		}
		farewell := newEvent("", in.ID, "instance.delete")
		farewell.Target = &store.Target{URL: "http://127.0.0.1:1/hook"}
		mustInsertEvent(t, s, farewell)
		if err := s.DeleteInstance(ctx, in.ID); err != nil {
			t.Fatal(err)
		}
	}
	// "died"'s owner stopped renewing.
	raw := rawDB(t, dsn)
	if _, err := raw.ExecContext(ctx, "UPDATE instance_owners SET lease_until = 0 WHERE instance_id = 'id-died'"); err != nil {
		t.Fatal(err)
	}
	// A deleted instance whose events are all delivered needs no owner.
	done := newEvent("", "id-done", "instance.delete")
	mustInsertEvent(t, s, done)
	done.Status, done.Attempts, done.FinishedAt = store.EventDelivered, 1, time.Now()
	if err := s.UpdateEventAttempt(ctx, done); err != nil {
		t.Fatal(err)
	}

	got, err := s.ClaimOrphanLanes(ctx, "r2", lease, 16)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"id-died": 2, "id-never": 1}
	if len(got) != len(want) {
		t.Fatalf("claimed %v, want the lanes %v", got, want)
	}
	for _, l := range got {
		if epoch, ok := want[l.InstanceID]; !ok || epoch != l.Epoch {
			t.Errorf("claimed %s at epoch %d, want %v", l.InstanceID, l.Epoch, want)
		}
	}
	if again, err := s.ClaimOrphanLanes(ctx, "r1", lease, 16); err != nil || len(again) != 0 {
		t.Fatalf("claimed again: %v, %v; want none while r2's leases hold", again, err)
	}
}

// TestTakeoverWaitsForLeaseHolders: a replica taking over an instance whose
// lease ran out waits for the transactions that checked the old lease, so
// nothing is recorded under the old lease after the new owner starts; and
// the old owner's next check fails.
func TestTakeoverWaitsForLeaseHolders(t *testing.T) {
	dsn := storetest.NewURL(t, storetest.Postgres)
	s := open(t, dsn, key1)
	ctx := t.Context()
	const lease = 10 * time.Second
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	got, err := s.ClaimInstances(ctx, "r1", lease, 1)
	if err != nil || len(got) != 1 {
		t.Fatalf("claim: %v, %v", got, err)
	}
	checked, finish, held := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		held <- s.DoTxn(ctx, func(ctx context.Context) error {
			if err := s.CheckLease(ctx, in.ID, "r1", got[0].Epoch); err != nil {
				return err
			}
			// A read sends the check on its way before the commit.
			if _, err := s.PendingEvents(ctx, in.ID, 0, 1); err != nil {
				return err
			}
			close(checked)
			<-finish
			return nil
		})
	}()
	select {
	case <-checked:
	case err := <-held:
		t.Fatalf("check: %v", err)
	}
	raw := rawDB(t, dsn)
	if _, err := raw.ExecContext(ctx, "UPDATE instance_owners SET lease_until = 0"); err != nil {
		t.Fatal(err)
	}
	claimed := make(chan []store.Lease, 1)
	go func() {
		l, err := s.ClaimInstances(ctx, "r2", lease, 1)
		if err != nil {
			t.Error(err)
		}
		claimed <- l
	}()
	waitFor(t, "the takeover to wait for the lease's holder", func() bool {
		select {
		case l := <-claimed:
			t.Fatalf("taken over (%v) while a transaction under the old lease was open", l)
		default:
		}
		return count(t, raw, `SELECT COUNT(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`) > 0
	})
	close(finish)
	if err := <-held; err != nil {
		t.Fatal(err)
	}
	if l := <-claimed; len(l) != 1 || l[0].Epoch != got[0].Epoch+1 {
		t.Fatalf("takeover = %v, want epoch %d", l, got[0].Epoch+1)
	}
	if err := s.CheckLease(ctx, in.ID, "r1", got[0].Epoch); !errors.Is(err, store.ErrNotOwner) {
		t.Fatalf("old owner's check after the takeover: %v, want ErrNotOwner", err)
	}
}
