// Package console is the web console served at /console: server-rendered
// html/template pages with htmx for partial updates, for the owners,
// admins and agents of an organization. Templates, CSS and the vendored
// htmx are embedded in the binary; nothing is built or fetched at run time.
//
// The console is a family package: it never imports the gateway server.
// It acts through Auth (users, sessions, invites), the store, and Ops,
// which the server implements with the same operations its REST routes
// use, so no rule is written twice.
//
// Adding a page:
//
//  1. Write templates/<name>.html with {{define "title"}}…{{end}} and
//     {{define "content"}}…{{end}}; the layout (templates/layout.html)
//     wraps it with the header, the navigation, the skip link, <main> and
//     the flash message. Templates are parsed at New: a broken one fails
//     the package's tests, not a request.
//  2. Register it in Routes with cs.page(method, path, handler, roles...):
//     the page needs a signed-in session (else a redirect to the sign-in
//     page), state-changing methods need the session's CSRF token (htmx
//     sends it from hx-headers on <body>; a plain form sends the hidden
//     field {{template "csrf" .}}), and a session whose role is not listed
//     gets the 403 page. No roles means every role.
//  3. Answer with cs.render(c, status, "<name>", data): the template sees
//     .Page (data), .Session, .CSRF, .Nav, .Flash and .Errors. After a
//     successful form post, cs.flash(c, "…") then redirect (303); on a
//     failed one, render the form again with cs.formErrors(err), which
//     puts each field's problem next to its field and a summary with
//     role=alert on top.
//  4. A page shown in the navigation is listed in navItems; it appears to
//     the roles its route admits once its route is registered.
package console

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/okchat"
	"github.com/wagate/wagate/store"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// Paths of the console.
const (
	Root       = "/console"
	SignInPath = Root + "/signin"
	// InvitePath followed by the token is an invite's one-time link.
	InvitePath = Root + "/invite/"
	assetsPath = Root + "/assets/"
	flashName  = "wagate_flash"
)

// Overview is an organization's figures for today (UTC).
type Overview struct {
	InstancesConnected int
	InstancesTotal     int
	MessagesToday      int64 // inbound messages
	RepliesToday       int64 // bot replies sent
	ModelErrorsToday   int64 // inbound messages the bot failed to answer
	WebhookBacklog     int64 // webhook deliveries not yet done
}

// InstanceSummary is an instance as the instances page lists it.
type InstanceSummary struct {
	Name        string
	Integration string
	Number      string
	State       string // open, connecting or close
	Reason      string
}

// Ops are the server's operations the pages use; each is also a REST
// route, so pages and API share one implementation.
type Ops interface {
	// Overview answers GET /api/v1/overview.
	Overview(ctx context.Context, org *store.Organization) (*Overview, error)
	// Instances answers the organization's part of GET /instance/fetchInstances.
	Instances(ctx context.Context, org *store.Organization) ([]InstanceSummary, error)
	// InviteURL is the link of an invite's token, as POST /api/v1/invites
	// answers it.
	InviteURL(token string) string

	// The instance pages (instances.go) and their bots (bots.go).
	InstanceOps
	BotOps
	InboxOps
}

// Console serves the pages.
type Console struct {
	auth    *Auth
	st      *store.Store
	ops     Ops
	log     *slog.Logger
	pages   map[string]*template.Template
	routes  map[string][]string // path → roles admitted; nil roles: every role
	version string              // content hash of the static files, in their URLs
	static  fs.FS

	chatbots *okchat.Handlers // the chatbot pages' operations (chatbots.go)
	// onInstance runs, on the pages of one instance, after the session
	// and role checks: with replicas, it passes the request to the
	// replica that owns the instance (WithInstanceMiddleware).
	onInstance echo.MiddlewareFunc
	inbox      inboxState // the inbox's live streams
}

// New returns the console. It panics on a broken embedded template: they
// are fixed at build time and parsed by the package's tests.
func New(auth *Auth, st *store.Store, ops Ops, log *slog.Logger) *Console {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err)
	}
	cs := &Console{auth: auth, st: st, ops: ops, log: log, routes: map[string][]string{}, static: static}
	cs.version = contentHash(static)
	cs.pages, err = parsePages(cs.funcs())
	if err != nil {
		panic("console: " + err.Error())
	}
	return cs
}

func contentHash(fsys fs.FS) string {
	h := sha256.New()
	fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		h.Write([]byte(p))
		h.Write(b)
		return err
	})
	return hex.EncodeToString(h.Sum(nil))[:12]
}

