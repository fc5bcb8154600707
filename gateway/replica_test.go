package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/gateway/whatsapp/watest"
	"github.com/wagate/wagate/store/storetest"
)

// replicaPair starts two gateways on one PostgreSQL database, with short
// leases; it skips the SQLite pass, where one process owns the file.
func replicaPair(t *testing.T) (a, b *server) {
	t.Helper()
	return replicaPairWith(t, func(string) []option { return nil })
}

// replicaPairWith is replicaPair with the options each replica ("a", "b")
// gets.
func replicaPairWith(t *testing.T, each func(name string) []option) (a, b *server) {
	t.Helper()
	if storetest.SuiteBackend() != storetest.Postgres {
		t.Skip("replicas share a PostgreSQL database")
	}
	opts := func(name string) []option {
		return append(each(name), withConfig(func(c *config.Config) { c.LeaseDuration = time.Second; c.ReplicaName = name }))
	}
	dirA, dirB := t.TempDir(), t.TempDir()
	a = startServer(t, dirA, opts("a")...)
	url, err := os.ReadFile(filepath.Join(dirA, "postgres-url"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dirB, "postgres-url"), url, 0o600); err != nil {
		t.Fatal(err)
	}
	b = startServer(t, dirB, opts("b")...)
	return a, b
}

// owner returns the replica owning the instance, once it has one.
func (s *server) owner(name string) string {
	s.t.Helper()
	var owner string
	eventually(s.t, func() bool {
		var list []struct{ Name, Owner string }
		if err := json.Unmarshal(s.must(http.StatusOK, "GET", "/instance/fetchInstances", testAPIKey, nil).Body, &list); err != nil {
			s.t.Fatal(err)
		}
		for _, in := range list {
			if in.Name == name {
				owner = in.Owner
			}
		}
		return owner != ""
	}, "an owner of %s", name)
	return owner
}

// TestReplicasShareWork posts an EVOLUTION instance's inbound messages and
// a sendText to the replica that does not own it: it stores them and wakes
// the owner, whose bot answers and whose webhook lane delivers everything.
func TestReplicasShareWork(t *testing.T) {
	a, b := replicaPair(t)
	ai := fakeai.NewTestServer(t, fakeai.Options{})
	rc := newReceiver(t)
	inst := a.createInstance("alpha", rc.URL)
	a.createBot(inst, simpleBot(a.createCreds(inst, "fake", testProviderKey, ai.BaseURL()), nil))
	other := map[string]*server{"a": b, "b": a}[a.owner("alpha")]

	for i := range 3 {
		other.must(http.StatusOK, "POST", "/webhook/evolution", inst.Token, map[string]any{
			"numberId": inst.Number, "key": map[string]any{"id": fmt.Sprintf("m%d", i), "remoteJid": "5511999@s.whatsapp.net", "fromMe": false},
			"message": map[string]any{"conversation": fmt.Sprintf("hello %d", i)},
		})
	}
	other.must(http.StatusCreated, "POST", "/message/sendText/alpha", inst.Token, map[string]any{"number": "5511888", "text": "from the API"})

	sent := rc.waitEvents(t, "send.message", 4)
	var texts []string
	for _, d := range sent {
		texts = append(texts, d.record(t)["message"].(map[string]any)["conversation"].(string))
	}
	got := strings.Join(texts, " | ")
	for _, want := range []string{"echo: hello 0", "echo: hello 1", "echo: hello 2", "from the API"} {
		if strings.Count(got, want) != 1 {
			t.Errorf("send.message events %q: want %q once", got, want)
		}
	}
	if ups := rc.waitEvents(t, "messages.upsert", 3); len(ups) != 3 {
		t.Errorf("%d messages.upsert events, want 3", len(ups))
	}
	// Both replicas show who owns the instance; each counts what it owns.
	owner := a.owner("alpha")
	for name, s := range map[string]*server{"a": a, "b": b} {
		_, page := s.scrape("")
		want := map[bool]string{true: "1", false: "0"}[name == owner]
		for _, line := range []string{`wagate_instance_owner{instance="alpha",replica="` + owner + `"} 1`, "wagate_replica_instances_owned " + want} {
			if !strings.Contains(page, line) {
				t.Errorf("/metrics of %s lacks %q", name, line)
			}
		}
	}
}

