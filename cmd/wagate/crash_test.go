package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/wagate/wagate/fakeai"
)

// TestCrashSafety runs the real binary on a SQLite data dir and, while
// customers of several chats write to an EVOLUTION instance whose bot
// debounces and answers in parts with delays, kills it with SIGKILL and
// SIGTERM at random points, restarting it each time. At the end every
// message accepted is answered exactly once, and every part of every
// reply went out once, in order per chat: as the webhook receiver saw the
// send.message events and as the conversations routes list the replies.
//
// The model echoes each turn, so a chat's replies, read in order, must
// carry every token of the chat's messages exactly once and in order,
// wherever the debounce windows and the kills fell.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := filepath.Join(t.TempDir(), "wagate")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, seed))

	ai := fakeai.NewTestServer(t, fakeai.Options{})
	hook := newHook(t)
	g := &gatewayProc{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(func() {
		if t.Failed() {
			for i, l := range g.logs {
				t.Logf("gateway run %d output:\n%s", i, l.String())
			}
		}
	})

	g.start()
	inst := g.setup(hook.URL, ai.BaseURL())

	const chats, perChat, partsPerMsg = 4, 8, 3
	var want [chats][]string // the tokens each chat's replies must carry, in order
	var posters sync.WaitGroup
	for c := range chats {
		for m := range perChat {
			for p := range partsPerMsg {
				want[c] = append(want[c], fmt.Sprintf("c%dm%dp%d", c, m, p))
			}
		}
		posters.Add(1)
		gap := rand.New(rand.NewPCG(seed, uint64(c)))
		go func() {
			defer posters.Done()
			for m := range perChat {
				// Mostly within the debounce window, sometimes past it: turns
				// of one message and of several.
				pause := time.Duration(gap.IntN(250)) * time.Millisecond
				if gap.IntN(4) == 0 {
					pause = 1200 * time.Millisecond
				}
				time.Sleep(pause)
				var paras []string
				for p := range partsPerMsg {
					paras = append(paras, fmt.Sprintf("c%dm%dp%d", c, m, p))
				}
				g.postUntilAccepted(inst, fmt.Sprintf("c%d-m%d", c, m), chatJID(c), strings.Join(paras, "\n\n"))
			}
		}()
	}

	// Rounds of a random run time, then a kill; both signals each time
	// round, in a random order.
	signals := []syscall.Signal{syscall.SIGKILL, syscall.SIGTERM, syscall.SIGKILL, syscall.SIGTERM, syscall.SIGKILL}
	rng.Shuffle(len(signals), func(i, j int) { signals[i], signals[j] = signals[j], signals[i] })
	for i, sig := range signals {
		if i > 0 {
			g.start()
		}
		time.Sleep(time.Duration(200+rng.IntN(1300)) * time.Millisecond)
		t.Logf("round %d: %v", i, sig)
		g.stop(sig)
	}
	g.start()
	posters.Wait()

	deadline := time.Now().Add(40 * time.Second)
	for c := range chats {
		for !slices.Equal(tokens(hook.replies(chatJID(c))), want[c]) {
			if time.Now().After(deadline) {
				t.Fatalf("chat %d: replies carry %q\nwant %q", c, tokens(hook.replies(chatJID(c))), want[c])
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for c := range chats {
		in, out := g.conversation(inst, chatJID(c))
		if len(in) != perChat {
			t.Errorf("chat %d: %d inbound messages stored, want %d", c, len(in), perChat)
		}
		for _, m := range in {
			if m.Status != "answered" {
				t.Errorf("chat %d: message %s is %s (%s)", c, m.ID, m.Status, m.Error)
			}
		}
		var texts []string
		for _, m := range out {
			texts = append(texts, m.Text)
		}
		if got := tokens(texts); !slices.Equal(got, want[c]) {
			t.Errorf("chat %d: stored replies carry %q\nwant %q", c, got, want[c])
		}
		if got := hook.replies(chatJID(c)); !slices.Equal(got, texts) {
			t.Errorf("chat %d: send.message events %q, stored replies %q", c, got, texts)
		}
	}
	g.stop(syscall.SIGTERM)
}

func chatJID(c int) string { return fmt.Sprintf("55119000%04d@s.whatsapp.net", c) }

var token = regexp.MustCompile(`c\d+m\d+p\d+`)

// tokens returns the message tokens the texts carry, in order.
func tokens(texts []string) []string {
	var out []string
	for _, s := range texts {
		out = append(out, token.FindAllString(s, -1)...)
	}
	return out
}

const crashAPIKey = "crash-test-global-key-0123456789"

// gatewayProc is the wagate binary, run again and again on one data dir.
type gatewayProc struct {
	t    *testing.T
	bin  string
	dir  string
	cmd  *exec.Cmd
	logs []*lockedBuffer // each run's output, for a failure
	base atomic.Pointer[string]
	env  []string // more settings, after the defaults
}

var listening = regexp.MustCompile(`msg="wagate is listening" addr=(\S+)`)

// start runs the binary on a port of its choosing, read from its log, and
// waits until it serves.
func (g *gatewayProc) start() {
	g.t.Helper()
	cmd := exec.Command(g.bin)
	cmd.Env = append(os.Environ(),
		"WAGATE_LISTEN=127.0.0.1:0",
		"WAGATE_DATA_DIR="+g.dir,
		"WAGATE_API_KEY="+crashAPIKey,
		"WAGATE_SECRET_KEY="+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{9}, 32)),
		"WAGATE_SHUTDOWN_TIMEOUT=5s",
		"WAGATE_WEBHOOK_RETRY_BASE=20ms",
		"WAGATE_WEBHOOK_MAX_BACKOFF=100ms",
		"WAGATE_LOG_LEVEL=info",
	)
	cmd.Env = append(cmd.Env, g.env...)
	out := &lockedBuffer{}
	g.logs = append(g.logs, out)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		g.t.Fatal(err)
	}
	g.cmd = cmd
	g.t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	for deadline := time.Now().Add(15 * time.Second); ; {
		if m := listening.FindStringSubmatch(out.String()); m != nil {
			base := "http://" + m[1]
			g.base.Store(&base)
			return
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("the gateway did not come up:\n%s", out.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// stop sends sig and waits for the process to end.
func (g *gatewayProc) stop(sig syscall.Signal) {
	g.t.Helper()
	g.base.Store(nil)
	if err := g.cmd.Process.Signal(sig); err != nil {
		g.t.Fatal(err)
	}
	err := g.cmd.Wait()
	if sig == syscall.SIGTERM && err != nil {
		g.t.Fatalf("after SIGTERM the gateway exited with %v", err)
	}
}

var client = &http.Client{Timeout: 10 * time.Second}

// call sends a request to the running gateway; status 0 means it is down
// or went down meanwhile.
func (g *gatewayProc) call(method, path, key string, body any) (int, []byte) {
	base := g.base.Load()
	if base == nil {
		return 0, nil
	}
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, *base+path, rd)
	if err != nil {
		g.t.Error(err)
		return 0, nil
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("apikey", key)
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil
	}
	return resp.StatusCode, b
}

func (g *gatewayProc) must(want int, method, path, key string, body any) map[string]any {
	g.t.Helper()
	status, b := g.call(method, path, key, body)
	if status != want {
		g.t.Fatalf("%s %s: %d, want %d: %s", method, path, status, want, b)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		g.t.Fatalf("%s %s: %v: %s", method, path, err, b)
	}
	return m
}

type crashInstance struct{ name, token, number string }

// setup creates the EVOLUTION instance with its webhook, the credentials
// at the fake model and a bot that debounces and answers in parts.
func (g *gatewayProc) setup(hookURL, aiURL string) crashInstance {
	return g.setupNamed("crash", "5511000000000", hookURL, aiURL, 100)
}

// setupNamed is setup for an instance of the given name and number, whose
// bot waits delayMS between the parts of a reply.
func (g *gatewayProc) setupNamed(name, number, hookURL, aiURL string, delayMS int) crashInstance {
	g.t.Helper()
	inst := crashInstance{name: name, number: number}
	m := g.must(http.StatusCreated, "POST", "/instance/create", crashAPIKey, map[string]any{
		"instanceName": inst.name, "integration": "EVOLUTION", "number": inst.number,
		"webhook": map[string]any{"url": hookURL},
	})
	inst.token = m["hash"].(string)
	creds := g.must(http.StatusCreated, "POST", "/openai/creds/"+inst.name, inst.token, map[string]any{
		"name": "fake", "apiKey": "sk-crash-test-key-0123456789", "baseUrl": aiURL,
	})["id"].(string)
	g.must(http.StatusCreated, "POST", "/openai/create/"+inst.name, inst.token, map[string]any{
		"enabled": true, "openaiCredsId": creds, "botType": "chatCompletion", "model": "gpt-4o", "triggerType": "all",
		"splitMessages": true, "delayMessage": delayMS, "timePerChar": 0, "debounceTime": 1,
	})
	return inst
}

// postUntilAccepted posts a customer message until the gateway answers 200:
// a message whose answer was lost to a kill is posted again, and the
// gateway takes the same id only once.
func (g *gatewayProc) postUntilAccepted(inst crashInstance, id, chat, text string) {
	body := map[string]any{
		"numberId": inst.number,
		"key":      map[string]any{"id": id, "remoteJid": chat, "fromMe": false},
		"pushName": "Ana",
		"message":  map[string]any{"conversation": text},
	}
	for deadline := time.Now().Add(40 * time.Second); time.Now().Before(deadline); {
		status, b := g.call("POST", "/webhook/evolution", inst.token, body)
		switch {
		case status == http.StatusOK:
			return
		case status != 0 && status < 500:
			g.t.Errorf("message %s: %d: %s", id, status, b)
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	g.t.Errorf("message %s never accepted", id)
}

type crashMessage struct {
	ID, Text, Status, Error string
}

// conversation returns the chat's inbound and outbound messages, oldest
// first, through the conversations routes.
func (g *gatewayProc) conversation(inst crashInstance, chat string) (in, out []crashMessage) {
	g.t.Helper()
	for _, dir := range []string{"in", "out"} {
		status, b := g.call("GET", "/conversations/"+inst.name+"/"+chat+"/messages?order=asc&limit=200&direction="+dir, inst.token, nil)
		if status != http.StatusOK {
			g.t.Fatalf("messages of %s: %d: %s", chat, status, b)
		}
		var page struct {
			Data       []crashMessage `json:"data"`
			NextCursor *string        `json:"nextCursor"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			g.t.Fatal(err)
		}
		if page.NextCursor != nil {
			g.t.Fatalf("more than a page of messages in %s", chat)
		}
		if dir == "in" {
			in = page.Data
		} else {
			out = page.Data
		}
	}
	return in, out
}

// hook is the webhook receiver. Deliveries are at least once (one cut off
// by a kill is made again), so each message is kept once, by its id, where
// it was first seen.
type hook struct {
	*httptest.Server
	mu   sync.Mutex
	seen map[string]bool
	sent map[string][]string // texts of send.message by chat, in order
}

func newHook(t *testing.T) *hook {
	h := &hook{seen: map[string]bool{}, sent: map[string][]string{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var env struct {
			Event string `json:"event"`
			Data  struct {
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
		if env.Event == "send.message" {
			h.mu.Lock()
			if !h.seen[env.Data.Key.ID] {
				h.seen[env.Data.Key.ID] = true
				h.sent[env.Data.Key.RemoteJID] = append(h.sent[env.Data.Key.RemoteJID], env.Data.Message.Conversation)
			}
			h.mu.Unlock()
		}
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hook) replies(chat string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.sent[chat])
}

// lockedBuffer collects the output of the runs, read while one is running.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
