package gateway

import (
	"context"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/gateway/console"
	"github.com/wagate/wagate/store"
)

// The console's REST routes: users, invites, sessions and the overview.
// The pages of gateway/console call the same console.Auth and overview
// operations.

func (g *Gateway) consoleRoutes(e *echo.Echo, auth func(method, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc)) {
	auth(http.MethodPost, "/api/v1/organizations/:orgId/users", g.createOrgUser, globalOnly)
	auth(http.MethodGet, "/api/v1/organizations/:orgId/users", g.listOrgUsers, globalOnly)
	auth(http.MethodGet, "/api/v1/users", g.listUsers, g.orgScoped, ownerOnly)
	auth(http.MethodPatch, "/api/v1/users/:userId", g.updateUser, g.orgScoped, ownerOnly)
	auth(http.MethodDelete, "/api/v1/users/:userId", g.removeUser, g.orgScoped, ownerOnly)
	auth(http.MethodPost, "/api/v1/invites", g.createInvite, g.orgScoped, ownerOnly)
	auth(http.MethodGet, "/api/v1/invites", g.listInvites, g.orgScoped, ownerOnly)
	auth(http.MethodDelete, "/api/v1/invites/:inviteId", g.revokeInvite, g.orgScoped, ownerOnly)
	auth(http.MethodGet, "/api/v1/sessions/current", g.currentSession, sessionOnly)
	auth(http.MethodDelete, "/api/v1/sessions/current", g.signOut, sessionOnly)
	auth(http.MethodPost, "/api/v1/sessions/current/organization", g.switchOrganization, sessionOnly)
	auth(http.MethodDelete, "/api/v1/sessions", g.signOutEverywhere, sessionOnly)
	auth(http.MethodGet, "/api/v1/overview", g.getOverview, g.orgScoped)
	// Signing in and accepting an invite are what authenticates.
	e.POST("/api/v1/sessions", g.signIn)
	e.POST("/api/v1/invites/accept", g.acceptInvite)
}

type userView struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Name      string    `json:"name"`
	Role      string    `json:"role"`
	CreatedAt time.Time `json:"created_at"`
}

func viewMember(m *store.Member) userView {
	return userView{ID: m.ID, Email: m.Email, Name: m.Name, Role: m.Role, CreatedAt: m.JoinedAt}
}

type userBody struct {
	Email    string `json:"email"`
	Name     string `json:"name"`
	Password string `json:"password"`
	Role     string `json:"role"`
}

// createOrgUser creates a user with a role in the organization: how the
// first owner of an organization comes to be.
func (g *Gateway) createOrgUser(c echo.Context) error {
	ctx := c.Request().Context()
	org, err := g.store.Organization(ctx, c.Param("orgId"))
	if err != nil {
		return err
	}
	var req userBody
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	u, err := g.auth.CreateUser(ctx, org.ID, console.UserInput{Email: req.Email, Name: req.Name, Password: req.Password, Role: req.Role})
	if err != nil {
		return err
	}
	g.log.Info("console user created", "organization", org.ID, "user", u.ID, "role", req.Role)
	return c.JSON(http.StatusCreated, userView{ID: u.ID, Email: u.Email, Name: u.Name, Role: req.Role, CreatedAt: u.CreatedAt})
}

func (g *Gateway) listMembers(c echo.Context, orgID string) error {
	list, err := g.store.ListMembers(c.Request().Context(), orgID)
	if err != nil {
		return err
	}
	out := make([]userView, 0, len(list))
	for _, m := range list {
		out = append(out, viewMember(m))
	}
	return c.JSON(http.StatusOK, out)
}

func (g *Gateway) listOrgUsers(c echo.Context) error {
	org, err := g.store.Organization(c.Request().Context(), c.Param("orgId"))
	if err != nil {
		return err
	}
	return g.listMembers(c, org.ID)
}

func (g *Gateway) listUsers(c echo.Context) error { return g.listMembers(c, api.OrgOf(c).ID) }

