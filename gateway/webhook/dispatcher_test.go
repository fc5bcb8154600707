package webhook_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// TestLaneDeliversLateCommitFirst: on PostgreSQL a transaction may draw
// an event's seq and commit after a later seq was delivered. The lane must
// deliver that event before any event of a transaction that began after
// it committed: a lane reader that went on from the last seq it delivered
// would send the newer event first.
func TestLaneDeliversLateCommitFirst(t *testing.T) {
	ctx := t.Context()
	s, err := store.Open(ctx, store.Options{URL: storetest.NewURL(t, storetest.Postgres), SecretKey: make([]byte, 32)},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	org, err := s.DefaultOrganization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	inst := &store.Instance{ID: "id-alpha", Name: "alpha", Integration: store.IntegrationEvolution,
		TokenHash: "hash", TokenPrefix: "tok_a", OrganizationID: org.ID}
	if err := s.CreateInstance(ctx, inst); err != nil {
		t.Fatal(err)
	}

	var (
		mu       sync.Mutex
		received []string
		got      = make(chan string, 8)
		holdB    = make(chan struct{})
	)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		id := r.Header.Get(webhook.DeliveryHeader)
		mu.Lock()
		first := !slices.Contains(received, id)
		if first {
			received = append(received, id)
		}
		mu.Unlock()
		if first {
			got <- id
		}
		if id == "b" {
			<-holdB
		}
	}))
	defer recv.Close()
	if err := s.PutWebhook(ctx, &store.Webhook{InstanceID: inst.ID, URL: recv.URL, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	d := webhook.NewDispatcher(s, webhook.Config{Timeout: 10 * time.Second, RetryBase: time.Second,
		MaxBackoff: time.Second, MaxAge: time.Hour}, slog.New(slog.DiscardHandler))
	if err := d.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	event := func(id string) *store.Event {
		now := time.Now()
		return &store.Event{DeliveryID: id, InstanceID: inst.ID, Lane: inst.ID, InstanceName: inst.Name,
			Name: "messages.upsert", Data: []byte(`{}`), NextAttemptAt: now, CreatedAt: now}
	}
	insert := func(id string) {
		t.Helper()
		if err := s.InsertEvent(ctx, event(id)); err != nil {
			t.Fatal(err)
		}
		d.Wake(inst.ID)
	}

	// a's transaction draws its seq, then stays open.
	drawn, commitA, aDone := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		aDone <- s.DoTxn(context.WithoutCancel(ctx), func(ctx context.Context) error {
			if err := s.InsertEvent(ctx, event("a")); err != nil {
				return err
			}
			// A read sends the insert on its way before the commit.
			if _, err := s.PendingEvents(ctx, inst.ID, 0, 1); err != nil {
				return err
			}
			close(drawn)
			<-commitA
			return nil
		})
	}()
	select {
	case <-drawn:
	case err := <-aDone:
		t.Fatalf("a: %v", err)
	}
	insert("b") // a later seq, delivered while a is open
	if id := <-got; id != "b" {
		t.Fatalf("first delivery %q, want b", id)
	}
	close(commitA)
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	insert("c") // begun after a committed
	close(holdB)
	for range 2 {
		<-got
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"b", "a", "c"}; !slices.Equal(received, want) {
		t.Fatalf("delivered %v, want %v", received, want)
	}
}
