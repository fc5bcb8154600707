package store_test

import (
	"testing"

	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// TestInbox: the inbox lists one organization's conversations across its
// instances, newest activity first, by channel; its fingerprint changes
// with a message and with a pause, and not otherwise; an agent's name is
// kept with their message.
func TestInbox(t *testing.T) { storetest.Run(t, testInbox) }

func testInbox(t *testing.T, backend storetest.Backend) {
	ctx := t.Context()
	s, org, other := twoOrganizations(t, backend)
	shop := mustCreate(t, s, newInstance("shop", "1"))
	web := newInstance("webchat-x", "")
	web.Integration, web.Number = store.IntegrationWebchat, "web-x"
	mustCreate(t, s, web)
	theirs := newInstance("theirs", "3")
	theirs.OrganizationID = other.ID
	if err := s.CreateInstance(ctx, theirs); err != nil {
		t.Fatal(err)
	}
	version := func() string {
		t.Helper()
		v, err := s.InboxVersion(ctx, org.ID)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	v0 := version()
	insertChatMsg(t, s, shop.ID, chatMsg{id: "a1", chat: "a@s.whatsapp.net", dir: store.Inbound, at: t0})
	insertChatMsg(t, s, web.ID, chatMsg{id: "w1", chat: "web:v1", dir: store.Inbound, at: t0})
	v1 := version()
	insertChatMsg(t, s, theirs.ID, chatMsg{id: "t1", chat: "t@s.whatsapp.net", dir: store.Inbound, at: t0})
	if v0 == v1 || version() != v1 {
		t.Fatalf("versions %s, %s, then %s after another organization's message", v0, v1, version())
	}

	keys := func(f store.InboxFilter) []string {
		t.Helper()
		f.Limit = 10
		list, err := s.ListInbox(ctx, org.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range list {
			out = append(out, c.ChatKey)
		}
		return out
	}
	if got := keys(store.InboxFilter{}); len(got) != 2 || got[0] != "web:v1" || got[1] != "a@s.whatsapp.net" {
		t.Fatalf("inbox = %q", got)
	}
	if got := keys(store.InboxFilter{Integrations: []string{store.IntegrationWebchat}}); len(got) != 1 || got[0] != "web:v1" {
		t.Fatalf("web chats = %q", got)
	}
	list, err := s.ListInbox(ctx, org.ID, store.InboxFilter{Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if got := keys(store.InboxFilter{Before: list[0].Position}); len(got) != 1 || got[0] != "a@s.whatsapp.net" {
		t.Fatalf("second page = %q", got)
	}

	se := &store.Session{ID: "se-1", InstanceID: shop.ID, BotID: "", RemoteJID: "a@s.whatsapp.net", Status: store.SessionOpened, CreatedAt: t0, UpdatedAt: t0}
	bot := &store.Bot{ID: "bot-1", InstanceID: shop.ID, Enabled: true, BotType: "chatCompletion", TriggerType: "all",
		Prompts: store.Prompts{System: []string{}, User: []string{}, Assistant: []string{}}, IgnoreJids: []string{}, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateBot(ctx, bot); err != nil {
		t.Fatal(err)
	}
	se.BotID = bot.ID
	if err := s.CreateSession(ctx, se); err != nil {
		t.Fatal(err)
	}
	v2 := version()
	se.Status = store.SessionPaused // as a takeover does, without touching updated_at
	if err := s.UpdateSession(ctx, se); err != nil {
		t.Fatal(err)
	}
	if v2 == v1 || version() == v2 {
		t.Fatalf("versions %s, %s, %s: a session's change is not seen", v1, v2, version())
	}
	if got := keys(store.InboxFilter{Status: store.SessionPaused}); len(got) != 1 || got[0] != "a@s.whatsapp.net" {
		t.Fatalf("paused = %q", got)
	}
	if got := keys(store.InboxFilter{BotID: bot.ID}); len(got) != 1 {
		t.Fatalf("bot's = %q", got)
	}

	m := newMessage(shop.ID, "out-1", store.Outbound)
	m.RemoteJID, m.AgentName = "a@s.whatsapp.net", "Carla"
	if _, err := s.InsertMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, err := s.MessagesBySeq(ctx, shop.ID, "a@s.whatsapp.net", []int64{m.Seq})
	if err != nil || len(got) != 1 || got[0].AgentName != "Carla" {
		t.Fatalf("MessagesBySeq = %v, %v", got, err)
	}
	chatVersion := func() string {
		t.Helper()
		v, err := s.ChatVersion(ctx, shop.ID, "a@s.whatsapp.net")
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	c0 := chatVersion()
	in := newMessage(shop.ID, "in-2", store.Inbound)
	in.RemoteJID = "a@s.whatsapp.net"
	if _, err := s.InsertMessage(ctx, in); err != nil {
		t.Fatal(err)
	}
	c1 := chatVersion()
	// The engine's decision is a change of the chat, though no message is added.
	if err := s.SetMessagesState(ctx, shop.ID, []int64{in.Seq}, store.MessageOutcome{State: store.MessageIgnored, Reason: "session paused"}); err != nil {
		t.Fatal(err)
	}
	if c2 := chatVersion(); c0 == c1 || c1 == c2 || chatVersion() != c2 {
		t.Fatalf("chat versions %s, %s, %s", c0, c1, c2)
	}
}