func parsePages(funcs template.FuncMap) (map[string]*template.Template, error) {
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, n := range names {
		name := strings.TrimSuffix(path.Base(n), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New(name).Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", n)
		if err != nil {
			return nil, err
		}
		pages[name] = t
	}
	return pages, nil
}

func (cs *Console) funcs() template.FuncMap {
	return template.FuncMap{
		"asset":      cs.asset,
		"pathEscape": url.PathEscape,
		// The instance pages' forms (instances.go).
		"fieldOf":       fieldOf,
		"instanceFlags": func() []string { return instanceSettingFlags },
		"fieldError":    fieldError,
		"list":          func(s ...string) []string { return s },
		"deref":         func(b *bool) bool { return b != nil && *b },
	}
}

// asset is the URL of a static file: the content hash in it lets the file
// be cached for a year and changes with every release that changes it.
func (cs *Console) asset(name string) string { return assetsPath + cs.version + "/" + name }

// Routes registers the console's pages on e.
func (cs *Console) Routes(e *echo.Echo) {
	e.GET(assetsPath+":version/*", cs.serveAsset)
	e.HEAD(assetsPath+":version/*", cs.serveAsset)
	e.GET(SignInPath, cs.signInPage)
	e.POST(SignInPath, cs.signInSubmit)
	e.GET(InvitePath+":token", cs.invitePage)
	e.POST(InvitePath+":token", cs.inviteSubmit)
	cs.page(e, http.MethodPost, Root+"/signout", cs.signOut)
	cs.page(e, http.MethodPost, Root+"/organization", cs.switchOrganization)
	cs.page(e, http.MethodGet, Root, cs.overview)
	cs.page(e, http.MethodGet, Root+"/instances", cs.instances, store.RoleOwner, store.RoleAdmin)
	cs.instanceRoutes(e)
	cs.botRoutes(e)
	cs.chatbotRoutes(e)
	cs.inboxRoutes(e)
	cs.teamRoutes(e)
}

// page registers a page that needs a signed-in session with one of roles
// (every role when none are given).
func (cs *Console) page(e *echo.Echo, method, p string, h echo.HandlerFunc, roles ...string) {
	if method == http.MethodGet {
		cs.routes[p] = roles
	}
	e.Add(method, p, h, cs.requireSession, requireRole(roles...))
}

const sessionKey = "wagate.console.session"

// SessionOf returns the session of a page request.
func SessionOf(c echo.Context) *store.SessionPrincipal {
	p, _ := c.Get(sessionKey).(*store.SessionPrincipal)
	return p
}

// requireSession authenticates the cookie; without a live session a page
// request goes to the sign-in page and comes back after.
func (cs *Console) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		token := CookieToken(c)
		var (
			p   *store.SessionPrincipal
			err error
		)
		if token != "" {
			p, err = cs.auth.Session(c.Request().Context(), token)
		}
		if token == "" || wagate.ErrorCode(err) == wagate.EUNAUTHORIZED {
			target := SignInPath
			if c.Request().Method == http.MethodGet {
				target += "?next=" + url.QueryEscape(c.Request().URL.RequestURI())
			}
			if isHTMX(c) {
				c.Response().Header().Set("HX-Redirect", target)
				return c.NoContent(http.StatusUnauthorized)
			}
			return c.Redirect(http.StatusSeeOther, target)
		}
		if err != nil {
			return err
		}
		if err := CheckCSRF(c, p); err != nil {
			return err
		}
		c.Set(sessionKey, p)
		api.SetPrincipal(c, api.Principal{Session: p})
		api.SetOrg(c, &p.Org)
		return next(c)
	}
}

// requireRole admits a session whose role is one of roles (any, when none).
func requireRole(roles ...string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if p := SessionOf(c); len(roles) > 0 && (p == nil || !slices.Contains(roles, p.Role)) {
				return wagate.Errorf(wagate.EFORBIDDEN, "role: this page is for the organization's %s", strings.Join(roles, " and "))
			}
			return next(c)
		}
	}
}

func (cs *Console) serveAsset(c echo.Context) error {
	name := c.Param("*")
	b, err := fs.ReadFile(cs.static, name)
	if err != nil || c.Param("version") != cs.version {
		return echo.ErrNotFound
	}
	ctype := "application/octet-stream"
	switch path.Ext(name) {
	case ".css":
		ctype = "text/css; charset=utf-8"
	case ".js":
		ctype = "text/javascript; charset=utf-8"
	case ".txt":
		ctype = "text/plain; charset=utf-8"
	case ".svg":
		ctype = "image/svg+xml"
	}
	c.Response().Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	c.Response().Header().Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, ctype, b)
}

