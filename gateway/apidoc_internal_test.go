package gateway

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate/gateway/apidoc"
	"github.com/wagate/wagate/gateway/console"
)

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// TestDocumentCoversEveryRoute keeps /openapi.json and the router in step:
// every route echo serves is an operation of the document (":param" is
// "{param}" there), and every operation is a route.
func TestDocumentCoversEveryRoute(t *testing.T) {
	g, _, _ := newTestGateway(t)
	routes := map[string]bool{}
	for _, r := range g.echo.Routes() {
		// echo registers internal routes under a method name of its own, not
		// an HTTP method: a group adds echo.RouteNotFound catch-alls ("/x"
		// and "/x/*") so its middleware (CORS, …) runs for unknown paths
		// under it. They answer no request a client makes on purpose and are
		// not operations, so the document does not list them.
		if r.Method == echo.RouteNotFound {
			continue
		}
		// The console's pages are HTML for browsers, not API operations;
		// what they do is also a documented /api/v1 route.
		if r.Path == console.Root || strings.HasPrefix(r.Path, console.Root+"/") {
			continue
		}
		routes[strings.ToLower(r.Method)+" "+echoParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	b, err := apidoc.Document()
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for path, item := range doc.Paths {
		for method := range item {
			if slices.Contains([]string{"get", "head", "post", "put", "patch", "delete", "options", "trace"}, method) {
				documented[method+" "+path] = true
			}
		}
	}
	var missing, extra []string
	for r := range routes {
		if !documented[r] {
			missing = append(missing, r)
		}
	}
	for d := range documented {
		if !routes[d] {
			extra = append(extra, d)
		}
	}
	slices.Sort(missing)
	slices.Sort(extra)
	if len(missing) > 0 {
		t.Errorf("routes missing from the OpenAPI document; add each to its family's file in gateway/apidoc/spec/ (see the package comment):\n  %s", strings.Join(missing, "\n  "))
	}
	if len(extra) > 0 {
		t.Errorf("operations of the OpenAPI document that are not routes; remove them from gateway/apidoc/spec/ or register the route:\n  %s", strings.Join(extra, "\n  "))
	}
}