func (g *Gateway) updateUser(c echo.Context) error {
	var req struct {
		Role string `json:"role"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	ctx, org := c.Request().Context(), api.OrgOf(c)
	if err := g.store.SetMemberRole(ctx, org.ID, c.Param("userId"), req.Role); err != nil {
		return err
	}
	m, err := g.store.GetMember(ctx, org.ID, c.Param("userId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewMember(m))
}

func (g *Gateway) removeUser(c echo.Context) error {
	if err := g.store.RemoveMember(c.Request().Context(), api.OrgOf(c).ID, c.Param("userId")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// createInvite answers the one-time link, shown once.
func (g *Gateway) createInvite(c echo.Context) error {
	var req struct {
		Email string `json:"email"`
		Role  string `json:"role"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	by := ""
	if s := api.PrincipalOf(c).Session; s != nil {
		by = s.User.ID
	}
	in, err := g.auth.Invite(c.Request().Context(), api.OrgOf(c).ID, req.Email, req.Role, by)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{
		"id": in.Invite.ID, "email": in.Invite.Email, "role": in.Invite.Role, "expires_at": in.Invite.ExpiresAt,
		"token": in.Token, "url": g.InviteURL(in.Token),
	})
}

// InviteURL is the console's page of an invite's token.
func (g *Gateway) InviteURL(token string) string {
	return strings.TrimRight(g.cfg.ServerURL, "/") + console.InvitePath + token
}

type inviteView struct {
	ID        string    `json:"id"`
	Email     string    `json:"email"`
	Role      string    `json:"role"`
	InvitedBy *string   `json:"invited_by"` // the inviting user's id; null for the organization's key
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
}

// listInvites answers the organization's invites waiting to be used,
// newest first; their links are never shown again.
func (g *Gateway) listInvites(c echo.Context) error {
	list, err := g.store.PendingInvites(c.Request().Context(), api.OrgOf(c).ID, g.auth.Now())
	if err != nil {
		return err
	}
	out := make([]inviteView, len(list))
	for i, in := range list {
		out[i] = inviteView{ID: in.ID, Email: in.Email, Role: in.Role, CreatedAt: in.CreatedAt, ExpiresAt: in.ExpiresAt}
		if in.InvitedBy != "" {
			out[i].InvitedBy = &in.InvitedBy
		}
	}
	return c.JSON(http.StatusOK, out)
}

// revokeInvite makes an invite's link stop working.
func (g *Gateway) revokeInvite(c echo.Context) error {
	if err := g.store.RevokeInvite(c.Request().Context(), api.OrgOf(c).ID, c.Param("inviteId")); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

type sessionView struct {
	User          userView         `json:"user"`
	Organization  sessionOrgView   `json:"organization"`
	Role          string           `json:"role"`
	CSRFToken     string           `json:"csrfToken"`
	ExpiresAt     time.Time        `json:"expires_at"`
	IdleExpiresAt time.Time        `json:"idle_expires_at"`
	Organizations []sessionOrgView `json:"organizations"`
}

type sessionOrgView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Role string `json:"role"`
}

func (g *Gateway) viewSession(ctx context.Context, p *store.SessionPrincipal) (sessionView, error) {
	ms, err := g.store.UserMemberships(ctx, p.User.ID)
	if err != nil {
		return sessionView{}, err
	}
	v := sessionView{
		User:         userView{ID: p.User.ID, Email: p.User.Email, Name: p.User.Name, Role: p.Role, CreatedAt: p.User.CreatedAt},
		Organization: sessionOrgView{ID: p.Org.ID, Name: p.Org.Name, Role: p.Role}, Role: p.Role,
		CSRFToken: p.Session.CSRFToken, ExpiresAt: p.Session.ExpiresAt, IdleExpiresAt: p.Session.IdleExpiresAt,
		Organizations: []sessionOrgView{},
	}
	for _, m := range ms {
		v.Organizations = append(v.Organizations, sessionOrgView{ID: m.Organization.ID, Name: m.Organization.Name, Role: m.Role})
	}
	return v, nil
}

func (g *Gateway) signedIn(c echo.Context, s *console.SignedIn) error {
	console.SetCookie(c, s)
	v, err := g.viewSession(c.Request().Context(), s.Principal)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, v)
}

