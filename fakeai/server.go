// Package fakeai is an OpenAI-compatible model server for tests, local demos
// and benchmarks. It speaks the wire format of the real API closely enough for
// the real go-openai client to be pointed at it: tests exercise our actual
// client code and only the network edge is fake.
//
// Replies are deterministic by default (an echo of the last user turn with a
// prefix) and can be scripted per call: fixed replies, tool calls, HTTP errors
// with Retry-After, delays and dropped connections. Every request is recorded
// so tests can assert exactly what the gateway sent.
package fakeai

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// DefaultPrefix starts every default (echo) reply.
const DefaultPrefix = "echo: "

// maxBody mirrors OpenAI's 25 MB upload limit plus room for the multipart
// envelope; nothing we accept legitimately needs more.
const maxBody = 26 << 20

// Options configure a Server. The zero value is usable.
type Options struct {
	// Prefix starts every echo reply; empty means DefaultPrefix.
	Prefix string
	// Latency is added to every model call (chat, responses, transcription),
	// on top of any scripted delay. SetLatency changes it later.
	Latency time.Duration
	// Models served by /v1/models; nil means DefaultModels().
	Models []string
	// StrictModels answers 404 model_not_found for a model not in Models, as
	// OpenAI does. Off by default so tests can use any model name.
	StrictModels bool
	// RejectKeys answer 401 invalid_api_key, to simulate revoked credentials.
	RejectKeys []string
	// Transcribe computes the default transcript of an audio upload; nil means
	// "transcript of <N> bytes".
	Transcribe func(audio []byte, filename string) string
	// MaxRecorded bounds the recorded requests, keeping the newest; 0 keeps
	// all (tests), a negative value records nothing (long benchmarks).
	MaxRecorded int
	// Logger receives one line per request; nil discards.
	Logger *slog.Logger
	// RequestsPerMinute limits the model calls of each API key as OpenAI
	// does (a bucket refilling continuously): every model call answers with
	// x-ratelimit-limit/remaining/reset-requests, and calls over the limit
	// get 429 with Retry-After. 0 means no limit.
	RequestsPerMinute int
}

// DefaultModels returns the model ids listed when Options.Models is nil.
func DefaultModels() []string {
	return []string{
		"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-5-mini", "o4-mini",
		"gpt-4o-mini-transcribe", "gpt-4o-transcribe", "whisper-1",
	}
}

// Server is the fake. Its methods are safe for concurrent use.
type Server struct {
	prefix     string
	models     []string
	strict     bool
	transcribe func([]byte, string) string
	maxRec     int
	log        *slog.Logger

	mu          sync.Mutex
	latency     time.Duration
	rejected    map[string]bool
	script      []Outcome // chat completions and responses, in order
	transcripts []Outcome
	embeddings  []Outcome
	records     []*Request
	seq         int
	ids         map[string]int
	stored      *responseStore
	limit       *requestLimit // nil: no rate limit
	changed     chan struct{} // closed and replaced whenever a record changes

	httpSrv *http.Server
	baseURL string
}

// New returns a Server; serve it with Handler or Start.
func New(opts Options) *Server {
	s := &Server{
		prefix:     opts.Prefix,
		models:     opts.Models,
		strict:     opts.StrictModels,
		transcribe: opts.Transcribe,
		maxRec:     opts.MaxRecorded,
		log:        opts.Logger,
		latency:    opts.Latency,
		rejected:   make(map[string]bool),
		ids:        make(map[string]int),
		stored:     newResponseStore(maxStoredResponses),
		changed:    make(chan struct{}),
	}
	if opts.RequestsPerMinute > 0 {
		s.limit = &requestLimit{rpm: float64(opts.RequestsPerMinute), buckets: map[string]*bucket{}}
	}
	if s.prefix == "" {
		s.prefix = DefaultPrefix
	}
	if s.models == nil {
		s.models = DefaultModels()
	}
	if s.transcribe == nil {
		s.transcribe = func(audio []byte, _ string) string {
			return fmt.Sprintf("transcript of %d bytes", len(audio))
		}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	for _, k := range opts.RejectKeys {
		s.rejected[k] = true
	}
	return s
}

// TB is the part of testing.TB that NewTestServer needs; taking an interface
// keeps the testing package out of the standalone binary.
type TB interface {
	Helper()
	Fatalf(format string, args ...any)
	Cleanup(func())
}

// NewTestServer starts a Server on 127.0.0.1 with a random port and closes it
// when the test ends.
func NewTestServer(tb TB, opts Options) *Server {
	tb.Helper()
	s := New(opts)
	if _, err := s.Start("127.0.0.1:0"); err != nil {
		tb.Fatalf("fakeai: %v", err)
	}
	tb.Cleanup(func() { _ = s.Close() })
	return s
}

// Handler serves the OpenAI routes under /v1.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Start listens on addr and serves in the background. It returns the base URL
// in the form go-openai's ClientConfig.BaseURL expects ("http://host:port/v1").
func (s *Server) Start(addr string) (string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("fakeai: listen %s: %w", addr, err)
	}
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	base := "http://" + dialable(ln.Addr()) + "/v1"
	s.mu.Lock()
	s.httpSrv, s.baseURL = srv, base
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("fakeai: serve", "err", err)
		}
	}()
	return base, nil
}

