package console

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
)

// TestPagesParse: every embedded page parses with the layout and names
// the blocks the layout needs.
func TestPagesParse(t *testing.T) {
	pages, err := parsePages((&Console{}).funcs())
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"signin", "invite", "overview", "instances", "error"} {
		p, ok := pages[name]
		if !ok {
			t.Fatalf("no page %q", name)
		}
		for _, block := range []string{"layout", "title", "content", "csrf"} {
			if p.Lookup(block) == nil {
				t.Errorf("page %q lacks the block %q", name, block)
			}
		}
	}
}

func TestEventStream(t *testing.T) {
	rec := httptest.NewRecorder()
	c := echo.New().NewContext(httptest.NewRequest("GET", "/console/x", nil), rec)
	s, err := startEvents(c)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.send("message\nid: 9", "<li>one</li>\r\n<li>two</li>"); err != nil {
		t.Fatal(err)
	}
	want := "event: messageid: 9\ndata: <li>one</li>\ndata: <li>two</li>\n\n"
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "text/event-stream" || rec.Body.String() != want {
		t.Fatalf("stream: %d %q %q, want %q", rec.Code, rec.Header().Get("Content-Type"), rec.Body.String(), want)
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/console/instances": "/console/instances", "/console": "/console", "": "/console",
		"https://evil.example": "/console", "//evil.example": "/console", "/consolefoo": "/console", "/api/v1/users": "/console",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
	if !strings.HasPrefix(HashPassword("x"), "$argon2id$") || !CheckPassword(HashPassword("pw"), "pw") || CheckPassword("$argon2id$garbage", "pw") {
		t.Error("password hashing")
	}
}
