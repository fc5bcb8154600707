package store_test

import (
	"testing"
	"time"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// TestRetryEvent: only a failed delivery goes back to pending, due at the
// time given, keeping its attempts; another instance's is not found.
func TestRetryEvent(t *testing.T) { storetest.Run(t, testRetryEvent) }

func testRetryEvent(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	b := mustCreate(t, s, newInstance("beta", "5512"))
	failed := mustInsertEvent(t, s, newEvent(a.ID, a.ID, "messages.upsert"))
	failed.Status, failed.Attempts, failed.LastStatus, failed.FinishedAt = store.EventFailed, 3, 500, time.Now()
	if err := s.UpdateEventAttempt(ctx, failed); err != nil {
		t.Fatal(err)
	}
	pending := mustInsertEvent(t, s, newEvent(a.ID, a.ID, "messages.upsert"))

	for _, tc := range []struct {
		name, instance, delivery string
		want                     wagate.Code
	}{
		{"another instance's", b.ID, failed.DeliveryID, wagate.ENOTFOUND},
		{"unknown", a.ID, "nope", wagate.ENOTFOUND},
		{"pending", a.ID, pending.DeliveryID, wagate.ECONFLICT},
	} {
		if _, err := s.RetryEvent(ctx, tc.instance, tc.delivery, time.Now()); wagate.ErrorCode(err) != tc.want {
			t.Errorf("%s: %v, want %s", tc.name, err, tc.want)
		}
	}
	due := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	e, err := s.RetryEvent(ctx, a.ID, failed.DeliveryID, due)
	if err != nil {
		t.Fatal(err)
	}
	if e.Status != store.EventPending || e.Attempts != 3 || !e.NextAttemptAt.Equal(due) || e.Lane != a.ID {
		t.Fatalf("retried = %+v", e)
	}
	list, err := s.ListEvents(ctx, a.ID, store.EventPending, 0, 10)
	if err != nil || len(list) != 2 {
		t.Fatalf("pending after the retry: %d, %v", len(list), err)
	}
	got := list[1] // the older
	if got.DeliveryID != failed.DeliveryID || !got.FinishedAt.IsZero() || !got.NextAttemptAt.Equal(due) || got.LastStatus != 500 {
		t.Errorf("stored = %+v", got)
	}
	if _, err := s.RetryEvent(ctx, a.ID, failed.DeliveryID, due); wagate.ErrorCode(err) != wagate.ECONFLICT {
		t.Errorf("retrying it again while pending: %v", err)
	}
}
