package console

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/store"
)

const (
	// CookieName is the session cookie. It holds a random token whose
	// SHA-256 is the session's key in the database.
	CookieName = "wagate_session"
	// CSRFHeader carries the session's CSRF token on state-changing
	// requests (htmx sends it from hx-headers on <body>); CSRFField is the
	// form field that carries it in a plain form post.
	CSRFHeader = "X-CSRF-Token"
	CSRFField  = "csrf"
	// sessionTokenPrefix tells a session token from an API key should one
	// be pasted in the wrong place.
	sessionTokenPrefix = "wgs_"
	// touchEvery bounds the writes activity costs: a session's idle expiry
	// moves at most once a minute.
	touchEvery = time.Minute
)

// Limits are the console's timeouts and sign-in throttling.
type Limits struct {
	IdleTimeout     time.Duration // a session unused this long ends
	AbsoluteTimeout time.Duration // a session ends this long after sign-in, used or not
	InviteTTL       time.Duration // how long an invite link works
	FailureWindow   time.Duration // failed sign-ins are counted over this window
	PerAccount      int           // failures per email in a window before sign-in is refused
	PerIP           int           // failures per client address in a window
}

// DefaultLimits are the limits a gateway uses unless told otherwise.
var DefaultLimits = Limits{
	IdleTimeout:     8 * time.Hour,
	AbsoluteTimeout: 7 * 24 * time.Hour,
	InviteTTL:       7 * 24 * time.Hour,
	FailureWindow:   15 * time.Minute,
	PerAccount:      5,
	PerIP:           50,
}

// Auth is the console's accounts: users, sessions and invites. The REST
// routes and the pages both call it, so each rule exists once.
type Auth struct {
	st     *store.Store
	log    *slog.Logger
	now    func() time.Time
	limits Limits
	// dummy is a hash checked when the email is unknown, so that an
	// unknown email costs what a wrong password does.
	dummy string
}

// NewAuth returns the console's accounts over st; now is the clock.
func NewAuth(st *store.Store, now func() time.Time, limits Limits, log *slog.Logger) *Auth {
	return &Auth{st: st, now: now, limits: limits, log: log, dummy: HashPassword("wagate dummy password")}
}

// Now returns the current time at the store's precision.
func (a *Auth) Now() time.Time { return a.now().UTC().Truncate(time.Millisecond) }

// UserInput is a user to create, from the API, an invite or the command line.
type UserInput struct {
	Email    string
	Name     string
	Password string
	Role     string
}

const minPasswordLen = 10

// validate checks in, naming each field as the API body does.
func (in *UserInput) validate(withRole bool) error {
	var p wagate.Problems
	in.Email, in.Name = strings.TrimSpace(in.Email), strings.TrimSpace(in.Name)
	switch at := strings.LastIndexByte(in.Email, '@'); {
	case in.Email == "":
		p.Add("email", "required")
	case at < 1 || at == len(in.Email)-1 || strings.ContainsAny(in.Email, " \t\r\n<>,;") || len(in.Email) > 254:
		p.Add("email", "must be an email address")
	}
	switch {
	case in.Name == "":
		p.Add("name", "required")
	case utf8.RuneCountInString(in.Name) > 100 || strings.ContainsRune(in.Name, 0):
		p.Add("name", "must be at most 100 characters")
	}
	switch {
	case utf8.RuneCountInString(in.Password) < minPasswordLen:
		p.Add("password", "must be at least "+strconv.Itoa(minPasswordLen)+" characters")
	case len(in.Password) > 1024:
		p.Add("password", "must be at most 1024 bytes")
	}
	if withRole && !store.ValidRole(in.Role) {
		p.Add("role", `must be "owner", "admin" or "agent"`)
	}
	return p.Err()
}

// CreateUser creates a user with a role in orgID.
func (a *Auth) CreateUser(ctx context.Context, orgID string, in UserInput) (*store.User, error) {
	if err := in.validate(true); err != nil {
		return nil, err
	}
	now := a.Now()
	u := &store.User{ID: store.NewID(), Email: in.Email, Name: in.Name, PasswordHash: HashPassword(in.Password),
		CreatedAt: now, UpdatedAt: now}
	if err := a.st.CreateUser(ctx, u, orgID, in.Role); err != nil {
		return nil, err
	}
	return u, nil
}

// SignedIn is a new session: the cookie's token (shown only in the cookie)
// and what the session is.
type SignedIn struct {
	Token     string
	Principal *store.SessionPrincipal
}

