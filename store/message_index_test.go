package store_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

func TestSendKeptUnderNewestChat(t *testing.T) { storetest.Run(t, testSendKeptUnderNewestChat) }

// testSendKeptUnderNewestChat: a send through the API that names a chat
// by the channel's JID goes to the conversation of the newest message
// exchanged with that JID, whether that one was kept under another key (a
// LID under a phone number) or under the JID itself.
func testSendKeptUnderNewestChat(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	const lid, phone = "123@lid", "5511999@s.whatsapp.net"
	at := t0
	insert := func(id string, dir store.Direction, chatKey string) *store.Message {
		t.Helper()
		at = at.Add(time.Second)
		m := &store.Message{InstanceID: in.ID, ID: id, Direction: dir, RemoteJID: lid, ChatKey: chatKey,
			FromMe: dir == store.Outbound, Content: json.RawMessage(`{}`), CreatedAt: at}
		if _, err := s.InsertMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	for _, step := range []struct {
		id      string
		chatKey string // of an inbound message from the LID; "" for none
		want    string // the key a send to the LID is kept under next
	}{
		{id: "1", chatKey: phone, want: phone},
		{id: "2", chatKey: lid, want: lid}, // the mapping was lost: the LID's own chat is newer
		{id: "3", chatKey: phone, want: phone},
		{id: "4", want: phone}, // the send itself is the newest now
	} {
		if step.chatKey != "" {
			insert("in-"+step.id, store.Inbound, step.chatKey)
		}
		if got := insert("out-"+step.id, store.Outbound, "").ChatKey; got != step.want {
			t.Fatalf("after %s: send kept under %q, want %q", step.id, got, step.want)
		}
	}
}

func TestMessageIndexMigration(t *testing.T) { storetest.Run(t, testMessageIndexMigration) }

// testMessageIndexMigration upgrades a database from before v14 holding messages to
// the indexes of v14 and checks that what reads through them finds the
// same messages: a LID chat by its JID, a session's messages, a bot's
// history, and the foreign keys that clear a deleted session.
func testMessageIndexMigration(t *testing.T, backend storetest.Backend) {
	dsn := storetest.NewURL(t, backend)
	ctx := context.Background()
	s, err := store.Open(ctx, store.UpgradeTo(store.Options{URL: dsn, SecretKey: key1}, 13), discard())
	if err != nil {
		t.Fatal(err)
	}
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	bot := mustCreateBot(t, s, in.ID, "bot-1")
	se := newSession(in.ID, bot.ID, "a@s.whatsapp.net", "se-1")
	if err := s.CreateSession(ctx, se); err != nil {
		t.Fatal(err)
	}
	for i, m := range []*store.Message{
		{ID: "1", Direction: store.Inbound, RemoteJID: "a@s.whatsapp.net"},
		{ID: "2", Direction: store.Outbound, RemoteJID: "a@s.whatsapp.net", BotID: bot.ID, SessionID: se.ID},
		{ID: "3", Direction: store.Inbound, RemoteJID: "9@lid", ChatKey: "b@s.whatsapp.net"},
		{ID: "4", Direction: store.Outbound, RemoteJID: "9@lid", ChatKey: "b@s.whatsapp.net", BotID: bot.ID},
	} {
		m.InstanceID, m.Content, m.CreatedAt = in.ID, json.RawMessage(`{}`), t0.Add(time.Duration(i)*time.Second)
		if err := store.InsertOldMessage(ctx, s, m); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	s = open(t, dsn, key1)
	if key, ok, err := s.ConversationKey(ctx, in.ID, "9@lid"); err != nil || !ok || key != "b@s.whatsapp.net" {
		t.Fatalf("ConversationKey(9@lid) = %q, %v, %v", key, ok, err)
	}
	msgs, err := s.SessionMessages(ctx, in.ID, se.ID, 0, 10)
	if err != nil || len(msgs) != 1 || msgs[0].ID != "2" {
		t.Fatalf("SessionMessages = %d messages, %v", len(msgs), err)
	}
	if err := s.DeleteSession(ctx, in.ID, se.ID); err != nil {
		t.Fatal(err)
	}
	m, err := s.Message(ctx, in.ID, "2", store.Outbound)
	if err != nil || m.SessionID != "" {
		t.Fatalf("after deleting its session: %+v, %v", m, err)
	}
	if n, err := s.DeleteBotHistory(ctx, in.ID, bot.ID); err != nil || n != 2 {
		t.Fatalf("DeleteBotHistory = %d, %v; want 2", n, err)
	}
}
