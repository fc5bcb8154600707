package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wagate/wagate/fakeai"
)

// chromium returns the path of a local Chromium, or skips the test: CI
// installs Debian's chromium (see .ci/run), so these tests run there.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium found (apt-get install chromium); browser tests skipped")
	return ""
}

// browser starts a headless Chromium for the test and returns a context
// to run chromedp actions in.
func browser(t *testing.T, width, height int) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)),
		chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(width, height),
	)
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first action starts the browser, with the test's lifetime.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	if width < 500 { // narrower than a desktop window can be: a phone's viewport
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(int64(width), int64(height), chromedp.EmulateMobile)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(cancelTimeout)
	return ctx
}

// sitePage serves a page of another site embedding the widget of chatbot
// id from the gateway at gw.
func sitePage(t *testing.T, gw, id string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>Shop</title></head>
<body><h1>Acme Shoes</h1><p>Our shop.</p>
<script src="%s/widget.js" data-chatbot="%s" async></script></body></html>`, gw, id)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// texts returns the text of each element matching sel.
func texts(ctx context.Context, sel string) []string {
	out, _ := chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(
		`Array.from(document.querySelectorAll(%q)).map(e => e.textContent)`, sel)))
	return out
}

func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
			t.Fatalf("timed out waiting for %s; page:\n%s", what, html)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func say(t *testing.T, ctx context.Context, text string) {
	t.Helper()
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS(".wagate-input"), text+"\r")); err != nil {
		t.Fatal(err)
	}
}

func openWidget(t *testing.T, ctx context.Context, url string) {
	t.Helper()
	err := chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitVisible(chromedp.CSS(".wagate-launcher")),
		chromedp.Click(chromedp.CSS(".wagate-launcher")), chromedp.WaitVisible(chromedp.CSS(".wagate-input")))
	if err != nil {
		t.Fatal(err)
	}
}

func TestWidgetInBrowser(t *testing.T) {
	ctx := browser(t, 1280, 800)
	e := newWebEnv(t, nil)
	e.makePublic(map[string]any{"settings": map[string]any{"snippet": map[string]any{"name": "Olivia",
		"header": "Acme support", "slogan": "Ask us anything"}}})
	page := sitePage(t, e.s.URL, e.cb.ID)

	t.Run("streams, then shows history after a reload", func(t *testing.T) {
		openWidget(t, ctx, page)
		waitFor(t, ctx, "the greeting", func() bool {
			got := texts(ctx, ".wagate-msg--assistant .wagate-body")
			return len(got) == 1 && got[0] == "Hi! I am Olivia."
		})
		focused, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.className`))
		if focused != "wagate-input" {
			t.Errorf("opening the chat focuses %q, not the input", focused)
		}
		full := "one two three four five six seven eight nine ten"
		e.ai.Enqueue(fakeai.Reply(full).Paced(60 * time.Millisecond))
		say(t, ctx, "count for me")
		sawPart := false
		waitFor(t, ctx, "the streamed answer", func() bool {
			got := texts(ctx, ".wagate-msg--assistant .wagate-body")
			last := got[len(got)-1]
			if len(got) == 2 && strings.HasPrefix(full, last) && len(last) > 0 && last != full {
				sawPart = true
			}
			return last == full
		})
		if !sawPart {
			t.Error("the answer appeared whole, never streamed in")
		}
		// The answer is stored when its stream ends, with the done event.
		waitFor(t, ctx, "the end of the stream", func() bool {
			busy, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector('[aria-busy]') !== null`))
			return !busy
		})
		if err := chromedp.Do(ctx, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(".wagate-launcher")),
			chromedp.Click(chromedp.CSS(".wagate-launcher"))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "the history after reload", func() bool {
			got := texts(ctx, ".wagate-msg .wagate-body")
			return strings.Join(got, "|") == "Hi! I am Olivia.|count for me|"+full
		})
	})

	t.Run("model output is text, never HTML", func(t *testing.T) {
		e.ai.Enqueue(fakeai.Reply(`<script>window.pwned=1</script><img src=x onerror="window.pwned=2"> and **bold**`))
		say(t, ctx, "attack")
		waitFor(t, ctx, "the answer", func() bool {
			got := texts(ctx, ".wagate-msg--assistant .wagate-body")
			return strings.Contains(got[len(got)-1], "<script>window.pwned=1</script>")
		})
		pwned, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.pwned !== undefined`))
		imgs, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.wagate-log img, .wagate-log script').length`))
		strongs, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('.wagate-log strong').length`))
		if pwned || imgs != 0 {
			t.Fatalf("model output ran as HTML: pwned=%v, %d elements", pwned, imgs)
		}
		if strongs == 0 {
			t.Error("Markdown **bold** was not rendered")
		}
	})

	t.Run("lead capture", func(t *testing.T) {
		lead := newWebEnv(t, map[string]any{"isRequestUserInfoEnabled": true})
		lead.makePublic(nil)
		ctx := browser(t, 1280, 800)
		openWidget(t, ctx, sitePage(t, lead.s.URL, lead.cb.ID))
		waitFor(t, ctx, "the email request", func() bool {
			got := texts(ctx, ".wagate-msg--assistant .wagate-body")
			return len(got) == 2 && got[1] == "Before we start, could you tell me your email address?"
		})
		say(t, ctx, "ana@example.com")
		waitFor(t, ctx, "the thanks", func() bool {
			got := texts(ctx, ".wagate-msg--assistant .wagate-body")
			return got[len(got)-1] == "Thank you! How can I help you today?"
		})
		leads := lead.s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+lead.cb.ID+"/leads", lead.cb.Key, nil).json(t)
		if data := leads["data"].([]any); len(data) != 1 || data[0].(map[string]any)["email"] != "ana@example.com" {
			t.Fatalf("leads = %v", leads)
		}
	})

	t.Run("a chatbot that is not public is refused", func(t *testing.T) {
		private := e.s.createChatbot("Private", testAPIKey)
		openWidget(t, ctx, sitePage(t, e.s.URL, private.ID))
		waitFor(t, ctx, "the refusal", func() bool {
			return strings.Join(texts(ctx, ".wagate-title"), "") == "This chat is not available."
		})
	})

	t.Run("a site not among the allowed origins is refused", func(t *testing.T) {
		e.makePublic(map[string]any{"settings": map[string]any{"allowedOrigins": []string{"https://shop.example.com"}}})
		t.Cleanup(func() { e.makePublic(map[string]any{"settings": map[string]any{"allowedOrigins": nil}}) })
		openWidget(t, ctx, page)
		waitFor(t, ctx, "the refusal", func() bool {
			return strings.Join(texts(ctx, ".wagate-title"), "") == "This chat is not available."
		})
	})
}

// TestWidgetScreenshots writes screenshots of the widget and the hosted
// page at desktop and phone widths into $WAGATE_SCREENSHOTS:
//
//	WAGATE_SCREENSHOTS=/tmp/shots go test ./gateway -run TestWidgetScreenshots
func TestWidgetScreenshots(t *testing.T) {
	dir := os.Getenv("WAGATE_SCREENSHOTS")
	if dir == "" {
		t.Skip("set WAGATE_SCREENSHOTS to a directory to write screenshots")
	}
	e := newWebEnv(t, nil)
	e.makePublic(map[string]any{"settings": map[string]any{"snippet": map[string]any{"name": "Olivia",
		"header": "Acme support", "slogan": "Ask us anything", "primaryColor": "#0F766E", "secondaryColor": "#F59E0B"}}})
	slug := e.s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+e.cb.ID, testAPIKey, nil).object(t, "chatbot")["slug"].(string)
	page := sitePage(t, e.s.URL, e.cb.ID)
	for _, size := range []struct {
		name          string
		width, height int
	}{{"desktop", 1280, 800}, {"phone", 390, 844}} {
		ctx := browser(t, size.width, size.height)
		e.ai.Enqueue(fakeai.Reply("Our **opening hours**:\n\n- Monday to Friday: 9–18\n- Saturday: 9–13\n\nSee [our site](https://example.com)."))
		openWidget(t, ctx, page)
		say(t, ctx, "When are you open?")
		waitFor(t, ctx, "the answer", func() bool {
			got := texts(ctx, ".wagate-msg--assistant .wagate-body")
			return len(got) == 2 && strings.Contains(got[1], "Saturday")
		})
		shot(t, ctx, filepath.Join(dir, "widget-"+size.name+".png"))
		if err := chromedp.Do(ctx, chromedp.Navigate(e.s.URL+"/c/"+slug), chromedp.WaitVisible(chromedp.CSS(".wagate-input"))); err != nil {
			t.Fatal(err)
		}
		waitFor(t, ctx, "the hosted page's greeting", func() bool { return len(texts(ctx, ".wagate-msg")) > 0 })
		shot(t, ctx, filepath.Join(dir, "page-"+size.name+".png"))
	}
}

func shot(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}
