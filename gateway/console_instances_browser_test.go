package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image/png"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/makiuchi-d/gozxing"
	zxingqr "github.com/makiuchi-d/gozxing/qrcode"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/gateway/whatsapp/watest"
)

// qrText reads the QR code of the page's #qr image (a PNG data URL).
func qrText(t *testing.T, ctx context.Context) string {
	t.Helper()
	src, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(document.querySelector('#qr') || {}).src || ''`))
	if err != nil || !strings.HasPrefix(src, "data:image/png;base64,") {
		return ""
	}
	b, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(src, "data:image/png;base64,"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	bmp, _ := gozxing.NewBinaryBitmapFromImage(img)
	res, err := zxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("the page's QR image does not read: %v", err)
	}
	return res.GetText()
}

// TestConsoleInstanceConnectInBrowser: an owner creates a WhatsApp
// instance on the page (a bad name is shown by its field first), opens
// it, connects, and sees the QR code WhatsApp shows, then the next one it
// rotates to, then "connected" once the phone pairs, all without
// reloading; logging out and deleting go through a confirmation page.
func TestConsoleInstanceConnectInBrowser(t *testing.T) {
	fac := watest.NewFactory()
	s := startServer(t, "", withWhatsApp(fac))
	s.createConsoleUser(s.defaultOrgID(), "owner@example.com", "owner")
	ctx := browser(t, 375, 740)
	signIn(t, ctx, s, "owner@example.com", testPassword)

	err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/console/instances"), chromedp.WaitVisible(chromedp.CSS(`a[href="/console/instances/new"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/console/instances/new"]`)), chromedp.WaitVisible(chromedp.CSS("#instanceName")),
		chromedp.SendKeys(chromedp.CSS("#instanceName"), "no spaces allowed"),
		chromedp.Submit(chromedp.CSS("#instanceName")), chromedp.WaitVisible(chromedp.CSS("#instanceName-error")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, "#instanceName-error"); !strings.Contains(got, "must be 1 to 64 characters") {
		t.Errorf("name error = %q", got)
	}
	if d, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#instanceName').getAttribute('aria-describedby')`)); d != "instanceName-error" {
		t.Errorf("the name field is not described by its error: %q", d)
	}
	err = chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#instanceName"), "wa1"),
		chromedp.Submit(chromedp.CSS("#instanceName")), chromedp.WaitVisible(chromedp.CSS("#token")))
	if err != nil {
		t.Fatal(err)
	}
	token := textOf(ctx, "#token")
	if st := s.must(http.StatusOK, "GET", "/instance/connectionState/wa1", token, nil).json(t)["instance"].(map[string]any); st["state"] != "close" {
		t.Fatalf("the token shown does not open the instance: %v", st)
	}
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#open-instance")), chromedp.WaitVisible(chromedp.CSS("#connect")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, "#state"); got != "close" {
		t.Errorf("state before connecting = %q", got)
	}
	live, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#connection').getAttribute('aria-live')`))
	if live != "polite" {
		t.Errorf("the connection region is not live: %q", live)
	}

	// Connecting waits for WhatsApp's first code: the fake client shows it.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#connect"), chromedp.NodeVisible)); err != nil {
		t.Fatal(err)
	}
	cl, err := fac.Next(15 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitConnect(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	const first, second = "2@first-code,noise,identity,adv", "2@second-code,noise,identity,adv"
	cl.QR(whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: first, Timeout: time.Minute})
	waitFor(t, ctx, "the first QR code", func() bool { return qrText(t, ctx) == first })
	if alt, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#qr').alt`)); !strings.Contains(alt, "QR code") {
		t.Errorf("QR alt = %q", alt)
	}
	if got := textOf(ctx, "#state"); got != "connecting" {
		t.Errorf("state while pairing = %q", got)
	}
	// WhatsApp rotates the code: the page follows without a reload.
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.sameDocument = true`)); err != nil {
		t.Fatal(err)
	}
	cl.QR(whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: second, Timeout: time.Minute})
	waitFor(t, ctx, "the rotated QR code", func() bool { return qrText(t, ctx) == second })
	// Scanned: paired, then connected.
	cl.QR(whatsmeow.QRChannelSuccess)
	cl.CloseQR()
	cl.Emit(&events.PairSuccess{ID: types.JID{User: "5511900000000", Device: 7, Server: types.DefaultUserServer}})
	cl.Emit(&events.Connected{})
	waitFor(t, ctx, "connected", func() bool { return textOf(ctx, "#state") == "connected" })
	if n, _ := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll('#qr').length`)); n != 0 {
		t.Error("the QR code is still shown once connected")
	}
	if same, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`window.sameDocument === true`)); !same {
		t.Error("the page reloaded to follow the connection")
	}
	if wide, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth > window.innerWidth`)); wide {
		t.Error("the instance page scrolls sideways at 375 px")
	}

	// Logging out asks first, on a page of its own with the button focused.
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href$="/confirm/logout"]`)), chromedp.WaitVisible(chromedp.CSS("#confirm-title")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, "#confirm-title"); got != "Log out wa1?" {
		t.Errorf("confirmation title = %q", got)
	}
	if focused, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.textContent`)); focused != "Log out" {
		t.Errorf("focus on the confirmation page is on %q", focused)
	}
	if cl.LoggedOut() {
		t.Fatal("logged out before confirming")
	}
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`form button[type=submit].danger`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, ".flash"); got != "Logged out." {
		t.Errorf("flash = %q", got)
	}
	if !cl.LoggedOut() {
		t.Error("the device was not logged out")
	}
	waitFor(t, ctx, "the closed state", func() bool { return textOf(ctx, "#state") == "close" })

	// Deleting: Cancel keeps it; confirming deletes it.
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href$="/confirm/delete"]`)), chromedp.WaitVisible(chromedp.CSS("#confirm-title")),
		chromedp.Click(chromedp.CSS(`form .actions a`)), chromedp.WaitVisible(chromedp.CSS("#connection")))
	if err != nil {
		t.Fatal(err)
	}
	s.must(http.StatusOK, "GET", "/instance/connectionState/wa1", testAPIKey, nil)
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href$="/confirm/delete"]`)), chromedp.WaitVisible(chromedp.CSS("#confirm-title")),
		chromedp.Click(chromedp.CSS(`form button[type=submit].danger`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, ".flash"); got != "Instance wa1 deleted." {
		t.Errorf("flash = %q", got)
	}
	s.must(http.StatusNotFound, "GET", "/instance/connectionState/wa1", testAPIKey, nil)
}

// TestConsoleWebhookRetryInBrowser: a delivery the receiver refused until
// it gave up shows as failed with a Retry button; once the receiver works,
// Retry sends it again and the page shows it delivered.
func TestConsoleWebhookRetryInBrowser(t *testing.T) {
	s := startServer(t, "", withConfig(func(c *config.Config) { c.WebhookMaxAge = 150 * time.Millisecond }))
	rc := newReceiver(t)
	var status atomic.Int32
	status.Store(http.StatusInternalServerError)
	rc.setRespond(func(int, delivery) (int, http.Header) { return int(status.Load()), nil })
	inst := s.createInstance("shop", rc.URL)
	if r := s.inbound(inst, "m1", "5511999@s.whatsapp.net", "hello"); r.Status >= 300 {
		t.Fatalf("inbound: %d %s", r.Status, r.Body)
	}
	id := failedDelivery(t, s, "shop", "messages.upsert")
	row := `tr[data-delivery="` + id + `"] `

	s.createConsoleUser(s.defaultOrgID(), "admin@example.com", "admin")
	ctx := browser(t, 1280, 800)
	signIn(t, ctx, s, "admin@example.com", testPassword)
	err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/console/instances/shop"), chromedp.WaitVisible(chromedp.CSS(row+"button.retry")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, row+".delivery-status"); got != "failed" {
		t.Fatalf("delivery statuses = %q", got)
	}
	status.Store(http.StatusOK)
	before := len(rc.deliveries())
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(row+"button.retry")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, ".flash"); got != "Delivery queued again." {
		t.Errorf("flash = %q", got)
	}
	waitFor(t, ctx, "the delivery shown delivered", func() bool {
		if textOf(ctx, row+".delivery-status") == "delivered" {
			return true
		}
		chromedp.Run(ctx, chromedp.Reload())
		return false
	})
	if got := len(rc.deliveries()); got != before+1 {
		t.Errorf("the receiver got %d requests after the retry, want 1", got-before)
	}
}

// failedDelivery waits until the instance's delivery of event has failed
// (the receiver refused it until the maximum age) and returns its id.
func failedDelivery(t *testing.T, s *server, name, event string) string {
	t.Helper()
	var id string
	eventually(t, func() bool {
		for _, d := range s.must(http.StatusOK, "GET", "/webhook/deliveries/"+name+"?status=failed", testAPIKey, nil).json(t)["data"].([]any) {
			if d := d.(map[string]any); d["event"] == event {
				id = d["id"].(string)
				return true
			}
		}
		return false
	}, "a failed %s delivery", event)
	return id
}

// TestConsoleBotsInBrowser: credentials stored on the page are listed
// masked; a bot with an invalid regular expression and an expiry out of
// range is shown again with each problem by its field; corrected, it is
// listed, and its page shows the values it inherits from the instance's
// settings next to the fields left empty. Editing and deleting (after a
// confirmation page) go through the same routes' rules.
func TestConsoleBotsInBrowser(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	s.must(http.StatusOK, "POST", "/openai/settings/shop", inst.Token, map[string]any{"expire": 45, "debounceTime": 3})
	s.createConsoleUser(s.defaultOrgID(), "owner@example.com", "owner")
	ctx := browser(t, 375, 740)
	signIn(t, ctx, s, "owner@example.com", testPassword)

	err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/console/instances/shop"), chromedp.WaitVisible(chromedp.CSS("#bots-link")),
		chromedp.Click(chromedp.CSS("#bots-link")), chromedp.WaitVisible(chromedp.CSS("#apiKey")),
		chromedp.SendKeys(chromedp.CSS("#creds #name"), "main"),
		chromedp.SendKeys(chromedp.CSS("#apiKey"), "sk-test-0123456789abcdef"),
		chromedp.SendKeys(chromedp.CSS("#baseUrl"), "not a url"),
		chromedp.Submit(chromedp.CSS("#apiKey")), chromedp.WaitVisible(chromedp.CSS("#baseUrl-error")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, "#baseUrl-error"); !strings.Contains(got, "absolute http or https URL") {
		t.Errorf("base URL error = %q", got)
	}
	err = chromedp.Do(ctx, setValue("#baseUrl", ""),
		chromedp.SendKeys(chromedp.CSS("#apiKey"), "sk-test-0123456789abcdef"),
		chromedp.Submit(chromedp.CSS("#apiKey")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, "#creds li code"); !strings.HasSuffix(got, "cdef") || strings.Contains(got, "0123456789") {
		t.Errorf("credentials shown as %q", got)
	}
	var creds []map[string]any
	if err := json.Unmarshal(s.must(http.StatusOK, "GET", "/openai/creds/shop", inst.Token, nil).Body, &creds); err != nil {
		t.Fatal(err)
	}
	if len(creds) != 1 {
		t.Fatalf("credentials stored: %v", creds)
	}
	credsID := creds[0]["id"].(string)

	// A bot with two problems: each is shown by its field.
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href$="/bots/new"]`)), chromedp.WaitVisible(chromedp.CSS("#triggerValue")),
		chromedp.SendKeys(chromedp.CSS("#description"), "Sales"),
		chromedp.SendKeys(chromedp.CSS("#model"), "gpt-4o-mini"),
		chromedp.SetValue(chromedp.CSS("#openaiCredsId"), credsID),
		chromedp.SendKeys(chromedp.CSS("#systemMessages"), "You sell shoes."),
		chromedp.SetValue(chromedp.CSS("#triggerType"), "keyword"),
		chromedp.SetValue(chromedp.CSS("#triggerOperator"), "regex"),
		chromedp.SendKeys(chromedp.CSS("#triggerValue"), "order("),
		chromedp.SendKeys(chromedp.CSS("#expire"), "-5"),
		chromedp.Submit(chromedp.CSS("#triggerValue")), chromedp.WaitVisible(chromedp.CSS("#triggerValue-error")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, "#triggerValue-error"); !strings.Contains(got, "invalid regular expression") {
		t.Errorf("trigger error = %q", got)
	}
	if got := textOf(ctx, "#expire-error"); !strings.Contains(got, "must be from 0 to") {
		t.Errorf("expire error = %q", got)
	}
	if d, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#triggerValue').getAttribute('aria-describedby')`)); d != "triggerValue-error" {
		t.Errorf("the trigger field is not described by its error: %q", d)
	}
	// What was typed is kept.
	if v, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector('#description').value + '|' + document.querySelector('#openaiCredsId').value`)); v != "Sales|"+credsID {
		t.Errorf("the form kept %q", v)
	}
	err = chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#triggerValue"), "order"),
		setValue("#expire", ""),
		chromedp.Submit(chromedp.CSS("#triggerValue")), chromedp.WaitVisible(chromedp.CSS("#bots")))
	if err != nil {
		html, _ := chromedp.Run(ctx, chromedp.OuterHTML(chromedp.CSS("main")))
		t.Fatalf("%v\n%s", err, html)
	}
	if got := textOf(ctx, "#bots tbody th"); got != "Sales" {
		t.Errorf("bots listed = %q", got)
	}
	var list []map[string]any
	if err := json.Unmarshal(s.must(http.StatusOK, "GET", "/openai/find/shop", inst.Token, nil).Body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0]["triggerValue"] != "order" || list[0]["expire"] != nil || list[0]["openaiCredsId"] != credsID {
		t.Fatalf("bot stored = %v", list)
	}
	botID := list[0]["id"].(string)

	// The bot's page: its inherited values are the settings'.
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#bots a`)), chromedp.WaitVisible(chromedp.CSS("#expire-effective")))
	if err != nil {
		t.Fatal(err)
	}
	for sel, want := range map[string]string{"#expire-effective": "Inherited: 45", "#debounceTime-effective": "Inherited: 3"} {
		if got := textOf(ctx, sel); got != want {
			t.Errorf("%s = %q, want %q", sel, got, want)
		}
	}
	// Its own value overrides; the page says what emptying it would give.
	err = chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#expire"), "10"),
		chromedp.Submit(chromedp.CSS("#expire")), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, "#expire-effective"); got != "Left empty: 45" {
		t.Errorf("expire hint after setting it = %q", got)
	}
	b := s.must(http.StatusOK, "GET", "/openai/fetch/"+botID+"/shop", inst.Token, nil).json(t)
	if b["expire"] != float64(10) || b["description"] != "Sales" || b["systemMessages"].([]any)[0] != "You sell shoes." {
		t.Errorf("bot after the edit = %v", b)
	}

	// Deleting asks first.
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`a[href$="/delete"]`)), chromedp.WaitVisible(chromedp.CSS("#confirm-title")),
		chromedp.Click(chromedp.CSS(`form button[type=submit].danger`)), chromedp.WaitVisible(chromedp.CSS(".flash")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, ".flash"); got != "Bot deleted." {
		t.Errorf("flash = %q", got)
	}
	s.must(http.StatusNotFound, "GET", "/openai/fetch/"+botID+"/shop", inst.Token, nil)
}

// setValue sets the value of the input or select sel, as a person
// choosing it would leave it.
func setValue(sel, value string) chromedp.Action[chromedp.Void] {
	eval := chromedp.Evaluate[bool](fmt.Sprintf(`(document.querySelector(%q).value = %q, true)`, sel, value))
	return func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := eval(ctx, t)
		return chromedp.Void{}, err
	}
}