// dialable turns a wildcard listen address into one a client can dial.
func dialable(a net.Addr) string {
	tcp, ok := a.(*net.TCPAddr)
	if !ok || !tcp.IP.IsUnspecified() {
		return a.String()
	}
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
}

// BaseURL is the URL returned by Start, empty before it.
func (s *Server) BaseURL() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.baseURL
}

// Close stops a started server at once, cutting open streams.
func (s *Server) Close() error {
	s.mu.Lock()
	srv := s.httpSrv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Close(); err != nil {
		return fmt.Errorf("fakeai: close: %w", err)
	}
	return nil
}

// Shutdown stops a started server gracefully, waiting for calls in flight
// until ctx ends.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	srv := s.httpSrv
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("fakeai: shutdown: %w", err)
	}
	return nil
}

// SetLatency changes the latency added to every model call.
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// RejectKey makes key answer 401 from now on.
func (s *Server) RejectKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rejected[key] = true
}

// AcceptKey undoes RejectKey.
func (s *Server) AcceptKey(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.rejected, key)
}

// route is one endpoint: prepare decodes the body into the record before it
// is published (so readers never race with the decoding), serve answers.
type route struct {
	method   string
	endpoint Endpoint
	prepare  func(*Request)
	serve    func(w http.ResponseWriter, r *http.Request, req *Request)
}

func (s *Server) route(path string) (route, bool) {
	switch {
	case path == "/v1/models":
		return route{method: http.MethodGet, endpoint: EndpointModels, serve: s.serveModels}, true
	case strings.HasPrefix(path, "/v1/models/") && len(path) > len("/v1/models/"):
		return route{method: http.MethodGet, endpoint: EndpointModels, serve: s.serveModel}, true
	case path == "/v1/chat/completions":
		return route{method: http.MethodPost, endpoint: EndpointChat, prepare: prepareChat, serve: s.serveChat}, true
	case path == "/v1/responses":
		return route{method: http.MethodPost, endpoint: EndpointResponses, prepare: prepareResponses, serve: s.serveResponses}, true
	case path == "/v1/embeddings":
		return route{method: http.MethodPost, endpoint: EndpointEmbeddings, serve: s.serveEmbeddings}, true
	case path == "/v1/audio/transcriptions":
		return route{method: http.MethodPost, endpoint: EndpointTranscriptions, prepare: prepareTranscription, serve: s.serveTranscription}, true
	}
	return route{}, false
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt, found := s.route(r.URL.Path)
	key, _ := bearer(r.Header.Get("Authorization"))
	req := &Request{
		Received: start,
		Method:   r.Method,
		Path:     r.URL.Path,
		Endpoint: rt.endpoint,
		APIKey:   key,
		Header:   r.Header.Clone(),
	}
	raw, readErr := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if len(raw) > 0 {
		req.Raw = raw
		if looksLikeJSONObject(raw) {
			_ = json.Unmarshal(raw, &req.Body) // a bad body is reported by the endpoint
		}
	}
	if found && readErr == nil && r.Method == rt.method && rt.prepare != nil {
		rt.prepare(req)
	}
	seq := s.publish(req)
	// The status is recorded before the first byte leaves, so a test that
	// reads Requests right after its call returned sees it settled.
	sw := &statusWriter{ResponseWriter: w, onStatus: func(code int) {
		s.update(req, func(q *Request) { q.Status = code })
	}}
	sw.Header().Set("X-Request-Id", "req_"+strconv.Itoa(seq))

	defer func() {
		status := sw.status
		switch {
		case status == 0 && r.Context().Err() != nil:
			status = StatusClientClosed
		case status == 0:
			status = http.StatusOK
		}
		if status != sw.status {
			s.update(req, func(q *Request) { q.Status = status })
		}
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "fakeai request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", status), slog.String("key", maskKey(key)),
			slog.Duration("duration", time.Since(start)))
	}()

	switch {
	case !found:
		writeError(sw, apiError{Status: http.StatusNotFound,
			Message: fmt.Sprintf("Invalid URL (%s %s)", r.Method, r.URL.Path)})
		return
	case r.Method != rt.method:
		sw.Header().Set("Allow", rt.method)
		writeError(sw, apiError{Status: http.StatusMethodNotAllowed,
			Message: fmt.Sprintf("Invalid method for URL (%s %s)", r.Method, r.URL.Path)})
		return
	}
	if e, ok := s.authenticate(r); !ok {
		writeError(sw, e)
		return
	}
	if readErr != nil {
		writeError(sw, apiError{Status: http.StatusRequestEntityTooLarge,
			Message: fmt.Sprintf("Maximum content size limit (%d) exceeded.", maxBody)})
		return
	}
	rt.serve(sw, r, req)
}

