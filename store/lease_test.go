package store_test

import (
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