// signIn opens a session: the cookie, and the CSRF token in the body.
func (g *Gateway) signIn(c echo.Context) error {
	var req struct {
		Email        string `json:"email"`
		Password     string `json:"password"`
		Organization string `json:"organization"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	if err := console.CheckOrigin(c); err != nil {
		return err
	}
	s, err := g.auth.SignIn(c.Request().Context(), req.Email, req.Password, req.Organization, c.RealIP())
	if err != nil {
		console.SetRetryAfter(c, err)
		return err
	}
	return g.signedIn(c, s)
}

func (g *Gateway) acceptInvite(c echo.Context) error {
	var req struct {
		Token    string `json:"token"`
		Name     string `json:"name"`
		Password string `json:"password"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	if req.Token == "" {
		return wagate.Invalid("token", "required")
	}
	if err := console.CheckOrigin(c); err != nil {
		return err
	}
	s, err := g.auth.AcceptInvite(c.Request().Context(), req.Token, req.Name, req.Password)
	if err != nil {
		return err
	}
	return g.signedIn(c, s)
}

func (g *Gateway) currentSession(c echo.Context) error {
	v, err := g.viewSession(c.Request().Context(), api.PrincipalOf(c).Session)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

// switchOrganization moves the signed-in user to another of their
// organizations: a new session (cookie and CSRF token) replaces this one.
func (g *Gateway) switchOrganization(c echo.Context) error {
	var req struct {
		Organization string `json:"organization"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	s, err := g.auth.SwitchOrganization(c.Request().Context(), api.PrincipalOf(c).Session, req.Organization)
	if err != nil {
		return err
	}
	return g.signedIn(c, s)
}

func (g *Gateway) signOut(c echo.Context) error {
	if err := g.auth.SignOut(c.Request().Context(), api.PrincipalOf(c).Session); err != nil {
		return err
	}
	console.ClearCookie(c)
	return c.NoContent(http.StatusNoContent)
}

func (g *Gateway) signOutEverywhere(c echo.Context) error {
	n, err := g.auth.SignOutEverywhere(c.Request().Context(), api.PrincipalOf(c).Session.User.ID)
	if err != nil {
		return err
	}
	console.ClearCookie(c)
	return c.JSON(http.StatusOK, map[string]any{"ended": n})
}

type overviewView struct {
	InstancesConnected int   `json:"instancesConnected"`
	InstancesTotal     int   `json:"instancesTotal"`
	MessagesToday      int64 `json:"messagesToday"`
	RepliesToday       int64 `json:"repliesToday"`
	ModelErrorsToday   int64 `json:"modelErrorsToday"`
	WebhookBacklog     int64 `json:"webhookBacklog"`
}

func (g *Gateway) getOverview(c echo.Context) error {
	o, err := g.Overview(c.Request().Context(), api.OrgOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, overviewView(*o))
}

// Overview is the organization's figures since the start of the day
// (UTC): the console's overview page and GET /api/v1/overview.
func (g *Gateway) Overview(ctx context.Context, org *store.Organization) (*console.Overview, error) {
	now := g.auth.Now()
	day := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	st, err := g.store.OrganizationOverview(ctx, org.ID, day)
	if err != nil {
		return nil, err
	}
	list, err := g.Instances(ctx, org)
	if err != nil {
		return nil, err
	}
	o := &console.Overview{InstancesTotal: len(list), MessagesToday: st.MessagesToday, RepliesToday: st.RepliesToday,
		ModelErrorsToday: st.ModelErrorsToday, WebhookBacklog: st.WebhookBacklog}
	for _, in := range list {
		if in.State == channel.Open {
			o.InstancesConnected++
		}
	}
	return o, nil
}

// Instances lists the organization's instances with their connection
// state, as GET /instance/fetchInstances does.
func (g *Gateway) Instances(ctx context.Context, org *store.Organization) ([]console.InstanceSummary, error) {
	list, err := g.store.ListOrganizationInstances(ctx, org.ID)
	if err != nil {
		return nil, err
	}
	out := []console.InstanceSummary{}
	for _, inst := range list {
		if inst.Integration == store.IntegrationWebchat {
			continue
		}
		st := g.channelOf(inst).State(ctx, inst)
		out = append(out, console.InstanceSummary{Name: inst.Name, Integration: inst.Integration, Number: inst.Number,
			State: st.State, Reason: st.Reason})
	}
	return out, nil
}
