package gateway_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/gateway"
	"github.com/wagate/wagate/gateway/apidoc"
	"github.com/wagate/wagate/gateway/whatsapp/watest"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

const testAPIKey = "global-test-key-0123456789"

var testSecretKey = bytes.Repeat([]byte{7}, 32)

// TestMain runs every test of the package once per database backend: on
// SQLite, then on PostgreSQL when WAGATE_TEST_POSTGRES_URL is set (see
// store/storetest). startServer and newTestGateway take the backend of the
// pass under way.
func TestMain(m *testing.M) { os.Exit(storetest.RunSuite(m)) }

// server is a real gateway on loopback over a real database: a SQLite file
// in its data dir, or a fresh PostgreSQL database.
type server struct {
	t     *testing.T
	URL   string
	dir   string
	dbURL string
	logs  *syncBuffer
	stop  func() error
}

// option changes the configuration of a test gateway, or how it is built.
type option func(*config.Config, *[]gateway.Option)

// withConfig is an option that changes the configuration.
func withConfig(f func(*config.Config)) option {
	return func(c *config.Config, _ *[]gateway.Option) { f(c) }
}

// withWhatsApp makes the WhatsApp channel's clients with fac: a fake
// whatsmeow client at the socket.
func withWhatsApp(fac *watest.Factory) option {
	return func(_ *config.Config, g *[]gateway.Option) { *g = append(*g, gateway.WithWhatsAppClient(fac.New)) }
}

// startServer starts a gateway whose data lives in dir (a fresh temp dir
// when empty) and stops it when the test ends.
func startServer(t *testing.T, dir string, opts ...option) *server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dir
	cfg.DatabaseURL = databaseURL(t, dir)
	cfg.APIKey = testAPIKey
	cfg.SecretKey = testSecretKey
	cfg.WebhookRetryBase = 20 * time.Millisecond
	cfg.WebhookMaxBackoff = 100 * time.Millisecond
	cfg.WebhookTimeout = 2 * time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.AllowPrivateFetch = true // test servers are on loopback
	cfg.ModelRetryBase = 10 * time.Millisecond
	cfg.SessionSweepEach = 50 * time.Millisecond
	var gwOpts []gateway.Option
	for _, o := range opts {
		o(&cfg, &gwOpts)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	st, err := store.Open(context.Background(), store.OptionsFrom(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg.ServerURL = "http://" + ln.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gateway.New(cfg, st, log, gwOpts...).Run(ctx, ln) }()
	var once sync.Once
	var stopErr error
	s := &server{t: t, URL: "http://" + ln.Addr().String(), dir: dir, dbURL: cfg.DatabaseURL, logs: logs}
	s.stop = func() error {
		once.Do(func() {
			cancel()
			stopErr = <-done
			st.Close()
		})
		return stopErr
	}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("gateway stopped with error: %v", err)
		}
		if t.Failed() && testing.Verbose() {
			t.Logf("gateway log:\n%s", logs.String())
		}
	})
	return s
}

// databaseURL returns the database of the server whose data dir is dir in
// the current backend. A server restarted on the same dir finds the same
// database: for PostgreSQL its URL is kept in the dir.
func databaseURL(t *testing.T, dir string) string {
	t.Helper()
	if storetest.SuiteBackend() == storetest.SQLite {
		return "file:" + filepath.Join(dir, "wagate.db")
	}
	file := filepath.Join(dir, "postgres-url")
	if b, err := os.ReadFile(file); err == nil {
		return string(b)
	}
	url := storetest.NewURL(t, storetest.Postgres)
	if err := os.WriteFile(file, []byte(url), 0o600); err != nil {
		t.Fatal(err)
	}
	return url
}

// response is a decoded API answer.
type response struct {
	Status int
	Body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("response is not a JSON object: %v: %s", err, r.Body)
	}
	return m
}

// messages returns the error envelope's messages.
func (r response) messages(t *testing.T) []string {
	t.Helper()
	var env struct {
		Status   int    `json:"status"`
		Error    string `json:"error"`
		Response struct {
			Message []string `json:"message"`
		} `json:"response"`
	}
	if err := json.Unmarshal(r.Body, &env); err != nil {
		t.Fatalf("not an error envelope: %v: %s", err, r.Body)
	}
	if env.Status != r.Status || env.Error != http.StatusText(r.Status) {
		t.Fatalf("envelope status %d %q does not match HTTP %d: %s", env.Status, env.Error, r.Status, r.Body)
	}
	return env.Response.Message
}

// call sends a request with key in the apikey header (none when empty).
// body is sent as is when it is a string, else JSON-encoded.
func (s *server) call(method, path, key string, body any) response {
	s.t.Helper()
	return s.send(method, path, "apikey", key, body)
}

// send sends a request with key in the header named keyHeader.
func (s *server) send(method, path, keyHeader, key string, body any) response {
	s.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		enc, err := json.Marshal(b)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(enc)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set(keyHeader, key)
	}
	return s.do(req)
}

// do sends req and checks the answer against the OpenAPI document: a
// response its operation does not document for its status, or whose body
// does not match the documented schema, fails the test. Requests that are
// not routes (404, 405) have no operation and are not checked.
func (s *server) do(req *http.Request) response {
	s.t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	if err := checkDocumented(req, resp, b); err != nil {
		s.t.Errorf("%s %s answered %d, which the OpenAPI document does not describe: %v\nbody: %.2000s", req.Method, req.URL.Path, resp.StatusCode, err, b)
	}
	return response{Status: resp.StatusCode, Body: b}
}

// apiRouter finds the documented operation of a request. The document is
// fixed at build time, so it is loaded once per test binary.
var apiRouter = sync.OnceValues(func() (routers.Router, error) {
	b, err := apidoc.Document()
	if err != nil {
		return nil, err
	}
	doc, err := openapi3.NewLoader().LoadFromData(b)
	if err != nil {
		return nil, err
	}
	return legacy.NewRouter(doc)
})