var errBadCredentials = wagate.FieldError(wagate.EUNAUTHORIZED, "password", "the email or the password is wrong")

// RetryAfter is a throttled sign-in: the error, and when to try again.
type RetryAfter struct {
	Err   error
	After time.Duration
}

func (r *RetryAfter) Error() string { return r.Err.Error() }
func (r *RetryAfter) Unwrap() error { return r.Err }

// SignIn checks email and password and opens a session in orgID, or in the
// user's oldest organization when orgID is "". Failures are counted per
// email and per client address; past a limit sign-in is refused with a
// *RetryAfter (code rate_limited) until the window ends, even with the
// right password.
func (a *Auth) SignIn(ctx context.Context, email, password, orgID, ip string) (*SignedIn, error) {
	email = store.NormalizeEmail(email)
	var p wagate.Problems
	if email == "" {
		p.Add("email", "required")
	}
	if password == "" {
		p.Add("password", "required")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	now := a.Now()
	since := now.Add(-a.limits.FailureWindow)
	keys := []struct {
		key   string
		limit int
	}{{"email:" + email, a.limits.PerAccount}, {"ip:" + ip, a.limits.PerIP}}
	for _, k := range keys {
		n, start, err := a.st.SigninFailures(ctx, k.key, since)
		if err != nil {
			return nil, err
		}
		if n >= k.limit {
			wait := start.Add(a.limits.FailureWindow).Sub(now)
			return nil, &RetryAfter{After: wait, Err: wagate.Errorf(wagate.ERATELIMITED,
				"too many failed sign-ins; try again in %d seconds", int(math.Ceil(wait.Seconds())))}
		}
	}
	fail := func() error {
		for _, k := range keys {
			if err := a.st.RecordSigninFailure(ctx, k.key, now, since); err != nil {
				return err
			}
		}
		return errBadCredentials
	}
	u, err := a.st.UserByEmail(ctx, email)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		CheckPassword(a.dummy, password)
		return nil, fail()
	}
	if err != nil {
		return nil, err
	}
	if !CheckPassword(u.PasswordHash, password) {
		return nil, fail()
	}
	if err := a.st.ClearSigninFailures(ctx, keys[0].key); err != nil {
		return nil, err
	}
	a.sweep(ctx, now, since)
	return a.openSession(ctx, u, orgID, time.Time{})
}

// sweep removes expired sessions and stale failure counts. Sign-ins are
// rare next to requests, so doing it then keeps both tables small without
// a background job; a failure only postpones it.
func (a *Auth) sweep(ctx context.Context, now, since time.Time) {
	if _, err := a.st.DeleteExpiredConsoleSessions(ctx, now); err != nil && ctx.Err() == nil {
		a.log.Warn("deleting expired console sessions failed", "error", err)
	}
	if err := a.st.DeleteStaleSigninFailures(ctx, since); err != nil && ctx.Err() == nil {
		a.log.Warn("deleting stale sign-in failures failed", "error", err)
	}
}

// SwitchOrganization opens a session of p's user in the organization
// orgID, which the user must be a member of, and ends p's: a session acts
// in one organization. The new session ends when p's would have, so
// switching does not extend a sign-in.
func (a *Auth) SwitchOrganization(ctx context.Context, p *store.SessionPrincipal, orgID string) (*SignedIn, error) {
	if strings.TrimSpace(orgID) == "" {
		return nil, wagate.Invalid("organization", "required: the id of one of your organizations")
	}
	s, err := a.openSession(ctx, &p.User, orgID, p.Session.ExpiresAt)
	if err != nil {
		return nil, err
	}
	if err := a.st.DeleteConsoleSession(ctx, p.Session.ID); err != nil {
		return nil, err
	}
	return s, nil
}

