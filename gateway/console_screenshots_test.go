package gateway_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// consolePage is a console page and what shows it is drawn.
type consolePage struct{ name, path, ready string }

// consoleShowcase starts a gateway with an EVOLUTION instance, its bot and
// a conversation, a chatbot with a knowledge source, and an owner
// olga@example.com (an admin of a second organization too), and returns
// every page an owner sees.
func consoleShowcase(t *testing.T) (*server, []consolePage) {
	t.Helper()
	e := newBotEnv(t)
	botID := e.bot(nil)
	s := e.s
	s.createConsoleUser(s.defaultOrgID(), "olga@example.com", "owner")
	// A second organization of hers puts the organization picker in the header.
	second := s.createOrg("Second Shop")
	inv := s.apiMust(http.StatusCreated, "POST", "/api/v1/invites", second.Key, map[string]any{"email": "olga@example.com", "role": "admin"}).json(t)
	if r, _ := s.raw("POST", "/api/v1/invites/accept", nil, "", map[string]any{"token": inv["token"], "password": testPassword}); r.Status != http.StatusCreated {
		t.Fatalf("accept: %d %s", r.Status, r.Body)
	}
	e.say("shot-1", "5511999990001@s.whatsapp.net", "Do you deliver on Saturdays?", nil)
	e.replies(1)
	cb := s.createChatbot("Support", testAPIKey)
	src := s.apiMust(http.StatusAccepted, "POST", "/api/external/chatbot/"+cb.ID+"/knowledge-base", cb.Key,
		map[string]any{"type": "text", "title": "Delivery", "body": "We deliver Monday to Saturday, 9 to 18."}).json(t)["data"].([]any)[0].(map[string]any)["id"].(string)
	return s, []consolePage{
		{"overview", "/console", "main"},
		{"instances", "/console/instances", "main"},
		{"instance-new", "/console/instances/new", "main form"},
		{"instance", "/console/instances/shop", "main"},
		{"bots", "/console/instances/shop/bots", "main"},
		{"bot", "/console/instances/shop/bots/" + botID, "main form"},
		{"bot-settings", "/console/instances/shop/bot-settings", "main form"},
		{"chatbots", "/console/chatbots", "main"},
		{"chatbot", "/console/chatbots/" + cb.ID, "main form"},
		{"knowledge", "/console/chatbots/" + cb.ID + "/knowledge", "main"},
		{"knowledge-source", "/console/chatbots/" + cb.ID + "/knowledge/" + src, "main form"},
		{"team", "/console/team", "main form"},
		{"inbox", "/console/inbox", ".inbox-item a"}, // last: the conversation is opened from it
	}
}

// visit opens the page and fails on an error page.
func visit(t *testing.T, ctx context.Context, s *server, p consolePage) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+p.path), chromedp.WaitVisible(chromedp.CSS(p.ready))); err != nil {
		t.Fatalf("%s: %v", p.path, err)
	}
	if h := textOf(ctx, "h1"); strings.Contains(h, "Forbidden") || strings.Contains(h, "Not found") {
		t.Fatalf("%s shows %q", p.path, h)
	}
}

// TestConsolePagesFitAPhone opens every page an owner sees on a 375 px
// phone: none is wider than the screen (a wide table scrolls in its own
// box).
func TestConsolePagesFitAPhone(t *testing.T) {
	s, pages := consoleShowcase(t)
	ctx := browser(t, 375, 740)
	signIn(t, ctx, s, "olga@example.com", testPassword)
	for _, p := range pages {
		visit(t, ctx, s, p)
		if w := evalString(ctx, `String(document.documentElement.scrollWidth)`); w != "375" {
			t.Errorf("%s is %s px wide on a 375 px phone", p.path, w)
		}
	}
}

// TestConsoleScreenshots writes a full-page screenshot of every console
// page, at desktop and phone widths, into $WAGATE_SCREENSHOTS:
//
//	WAGATE_SCREENSHOTS=/tmp/shots go test ./gateway -run TestConsoleScreenshots
//
// The pages show an EVOLUTION instance with a bot and a conversation, a
// chatbot with a knowledge source, and the owner who is signed in.
func TestConsoleScreenshots(t *testing.T) {
	dir := os.Getenv("WAGATE_SCREENSHOTS")
	if dir == "" {
		t.Skip("set WAGATE_SCREENSHOTS to a directory to write screenshots")
	}
	s, pages := consoleShowcase(t)
	for _, size := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		ctx := browser(t, size.width, size.height)
		if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/console/signin"), chromedp.WaitVisible(chromedp.CSS("main form"))); err != nil {
			t.Fatal(err)
		}
		fullShot(t, ctx, filepath.Join(dir, "console-signin-"+size.name+".png"))
		signIn(t, ctx, s, "olga@example.com", testPassword)
		for _, p := range pages {
			visit(t, ctx, s, p)
			fullShot(t, ctx, filepath.Join(dir, "console-"+p.name+"-"+size.name+".png"))
		}
		// The conversation, opened from the inbox.
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(".inbox-item a")), chromedp.WaitVisible(chromedp.CSS("#messages li"))); err != nil {
			t.Fatal(err)
		}
		fullShot(t, ctx, filepath.Join(dir, "console-conversation-"+size.name+".png"))
	}
}

// fullShot writes a PNG of the whole page, below the fold included.
func fullShot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}
