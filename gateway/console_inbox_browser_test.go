package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// settled waits until htmx has swapped and wired up everything it
// received: a button clicked before that would post as a plain form.
func settled(t *testing.T, ctx context.Context) {
	t.Helper()
	waitFor(t, ctx, "htmx to settle", func() bool {
		return evalString(ctx, `String(document.readyState === "complete" && !document.querySelector('.htmx-settling, .htmx-swapping, .htmx-added, .htmx-request'))`) == "true"
	})
}

// TestConsoleInboxInBrowser: at phone width an agent watches the inbox
// while a customer writes to an EVOLUTION instance: the conversation and
// the bot's reply appear without a reload; on its page the agent takes it
// over, the customer's next message arrives with the reason the bot did
// not answer, the agent's reply leaves through the channel and shows as
// theirs, and after handing back the bot answers again. The webhook saw
// the pause and the resumption. A web chat conversation is listed with its
// channel, and the agent's reply there reaches the visitor.
func TestConsoleInboxInBrowser(t *testing.T) {
	e := newBotEnv(t)
	e.bot(nil)
	s := e.s
	s.createConsoleUser(s.defaultOrgID(), "carla@example.com", "agent")
	const chat = "5511999990001@s.whatsapp.net"

	ctx := browser(t, 375, 740)
	signIn(t, ctx, s, "carla@example.com", testPassword)
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/console/inbox"), chromedp.WaitVisible(chromedp.CSS(".inbox-count"))); err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, ".inbox-count"); got != "0 conversations" {
		t.Fatalf("empty inbox says %q", got)
	}
	// A mark in the page shows it was never reloaded.
	evalString(ctx, `window.notReloaded = "true"`)
	e.say("in-1", chat, "hello", nil)
	waitFor(t, ctx, "the conversation with the bot's reply", func() bool {
		return textOf(ctx, ".inbox-item .inbox-name") == "Ana" && strings.Contains(textOf(ctx, ".inbox-item .inbox-last"), "echo: hello")
	})
	if got := textOf(ctx, ".inbox-item .inbox-channel") + "/" + textOf(ctx, ".inbox-item .inbox-status"); got != "EVOLUTION/Bot answering" {
		t.Errorf("listed as %q", got)
	}
	if evalString(ctx, `String(window.notReloaded)`) != "true" {
		t.Fatal("the inbox reloaded")
	}
	// The filters are a form: paused conversations are none yet.
	err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#status"), "paused"), chromedp.Submit(chromedp.CSS("#status")),
		chromedp.WaitVisible(chromedp.CSS(".inbox-count")))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the filtered list", func() bool { return textOf(ctx, ".inbox-count") == "0 conversations" })
	if err := chromedp.Do(ctx, chromedp.Navigate(s.URL+"/console/inbox"), chromedp.Click(chromedp.CSS(".inbox-item a")),
		chromedp.WaitVisible(chromedp.CSS("#takeover"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the conversation's messages", func() bool { return len(texts(ctx, "#messages li")) == 2 })
	if got := evalString(ctx, `(() => { const l = document.querySelector('#messages'); return l.getAttribute('role') + ' ' + l.getAttribute('aria-live') })()`); got != "log polite" {
		t.Errorf("the message list is %q, want a polite log", got)
	}
	if got := evalString(ctx, `document.querySelector('label[for=reply-text]').textContent`); got == "" {
		t.Error("the reply box has no label")
	}
	if got := strings.Join(texts(ctx, "#messages .msg-from"), "|"); got != "Customer|Bot" {
		t.Errorf("senders = %q", got)
	}

	// Before the scripts run, the forms post as plain forms and the page
	// reloads; the mark is set once they have.
	settled(t, ctx)
	evalString(ctx, `window.notReloaded = "true"`)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#takeover")), chromedp.WaitVisible(chromedp.CSS("#handback"))); err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, ".chat-handling"); got != "Taken over" {
		t.Errorf("after taking over: %q", got)
	}
	e.say("in-2", chat, "is anyone there?", nil)
	waitFor(t, ctx, "the customer's message with the bot's reason", func() bool {
		return strings.Contains(textOf(ctx, `#messages li:last-child .msg-text`), "is anyone there?") &&
			strings.Contains(textOf(ctx, `#messages li:last-child .msg-reason`), "paused")
	})
	if n := len(e.rc.events("send.message")); n != 1 {
		t.Fatalf("%d sends while taken over, want the first reply only", n)
	}

	settled(t, ctx)
	err = chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#reply-text"), "Carla here, how can I help?"),
		chromedp.Click(chromedp.CSS("#send-reply")))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the agent's reply in the log", func() bool {
		return strings.Contains(textOf(ctx, `#messages li[data-from=agent]`), "Carla here, how can I help?")
	})
	if got := textOf(ctx, `#messages li[data-from=agent] .msg-from`); got != "Agent carla" {
		t.Errorf("the reply shows as from %q", got)
	}
	if got := e.replies(2); got[1] != "Carla here, how can I help?" {
		t.Fatalf("sent through the channel: %q", got)
	}
	if got := evalString(ctx, `document.querySelector('#reply-text').value`); got != "" {
		t.Errorf("the reply box still holds %q", got)
	}

	settled(t, ctx)
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#handback")), chromedp.WaitVisible(chromedp.CSS("#takeover"))); err != nil {
		t.Fatal(err)
	}
	e.say("in-3", chat, "thanks", nil)
	waitFor(t, ctx, "the bot's answer after handing back", func() bool {
		return strings.Contains(textOf(ctx, `#messages li:last-child`), "echo: thanks")
	})
	if got := strings.Join(texts(ctx, "#messages .msg-from"), "|"); got != "Customer|Bot|Customer|Agent carla|Customer|Bot" {
		t.Errorf("senders = %q", got)
	}
	if evalString(ctx, `String(window.notReloaded)`) != "true" {
		t.Error("the conversation page reloaded")
	}
	if w := evalString(ctx, `String(document.documentElement.scrollWidth)`); w != "375" {
		t.Errorf("the conversation is %s px wide on a 375 px phone", w)
	}
	events := e.sessionEvents()
	if !slices.Contains(events, "paused:operator") || !slices.Contains(events, "opened:handed back") {
		t.Fatalf("session events = %q", events)
	}

	// A web chat of the organization's chatbot.
	web := &webEnv{t: t, s: s, ai: e.ai, cb: s.createChatbot("Olivia", testAPIKey)}
	s.patchChatbot(web.cb.ID, map[string]any{"settings": map[string]any{"prompt": "You are Olivia.", "model": "gpt-4o-mini",
		"openaiCredsId": s.orgCreds("org-fake", chatbotProviderKey, e.ai.BaseURL())}})
	web.makePublic(nil)
	visitor := web.publicCall("POST", "/sessions", "", "", nil).json(t)["visitorToken"].(string)
	if r := web.publicCall("POST", "/chat?stream=false", "", visitor, map[string]any{"content": "hi from the site"}); r.Status != http.StatusOK {
		t.Fatalf("visitor chat: %d %s", r.Status, r.Body)
	}
	err = chromedp.Do(ctx, chromedp.Navigate(s.URL+"/console/inbox?channel=webchat"), chromedp.WaitVisible(chromedp.CSS(".inbox-item")))
	if err != nil {
		t.Fatal(err)
	}
	if got := textOf(ctx, ".inbox-item .inbox-channel"); got != "Web chat" {
		t.Fatalf("web chat listed as %q", got)
	}
	if w := evalString(ctx, `String(document.documentElement.scrollWidth)`); w != "375" {
		t.Errorf("the inbox is %s px wide on a 375 px phone", w)
	}
	err = chromedp.Do(ctx, chromedp.Click(chromedp.CSS(".inbox-item a")), chromedp.WaitVisible(chromedp.CSS("#reply-text")),
		chromedp.SendKeys(chromedp.CSS("#reply-text"), "Carla from support"), chromedp.Click(chromedp.CSS("#send-reply")))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the web chat reply in the log", func() bool {
		return strings.Contains(textOf(ctx, `#messages li[data-from=agent]`), "Carla from support")
	})
	var hist struct {
		HumanMode bool `json:"humanMode"`
		Messages  []struct{ Role, Content string }
	}
	if err := json.Unmarshal(web.publicCall("GET", "/messages", "", visitor, nil).Body, &hist); err != nil {
		t.Fatal(err)
	}
	if last := hist.Messages[len(hist.Messages)-1]; !hist.HumanMode || last.Role != "human" || last.Content != "Carla from support" {
		t.Fatalf("the visitor sees %+v", hist)
	}
}