// openSession opens a session of u in orgID (the oldest of u's
// organizations when ""), ending at expires (zero: the absolute timeout
// from now).
func (a *Auth) openSession(ctx context.Context, u *store.User, orgID string, expires time.Time) (*SignedIn, error) {
	ms, err := a.st.UserMemberships(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	var m *store.Membership
	for _, x := range ms {
		if orgID == "" || x.Organization.ID == orgID {
			m = x
			break
		}
	}
	if m == nil {
		if orgID != "" {
			return nil, wagate.FieldError(wagate.EFORBIDDEN, "organization", "you are not a member of this organization")
		}
		return nil, wagate.FieldError(wagate.EFORBIDDEN, "email", "this user belongs to no organization")
	}
	now := a.Now()
	token := newSecret(sessionTokenPrefix)
	cs := store.ConsoleSession{ID: store.NewID(), TokenHash: api.HashKey(token), UserID: u.ID,
		OrganizationID: m.Organization.ID, CSRFToken: newSecret(""), CreatedAt: now, LastSeenAt: now,
		ExpiresAt: cmp.Or(expires, now.Add(a.limits.AbsoluteTimeout))}
	cs.IdleExpiresAt = minTime(now.Add(a.limits.IdleTimeout), cs.ExpiresAt)
	if err := a.st.CreateConsoleSession(ctx, &cs); err != nil {
		return nil, err
	}
	return &SignedIn{Token: token, Principal: &store.SessionPrincipal{Session: cs, User: *u, Org: m.Organization, Role: m.Role}}, nil
}

// Session returns the live session of token, recording the activity.
// A token of no live session is EUNAUTHORIZED.
func (a *Auth) Session(ctx context.Context, token string) (*store.SessionPrincipal, error) {
	now := a.Now()
	p, err := a.st.ConsoleSessionByTokenHash(ctx, api.HashKey(token), now)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		return nil, wagate.Errorf(wagate.EUNAUTHORIZED, "session: signed out or expired; sign in again")
	}
	if err != nil {
		return nil, err
	}
	if now.Sub(p.Session.LastSeenAt) >= touchEvery {
		idle := minTime(now.Add(a.limits.IdleTimeout), p.Session.ExpiresAt)
		if err := a.st.TouchConsoleSession(ctx, p.Session.ID, now, idle); err != nil {
			return nil, err
		}
		p.Session.LastSeenAt, p.Session.IdleExpiresAt = now, idle
	}
	return p, nil
}

// SignOut ends one session.
func (a *Auth) SignOut(ctx context.Context, p *store.SessionPrincipal) error {
	return a.st.DeleteConsoleSession(ctx, p.Session.ID)
}

// SignOutEverywhere ends every session of the user, in every organization.
func (a *Auth) SignOutEverywhere(ctx context.Context, userID string) (int64, error) {
	return a.st.DeleteUserConsoleSessions(ctx, userID)
}

// NewInvite is a created invite with its one-time token.
type NewInvite struct {
	Invite *store.Invite
	Token  string
}

// Invite makes a one-time invite to orgID for email with role; invitedBy
// is the inviting user's id, or "" for an organization key.
func (a *Auth) Invite(ctx context.Context, orgID, email, role, invitedBy string) (*NewInvite, error) {
	var p wagate.Problems
	email = store.NormalizeEmail(email)
	if at := strings.LastIndexByte(email, '@'); at < 1 || at == len(email)-1 || len(email) > 254 {
		p.Add("email", "must be an email address")
	}
	if !store.ValidRole(role) {
		p.Add("role", `must be "owner", "admin" or "agent"`)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	now := a.Now()
	token := newSecret("")
	in := &store.Invite{ID: store.NewID(), TokenHash: api.HashKey(token), OrganizationID: orgID, Role: role, Email: email,
		InvitedBy: invitedBy, CreatedAt: now, ExpiresAt: now.Add(a.limits.InviteTTL)}
	if err := a.st.CreateInvite(ctx, in); err != nil {
		return nil, err
	}
	return &NewInvite{Invite: in, Token: token}, nil
}

// PendingInvite returns the invite of token if it may still be accepted.
func (a *Auth) PendingInvite(ctx context.Context, token string) (*store.Invite, error) {
	return a.st.InviteByTokenHash(ctx, api.HashKey(token), a.Now())
}

// AcceptInvite uses the invite of token: a new user is created with name
// and password; an existing user (the invite's email) proves it with
// their password and joins the organization. Either way a session opens
// in the invite's organization.
func (a *Auth) AcceptInvite(ctx context.Context, token, name, password string) (*SignedIn, error) {
	in, err := a.PendingInvite(ctx, token)
	if err != nil {
		return nil, err
	}
	// The new user's hash is made before the transaction, which on SQLite
	// holds the one writer.
	var (
		ui   = UserInput{Email: in.Email, Name: name, Password: password, Role: in.Role}
		hash string
	)
	existing, err := a.st.UserByEmail(ctx, in.Email)
	switch {
	case err == nil:
		if !CheckPassword(existing.PasswordHash, password) {
			return nil, wagate.FieldError(wagate.EUNAUTHORIZED, "password", "a user with this email exists; enter their password")
		}
	case wagate.ErrorCode(err) != wagate.ENOTFOUND:
		return nil, err
	default:
		if err := ui.validate(false); err != nil {
			return nil, err
		}
		hash = HashPassword(ui.Password)
	}
	var u *store.User
	err = a.st.DoTxn(ctx, func(ctx context.Context) error {
		now := a.Now()
		if err := a.st.UseInvite(ctx, in.ID, now); err != nil {
			return err
		}
		if existing != nil {
			u = existing
			return a.st.AddMember(ctx, u.ID, in.OrganizationID, in.Role, now)
		}
		u = &store.User{ID: store.NewID(), Email: ui.Email, Name: ui.Name, PasswordHash: hash, CreatedAt: now, UpdatedAt: now}
		return a.st.CreateUser(ctx, u, in.OrganizationID, in.Role)
	})
	if err != nil {
		return nil, err
	}
	return a.openSession(ctx, u, in.OrganizationID, time.Time{})
}

// SetCookie sets the session cookie: HttpOnly, SameSite=Lax, Secure when
// the request came over TLS (directly or through a proxy that says so),
// expiring with the session's absolute expiry.
func SetCookie(c echo.Context, s *SignedIn) {
	c.SetCookie(&http.Cookie{Name: CookieName, Value: s.Token, Path: "/", HttpOnly: true, Secure: isTLS(c),
		SameSite: http.SameSiteLaxMode, Expires: s.Principal.Session.ExpiresAt})
}

// ClearCookie removes the session cookie from the browser.
func ClearCookie(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: CookieName, Value: "", Path: "/", HttpOnly: true, Secure: isTLS(c),
		SameSite: http.SameSiteLaxMode, MaxAge: -1})
}