// looksLikeJSONObject decides whether to decode Body; the Content-Type is not
// trusted because OpenAI itself does not insist on it.
func looksLikeJSONObject(raw []byte) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

func (s *Server) authenticate(r *http.Request) (apiError, bool) {
	key, ok := bearer(r.Header.Get("Authorization"))
	if !ok {
		return apiError{Status: http.StatusUnauthorized, Code: "invalid_api_key",
			Message: "You didn't provide an API key. You need to provide your API key in an " +
				"Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."}, false
	}
	s.mu.Lock()
	rejected := s.rejected[key]
	s.mu.Unlock()
	if rejected {
		// The key is masked like OpenAI does, so logs of error bodies never
		// carry a usable credential.
		return apiError{Status: http.StatusUnauthorized, Code: "invalid_api_key",
			Message: fmt.Sprintf("Incorrect API key provided: %s. You can find your API key at "+
				"https://platform.openai.com/account/api-keys.", maskKey(key))}, false
	}
	return apiError{}, true
}

func bearer(h string) (string, bool) {
	scheme, key, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	key = strings.TrimSpace(key)
	return key, key != ""
}

// maskKey keeps just enough of a key to tell keys apart in logs.
func maskKey(key string) string {
	if key == "" {
		return ""
	}
	if len(key) <= 8 {
		return "***"
	}
	return key[:3] + "***" + key[len(key)-4:]
}

// nextID hands out deterministic ids per prefix: chatcmpl-1, resp_1, call_1…
func (s *Server) nextID(prefix string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[prefix]++
	return prefix + strconv.Itoa(s.ids[prefix])
}

// wait sleeps for the global latency plus extra, returning false when the
// client gave up first so the handler can drop the answer.
func (s *Server) wait(ctx context.Context, extra time.Duration) bool {
	s.mu.Lock()
	d := s.latency + extra
	s.mu.Unlock()
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// apiError is OpenAI's error envelope plus the HTTP status it travels with.
type apiError struct {
	Status     int
	Message    string
	Type       string // default derived from Status
	Param      string // "" encodes as null
	Code       string // "" encodes as null
	RetryAfter time.Duration
}

func writeError(w http.ResponseWriter, e apiError) {
	if e.Type == "" {
		e.Type = errorType(e.Status)
	}
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		w.Header().Set("Retry-After-Ms", strconv.FormatInt(e.RetryAfter.Milliseconds(), 10))
	}
	body := struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    *string `json:"code"`
		} `json:"error"`
	}{}
	body.Error.Message, body.Error.Type = e.Message, e.Type
	if e.Param != "" {
		body.Error.Param = &e.Param
	}
	if e.Code != "" {
		body.Error.Code = &e.Code
	}
	writeJSON(w, e.Status, body)
}

func errorType(status int) string {
	switch {
	case status == http.StatusTooManyRequests:
		return "requests"
	case status == http.StatusForbidden:
		return "permission_error"
	case status >= 500:
		return "server_error"
	}
	return "invalid_request_error"
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		// Only our own response types get here; failing loudly beats a
		// half-written body that a client would misread.
		panic(fmt.Errorf("fakeai: encoding response: %w", err))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// disconnect drops the connection without an answer, as a crashed upstream or
// a broken proxy would.
func disconnect(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (HTTP/2): abort the stream instead.
		if sw, ok := w.(*statusWriter); ok {
			sw.setStatus(StatusDisconnected)
		}
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

// statusWriter remembers what the handler answered, for the record and log.
type statusWriter struct {
	http.ResponseWriter
	status   int
	onStatus func(int) // called once, before the status is sent
}

func (w *statusWriter) setStatus(code int) {
	if w.status == 0 {
		w.status = code
		w.onStatus(code)
	}
}

func (w *statusWriter) WriteHeader(code int) {
	w.setStatus(code)
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.setStatus(http.StatusOK)
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach Flush and Hijack.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Hijack is called through ResponseController; record it so the request log
// shows a dropped connection instead of a phantom 200.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, rw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err == nil {
		w.setStatus(StatusDisconnected)
	}
	return conn, rw, err
}
