package gateway_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// signIn signs in to the console at s through its sign-in page, as a
// person would, and waits for the page it lands on. Browser tests of
// other console pages start with it.
func signIn(t *testing.T, ctx context.Context, s *server, email, password string) {
	t.Helper()
	err := chromedp.Do(ctx,
		chromedp.Navigate(s.URL+"/console/signin"),
		chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), email),
		chromedp.SendKeys(chromedp.CSS("#password"), password),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("header .org")),
	)
	if err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("signing in as %s: %v; page:\n%s", email, err, html)
	}
}

func textOf(ctx context.Context, sel string) string {
	got := texts(ctx, sel)
	return strings.TrimSpace(strings.Join(got, "|"))
}

// TestConsoleInBrowser: at phone width, a page asks for sign-in; a wrong
// password shows the error by the field; the right one shows the
// overview's real figures; the instances page lists the organization's
// instances and never another's; an agent sees neither the instances page
// nor its navigation entry.
func TestConsoleInBrowser(t *testing.T) {
	s := startServer(t, "")
	org := s.defaultOrgID()
	inst := s.createInstance("shop", "")
	for i, text := range []string{"hello", "are you open?"} {
		if r := s.inbound(inst, "m"+string(rune('1'+i)), "5511999@s.whatsapp.net", text); r.Status >= 300 {
			t.Fatalf("inbound: %d %s", r.Status, r.Body)
		}
	}
	other := s.createOrg("Other")
	s.must(http.StatusCreated, "POST", "/instance/create", other.Key, map[string]any{"instanceName": "theirs", "integration": "EVOLUTION", "number": "num-theirs"})
	s.createConsoleUser(org, "owner@example.com", "owner")

	ctx := browser(t, 375, 740)
	err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/console/instances"), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.SendKeys(chromedp.CSS("#email"), "owner@example.com"),
		chromedp.SendKeys(chromedp.CSS("#password"), "not the password"),
		chromedp.Submit(chromedp.CSS("#password")),
		chromedp.WaitVisible(chromedp.CSS("#password-error")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, "#password-error"); got != "the email or the password is wrong" {
		t.Errorf("field error = %q", got)
	}
	if got := textOf(ctx, "[role=alert] li"); !strings.Contains(got, "password") {
		t.Errorf("error summary = %q", got)
	}
	if inv, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#password').getAttribute('aria-describedby')`)); inv != "password-error" {
		t.Errorf("the password field is not described by its error: %q", inv)
	}
	// The right password returns to the page that asked for it.
	err = chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Submit(chromedp.CSS("#password")), chromedp.WaitVisible(chromedp.CSS("table.list")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, "table.list tbody th"); got != "shop" {
		t.Errorf("instances listed = %q, want only shop", got)
	}
	if href, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('table.list a').getAttribute('href')`)); href != "/console/instances/shop" {
		t.Errorf("instance link = %q", href)
	}
	if got := textOf(ctx, "nav a"); got != "Overview|Instances|Chatbots|Inbox|Team" {
		t.Errorf("owner's navigation = %q", got)
	}
	if got := textOf(ctx, `nav a[aria-current="page"]`); got != "Instances" {
		t.Errorf("the navigation marks %q as the current page, want Instances", got)
	}
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`nav a[href="/console"]`)), chromedp.WaitVisible(chromedp.CSS("#figures")))
	if err != nil {
		t.Fatal(err)
	}
	for sel, want := range map[string]string{
		`[data-figure=instances]`: "1 / 1", `[data-figure=messages]`: "2", `[data-figure=replies]`: "0",
		`[data-figure=errors]`: "0", `[data-figure=backlog]`: "0",
	} {
		if got := textOf(ctx, sel); got != want {
			t.Errorf("overview %s = %q, want %q", sel, got, want)
		}
	}
	if got := textOf(ctx, "header .org"); got != "Default" {
		t.Errorf("header organization = %q", got)
	}
	wide, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`))
	if wide {
		t.Error("the overview scrolls sideways at 375 px")
	}
	landmarks, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!document.querySelector('main#main') && !!document.querySelector('a.skip[href="#main"]') && !!document.querySelector('nav[aria-label]')`))
	if !landmarks {
		t.Error("the layout lacks its main landmark, skip link or labelled navigation")
	}
	// htmx sends the CSRF token with every request it makes.
	hdr, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.getAttribute('hx-headers')`))
	if !strings.Contains(hdr, `"X-CSRF-Token"`) {
		t.Errorf("body hx-headers = %q", hdr)
	}
	// Signing out goes back to the sign-in page, and the session is over.
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(".signout button")), chromedp.WaitVisible(chromedp.CSS("#email")),
		chromedp.Navigate(s.URL+"/console"), chromedp.WaitVisible(chromedp.CSS("#email")))
	if err != nil {
		t.Fatal(err)
	}

	// An agent joins by an invite link, choosing a name and a password.
	owner := s.signInAPI("owner@example.com", testPassword)
	link := owner.call("POST", "/api/v1/invites", map[string]any{"email": "agent@example.com", "role": "agent"}).json(t)["url"].(string)
	agent := browser(t, 1280, 800)
	err = chromedp.Do(agent, chromedp.Navigate(link), chromedp.WaitVisible(chromedp.CSS("#name")),
		chromedp.SendKeys(chromedp.CSS("#name"), "Agnes"),
		chromedp.SendKeys(chromedp.CSS("#password"), "short"),
		chromedp.Submit(chromedp.CSS("#password")), chromedp.WaitVisible(chromedp.CSS("#password-error")),
		chromedp.SendKeys(chromedp.CSS("#password"), testPassword),
		chromedp.Submit(chromedp.CSS("#password")), chromedp.WaitVisible(chromedp.CSS("header .org")))
	if err != nil {
		html, _ := chromedp.Run(agent, chromedp.OuterHTML(chromedp.CSS("body")))
		t.Fatalf("accepting the invite: %v\n%s", err, html)
	}
	if got := textOf(agent, ".flash"); got != "Welcome to Default." {
		t.Errorf("flash after joining = %q", got)
	}
	// The link worked once; signing in again uses the password chosen.
	if r := s.call("GET", strings.TrimPrefix(link, s.URL), "", nil); r.Status != http.StatusNotFound {
		t.Errorf("the used invite link answers %d", r.Status)
	}
	signIn(t, agent, s, "agent@example.com", testPassword)
	if got := textOf(agent, "nav a"); got != "Overview|Inbox" {
		t.Errorf("agent's navigation = %q", got)
	}
	err = chromedp.Do(agent, chromedp.Navigate(s.URL+"/console/instances"), chromedp.WaitVisible(chromedp.CSS("main h1")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(agent, "main h1"); got != "Forbidden" {
		t.Errorf("agent on the instances page sees %q, want Forbidden", got)
	}
	if n, _ := chromedp.Run(agent, chromedp.Evaluate[int](`document.querySelectorAll('table.list').length`)); n != 0 {
		t.Error("the agent sees the instances list")
	}
}