func isTLS(c echo.Context) bool {
	return c.Request().TLS != nil || strings.EqualFold(c.Request().Header.Get(echo.HeaderXForwardedProto), "https")
}

// CookieToken returns the session token of the request's cookie, or "".
func CookieToken(c echo.Context) string {
	ck, err := c.Cookie(CookieName)
	if err != nil {
		return ""
	}
	return ck.Value
}

// Safe reports whether a method changes nothing, so needs no CSRF token.
func Safe(method string) bool {
	return method == http.MethodGet || method == http.MethodHead || method == http.MethodOptions
}

var errCSRF = wagate.Errorf(wagate.EFORBIDDEN, "csrf: missing or wrong; send the session's CSRF token in the X-CSRF-Token header or the csrf form field")

// CheckCSRF admits a state-changing request authenticated by the cookie
// only if it carries the session's CSRF token.
func CheckCSRF(c echo.Context, p *store.SessionPrincipal) error {
	if Safe(c.Request().Method) {
		return nil
	}
	got := c.Request().Header.Get(CSRFHeader)
	if got == "" {
		if ct := c.Request().Header.Get(echo.HeaderContentType); strings.HasPrefix(ct, echo.MIMEApplicationForm) ||
			strings.HasPrefix(ct, echo.MIMEMultipartForm) {
			got = c.FormValue(CSRFField)
		}
	}
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(p.Session.CSRFToken)) != 1 {
		return errCSRF
	}
	return nil
}

// IsRetryAfter returns the wait of a throttled sign-in.
func IsRetryAfter(err error) (time.Duration, bool) {
	var r *RetryAfter
	if errors.As(err, &r) {
		return r.After, true
	}
	return 0, false
}

// SetRetryAfter sets the Retry-After header of a throttled answer.
func SetRetryAfter(c echo.Context, err error) {
	if d, ok := IsRetryAfter(err); ok {
		c.Response().Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(d.Seconds())))))
	}
}

func newSecret(prefix string) string {
	b := make([]byte, 32)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func timeNow() time.Time { return time.Now() }

// CheckOrigin refuses a sign-in posted from another site's page: a
// browser names the page's origin, and one that is not this host's could
// sign the visitor in to someone else's account. Clients that send no
// Origin (programs, older browsers on same-origin posts) pass.
func CheckOrigin(c echo.Context) error {
	origin := c.Request().Header.Get(echo.HeaderOrigin)
	if origin == "" {
		return nil
	}
	u, err := url.Parse(origin)
	if err != nil || u.Host != c.Request().Host {
		return wagate.Errorf(wagate.EFORBIDDEN, "origin: sign-in is accepted only from this gateway's own pages")
	}
	return nil
}
