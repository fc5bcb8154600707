package bots_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/store"
)

// outbox records events in the store's transaction, as the gateway's does.
type outbox struct {
	st     *store.Store
	mu     sync.Mutex
	events []string
}

func (o *outbox) Tx(ctx context.Context, fn func(ctx context.Context) error) error {
	return o.st.DoTxn(ctx, fn)
}

func (o *outbox) Emit(_ context.Context, _ *store.Instance, event string, _ any) error {
	o.mu.Lock()
	o.events = append(o.events, event)
	o.mu.Unlock()
	return nil
}

// replier records replies and stores them as the gateway does.
type replier struct {
	st      *store.Store
	mu      sync.Mutex
	replies map[string][]string
}

func (r *replier) Reply(ctx context.Context, inst *store.Instance, out bots.Outbound) error {
	r.mu.Lock()
	r.replies[out.ChatJID] = append(r.replies[out.ChatJID], out.Text)
	r.mu.Unlock()
	return r.st.DoTxn(ctx, func(ctx context.Context) error {
		_, err := r.st.InsertMessage(ctx, &store.Message{
			InstanceID: inst.ID, ID: uuid.NewString(), Direction: store.Outbound, RemoteJID: out.ChatJID, FromMe: true,
			MessageType: "conversation", Content: []byte(`{}`), Text: out.Text, Timestamp: time.Now(), CreatedAt: time.Now(),
		})
		if err != nil || out.Recorded == nil {
			return err
		}
		return out.Recorded(ctx)
	})
}

func (r *replier) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, v := range r.replies {
		n += len(v)
	}
	return n
}

// TestEngineWorkersGoAway checks that a chat's worker exists only while it
// has work (after many conversations are answered none is left) and that
// model calls stay within their credential's bound.
func TestEngineWorkersGoAway(t *testing.T) {
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, store.Options{URL: "file:" + filepath.Join(t.TempDir(), "db"), SecretKey: make([]byte, 32)}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ai := fakeai.NewTestServer(t, fakeai.Options{Latency: 5 * time.Millisecond})
	// In front of the model: how many calls are in flight at most.
	var inFlight, most atomic.Int32
	target, _ := url.Parse(ai.BaseURL())
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inFlight.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		defer inFlight.Add(-1)
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	now := time.Now().UTC().Truncate(time.Millisecond)
	inst := &store.Instance{ID: "i", Name: "shop", Integration: store.IntegrationEvolution, Number: "1", TokenHash: "h", TokenPrefix: "p", CreatedAt: now, UpdatedAt: now}
	org, err := st.DefaultOrganization(ctx)
	must(t, err)
	inst.OrganizationID = org.ID
	must(t, st.CreateInstance(ctx, inst))
	must(t, st.CreateCreds(ctx, &store.Creds{ID: "c", OrganizationID: org.ID, InstanceID: "i", Name: "fake", APIKey: "sk-test", KeyHint: "…", BaseURL: front.URL + "/v1", CreatedAt: now, UpdatedAt: now}))
	zero := 0
	must(t, st.CreateBot(ctx, &store.Bot{
		ID: "b", InstanceID: "i", Enabled: true, CredsID: "c", BotType: bots.ChatCompletion, Model: "gpt-4o",
		TriggerType: bots.TriggerAll, Behaviour: store.Behaviour{DelayMessage: &zero}, CreatedAt: now, UpdatedAt: now,
	}))

	ob := &outbox{st: st}
	rep := &replier{st: st, replies: map[string][]string{}}
	e := bots.NewEngine(st, ob, rep, nil, nil, bots.Clients{DefaultBaseURL: ai.BaseURL(), Limits: bots.NewLimits(4, bots.LimitObserver{})}, bots.Config{
		HistoryTokens: 1000, ModelTimeout: 10 * time.Second, RetryBase: time.Millisecond,
		FunctionTimeout: time.Second, SweepEvery: time.Hour,
	}, log)
	must(t, e.Start(ctx))
	defer e.Stop()

	const chats = 50
	for i := range chats {
		jid := fmt.Sprintf("55%d@s.whatsapp.net", i)
		_, err := st.InsertMessage(ctx, &store.Message{
			InstanceID: "i", ID: fmt.Sprintf("m%d", i), Direction: store.Inbound, RemoteJID: jid, MessageType: "conversation",
			Content: []byte(`{"conversation":"hi"}`), Text: "hi", Timestamp: now, CreatedAt: now,
		})
		must(t, err)
		e.Notify(store.Chat{InstanceID: "i", Key: jid})
	}
	deadline := time.Now().Add(15 * time.Second)
	for rep.count() < chats || e.Conversations() > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d replies, %d workers left", rep.count(), e.Conversations())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(ai.RequestsTo(fakeai.EndpointChat)); n != chats {
		t.Fatalf("%d model calls for %d messages", n, chats)
	}
	if m := most.Load(); m > 4 {
		t.Fatalf("%d model calls in flight at once, bound is 4", m)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