// TestReplicasWebchatTurns has one visitor write to both replicas, one
// message after another and then two at once: each request gets its own
// answer from the replica that holds it, and the conversation holds every
// message with one answer, the turns one at a time.
func TestReplicasWebchatTurns(t *testing.T) {
	a, b := replicaPair(t)
	ai := fakeai.NewTestServer(t, fakeai.Options{})
	credsID := a.orgCreds("org-fake", chatbotProviderKey, ai.BaseURL())
	cb := a.createChatbot("Olivia", testAPIKey)
	a.patchChatbot(cb.ID, map[string]any{"settings": map[string]any{"prompt": "You are Olivia.", "model": "gpt-4o-mini",
		"openaiCredsId": credsID}})
	chat := func(s *server, text string) map[string]any {
		return s.apiMust(http.StatusOK, "POST", "/api/external/chatbot/"+cb.ID+"/chat?stream=false", cb.Key,
			chatBody("visitor-1", text)).json(t)
	}
	var session string
	for i, s := range []*server{a, b, a, b} {
		ans := chat(s, fmt.Sprintf("turn %d", i))
		if got := ans["message"].(map[string]any)["content"]; got != fmt.Sprintf("echo: turn %d", i) {
			t.Fatalf("turn %d answered %q", i, got)
		}
		session = ans["sessionId"].(string)
	}
	var wg sync.WaitGroup
	answers := make([]string, 2)
	for i, s := range []*server{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			answers[i] = chat(s, fmt.Sprintf("together %d", i))["message"].(map[string]any)["content"].(string)
		}()
	}
	wg.Wait()
	for i, got := range answers {
		if want := fmt.Sprintf("echo: together %d", i); got != want {
			t.Errorf("request %d answered %q, want %q", i, got, want)
		}
	}
	r := a.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+cb.ID+"/conversations/"+session+"/messages", cb.Key, nil)
	var page struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(r.Body, &page); err != nil {
		t.Fatal(err)
	}
	// Each user message is followed by its own answer: turns never overlap.
	var users int
	for i, m := range page.Data {
		if m["sender_type"] != "user" {
			continue
		}
		users++
		text := m["content"].(string)
		if i+1 >= len(page.Data) || page.Data[i+1]["content"] != "echo: "+text {
			t.Errorf("message %q is not followed by its answer: %s", text, senders(page.Data))
		}
	}
	if users != 6 || len(page.Data) != 12 {
		t.Errorf("conversation has %d messages, %d from the visitor; want 12 and 6: %s", len(page.Data), users, senders(page.Data))
	}
}

