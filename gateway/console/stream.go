package console

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
)

// Partial updates. A page answers htmx with one of its blocks rather than
// the whole layout: renderPartial for a request (hx-get, hx-post), and a
// stream of server-sent events for live regions, which the vendored SSE
// extension swaps in (sse-connect on the element, sse-swap="<event>" on
// its targets; mark the region aria-live="polite").

// renderPartial writes the template block of page name (a {{define}} in
// templates/<name>.html) alone, without the layout.
func (cs *Console) renderPartial(c echo.Context, status int, name, block string, data any) error {
	html, err := cs.fragment(c, name, block, data)
	if err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTML(status, html)
}

// fragment renders one block of page name with data, as the page would.
func (cs *Console) fragment(c echo.Context, name, block string, data any) (string, error) {
	t, ok := cs.pages[name]
	if !ok {
		return "", wagate.Errorf(wagate.EINTERNAL, "console: no page %q", name)
	}
	v := view{Page: data}
	if p := SessionOf(c); p != nil {
		v.Session, v.CSRF = p, p.Session.CSRFToken
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, block, v); err != nil {
		return "", err
	}
	return b.String(), nil
}

// eventStream is an open text/event-stream answer.
type eventStream struct {
	w http.ResponseWriter
	f http.Flusher
}

// startEvents begins a server-sent event stream. The handler then sends
// until the request's context is done (the page went away or the server
// is stopping).
func startEvents(c echo.Context) (*eventStream, error) {
	f, ok := c.Response().Writer.(http.Flusher)
	if !ok {
		return nil, wagate.Errorf(wagate.EINTERNAL, "console: the response cannot stream")
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // a proxy must not hold events back
	c.Response().WriteHeader(http.StatusOK)
	f.Flush()
	return &eventStream{w: c.Response(), f: f}, nil
}

// send writes one event whose data is html (several lines are several
// data fields, which the browser joins again).
func (s *eventStream) send(event, html string) error {
	var b strings.Builder
	if event != "" {
		fmt.Fprintf(&b, "event: %s\n", strings.NewReplacer("\r", "", "\n", "").Replace(event))
	}
	for _, line := range strings.Split(strings.ReplaceAll(html, "\r\n", "\n"), "\n") {
		fmt.Fprintf(&b, "data: %s\n", line)
	}
	b.WriteString("\n")
	if _, err := s.w.Write([]byte(b.String())); err != nil {
		return err
	}
	s.f.Flush()
	return nil
}
