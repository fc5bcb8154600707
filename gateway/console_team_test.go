package gateway_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var inviteLink = regexp.MustCompile(`value="(http[^"]*/console/invite/([^"]+))"`)

// TestConsoleTeamPage: an owner sees the members and the invites waiting
// to be used, invites someone (the link is shown once), revokes an
// invite, changes a role and removes a member, with the API's problems
// next to their fields; admins do not see the page, and a post without
// the CSRF token or for another organization's invite is refused.
func TestConsoleTeamPage(t *testing.T) {
	s := startServer(t, "")
	o := s.createOrg("Shop")
	ana := s.createConsoleUser(o.ID, "ana@example.com", "owner")
	ad := s.createConsoleUser(o.ID, "ad@example.com", "admin")
	owner := s.signInAPI(ana.Email, ana.Password)
	admin := s.signInAPI(ad.Email, testPassword)
	other := s.createOrg("Other")

	if got := admin.getHTML("/console/team"); got.Status != http.StatusForbidden {
		t.Errorf("an admin opens the team page: %d", got.Status)
	}
	if strings.Contains(admin.getHTML("/console").Body, `href="/console/team"`) {
		t.Error("an admin's navigation links the team page")
	}
	if !strings.Contains(owner.getHTML("/console").Body, `href="/console/team"`) {
		t.Error("an owner's navigation does not link the team page")
	}
	page := owner.getHTML("/console/team")
	if page.Status != http.StatusOK || !strings.Contains(page.Body, "ana@example.com") || !strings.Contains(page.Body, "ad@example.com") ||
		!strings.Contains(page.Body, "No invite is waiting") {
		t.Fatalf("team page: %d %s", page.Status, page.Body)
	}

	// Inviting: the form's problems by field, then the link, once.
	if got := owner.postHTML("/console/team/invites", url.Values{"email": {"bo@example.com"}, "role": {"agent"}}, false); got.Status != http.StatusForbidden {
		t.Errorf("invite without the CSRF token: %d", got.Status)
	}
	bad := owner.postHTML("/console/team/invites", url.Values{"email": {"not-an-email"}, "role": {"boss"}}, true)
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Body, `id="invite-email-error"`) ||
		!strings.Contains(bad.Body, `id="invite-role-error"`) || !strings.Contains(bad.Body, `value="not-an-email"`) {
		t.Errorf("bad invite: %d %s", bad.Status, bad.Body)
	}
	made := owner.postHTML("/console/team/invites", url.Values{"email": {"Bo@Example.com"}, "role": {"agent"}}, true)
	m := inviteLink.FindStringSubmatch(made.Body)
	if made.Status != http.StatusCreated || m == nil || !strings.HasPrefix(m[1], s.URL+"/console/invite/") ||
		!strings.Contains(made.Body, "Invite link for bo@example.com") {
		t.Fatalf("invite: %d %s", made.Status, made.Body)
	}
	token := m[2]
	page = owner.getHTML("/console/team")
	if !strings.Contains(page.Body, "bo@example.com") || strings.Contains(page.Body, token) {
		t.Errorf("the team page after the invite lists it: %v; shows its link: %v", strings.Contains(page.Body, "bo@example.com"), strings.Contains(page.Body, token))
	}

	// Revoking: the link stops working; another organization cannot.
	var invites []map[string]any
	json.Unmarshal(owner.call("GET", "/api/v1/invites", nil).Body, &invites)
	if len(invites) != 1 {
		t.Fatalf("invites = %v", invites)
	}
	bo := invites[0]["id"].(string)
	otherOwner := s.createConsoleUser(other.ID, "zed@example.com", "owner")
	zed := s.signInAPI(otherOwner.Email, otherOwner.Password)
	if got := zed.postHTML("/console/team/invites/"+bo+"/revoke", nil, true); got.Status != http.StatusNotFound {
		t.Errorf("another organization's owner revokes the invite: %d", got.Status)
	}
	if got := owner.postHTML("/console/team/invites/"+bo+"/revoke", nil, true); got.Status != http.StatusSeeOther || got.Location != "/console/team" {
		t.Fatalf("revoke: %d %s", got.Status, got.Location)
	}
	r, _ := s.raw("POST", "/api/v1/invites/accept", nil, "", map[string]any{"token": token, "name": "Bo", "password": "another good passphrase"})
	if r.Status != http.StatusNotFound {
		t.Errorf("accepting a revoked invite: %d", r.Status)
	}
	if page := owner.getHTML("/console/team"); !strings.Contains(page.Body, "No invite is waiting") {
		t.Error("the revoked invite is still listed")
	}

	// Roles: a bad one by field, the last owner kept, then a change.
	if got := owner.postHTML("/console/team/members/"+ad.ID, url.Values{"role": {"boss"}}, true); got.Status != http.StatusBadRequest ||
		!strings.Contains(got.Body, "role: must be") {
		t.Errorf("a bad role: %d %s", got.Status, got.Body)
	}
	if got := owner.postHTML("/console/team/members/"+ana.ID, url.Values{"role": {"admin"}}, true); got.Status != http.StatusConflict {
		t.Errorf("demoting the last owner: %d %s", got.Status, got.Body)
	}
	if got := owner.postHTML("/console/team/members/"+ad.ID, url.Values{"role": {"agent"}}, true); got.Status != http.StatusSeeOther {
		t.Fatalf("role change: %d %s", got.Status, got.Body)
	}
	if got := admin.call("GET", "/api/v1/credentials", nil); got.Status != http.StatusForbidden {
		t.Errorf("ad, now an agent, reads credentials: %d", got.Status)
	}

	// Removing: the member's sessions end.
	if got := owner.postHTML("/console/team/members/"+ad.ID+"/remove", nil, true); got.Status != http.StatusSeeOther {
		t.Fatalf("remove: %d %s", got.Status, got.Body)
	}
	if got := admin.call("GET", "/api/v1/sessions/current", nil); got.Status != http.StatusUnauthorized {
		t.Errorf("the removed member's session: %d", got.Status)
	}
	if page := owner.getHTML("/console/team"); strings.Contains(page.Body, "ad@example.com") {
		t.Error("the removed member is still listed")
	}

	// An owner who demotes or removes themselves leaves the team page.
	cy := s.createConsoleUser(o.ID, "cy@example.com", "owner")
	second := s.signInAPI(cy.Email, testPassword)
	if got := second.postHTML("/console/team/members/"+cy.ID, url.Values{"role": {"admin"}}, true); got.Status != http.StatusSeeOther || got.Location != "/console" {
		t.Errorf("demoting oneself: %d %s, want a redirect to the overview", got.Status, got.Location)
	}
	if got := owner.postHTML("/console/team/members/"+ana.ID+"/remove", nil, true); got.Status != http.StatusConflict {
		t.Errorf("removing the last owner: %d", got.Status)
	}
	if got := owner.postHTML("/console/team/members/"+cy.ID, url.Values{"role": {"owner"}}, true); got.Status != http.StatusSeeOther {
		t.Fatalf("promoting cy again: %d %s", got.Status, got.Body)
	}
	if got := owner.postHTML("/console/team/members/"+ana.ID+"/remove", nil, true); got.Status != http.StatusSeeOther || got.Location != "/console/signin" {
		t.Errorf("removing oneself: %d %s, want a redirect to the sign-in page", got.Status, got.Location)
	}
	if got := owner.call("GET", "/api/v1/sessions/current", nil); got.Status != http.StatusUnauthorized {
		t.Errorf("the session of an owner who removed themselves: %d", got.Status)
	}
}
