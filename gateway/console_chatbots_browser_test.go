package gateway_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/wagate/wagate/fakeai"
)

// evalString runs js in the page and returns its string result.
func evalString(ctx context.Context, js string) string {
	s, _ := chromedp.Run(ctx, chromedp.Evaluate[string](js))
	return s
}

// TestConsoleChatbotsInBrowser: at phone width an admin creates a chatbot;
// a bad widget colour is shown by its field; fixed, the key is shown once;
// the widget preview follows the colour as it is typed; an uploaded PNG
// becomes the avatar. On the knowledge page a text and a dropped-in file
// become ready without a reload, and a question finds the passage.
func TestConsoleChatbotsInBrowser(t *testing.T) {
	s := startServer(t, "")
	ai := fakeai.NewTestServer(t, fakeai.Options{})
	o := s.createOrg("Shop")
	s.apiMust(http.StatusCreated, "POST", "/api/v1/credentials", o.Key,
		map[string]any{"name": "fake", "apiKey": testProviderKey, "baseUrl": ai.BaseURL()})
	s.createConsoleUser(o.ID, "admin@example.com", "admin")

	ctx := browser(t, 375, 800)
	signIn(t, ctx, s, "admin@example.com", testPassword)
	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("body")))
			t.Fatalf("%s: %v\npage:\n%s", what, err, html)
		}
	}
	colour := "#f-settings-snippet-primaryColor"
	do("creating with a bad colour",
		chromedp.Navigate(s.URL+"/console/chatbots"),
		chromedp.Click(chromedp.CSS(`a[href="/console/chatbots/new"]`)),
		chromedp.WaitVisible(chromedp.CSS("#f-name")),
		chromedp.SendKeys(chromedp.CSS("#f-name"), "Shop helper"),
		chromedp.SendKeys(chromedp.CSS("#f-settings-greeting"), "Hi! Ask me about deliveries."),
		chromedp.SendKeys(chromedp.CSS(colour), "blue"),
		chromedp.Submit(chromedp.CSS("#f-name")),
		chromedp.WaitVisible(chromedp.CSS(colour+"-error")))
	if got := textOf(ctx, colour+"-error"); got != "must be a colour as #RRGGBB" {
		t.Errorf("colour error = %q", got)
	}
	if got := evalString(ctx, `document.querySelector('`+colour+`').getAttribute('aria-describedby')`); got != "f-settings-snippet-primaryColor-error" {
		t.Errorf("the colour field is not described by its error: %q", got)
	}
	if got := evalString(ctx, `document.querySelector('#f-name').value`); got != "Shop helper" {
		t.Errorf("the redrawn form lost the name: %q", got)
	}
	do("creating with the colour fixed",
		chromedp.SetValue(chromedp.CSS(colour), "#112233"),
		chromedp.Submit(chromedp.CSS("#f-name")),
		chromedp.WaitVisible(chromedp.CSS("#chatbot-key")))
	key := evalString(ctx, `document.querySelector('#chatbot-key').value`)
	if !strings.HasPrefix(key, "ob_live_") {
		t.Fatalf("key shown = %q", key)
	}
	do("opening the chatbot", chromedp.Click(chromedp.CSS("main a")), chromedp.WaitVisible(chromedp.CSS("#widget-preview")))
	id := strings.TrimPrefix(evalString(ctx, `location.pathname`), "/console/chatbots/")
	// The key works on the API, and the settings were saved.
	s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+id+"/knowledge-base", key, nil)
	cb := s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+id, o.Key, nil).json(t)["chatbot"].(map[string]any)
	if sn := cb["settings"].(map[string]any)["snippet"].(map[string]any); sn["primaryColor"] != "#112233" {
		t.Errorf("saved snippet = %v", sn)
	}

	header := `(() => { const d = document.querySelector('#widget-preview').contentDocument; const h = d && d.querySelector('.wagate-header'); return h ? getComputedStyle(h).backgroundColor : ''; })()`
	waitFor(t, ctx, "the preview in the saved colour", func() bool { return evalString(ctx, header) == "rgb(17, 34, 51)" })
	if got := evalString(ctx, `document.querySelector('#widget-preview').contentDocument.querySelector('.wagate-log [data-greeting]').textContent.trim()`); got != "Hi! Ask me about deliveries." {
		t.Errorf("preview greeting = %q", got)
	}
	do("typing a new colour", chromedp.Clear(chromedp.CSS(colour)), chromedp.SendKeys(chromedp.CSS(colour), "#AA0000"))
	waitFor(t, ctx, "the preview in the typed colour", func() bool { return evalString(ctx, header) == "rgb(170, 0, 0)" })

	// The avatar: a real PNG, shown from the public avatar route.
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	for i := range 16 {
		img.Set(i%4, i/4, color.RGBA{R: 200, A: 255})
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	pngPath := filepath.Join(t.TempDir(), "face.png")
	os.WriteFile(pngPath, buf.Bytes(), 0o600)
	do("uploading the avatar",
		chromedp.SetUploadFiles(chromedp.CSS("#f-avatar"), []string{pngPath}),
		chromedp.Submit(chromedp.CSS("#f-avatar")),
		chromedp.WaitVisible(chromedp.CSS("#avatar-img")))
	if src := evalString(ctx, `document.querySelector('#avatar-img').getAttribute('src')`); !strings.HasPrefix(src, "/api/public/avatars/") || !strings.HasSuffix(src, ".png") {
		t.Errorf("avatar src = %q", src)
	}
	waitFor(t, ctx, "the avatar to load", func() bool {
		return evalString(ctx, `String(document.querySelector('#avatar-img').naturalWidth)`) == "4"
	})
	if wide, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); wide {
		t.Error("the chatbot page scrolls sideways at 375 px")
	}

	// Knowledge: each embedding call takes a while, so the page shows the
	// sources being read and then ready, by itself.
	ai.EnqueueEmbeddings(fakeai.Delay(2*time.Second), fakeai.Delay(2*time.Second), fakeai.Delay(2*time.Second))
	do("adding a text",
		chromedp.Navigate(s.URL+"/console/chatbots/"+id+"/knowledge"),
		chromedp.WaitVisible(chromedp.CSS("#kb-text-title")),
		chromedp.SendKeys(chromedp.CSS("#kb-text-title"), "Delivery"),
		chromedp.SendKeys(chromedp.CSS("#kb-text-body"), "Deliveries arrive on Tuesdays and Fridays."),
		chromedp.Submit(chromedp.CSS("#kb-text-title")),
		chromedp.WaitVisible(chromedp.CSS("#sources tbody tr")))
	mdPath := filepath.Join(t.TempDir(), "returns.md")
	os.WriteFile(mdPath, []byte("# Returns\n\nReturns are accepted within thirty days of purchase.\n"), 0o600)
	do("uploading a file through the drop zone's input",
		chromedp.SetUploadFiles(chromedp.CSS("[data-dropzone] input[type=file]"), []string{mdPath}),
		chromedp.Submit(chromedp.CSS("#kb-files")),
		chromedp.WaitVisible(chromedp.CSS(".flash")))
	// A file dropped on the zone goes through the same input and form.
	ignored, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(() => {
			window.beforeDrop = true;
			const dt = new DataTransfer();
			dt.items.add(new File(["Gift wrapping is free for orders over fifty euros."], "gifts.txt", {type: "text/plain"}));
			const zone = document.querySelector('[data-dropzone]');
			zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
			return zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
		})()`))
	if err != nil || ignored {
		t.Fatalf("dropping a file: %v (the drop was ignored: %v)", err, ignored)
	}
	waitFor(t, ctx, "the page after the drop", func() bool {
		return evalString(ctx, `window.beforeDrop ? "" : document.querySelector('.flash') ? document.querySelector('.flash').textContent : ""`) != ""
	})
	statuses := func() string { return textOf(ctx, "#sources tbody .status") }
	if got := statuses(); !strings.Contains(got, "pending") && !strings.Contains(got, "processing") {
		t.Errorf("right after adding, statuses = %q", got)
	}
	chromedp.Run(ctx, chromedp.Evaluate[bool](`window.stayed = true`))
	waitFor(t, ctx, "every source ready", func() bool { return statuses() == "ready|ready|ready" })
	if stayed, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.stayed === true`)); !stayed {
		t.Error("the page was reloaded to show the statuses")
	}
	if got := textOf(ctx, "#sources tbody th"); !strings.Contains(got, "returns.md") || !strings.Contains(got, "Delivery") || !strings.Contains(got, "gifts.txt") {
		t.Errorf("sources listed = %q", got)
	}
	if wide, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); wide {
		t.Error("the knowledge page scrolls sideways at 375 px")
	}
	live := evalString(ctx, `document.querySelector('#sources').parentElement.getAttribute('aria-live')`)
	if live != "polite" {
		t.Errorf("the statuses are not in a live region: %q", live)
	}

	do("asking a question",
		chromedp.SendKeys(chromedp.CSS("#kb-query"), "when are returns accepted"),
		chromedp.Click(chromedp.CSS("#query-form button")),
		chromedp.WaitVisible(chromedp.CSS("#results .results li")))
	if got := textOf(ctx, "#results .results li"); !strings.Contains(got, "thirty days") || !strings.Contains(got, "returns.md") || !strings.Contains(got, "score") {
		t.Errorf("query results = %q", got)
	}
	if stayed, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.stayed === true`)); !stayed {
		t.Error("the query reloaded the page instead of showing the results in place")
	}
}
