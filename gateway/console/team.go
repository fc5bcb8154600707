package console

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate/store"
)

// The team page: an owner's view of the organization's members and of
// its invites waiting to be used. It acts with the operations of the
// REST routes /api/v1/users and /api/v1/invites.

const teamPath = Root + "/team"

func (cs *Console) teamRoutes(e *echo.Echo) {
	page := func(method, p string, h echo.HandlerFunc) { cs.page(e, method, p, h, store.RoleOwner) }
	page(http.MethodGet, teamPath, cs.teamPage)
	page(http.MethodPost, teamPath+"/invites", cs.teamInvite)
	page(http.MethodPost, teamPath+"/invites/:invite/revoke", cs.teamRevoke)
	page(http.MethodPost, teamPath+"/members/:user", cs.teamSetRole)
	page(http.MethodPost, teamPath+"/members/:user/remove", cs.teamRemove)
}

// teamView is the team page's data.
type teamView struct {
	Members []*store.Member
	Invites []*store.Invite
	Roles   []string
	Self    string // the session's user
	// The invite form's values, and the invite just made with its link
	// (shown this once).
	Email, Role   string
	Invited, Link string
}

func (cs *Console) team(c echo.Context) (*teamView, error) {
	ctx, p := c.Request().Context(), SessionOf(c)
	members, err := cs.st.ListMembers(ctx, p.Org.ID)
	if err != nil {
		return nil, err
	}
	invites, err := cs.st.PendingInvites(ctx, p.Org.ID, cs.auth.Now())
	if err != nil {
		return nil, err
	}
	return &teamView{Members: members, Invites: invites, Self: p.User.ID, Role: store.RoleAgent,
		Roles: []string{store.RoleOwner, store.RoleAdmin, store.RoleAgent}}, nil
}

func (cs *Console) teamPage(c echo.Context) error {
	v, err := cs.team(c)
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "team", v)
}

// teamInvite makes an invite and shows its link, once.
func (cs *Console) teamInvite(c echo.Context) error {
	p := SessionOf(c)
	in, err := cs.auth.Invite(c.Request().Context(), p.Org.ID, c.FormValue("email"), c.FormValue("role"), p.User.ID)
	if err != nil {
		return cs.teamFailed(c, err, func(v *teamView) { v.Email, v.Role = c.FormValue("email"), c.FormValue("role") })
	}
	v, err := cs.team(c)
	if err != nil {
		return err
	}
	cs.log.Info("console invite created", "organization", p.Org.ID, "invite", in.Invite.ID, "role", in.Invite.Role, "by", p.User.ID)
	v.Invited, v.Link = in.Invite.Email, cs.ops.InviteURL(in.Token)
	return cs.render(c, http.StatusCreated, "team", v)
}

func (cs *Console) teamRevoke(c echo.Context) error {
	p := SessionOf(c)
	if err := cs.st.RevokeInvite(c.Request().Context(), p.Org.ID, c.Param("invite")); err != nil {
		return err
	}
	cs.log.Info("console invite revoked", "organization", p.Org.ID, "invite", c.Param("invite"), "by", p.User.ID)
	cs.flash(c, "The invite is revoked: its link no longer works.")
	return c.Redirect(http.StatusSeeOther, teamPath)
}

func (cs *Console) teamSetRole(c echo.Context) error {
	p, role := SessionOf(c), c.FormValue("role")
	if err := cs.st.SetMemberRole(c.Request().Context(), p.Org.ID, c.Param("user"), role); err != nil {
		return cs.teamFailed(c, err)
	}
	cs.log.Info("console member role changed", "organization", p.Org.ID, "user", c.Param("user"), "role", role, "by", p.User.ID)
	cs.flash(c, "The role is changed.")
	if c.Param("user") == p.User.ID && role != store.RoleOwner {
		return c.Redirect(http.StatusSeeOther, Root) // the team page is the owners'
	}
	return c.Redirect(http.StatusSeeOther, teamPath)
}

func (cs *Console) teamRemove(c echo.Context) error {
	p := SessionOf(c)
	if err := cs.st.RemoveMember(c.Request().Context(), p.Org.ID, c.Param("user")); err != nil {
		return cs.teamFailed(c, err)
	}
	cs.log.Info("console member removed", "organization", p.Org.ID, "user", c.Param("user"), "by", p.User.ID)
	if c.Param("user") == p.User.ID {
		// Removing oneself ends one's sessions here, this one included.
		return c.Redirect(http.StatusSeeOther, SignInPath)
	}
	cs.flash(c, "The member is removed.")
	return c.Redirect(http.StatusSeeOther, teamPath)
}

// teamFailed shows the team page again with err's problems (a bad
// invite, the last owner kept), keeping what the form had; or answers err.
func (cs *Console) teamFailed(c echo.Context, err error, keep ...func(*teamView)) error {
	if formStatus(err) == 0 {
		return err
	}
	v, verr := cs.team(c)
	if verr != nil {
		return verr
	}
	for _, k := range keep {
		k(v)
	}
	return cs.renderForm(c, formStatus(err), "team", v, err)
}
