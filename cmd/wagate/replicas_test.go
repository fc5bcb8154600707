package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/store/storetest"
)

// TestReplicasFailover runs three replicas of the real binary on one fresh
// PostgreSQL database, started at the same moment. Six EVOLUTION instances
// spread across them; customers of two chats per instance write a steady
// stream of messages, each posted to the next replica in turn; midway one
// replica is killed with SIGKILL, and later started again. At the end
// every message accepted is answered, once, in order per chat (the model
// echoes each turn, so a chat's replies carry each of its message tokens
// exactly once), and every instance's webhook saw its events in order.
func TestReplicasFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	if why := storetest.Unavailable(storetest.Postgres); why != "" {
		t.Skip(why)
	}
	bin := filepath.Join(t.TempDir(), "wagate")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	dbURL := storetest.NewURL(t, storetest.Postgres)
	ai := fakeai.NewTestServer(t, fakeai.Options{})
	hook := newReplicaHook(t)

	const replicas, instances, chatsPer, perChat = 3, 6, 2, 14
	// A short lease keeps the test short; BENCHMARKS.md measures the
	// failover at the default lease by setting this.
	lease := "3s"
	if l := os.Getenv("WAGATE_REPLICAS_TEST_LEASE"); l != "" {
		lease = l
	}
	procs := make([]*gatewayProc, replicas)
	for i := range procs {
		procs[i] = &gatewayProc{t: t, bin: bin, dir: t.TempDir(), env: []string{
			"WAGATE_DATABASE_URL=" + dbURL,
			"WAGATE_LEASE_DURATION=" + lease,
			fmt.Sprintf("WAGATE_REPLICA_NAME=r%d", i),
		}}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for i, g := range procs {
				for j, l := range g.logs {
					t.Logf("replica %d run %d output:\n%s", i, j, l.String())
				}
			}
		}
	})
	// All at once: migrations of every component run under one lock.
	var started sync.WaitGroup
	for _, g := range procs {
		started.Add(1)
		go func() { defer started.Done(); g.start() }()
	}
	started.Wait()

	insts := make([]crashInstance, instances)
	for i := range insts {
		insts[i] = procs[0].setupNamed(fmt.Sprintf("rep%d", i), fmt.Sprintf("55110000000%02d", i), hook.URL, ai.BaseURL(), 50)
	}
	owners := waitOwners(t, procs[1], instances)
	t.Logf("owners at start: %v", owners)
	for i := range replicas {
		if n := countOwned(owners, fmt.Sprintf("r%d", i)); n != instances/replicas {
			t.Errorf("replica r%d owns %d instances at start, want %d: %v", i, n, instances/replicas, owners)
		}
	}

	type chat struct {
		inst crashInstance
		jid  string
		want []string
	}
	var chats []chat
	for i, inst := range insts {
		for c := range chatsPer {
			ch := chat{inst: inst, jid: chatJID(i*chatsPer + c)}
			for m := range perChat {
				ch.want = append(ch.want, fmt.Sprintf("c%dm%dp0", i*chatsPer+c, m), fmt.Sprintf("c%dm%dp1", i*chatsPer+c, m))
			}
			chats = append(chats, ch)
		}
	}

	// Messages go to the replicas in turn; one that is down passes the
	// message on to the next.
	var next atomic.Uint64
	post := func(inst crashInstance, id, jid, text string) {
		body := map[string]any{
			"numberId": inst.number,
			"key":      map[string]any{"id": id, "remoteJid": jid, "fromMe": false},
			"pushName": "Ana",
			"message":  map[string]any{"conversation": text},
		}
		for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); {
			g := procs[next.Add(1)%replicas]
			status, b := g.call("POST", "/webhook/evolution", inst.token, body)
			switch {
			case status == http.StatusOK:
				return
			case status != 0 && status < 500:
				t.Errorf("message %s: %d: %s", id, status, b)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
		t.Errorf("message %s never accepted", id)
	}
	var posters sync.WaitGroup
	for ci, ch := range chats {
		posters.Add(1)
		go func() {
			defer posters.Done()
			for m := range perChat {
				time.Sleep(time.Duration(150+50*(ci%4)) * time.Millisecond)
				text := fmt.Sprintf("c%dm%dp0\n\nc%dm%dp1", ci, m, ci, m)
				post(ch.inst, fmt.Sprintf("c%d-m%d", ci, m), ch.jid, text)
			}
		}()
	}

	time.Sleep(1200 * time.Millisecond)
	victim := procs[1]
	lostInstances := map[string]bool{}
	for name, owner := range waitOwners(t, procs[0], instances) {
		if owner == "r1" {
			lostInstances[name] = true
		}
	}
	killedAt := time.Now()
	victim.stop(syscall.SIGKILL)
	t.Logf("r1 killed with SIGKILL; it owned %v", keys(lostInstances))
	time.Sleep(4 * time.Second)
	victim.start()
	t.Log("r1 started again")
	posters.Wait()

	deadline := time.Now().Add(45 * time.Second)
	for _, ch := range chats {
		for !slices.Equal(tokens(hook.replies(ch.jid)), ch.want) {
			if time.Now().After(deadline) {
				t.Fatalf("chat %s: replies carry %q\nwant %q", ch.jid, tokens(hook.replies(ch.jid)), ch.want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for _, ch := range chats {
		in, out := procs[0].conversation(ch.inst, ch.jid)
		if len(in) != perChat {
			t.Errorf("chat %s: %d inbound messages stored, want %d", ch.jid, len(in), perChat)
		}
		for _, m := range in {
			if m.Status != "answered" {
				t.Errorf("chat %s: message %s is %s (%s)", ch.jid, m.ID, m.Status, m.Error)
			}
		}
		var texts []string
		for _, m := range out {
			texts = append(texts, m.Text)
		}
		if got := tokens(texts); !slices.Equal(got, ch.want) {
			t.Errorf("chat %s: stored replies carry %q\nwant %q", ch.jid, got, ch.want)
		}
	}
	// Per instance, the webhook saw each chat's messages.upsert in the
	// order they were posted, and its replies in order (checked above).
	for ci, ch := range chats {
		var want []string
		for m := range perChat {
			want = append(want, fmt.Sprintf("c%d-m%d", ci, m))
		}
		if got := hook.upserts(ch.inst.name, ch.jid); !slices.Equal(got, want) {
			t.Errorf("chat %s: messages.upsert events in order %q, want %q", ch.jid, got, want)
		}
	}
	t.Logf("webhook deliveries seen more than once (at least once delivery): %d", hook.redelivered())
	t.Logf("replies sent twice: %d", hook.duplicateReplies())
	if d := hook.duplicateReplies(); d != 0 {
		t.Errorf("%d replies were sent twice", d)
	}
	if first, last, ok := hook.firstRepliesAfter(killedAt, lostInstances); ok {
		t.Logf("failover: first answer by a new owner %v after SIGKILL; every lost instance answering after %v",
			first.Round(time.Millisecond), last.Round(time.Millisecond))
	}
	// The restarted replica gets its share back, one instance at a time.
	for deadline := time.Now().Add(30 * time.Second); ; {
		owners := waitOwners(t, procs[0], instances)
		if countOwned(owners, "r1") == instances/replicas {
			t.Logf("owners after r1 rejoined: %v", owners)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("r1 never got its share back: %v", owners)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// SIGTERM hands r2's instances over at once; then every chat writes
	// once more, to the two replicas left (posts to r2 find it down and go
	// to the next), and is answered.
	stoppedAt := time.Now()
	procs[2].stop(syscall.SIGTERM)
	for deadline := time.Now().Add(30 * time.Second); ; {
		owners := waitOwners(t, procs[0], instances)
		if countOwned(owners, "r2") == 0 {
			t.Logf("handover: r2's instances owned by others %v after SIGTERM: %v", time.Since(stoppedAt).Round(time.Millisecond), owners)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("r2's instances never handed over: %v", owners)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for ci, ch := range chats {
		posters.Add(1)
		go func() {
			defer posters.Done()
			post(ch.inst, fmt.Sprintf("c%d-m%d", ci, perChat), ch.jid, fmt.Sprintf("c%dm%dp0\n\nc%dm%dp1", ci, perChat, ci, perChat))
		}()
		chats[ci].want = append(chats[ci].want, fmt.Sprintf("c%dm%dp0", ci, perChat), fmt.Sprintf("c%dm%dp1", ci, perChat))
	}
	posters.Wait()
	deadline = time.Now().Add(30 * time.Second)
	for _, ch := range chats {
		for !slices.Equal(tokens(hook.replies(ch.jid)), ch.want) {
			if time.Now().After(deadline) {
				t.Fatalf("chat %s after the handover: replies carry %q\nwant %q", ch.jid, tokens(hook.replies(ch.jid)), ch.want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if d := hook.duplicateReplies(); d != 0 {
		t.Errorf("%d replies were sent twice", d)
	}
	if os.Getenv("REPLICA_LOGS") != "" {
		for i, g := range procs {
			for j, l := range g.logs {
				t.Logf("replica %d run %d output:\n%s", i, j, l.String())
			}
		}
	}
	for _, g := range procs[:2] {
		g.stop(syscall.SIGTERM)
	}
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func countOwned(owners map[string]string, replica string) int {
	n := 0
	for _, o := range owners {
		if o == replica {
			n++
		}
	}
	return n
}

// waitOwners returns the owner of each instance, by instance name, once
// every one of the n instances has one.
func waitOwners(t *testing.T, g *gatewayProc, n int) map[string]string {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; {
		status, b := g.call("GET", "/instance/fetchInstances", crashAPIKey, nil)
		if status == http.StatusOK {
			var list []struct {
				Name, Owner string
			}
			if err := json.Unmarshal(b, &list); err != nil {
				t.Fatal(err)
			}
			owners := map[string]string{}
			for _, in := range list {
				if in.Owner != "" {
					owners[in.Name] = in.Owner
				}
			}
			if len(owners) == n {
				return owners
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("instances never all owned: %d %s", status, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// replicaHook is the webhook receiver of all the instances. Deliveries are
// at least once, so each event is kept once, by its delivery id, where it
// was first seen; a reply is a send.message event, and one whose message
// id differs but whose text was already sent to the chat is a reply sent
// twice.
type replicaHook struct {
	*httptest.Server
	mu         sync.Mutex
	deliveries map[string]bool
	again      int
	sent       map[string][]string // reply texts by chat
	sentAt     map[string][]time.Time
	sentInst   map[string]string              // chat → instance
	upsert     map[string]map[string][]string // instance → chat → inbound ids
	texts      map[string]bool
	dupReplies int
}

func newReplicaHook(t *testing.T) *replicaHook {
	h := &replicaHook{deliveries: map[string]bool{}, sent: map[string][]string{}, sentAt: map[string][]time.Time{},
		sentInst: map[string]string{}, upsert: map[string]map[string][]string{}, texts: map[string]bool{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			Event    string `json:"event"`
			Instance string `json:"instance"`
			Data     struct {
				Key struct {
					ID        string `json:"id"`
					RemoteJID string `json:"remoteJid"`
				} `json:"key"`
				Message struct {
					Conversation string `json:"conversation"`
				} `json:"message"`
			} `json:"data"`
		}
		if err := json.NewDecoder(r.Body).Decode(&env); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		id := r.Header.Get("X-Wagate-Delivery")
		if id == "" {
			id = env.Event + env.Data.Key.ID
		}
		if h.deliveries[id] {
			h.again++
			return
		}
		h.deliveries[id] = true
		jid := env.Data.Key.RemoteJID
		switch env.Event {
		case "send.message":
			text := env.Data.Message.Conversation
			if h.texts[jid+"\x00"+text] {
				h.dupReplies++
			}
			h.texts[jid+"\x00"+text] = true
			h.sent[jid] = append(h.sent[jid], text)
			h.sentAt[jid] = append(h.sentAt[jid], time.Now())
			h.sentInst[jid] = env.Instance
		case "messages.upsert":
			if h.upsert[env.Instance] == nil {
				h.upsert[env.Instance] = map[string][]string{}
			}
			h.upsert[env.Instance][jid] = append(h.upsert[env.Instance][jid], env.Data.Key.ID)
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *replicaHook) replies(chat string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.sent[chat])
}

func (h *replicaHook) upserts(inst, chat string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.upsert[inst][chat])
}

func (h *replicaHook) redelivered() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.again
}

func (h *replicaHook) duplicateReplies() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.dupReplies
}

// firstRepliesAfter returns how long after t the first reply of any of the
// instances arrived, and the latest of their first replies.
func (h *replicaHook) firstRepliesAfter(t time.Time, instances map[string]bool) (first, last time.Duration, ok bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	firstOf := map[string]time.Duration{}
	for jid, times := range h.sentAt {
		inst := h.sentInst[jid]
		if !instances[inst] {
			continue
		}
		for _, at := range times {
			if at.After(t) {
				if d, seen := firstOf[inst]; !seen || at.Sub(t) < d {
					firstOf[inst] = at.Sub(t)
				}
				break
			}
		}
	}
	for _, d := range firstOf {
		if !ok || d < first {
			first = d
		}
		last = max(last, d)
		ok = true
	}
	return first, last, ok
}
