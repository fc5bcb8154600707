package store_test

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// waitFor polls cond until it holds; the deadline only ends a test that
// would otherwise hang, it measures nothing.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitCacheable(t *testing.T, s *store.Store, want bool) {
	t.Helper()
	waitFor(t, "ConfigVersion's cacheable to become the expected value", func() bool {
		_, c := s.ConfigVersion()
		return c == want
	})
}

// TestConfigVersionSeesOtherStores checks that a configuration write through
// one Store moves the configuration version of another on the same
// database: on PostgreSQL through the notification the write's transaction
// sends, for every table a cache reads.
func TestConfigVersionSeesOtherStores(t *testing.T) {
	url := storetest.NewURL(t, storetest.Postgres)
	a, b := open(t, url, key1), open(t, url, key1)
	ctx := t.Context()
	waitCacheable(t, a, true)
	waitCacheable(t, b, true)

	in := newInstance("alpha", "5511")
	org, err := a.DefaultOrganization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		name  string
		write func(ctx context.Context) error
	}{
		{"instance created", func(ctx context.Context) error { return a.CreateInstance(ctx, inDefaultOrg(t, a, in)) }},
		{"instance settings", func(ctx context.Context) error {
			return a.SetInstanceSettings(ctx, in.ID, store.InstanceSettings{GroupsIgnore: true})
		}},
		{"instance token", func(ctx context.Context) error { return a.SetInstanceToken(ctx, in.ID, "hash-2", "tok_2") }},
		{"webhook", func(ctx context.Context) error {
			return a.PutWebhook(ctx, &store.Webhook{InstanceID: in.ID, URL: "http://127.0.0.1:1/hook", Enabled: true, CreatedAt: t0, UpdatedAt: t0})
		}},
		{"credentials", func(ctx context.Context) error {
			return a.CreateCreds(ctx, &store.Creds{ID: "creds-1", OrganizationID: org.ID, InstanceID: in.ID, Name: "main",
				APIKey: "sk-test-0000", CreatedAt: t0, UpdatedAt: t0})
		}},
		{"bot", func(ctx context.Context) error { mustCreateBot(t, a, in.ID, "bot-1"); return nil }},
		{"bot settings", func(ctx context.Context) error {
			return a.PutOpenAISettings(ctx, &store.OpenAISettings{InstanceID: in.ID, CredsID: "creds-1", CreatedAt: t0, UpdatedAt: t0})
		}},
		{"bot deleted", func(ctx context.Context) error { return a.DeleteBot(ctx, in.ID, "bot-1") }},
		{"chatbot", func(ctx context.Context) error {
			return a.CreateChatbot(ctx, &store.Chatbot{ID: "cb-1", OrganizationID: org.ID, Name: "cb", Slug: "cb",
				KeyHash: "kh-cb", KeyPrefix: "ob_live_", CreatedAt: t0, UpdatedAt: t0})
		}},
		{"organization key", func(ctx context.Context) error {
			return a.CreateOrgKey(ctx, &store.OrgKey{ID: "key-1", OrganizationID: org.ID, KeyHash: "h-1", KeyPrefix: "wgo_1", CreatedAt: t0})
		}},
		{"organization", func(ctx context.Context) error {
			return a.CreateOrganization(ctx, &store.Organization{ID: "org-2", Name: "Two", CreatedAt: t0, UpdatedAt: t0},
				&store.OrgKey{ID: "key-2", OrganizationID: "org-2", KeyHash: "h-2", KeyPrefix: "wgo_2", CreatedAt: t0})
		}},
		{"instance deleted", func(ctx context.Context) error { return a.DeleteInstance(ctx, in.ID) }},
	}
	for _, w := range writes {
		before, _ := b.ConfigVersion()
		if err := w.write(ctx); err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		waitFor(t, w.name+" moving the other store's version", func() bool {
			v, cacheable := b.ConfigVersion()
			return v != before && cacheable
		})
	}
}