// TestReplicaFencing keeps a replica from renewing its lease (the lease
// table is locked, as a lost database connection would leave it): the
// replica stops acting for its instance before the lease ends, a message
// arriving meanwhile waits, stored, and when the replica takes the
// instance back its bot answers the message once.
func TestReplicaFencing(t *testing.T) {
	if storetest.SuiteBackend() != storetest.Postgres {
		t.Skip("leases are PostgreSQL's")
	}
	s := startServer(t, "", withConfig(func(c *config.Config) { c.LeaseDuration = time.Second; c.ReplicaName = "solo" }))
	ai := fakeai.NewTestServer(t, fakeai.Options{})
	rc := newReceiver(t)
	inst := s.createInstance("alpha", rc.URL)
	s.createBot(inst, simpleBot(s.createCreds(inst, "fake", testProviderKey, ai.BaseURL()), nil))
	s.owner("alpha")

	db := storetest.RawDB(t, s.dbURL)
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec("LOCK TABLE instance_owners IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	eventually(t, func() bool { return strings.Contains(s.logs.String(), "stops acting for it") }, "the replica to fence itself")
	s.inbound(inst, "m1", "5511999@s.whatsapp.net", "while fenced")
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	sent := rc.waitEvents(t, "send.message", 1)
	if got := sent[0].record(t)["message"].(map[string]any)["conversation"]; got != "echo: while fenced" {
		t.Fatalf("answered %q", got)
	}
	if n := strings.Count(s.logs.String(), "replica owns an instance"); n < 2 {
		t.Errorf("the replica took the instance %d times, want it taken again after the fence", n)
	}
	s.inbound(inst, "m2", "5511999@s.whatsapp.net", "after")
	if sent := rc.waitEvents(t, "send.message", 2); len(sent) != 2 {
		t.Errorf("%d replies, want 2", len(sent))
	}
}

// TestReplicasForwardWhatsApp asks the replica that does not own a
// WhatsApp instance to connect it: the request goes to the owner, whose
// client pairs, and the live state reads alike on both replicas.
func TestReplicasForwardWhatsApp(t *testing.T) {
	facs := map[string]*watest.Factory{"a": watest.NewFactory(), "b": watest.NewFactory()}
	a, b := replicaPairWith(t, func(name string) []option { return []option{withWhatsApp(facs[name])} })
	servers := map[string]*server{"a": a, "b": b}
	rc := newReceiver(t)
	a.createWhatsApp("wa", rc)
	owner := a.owner("wa")
	other := map[string]string{"a": "b", "b": "a"}[owner]

	cl, r := connectQR(t, servers[other], facs[owner], "wa", testAPIKey, "2@ref,noise,identity,adv")
	if r.Status != http.StatusOK || r.json(t)["code"] != "2@ref,noise,identity,adv" {
		t.Fatalf("connect through %s: %d %s", other, r.Status, r.Body)
	}
	if n := len(facs[other].Clients()); n != 0 {
		t.Errorf("replica %s, which does not own the instance, made %d WhatsApp clients", other, n)
	}
	for name, s := range servers {
		if st := s.state("wa"); st["state"] != "connecting" {
			t.Errorf("state on %s while pairing = %v", name, st)
		}
	}
	cl.Disconnect()
}

// TestReplicasForwardConsole connects a WhatsApp instance from the
// console of the replica that does not own it: the page runs on the owner,
// whose client pairs, and the other replica makes no client of its own.
func TestReplicasForwardConsole(t *testing.T) {
	facs := map[string]*watest.Factory{"a": watest.NewFactory(), "b": watest.NewFactory()}
	a, b := replicaPairWith(t, func(name string) []option { return []option{withWhatsApp(facs[name])} })
	servers := map[string]*server{"a": a, "b": b}
	a.createWhatsApp("wa", newReceiver(t))
	owner := a.owner("wa")
	other := map[string]string{"a": "b", "b": "a"}[owner]
	s := servers[other]
	s.createConsoleUser(s.defaultOrgID(), "olga@example.com", "owner")
	se := s.signInAPI("olga@example.com", testPassword)

	got := make(chan response, 1)
	go func() { got <- se.call("POST", "/console/instances/wa/connect", nil) }()
	cl, err := facs[owner].Next(15 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitConnect(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	cl.QR(whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@ref,noise,identity,adv", Timeout: time.Minute})
	if r := <-got; r.Status != http.StatusOK || !strings.Contains(string(r.Body), "Scan") && !strings.Contains(string(r.Body), "QR") {
		t.Fatalf("connect through %s's console: %d %.500s", other, r.Status, r.Body)
	}
	if n := len(facs[other].Clients()); n != 0 {
		t.Errorf("replica %s, which does not own the instance, made %d WhatsApp clients", other, n)
	}
	cl.Disconnect()
}

// TestReplicaMaxInstances caps each of two replicas at one instance: of
// three instances two are owned, one by each replica.
func TestReplicaMaxInstances(t *testing.T) {
	a, b := replicaPairWith(t, func(string) []option {
		return []option{withConfig(func(c *config.Config) { c.ReplicaMaxInstances = 1 })}
	})
	for _, name := range []string{"one", "two", "three"} {
		a.createInstance(name, "")
	}
	eventually(t, func() bool {
		var list []struct{ Name, Owner string }
		if err := json.Unmarshal(b.must(http.StatusOK, "GET", "/instance/fetchInstances", testAPIKey, nil).Body, &list); err != nil {
			t.Fatal(err)
		}
		owned := map[string]int{}
		for _, in := range list {
			if in.Owner != "" {
				owned[in.Owner]++
			}
		}
		if owned["a"] > 1 || owned["b"] > 1 {
			t.Fatalf("a replica owns more than its limit: %v", owned)
		}
		return owned["a"] == 1 && owned["b"] == 1
	}, "one instance owned by each replica")
}

// TestReplicasWebchatEvents has a visitor's event stream open on one
// replica while an operator writes in the conversation through the other:
// the stream receives the operator's message.
func TestReplicasWebchatEvents(t *testing.T) {
	a, b := replicaPair(t)
	ai := fakeai.NewTestServer(t, fakeai.Options{})
	credsID := a.orgCreds("org-fake", chatbotProviderKey, ai.BaseURL())
	cb := a.createChatbot("Olivia", testAPIKey)
	a.patchChatbot(cb.ID, map[string]any{"settings": map[string]any{"prompt": "You are Olivia.", "model": "gpt-4o-mini",
		"openaiCredsId": credsID}})
	ea, eb := &webEnv{t: t, s: a, ai: ai, cb: cb}, &webEnv{t: t, s: b, ai: ai, cb: cb}
	ea.makePublic(nil)
	tok := ea.publicCall("POST", "/sessions", "", "", nil).json(t)["visitorToken"].(string)
	first := ea.publicCall("POST", "/chat?stream=false", "", tok, map[string]any{"content": "hello"}).json(t)
	sid := first["sessionId"].(string)

	// Bounded: a message that never comes ends the stream, failing the test.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", eb.s.URL+"/api/public/chatbots/"+cb.ID+"/events?visitor="+url.QueryEscape(tok), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			t.Fatalf("event stream ended before it opened: %v", err)
		}
		if strings.HasPrefix(line, ": open") {
			break
		}
	}
	conv := "/api/external/chatbot/" + cb.ID + "/conversations/" + sid
	a.apiMust(http.StatusOK, "PATCH", conv, cb.Key, map[string]any{"is_human_mode": true})
	a.apiMust(http.StatusCreated, "POST", conv+"/messages", cb.Key, map[string]any{"content": "Carla here, hi!"})
	evs := readSSE(t, rd, func(ev sseEvent) bool { return ev.Name == "message" })
	if len(evs) == 0 || evs[len(evs)-1].Data["content"] != "Carla here, hi!" {
		t.Fatalf("events on the other replica: %v", evs)
	}
}