// navItem is an entry of the navigation.
type navItem struct {
	Label, Path string
	Current     bool
}

// navItems are the navigation's entries in order; each shows to the roles
// its page admits, once the page is registered.
var navItems = []navItem{
	{Label: "Overview", Path: Root},
	{Label: "Instances", Path: Root + "/instances"},
	{Label: "Chatbots", Path: Root + "/chatbots"},
	{Label: "Inbox", Path: Root + "/inbox"},
	{Label: "Team", Path: teamPath},
}

func (cs *Console) nav(c echo.Context, p *store.SessionPrincipal) []navItem {
	var out []navItem
	for _, it := range navItems {
		roles, ok := cs.routes[it.Path]
		if !ok || (len(roles) > 0 && !slices.Contains(roles, p.Role)) {
			continue
		}
		// Every page is under the overview's path: it is current only itself.
		it.Current = c.Path() == it.Path || it.Path != Root && strings.HasPrefix(c.Request().URL.Path, it.Path+"/")
		out = append(out, it)
	}
	return out
}

// view is what every template sees.
type view struct {
	Session   *store.SessionPrincipal
	CSRF      string
	HXHeaders string
	Nav       []navItem
	Orgs      []*store.Membership // the user's organizations, to switch between
	Flash     string
	Errors    formErrors
	Page      any
}

// formErrors are a failed form's problems: each field's under its name,
// and the whole list for the summary.
type formErrors struct {
	Fields  map[string]string
	Summary []string
}

// Field returns the problem of field, or "".
func (f formErrors) Field(name string) string { return f.Fields[name] }

// toFormErrors splits a domain error's messages ("field: problem") by field.
func toFormErrors(err error) formErrors {
	f := formErrors{Fields: map[string]string{}}
	for _, m := range wagate.ErrorMessages(err) {
		if field, problem, ok := strings.Cut(m, ": "); ok && !strings.Contains(field, " ") {
			f.Fields[field] = problem
			f.Summary = append(f.Summary, field+": "+problem)
			continue
		}
		f.Summary = append(f.Summary, m)
	}
	return f
}

// render writes page name with data in the layout.
func (cs *Console) render(c echo.Context, status int, name string, data any) error {
	return cs.renderView(c, status, name, view{Page: data})
}

// renderForm writes page name again after a failed post, with err's
// problems next to their fields.
func (cs *Console) renderForm(c echo.Context, status int, name string, data any, err error) error {
	return cs.renderView(c, status, name, view{Page: data, Errors: toFormErrors(err)})
}

func (cs *Console) renderView(c echo.Context, status int, name string, v view) error {
	t, ok := cs.pages[name]
	if !ok {
		return wagate.Errorf(wagate.EINTERNAL, "console: no page %q", name)
	}
	if p := SessionOf(c); p != nil {
		v.Session, v.CSRF, v.Nav = p, p.Session.CSRFToken, cs.nav(c, p)
		h, _ := json.Marshal(map[string]string{CSRFHeader: p.Session.CSRFToken})
		v.HXHeaders = string(h)
		ms, err := cs.st.UserMemberships(c.Request().Context(), p.User.ID)
		if err != nil {
			return err
		}
		v.Orgs = ms
	}
	if ck, err := c.Cookie(flashName); err == nil {
		v.Flash, _ = url.QueryUnescape(ck.Value)
		c.SetCookie(&http.Cookie{Name: flashName, Path: Root, MaxAge: -1, HttpOnly: true})
	}
	var buf strings.Builder
	if err := t.ExecuteTemplate(&buf, "layout", v); err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'")
	h.Set("Referrer-Policy", "same-origin")
	return c.HTML(status, buf.String())
}

// flash shows msg on the next page rendered, after a redirect.
func (cs *Console) flash(c echo.Context, msg string) {
	c.SetCookie(&http.Cookie{Name: flashName, Value: url.QueryEscape(msg), Path: Root, HttpOnly: true,
		SameSite: http.SameSiteLaxMode, Secure: isTLS(c)})
}

type errorPage struct {
	Status   int
	Title    string
	Messages []string
}

// RenderError answers a failed page request with the error page. The
// server's error handler calls it for every path under /console.
func (cs *Console) RenderError(c echo.Context, status int, messages []string) error {
	if status == http.StatusUnauthorized && c.Request().Method == http.MethodGet {
		return c.Redirect(http.StatusSeeOther, SignInPath)
	}
	return cs.render(c, status, "error", errorPage{Status: status, Title: http.StatusText(status), Messages: messages})
}
