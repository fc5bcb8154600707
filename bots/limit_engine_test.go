package bots_test

import (
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/store"
)

// limitEnv is an engine whose credentials are bounded to one call in
// flight each, with two instances answering with two credentials ("slow"
// and "fast", keys sk-slow and sk-fast) of the same fake provider.
type limitEnv struct {
	t      *testing.T
	st     *store.Store
	ai     *fakeai.Server
	limits *bots.Limits
	rep    *replier
	e      *bots.Engine

	mu     sync.Mutex
	paused []string // "credential reason"
}

func newLimitEnv(t *testing.T) *limitEnv {
	ctx := t.Context()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(ctx, store.Options{URL: "file:" + filepath.Join(t.TempDir(), "db"), SecretKey: make([]byte, 32)}, log)
	must(t, err)
	t.Cleanup(func() { st.Close() })
	env := &limitEnv{t: t, st: st, ai: fakeai.NewTestServer(t, fakeai.Options{})}
	org, err := st.DefaultOrganization(ctx)
	must(t, err)
	now := time.Now().UTC().Truncate(time.Millisecond)
	zero := 0
	for _, name := range []string{"slow", "fast"} {
		inst := &store.Instance{ID: name, OrganizationID: org.ID, Name: name, Integration: store.IntegrationEvolution,
			Number: name, TokenHash: "h" + name, TokenPrefix: "p" + name, CreatedAt: now, UpdatedAt: now}
		must(t, st.CreateInstance(ctx, inst))
		must(t, st.CreateCreds(ctx, &store.Creds{ID: "creds-" + name, OrganizationID: org.ID, InstanceID: name, Name: name,
			APIKey: "sk-" + name, KeyHint: "…", BaseURL: env.ai.BaseURL(), CreatedAt: now, UpdatedAt: now}))
		must(t, st.CreateBot(ctx, &store.Bot{
			ID: "bot-" + name, InstanceID: name, Enabled: true, CredsID: "creds-" + name, BotType: bots.ChatCompletion, Model: "gpt-4o",
			TriggerType: bots.TriggerAll, Behaviour: store.Behaviour{DelayMessage: &zero}, CreatedAt: now, UpdatedAt: now,
		}))
	}
	env.limits = bots.NewLimits(1, bots.LimitObserver{Paused: func(cred, reason string) {
		env.mu.Lock()
		env.paused = append(env.paused, cred+" "+reason)
		env.mu.Unlock()
	}})
	env.rep = &replier{st: st, replies: map[string][]string{}}
	env.e = bots.NewEngine(st, &outbox{st: st}, env.rep, nil, nil, bots.Clients{Limits: env.limits}, bots.Config{
		HistoryTokens: 1000, ModelTimeout: 10 * time.Second, RetryBase: time.Millisecond,
		FunctionTimeout: time.Second, SweepEvery: time.Hour,
	}, log)
	must(t, env.e.Start(ctx))
	t.Cleanup(env.e.Stop)
	return env
}

// say stores an inbound message in the instance's chat and wakes its worker.
func (env *limitEnv) say(instance, id, chat, text string) {
	now := time.Now().UTC()
	_, err := env.st.InsertMessage(env.t.Context(), &store.Message{
		InstanceID: instance, ID: id, Direction: store.Inbound, RemoteJID: chat, MessageType: "conversation",
		Content: fmt.Appendf(nil, `{"conversation":%q}`, text), Text: text, Timestamp: now, CreatedAt: now,
	})
	must(env.t, err)
	env.e.Notify(store.Chat{InstanceID: instance, Key: chat})
}

// waitFor waits until cond holds.
func (env *limitEnv) waitFor(cond func() bool, what string) {
	env.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			env.t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitReplies waits until chat has n replies and returns them.
func (env *limitEnv) waitReplies(chat string, n int) []string {
	env.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		env.rep.mu.Lock()
		got := append([]string(nil), env.rep.replies[chat]...)
		env.rep.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			env.t.Fatalf("chat %s: %d replies, want %d", chat, len(got), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// TestCredentialLimitsAreIndependent holds the slow credential's only slot
// and checks that its next turn waits for it, visibly, while the other
// credential still answers.
func TestCredentialLimitsAreIndependent(t *testing.T) {
	env := newLimitEnv(t)
	release := make(chan struct{})
	env.ai.Enqueue(fakeai.Reply("slow answer").Until(release).When(fakeai.MatchKey("sk-slow")))

	env.say("slow", "s1", "1@s.whatsapp.net", "first")
	if _, err := env.ai.AwaitReceived(t.Context(), fakeai.EndpointChat, 1); err != nil {
		t.Fatal(err)
	}
	env.say("slow", "s2", "2@s.whatsapp.net", "second")
	env.waitFor(func() bool { return env.limits.Stats().Waiting == 1 }, "the second turn to wait for the slot")

	env.say("fast", "f1", "3@s.whatsapp.net", "hello")
	if got := env.waitReplies("3@s.whatsapp.net", 1); got[0] != "echo: hello" {
		t.Fatalf("fast credential answered %q", got)
	}
	st := env.limits.Stats()
	if st.Waiting != 1 || st.InFlight["creds-slow"] != 1 {
		t.Fatalf("while held: %+v", st)
	}
	if n := len(env.ai.RequestsTo(fakeai.EndpointChat)); n != 2 {
		t.Fatalf("%d model calls reached the provider, want the held one and the fast one", n)
	}

	close(release)
	if got := env.waitReplies("1@s.whatsapp.net", 1); got[0] != "slow answer" {
		t.Fatalf("held turn answered %q", got)
	}
	if got := env.waitReplies("2@s.whatsapp.net", 1); got[0] != "echo: second" {
		t.Fatalf("waiting turn answered %q", got)
	}
}

// TestRetryAfterIsHonoured answers a turn's first call with 429 and a
// Retry-After: the call is made again no sooner, and the reply goes out once.
func TestRetryAfterIsHonoured(t *testing.T) {
	env := newLimitEnv(t)
	const wait = 300 * time.Millisecond
	env.ai.Enqueue(fakeai.RateLimited(wait).WithRateLimit(0, 1000, wait, time.Second))

	env.say("slow", "s1", "1@s.whatsapp.net", "hi")
	if got := env.waitReplies("1@s.whatsapp.net", 1); got[0] != "echo: hi" {
		t.Fatalf("reply %q", got)
	}
	calls := env.ai.RequestsTo(fakeai.EndpointChat)
	if len(calls) != 2 || calls[0].Status != 429 || calls[1].Status != 200 {
		t.Fatalf("calls %+v", calls)
	}
	if gap := calls[1].Received.Sub(calls[0].Received); gap < wait {
		t.Fatalf("retried after %v, before the provider's Retry-After of %v", gap, wait)
	}
	env.mu.Lock()
	paused := env.paused
	env.mu.Unlock()
	if len(paused) == 0 || paused[0] != "creds-slow retry_after" {
		t.Fatalf("pauses %v", paused)
	}
	env.say("slow", "s2", "1@s.whatsapp.net", "again")
	if got := env.waitReplies("1@s.whatsapp.net", 2); len(got) != 2 || got[1] != "echo: again" {
		t.Fatalf("replies %q", got)
	}
}
