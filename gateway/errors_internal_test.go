package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

func newTestGateway(t *testing.T) (*Gateway, *store.Store, *bytes.Buffer) {
	t.Helper()
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.APIKey, cfg.SecretKey = "k", bytes.Repeat([]byte{1}, 32)
	logs := &bytes.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	// The package's TestMain runs every test once per backend.
	cfg.DatabaseURL = storetest.NewURL(t, storetest.SuiteBackend())
	st, err := store.Open(context.Background(), store.OptionsFrom(cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return New(cfg, st, log), st, logs
}

// A bug (an error without a domain code, or a panic) is a 500 that reveals
// nothing but a request id, and the log has the details under that id.
func TestInternalErrorsRevealNothing(t *testing.T) {
	g, _, logs := newTestGateway(t)
	g.echo.GET("/bug", func(echo.Context) error { return errSecret })
	g.echo.GET("/panic", func(echo.Context) error { panic("secret panic detail") })
	for _, path := range []string{"/bug", "/panic"} {
		rec := httptest.NewRecorder()
		g.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != http.StatusInternalServerError {
			t.Fatalf("%s: status %d", path, rec.Code)
		}
		if strings.Contains(rec.Body.String(), "secret") {
			t.Fatalf("%s: body leaks internals: %s", path, rec.Body)
		}
		var body errorBody
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		rid := rec.Header().Get(echo.HeaderXRequestID)
		if rid == "" || body.Status != 500 || !strings.Contains(body.Response.Message[0], rid) {
			t.Fatalf("%s: body %+v, request id %q", path, body, rid)
		}
		if !strings.Contains(logs.String(), "request_id="+rid) || !strings.Contains(logs.String(), "secret") {
			t.Fatalf("%s: log lacks the request id or the cause:\n%s", path, logs)
		}
	}
}

var errSecret = &secretError{}

type secretError struct{}

func (*secretError) Error() string { return "secret database detail" }

func TestReadyzWithoutDatabase(t *testing.T) {
	g, st, _ := newTestGateway(t)
	rec := httptest.NewRecorder()
	g.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	st.Close()
	rec = httptest.NewRecorder()
	g.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Fatalf("status %d with the database closed", rec.Code)
	}
	rec = httptest.NewRecorder()
	g.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/healthz", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("healthz: status %d", rec.Code)
	}
}