// TestConfigVersionWithoutListener checks that while a Store's listener
// is disconnected nothing is cacheable, and that once it listens again the
// version has moved past every version handed out before the drop, so that
// changes committed meanwhile are read again.
func TestConfigVersionWithoutListener(t *testing.T) {
	url := storetest.NewURL(t, storetest.Postgres)
	a, b := open(t, url, key1), open(t, url, key1)
	ctx := t.Context()
	waitCacheable(t, b, true)
	in := mustCreate(t, a, newInstance("alpha", "5511"))
	waitCacheable(t, a, true)

	// A connection of its own, taken while the database accepts them.
	raw, err := rawDB(t, url).Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var db string
	if err := raw.QueryRowContext(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	// A database's connections are allowed and refused from another one.
	admin := rawDB(t, os.Getenv(storetest.EnvPostgresURL))
	// The listeners cannot reconnect while new connections are refused
	// (even the superuser's); the stores' pooled connections stay.
	if _, err := admin.ExecContext(ctx, `ALTER DATABASE "`+db+`" ALLOW_CONNECTIONS false`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		admin.ExecContext(context.Background(), `ALTER DATABASE "`+db+`" ALLOW_CONNECTIONS true`)
	})
	before, _ := b.ConfigVersion()
	res, err := raw.ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE datname = current_database() AND application_name = 'wagate-listener'`)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 2 {
		t.Fatalf("terminated %d listeners; want the two stores'", n)
	}
	waitCacheable(t, a, false)
	waitCacheable(t, b, false)

	// A change nobody hears of, committed through a's pool.
	if err := a.SetInstanceSettings(ctx, in.ID, store.InstanceSettings{GroupsIgnore: true}); err != nil {
		t.Fatal(err)
	}
	if _, cacheable := b.ConfigVersion(); cacheable {
		t.Fatal("b became cacheable while it could not listen")
	}

	if _, err := admin.ExecContext(ctx, `ALTER DATABASE "`+db+`" ALLOW_CONNECTIONS true`); err != nil {
		t.Fatal(err)
	}
	waitCacheable(t, b, true)
	if v, _ := b.ConfigVersion(); v == before {
		t.Fatalf("b listens again under version %d, the version before the drop: what it cached then would be kept", v)
	}
	// And it hears of changes again.
	again, _ := b.ConfigVersion()
	if err := a.SetInstanceSettings(ctx, in.ID, store.InstanceSettings{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a change after the reconnection moving b's version", func() bool {
		v, cacheable := b.ConfigVersion()
		return v != again && cacheable
	})
}

// TestConfigVersionLocalWrites checks read-your-writes: a Store's own
// configuration write moves its version before the write returns.
func TestConfigVersionLocalWrites(t *testing.T) { storetest.Run(t, testConfigVersionLocalWrites) }

func testConfigVersionLocalWrites(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	waitCacheable(t, s, true)
	before, _ := s.ConfigVersion()
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	if v, _ := s.ConfigVersion(); v == before {
		t.Fatal("CreateInstance did not move the version")
	}
	before, _ = s.ConfigVersion()
	if err := s.SetInstanceSettings(t.Context(), in.ID, store.InstanceSettings{GroupsIgnore: true}); err != nil {
		t.Fatal(err)
	}
	if v, _ := s.ConfigVersion(); v == before {
		t.Fatal("SetInstanceSettings did not move the version")
	}
}

// TestConfigVersionAfterCommit checks that a transaction that wrote
// configuration moves the version again once it has committed: on
// PostgreSQL other connections may read between the write and the commit,
// and cache the old configuration under the version the write moved to.
func TestConfigVersionAfterCommit(t *testing.T) { storetest.Run(t, testConfigVersionAfterCommit) }

func testConfigVersionAfterCommit(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	var inside uint64
	err := s.DoTxn(t.Context(), func(ctx context.Context) error {
		if err := s.SetInstanceSettings(ctx, in.ID, store.InstanceSettings{GroupsIgnore: true}); err != nil {
			return err
		}
		inside, _ = s.ConfigVersion()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if after, _ := s.ConfigVersion(); after == inside {
		t.Fatalf("version %d after the commit is the one inside the transaction", after)
	}
}
