package console

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/store"
)

type signInForm struct {
	Email string
	Next  string
}

// safeNext keeps the return address of the sign-in page inside the
// console, so the page cannot be used to send a user elsewhere.
func safeNext(next string) string {
	if next == Root || (strings.HasPrefix(next, Root+"/") && !strings.HasPrefix(next, "//")) {
		return next
	}
	return Root
}

func (cs *Console) signInPage(c echo.Context) error {
	return cs.render(c, http.StatusOK, "signin", signInForm{Next: safeNext(c.QueryParam("next"))})
}

// signInSubmit is the sign-in form's post; it works without JavaScript.
func (cs *Console) signInSubmit(c echo.Context) error {
	if err := CheckOrigin(c); err != nil {
		return err
	}
	form := signInForm{Email: c.FormValue("email"), Next: safeNext(c.FormValue("next"))}
	s, err := cs.auth.SignIn(c.Request().Context(), form.Email, c.FormValue("password"), c.FormValue("organization"), c.RealIP())
	if err != nil {
		switch wagate.ErrorCode(err) {
		case wagate.ERATELIMITED:
			SetRetryAfter(c, err)
		case wagate.EINVALID, wagate.EFORBIDDEN, wagate.EUNAUTHORIZED:
		default:
			return err
		}
		return cs.renderForm(c, api.Status(err), "signin", form, err)
	}
	SetCookie(c, s)
	return c.Redirect(http.StatusSeeOther, form.Next)
}

// switchOrganization moves the user to another of their organizations
// (the header's picker): a new session replaces this one.
func (cs *Console) switchOrganization(c echo.Context) error {
	s, err := cs.auth.SwitchOrganization(c.Request().Context(), SessionOf(c), c.FormValue("organization"))
	if err != nil {
		return err
	}
	SetCookie(c, s)
	cs.flash(c, "You are now in "+s.Principal.Org.Name+".")
	return c.Redirect(http.StatusSeeOther, Root)
}

func (cs *Console) signOut(c echo.Context) error {
	p := SessionOf(c)
	ctx := c.Request().Context()
	var err error
	if c.FormValue("everywhere") != "" {
		_, err = cs.auth.SignOutEverywhere(ctx, p.User.ID)
	} else {
		err = cs.auth.SignOut(ctx, p)
	}
	if err != nil {
		return err
	}
	ClearCookie(c)
	cs.flash(c, "You are signed out.")
	return c.Redirect(http.StatusSeeOther, SignInPath)
}

type inviteForm struct {
	Token    string
	Invite   *store.Invite
	Org      string
	Existing bool // the email is already a user's: they confirm with their password
	Name     string
}

func (cs *Console) inviteForm(c echo.Context) (*inviteForm, error) {
	ctx := c.Request().Context()
	token := c.Param("token")
	in, err := cs.auth.PendingInvite(ctx, token)
	if err != nil {
		return nil, err
	}
	org, err := cs.st.Organization(ctx, in.OrganizationID)
	if err != nil {
		return nil, err
	}
	f := &inviteForm{Token: token, Invite: in, Org: org.Name}
	if _, err := cs.st.UserByEmail(ctx, in.Email); err == nil {
		f.Existing = true
	}
	return f, nil
}

func (cs *Console) invitePage(c echo.Context) error {
	f, err := cs.inviteForm(c)
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "invite", f)
}

func (cs *Console) inviteSubmit(c echo.Context) error {
	if err := CheckOrigin(c); err != nil {
		return err
	}
	f, err := cs.inviteForm(c)
	if err != nil {
		return err
	}
	f.Name = c.FormValue("name")
	s, err := cs.auth.AcceptInvite(c.Request().Context(), f.Token, f.Name, c.FormValue("password"))
	if err != nil {
		switch wagate.ErrorCode(err) {
		case wagate.EINVALID, wagate.EUNAUTHORIZED:
			return cs.renderForm(c, api.Status(err), "invite", f, err)
		}
		return err
	}
	SetCookie(c, s)
	cs.flash(c, "Welcome to "+f.Org+".")
	return c.Redirect(http.StatusSeeOther, Root)
}

func (cs *Console) overview(c echo.Context) error {
	o, err := cs.ops.Overview(c.Request().Context(), &SessionOf(c).Org)
	if err != nil {
		return err
	}
	if isHTMX(c) {
		return cs.renderPartial(c, http.StatusOK, "overview", "figures", o)
	}
	return cs.render(c, http.StatusOK, "overview", o)
}

func (cs *Console) instances(c echo.Context) error {
	list, err := cs.ops.Instances(c.Request().Context(), &SessionOf(c).Org)
	if err != nil {
		return err
	}
	if isHTMX(c) {
		return cs.renderPartial(c, http.StatusOK, "instances", "rows", list)
	}
	return cs.render(c, http.StatusOK, "instances", list)
}

// isHTMX reports whether htmx made the request, which then wants a part
// of the page rather than the whole.
func isHTMX(c echo.Context) bool { return c.Request().Header.Get("HX-Request") == "true" }
