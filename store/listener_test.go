package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// next returns the next notification of ch, failing the test after a while.
func next(t *testing.T, ch <-chan store.Notification) (store.Notification, bool) {
	t.Helper()
	select {
	case n, ok := <-ch:
		return n, ok
	case <-time.After(15 * time.Second):
		t.Fatal("no notification")
	}
	return store.Notification{}, false
}

// One connection per store listens for configuration changes and for
// every caller of Listen; each caller hears its own channels, is told when
// it starts listening and after a reconnection, and its channel closes
// with its context or the store.
func TestListenSharesOneConnection(t *testing.T) {
	dsn := storetest.NewURL(t, storetest.Postgres)
	s := open(t, dsn, key1)
	ctx := t.Context()
	raw := rawDB(t, dsn)
	listeners := func() int {
		return count(t, raw, `SELECT COUNT(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'wagate-listener'`)
	}
	waitFor(t, "the listener to connect", func() bool { return listeners() == 1 })

	notify := func(channel, payload string) {
		t.Helper()
		if _, err := raw.ExecContext(ctx, "SELECT pg_notify($1, $2)", channel, payload); err != nil {
			t.Fatal(err)
		}
	}
	aCtx, stopA := context.WithCancel(ctx)
	a := s.Listen(aCtx, "alpha", "both")
	b := s.Listen(ctx, "bravo", "both")
	for _, ch := range []<-chan store.Notification{a, b} {
		if n, ok := next(t, ch); !ok || n != (store.Notification{}) {
			t.Fatalf("first notification = %+v, %v; want the zero one", n, ok)
		}
	}
	if n := listeners(); n != 1 {
		t.Errorf("%d listener connections, want 1", n)
	}

	version, _ := s.ConfigVersion()
	notify("bravo", "1")
	notify("alpha", "2")
	notify("both", "3")
	notify("wagate_config", "")
	for _, want := range []store.Notification{{Channel: "alpha", Payload: "2"}, {Channel: "both", Payload: "3"}} {
		if n, _ := next(t, a); n != want {
			t.Errorf("a got %+v, want %+v", n, want)
		}
	}
	for _, want := range []store.Notification{{Channel: "bravo", Payload: "1"}, {Channel: "both", Payload: "3"}} {
		if n, _ := next(t, b); n != want {
			t.Errorf("b got %+v, want %+v", n, want)
		}
	}
	waitFor(t, "the configuration notification to move the version", func() bool {
		v, cacheable := s.ConfigVersion()
		return v > version && cacheable
	})

	// A reconnection is announced, and listening goes on.
	if _, err := raw.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'wagate-listener'`); err != nil {
		t.Fatal(err)
	}
	for _, ch := range []<-chan store.Notification{a, b} {
		if n, ok := next(t, ch); !ok || n != (store.Notification{}) {
			t.Fatalf("after the reconnection: %+v, %v; want the zero notification", n, ok)
		}
	}
	notify("both", "4")
	for _, ch := range []<-chan store.Notification{a, b} {
		if n, _ := next(t, ch); n != (store.Notification{Channel: "both", Payload: "4"}) {
			t.Errorf("after the reconnection: %+v", n)
		}
	}

	// A caller that stops hears no more; the others go on.
	stopA()
	if _, ok := next(t, a); ok {
		t.Error("a's channel stayed open after its context ended")
	}
	notify("bravo", "5")
	if n, _ := next(t, b); n != (store.Notification{Channel: "bravo", Payload: "5"}) {
		t.Errorf("b got %+v after a stopped", n)
	}

	// Closing the store closes the rest.
	s.Close()
	if _, ok := next(t, b); ok {
		t.Error("b's channel stayed open after the store closed")
	}
	if _, ok := next(t, s.Listen(ctx, "late")); ok {
		t.Error("Listen on a closed store returned an open channel")
	}
}