// checkDocumented validates a response against its operation's documented
// response for its status, as kin-openapi's openapi3filter does.
func checkDocumented(req *http.Request, resp *http.Response, body []byte) error {
	router, err := apiRouter()
	if err != nil {
		return err
	}
	probe := req.Clone(context.Background())
	probe.Body = http.NoBody
	route, params, err := router.FindRoute(probe)
	if err != nil {
		return nil // not a route: the coverage test keeps routes and document equal
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: probe, PathParams: params, Route: route},
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
}

// must is call that fails the test unless the status is want.
func (s *server) must(want int, method, path, key string, body any) response {
	s.t.Helper()
	r := s.call(method, path, key, body)
	if r.Status != want {
		s.t.Fatalf("%s %s: status %d, want %d: %s", method, path, r.Status, want, r.Body)
	}
	return r
}

// instance is a created instance with its one-time secrets.
type instance struct {
	Name, ID, Token, Number, Secret string
}

// createInstance creates an EVOLUTION instance whose webhook posts to hookURL
// (no webhook when empty).
func (s *server) createInstance(name, hookURL string) instance {
	s.t.Helper()
	body := map[string]any{"instanceName": name, "integration": "EVOLUTION", "number": "num-" + name}
	if hookURL != "" {
		body["webhook"] = map[string]any{"url": hookURL}
	}
	m := s.must(http.StatusCreated, "POST", "/instance/create", testAPIKey, body).json(s.t)
	inst := instance{Name: name, Token: m["hash"].(string), Number: "num-" + name}
	inst.ID = m["instance"].(map[string]any)["instanceId"].(string)
	if hookURL != "" {
		inst.Secret = m["webhook"].(map[string]any)["secret"].(string)
	}
	return inst
}

// inbound posts a text message to the EVOLUTION channel.
func (s *server) inbound(inst instance, id, chat, text string) response {
	s.t.Helper()
	return s.call("POST", "/webhook/evolution", inst.Token, map[string]any{
		"numberId": inst.Number,
		"key":      map[string]any{"id": id, "remoteJid": chat, "fromMe": false},
		"pushName": "Ana",
		"message":  map[string]any{"conversation": text},
	})
}

// delivery is one webhook request as a receiver saw it.
type delivery struct {
	Path     string
	Header   http.Header
	Body     []byte
	Envelope struct {
		Event       string          `json:"event"`
		Instance    string          `json:"instance"`
		Data        json.RawMessage `json:"data"`
		Destination string          `json:"destination"`
		DateTime    string          `json:"date_time"`
		Sender      string          `json:"sender"`
		ServerURL   string          `json:"server_url"`
	}
	VerifyErr error
}

// data decodes the envelope's data as a message record.
func (d delivery) record(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(d.Envelope.Data, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// receiver is a webhook receiver on loopback. It verifies every signature
// as the README tells users to, records each request, and answers with
// what respond returns (200 by default).
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	secret  string
	got     []delivery
	respond func(n int, d delivery) (status int, header http.Header)
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc.mu.Lock()
		secret := rc.secret
		rc.mu.Unlock()
		raw, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(raw))
		_, err := verify(secret, r)
		d := delivery{Path: r.URL.Path, Header: r.Header.Clone(), Body: raw, VerifyErr: err}
		if err := json.Unmarshal(raw, &d.Envelope); err != nil {
			d.VerifyErr = errors.Join(d.VerifyErr, err)
		}
		rc.mu.Lock()
		n := len(rc.got)
		rc.got = append(rc.got, d)
		respond := rc.respond
		rc.mu.Unlock()
		status := http.StatusOK
		if respond != nil {
			var h http.Header
			status, h = respond(n, d)
			for k, v := range h {
				w.Header()[k] = v
			}
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) setSecret(s string) {
	rc.mu.Lock()
	rc.secret = s
	rc.mu.Unlock()
}

func (rc *receiver) setRespond(f func(n int, d delivery) (int, http.Header)) {
	rc.mu.Lock()
	rc.respond = f
	rc.mu.Unlock()
}

// deliveries returns a copy of every request received so far.
func (rc *receiver) deliveries() []delivery {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]delivery(nil), rc.got...)
}

// events returns the deliveries of one event name.
func (rc *receiver) events(name string) []delivery {
	var out []delivery
	for _, d := range rc.deliveries() {
		if d.Envelope.Event == name {
			out = append(out, d)
		}
	}
	return out
}

// waitEvents waits until n deliveries of event name have arrived.
func (rc *receiver) waitEvents(t *testing.T, name string, n int) []delivery {
	t.Helper()
	var got []delivery
	eventually(t, func() bool { got = rc.events(name); return len(got) >= n },
		"%d %s deliveries", n, name)
	return got
}

// verify is the README's verification example, verbatim: if the README
// changes, this must change with it.
func verify(secret string, r *http.Request) ([]byte, error) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var ts, sig string
	for _, part := range strings.Split(r.Header.Get("X-Wagate-Signature"), ",") {
		k, v, _ := strings.Cut(part, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || math.Abs(time.Since(time.Unix(sec, 0)).Seconds()) > 300 {
		return nil, errors.New("stale or missing timestamp")
	}
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte(ts + "." + string(body)))
	if !hmac.Equal([]byte(sig), []byte(hex.EncodeToString(mac.Sum(nil)))) {
		return nil, errors.New("bad signature")
	}
	return body, nil
}

// eventually polls cond until it holds, failing the test after 15 s. It
// waits for asynchronous work; it asserts nothing about speed.
func eventually(t *testing.T, cond func() bool, format string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+format, args...)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
