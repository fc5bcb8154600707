package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// chatMsg is a message of chat; fromMe on an inbound message is an operator
// typing on the phone.
type chatMsg struct {
	id, chat string
	dir      store.Direction
	fromMe   bool
	botID    string
	tokens   int
	at       time.Time
}

func insertChatMsg(t *testing.T, s *store.Store, instanceID string, c chatMsg) *store.Message {
	t.Helper()
	m := &store.Message{
		InstanceID: instanceID, ID: c.id, Direction: c.dir, RemoteJID: c.chat, FromMe: c.fromMe || c.dir == store.Outbound,
		MessageType: "conversation", Content: json.RawMessage(`{"conversation":"` + c.id + `"}`), Text: "text " + c.id,
		Status: "DELIVERY_ACK", Timestamp: c.at, CreatedAt: c.at, BotID: c.botID,
		PromptTokens: c.tokens, CompletionTokens: c.tokens / 2, LatencyMS: 7,
	}
	if c.dir == store.Inbound && !c.fromMe {
		m.PushName = "Customer " + c.chat
		m.State = store.MessageIgnored // decided: retention may take it
	}
	if ok, err := s.InsertMessage(t.Context(), m); err != nil || !ok {
		t.Fatalf("InsertMessage(%s) = %v, %v", c.id, ok, err)
	}
	return m
}

func mustConversation(t *testing.T, s *store.Store, instanceID, key string) *store.Conversation {
	t.Helper()
	c, err := s.Conversation(t.Context(), instanceID, key)
	if err != nil {
		t.Fatalf("Conversation(%s): %v", key, err)
	}
	return c
}

type summary struct {
	in, out, unread  int
	prompt, complete int64
	pushName, botID  string
	lastID           string
}

func summarise(c *store.Conversation) summary {
	s := summary{in: c.MessagesIn, out: c.MessagesOut, unread: c.Unread, prompt: c.PromptTokens,
		complete: c.CompletionTokens, pushName: c.PushName, botID: c.BotID}
	if c.Last != nil {
		s.lastID = c.Last.ID
	}
	return s
}

func TestConversationSummary(t *testing.T) { storetest.Run(t, testConversationSummary) }

func testConversationSummary(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	bot := mustCreateBot(t, s, in.ID, "bot-1")
	const chat = "5511777@s.whatsapp.net"
	steps := []struct {
		msg  chatMsg
		want summary
	}{
		{chatMsg{id: "i1", chat: chat, dir: store.Inbound, at: t0},
			summary{in: 1, unread: 1, pushName: "Customer " + chat, lastID: "i1"}},
		{chatMsg{id: "i2", chat: chat, dir: store.Inbound, at: t0.Add(time.Second)},
			summary{in: 2, unread: 2, pushName: "Customer " + chat, lastID: "i2"}},
		{chatMsg{id: "o1", chat: chat, dir: store.Outbound, botID: bot.ID, tokens: 10, at: t0.Add(2 * time.Second)},
			summary{in: 2, out: 1, prompt: 10, complete: 5, pushName: "Customer " + chat, botID: bot.ID, lastID: "o1"}},
		{chatMsg{id: "i3", chat: chat, dir: store.Inbound, at: t0.Add(3 * time.Second)},
			summary{in: 3, out: 1, unread: 1, prompt: 10, complete: 5, pushName: "Customer " + chat, botID: bot.ID, lastID: "i3"}},
		// An operator answering on the phone: inbound, but not the customer.
		{chatMsg{id: "op", chat: chat, dir: store.Inbound, fromMe: true, at: t0.Add(4 * time.Second)},
			summary{in: 4, out: 1, prompt: 10, complete: 5, pushName: "Customer " + chat, botID: bot.ID, lastID: "op"}},
	}
	for _, st := range steps {
		insertChatMsg(t, s, in.ID, st.msg)
		if got := summarise(mustConversation(t, s, in.ID, chat)); got != st.want {
			t.Fatalf("after %s: summary %+v, want %+v", st.msg.id, got, st.want)
		}
	}
	// A redelivery changes nothing.
	if ok, err := s.InsertMessage(ctx, &store.Message{InstanceID: in.ID, ID: "i1", Direction: store.Inbound,
		RemoteJID: chat, Content: json.RawMessage(`{}`), CreatedAt: t0}); err != nil || ok {
		t.Fatalf("redelivery: %v, %v", ok, err)
	}
	if got := mustConversation(t, s, in.ID, chat); got.MessagesIn != 4 {
		t.Fatalf("redelivery counted: %d inbound", got.MessagesIn)
	}

	// A LID chat kept under the phone number: a send through the API to the
	// LID belongs to the same conversation.
	lid := &store.Message{InstanceID: in.ID, ID: "lid-1", Direction: store.Inbound, RemoteJID: "123@lid", ChatKey: chat,
		PushName: "Ana", Content: json.RawMessage(`{}`), CreatedAt: t0.Add(5 * time.Second)}
	if _, err := s.InsertMessage(ctx, lid); err != nil {
		t.Fatal(err)
	}
	sent := &store.Message{InstanceID: in.ID, ID: "lid-out", Direction: store.Outbound, RemoteJID: "123@lid", FromMe: true,
		Content: json.RawMessage(`{}`), CreatedAt: t0.Add(6 * time.Second)}
	if _, err := s.InsertMessage(ctx, sent); err != nil {
		t.Fatal(err)
	}
	if sent.ChatKey != chat {
		t.Fatalf("send to the LID kept under %q, want %q", sent.ChatKey, chat)
	}
	for _, jid := range []string{chat, "123@lid"} {
		key, ok, err := s.ConversationKey(ctx, in.ID, jid)
		if err != nil || !ok || key != chat {
			t.Fatalf("ConversationKey(%s) = %q, %v, %v", jid, key, ok, err)
		}
	}
	if _, ok, err := s.ConversationKey(ctx, in.ID, "nobody@s.whatsapp.net"); err != nil || ok {
		t.Fatalf("ConversationKey(nobody) = %v, %v", ok, err)
	}
	c := mustConversation(t, s, in.ID, chat)
	if c.MessagesIn != 5 || c.MessagesOut != 2 || c.PushName != "Ana" || c.Last.ID != "lid-out" {
		t.Fatalf("after the LID messages: %+v", summarise(c))
	}
	// Another instance sees none of it.
	other := mustCreate(t, s, newInstance("beta", "5522"))
	_, err := s.Conversation(ctx, other.ID, chat)
	wantCode(t, err, wagate.ENOTFOUND)
	if _, ok, _ := s.ConversationKey(ctx, other.ID, chat); ok {
		t.Fatal("beta resolves alpha's chat")
	}
}

func TestListConversationsPaging(t *testing.T) { storetest.Run(t, testListConversationsPaging) }

// testListConversationsPaging pages through chats while messages arrive:
// every chat that existed when the listing began is listed exactly once,
// in the order of its activity at that moment.
func testListConversationsPaging(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	var want []string
	for i := range 7 {
		chat := fmt.Sprintf("55%02d@s.whatsapp.net", i)
		insertChatMsg(t, s, in.ID, chatMsg{id: fmt.Sprintf("m%d", i), chat: chat, dir: store.Inbound, at: t0})
		want = append([]string{chat}, want...) // newest first
	}
	var got []string
	f := store.ConversationFilter{Limit: 3}
	for page := 0; ; page++ {
		list, snapshot, err := s.ListConversations(ctx, in.ID, f)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range list {
			got = append(got, c.ChatKey)
		}
		if page == 0 {
			// Activity while paging: a chat already listed, one not yet
			// listed, and a new chat.
			for i, chat := range []string{want[0], want[5], "new@s.whatsapp.net"} {
				insertChatMsg(t, s, in.ID, chatMsg{id: fmt.Sprintf("late%d", i), chat: chat, dir: store.Inbound, at: t0})
			}
		}
		if len(list) < f.Limit {
			break
		}
		f.Snapshot, f.Before = snapshot, list[len(list)-1].Position
	}
	if !slices.Equal(got, want) {
		t.Fatalf("paged listing = %v\nwant %v", got, want)
	}
	// A new listing shows the new activity first.
	list, _, err := s.ListConversations(ctx, in.ID, store.ConversationFilter{Limit: 3})
	if err != nil {
		t.Fatal(err)
	}
	if keys := []string{list[0].ChatKey, list[1].ChatKey, list[2].ChatKey}; !slices.Equal(keys, []string{"new@s.whatsapp.net", want[5], want[0]}) {
		t.Fatalf("fresh listing starts %v", keys)
	}
}

func TestPurgeMessages(t *testing.T) { storetest.Run(t, testPurgeMessages) }

func testPurgeMessages(t *testing.T, backend storetest.Backend) {
	dsn := storetest.NewURL(t, backend)
	s := open(t, dsn, key1)
	ctx := t.Context()
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	other := mustCreate(t, s, newInstance("beta", "5522"))
	bot := mustCreateBot(t, s, in.ID, "bot-1")
	old, recent := t0, t0.Add(48*time.Hour)
	cutoff := t0.Add(24 * time.Hour)
	// mixed: old messages, then recent ones; gone: only old ones.
	const mixed, gone = "mixed@s.whatsapp.net", "gone@s.whatsapp.net"
	for _, m := range []chatMsg{
		{id: "a1", chat: mixed, dir: store.Inbound, at: old},
		{id: "a2", chat: mixed, dir: store.Outbound, botID: bot.ID, tokens: 10, at: old},
		{id: "b1", chat: gone, dir: store.Inbound, at: old},
		{id: "b2", chat: gone, dir: store.Outbound, at: old},
		{id: "a3", chat: mixed, dir: store.Inbound, at: recent},
		{id: "a4", chat: mixed, dir: store.Outbound, botID: bot.ID, tokens: 4, at: recent},
		{id: "a5", chat: mixed, dir: store.Inbound, at: recent},
	} {
		insertChatMsg(t, s, in.ID, m)
	}
	// Old, but not yet decided by the engine: its queue is not purged.
	pending := &store.Message{InstanceID: in.ID, ID: "pending", Direction: store.Inbound, RemoteJID: "wait@s.whatsapp.net",
		Content: json.RawMessage(`{}`), CreatedAt: old}
	if _, err := s.InsertMessage(ctx, pending); err != nil {
		t.Fatal(err)
	}
	insertChatMsg(t, s, other.ID, chatMsg{id: "x1", chat: mixed, dir: store.Inbound, at: old})

	// Batches of 2: three batches delete the four old decided messages.
	total := 0
	for {
		n, err := s.PurgeMessages(ctx, in.ID, cutoff, 2)
		if err != nil {
			t.Fatal(err)
		}
		total += n
		if n < 2 {
			break
		}
	}
	if total != 4 {
		t.Fatalf("purged %d messages, want 4", total)
	}
	c := mustConversation(t, s, in.ID, mixed)
	if got, want := summarise(c), (summary{in: 2, out: 1, unread: 1, prompt: 4, complete: 2,
		pushName: "Customer " + mixed, botID: bot.ID, lastID: "a5"}); got != want {
		t.Fatalf("mixed after purge: %+v, want %+v", got, want)
	}
	_, err := s.Conversation(ctx, in.ID, gone)
	wantCode(t, err, wagate.ENOTFOUND)
	if _, err := s.Message(ctx, in.ID, "pending", store.Inbound); err != nil {
		t.Fatalf("the undecided message was purged: %v", err)
	}
	if _, err := s.Message(ctx, other.ID, "x1", store.Inbound); err != nil {
		t.Fatalf("another instance's message was purged: %v", err)
	}

	// Closed sessions before the cutoff go with their history; live ones
	// and recently closed ones stay.
	for _, se := range []*store.Session{
		{ID: "s-old", Status: store.SessionClosed, RemoteJID: "a@s.whatsapp.net", ClosedAt: old},
		{ID: "s-recent", Status: store.SessionClosed, RemoteJID: "b@s.whatsapp.net", ClosedAt: recent},
		{ID: "s-live", Status: store.SessionOpened, RemoteJID: "c@s.whatsapp.net"},
	} {
		se.InstanceID, se.BotID, se.CreatedAt, se.UpdatedAt = in.ID, bot.ID, old, old
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendTurns(ctx, &store.Turn{SessionID: se.ID, Role: "user", Message: json.RawMessage(`{}`), CreatedAt: old}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.PurgeClosedSessions(ctx, in.ID, cutoff, 10); err != nil || n != 1 {
		t.Fatalf("PurgeClosedSessions = %d, %v; want 1", n, err)
	}
	db := rawDB(t, dsn)
	if n := count(t, db, "SELECT COUNT(*) FROM openai_sessions WHERE id IN ('s-recent', 's-live')"); n != 2 {
		t.Fatalf("%d of the newer sessions left, want 2", n)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM openai_history WHERE session_id = 's-old'"); n != 0 {
		t.Fatalf("the purged session's history has %d turns", n)
	}
}

func TestDeleteHistory(t *testing.T) { storetest.Run(t, testDeleteHistory) }

func testDeleteHistory(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	b1, b2 := mustCreateBot(t, s, in.ID, "bot-1"), mustCreateBot(t, s, in.ID, "bot-2")
	const c1, c2 = "c1@s.whatsapp.net", "c2@s.whatsapp.net"
	for _, m := range []chatMsg{
		{id: "1", chat: c1, dir: store.Inbound, at: t0},
		{id: "2", chat: c1, dir: store.Outbound, botID: b1.ID, tokens: 10, at: t0},
		{id: "3", chat: c1, dir: store.Inbound, at: t0},
		{id: "4", chat: c1, dir: store.Outbound, botID: b2.ID, tokens: 6, at: t0},
		{id: "5", chat: c2, dir: store.Inbound, at: t0},
		{id: "6", chat: c2, dir: store.Outbound, botID: b1.ID, tokens: 2, at: t0},
	} {
		insertChatMsg(t, s, in.ID, m)
	}
	// The engine records which bot decided on inbound messages.
	m1, _ := s.Message(ctx, in.ID, "1", store.Inbound)
	if err := s.SetMessagesState(ctx, in.ID, []int64{m1.Seq}, store.MessageOutcome{State: store.MessageAnswered, BotID: b1.ID}); err != nil {
		t.Fatal(err)
	}
	n, err := s.DeleteBotHistory(ctx, in.ID, b1.ID)
	if err != nil || n != 3 {
		t.Fatalf("DeleteBotHistory = %d, %v; want 3", n, err)
	}
	if got, want := summarise(mustConversation(t, s, in.ID, c1)), (summary{in: 1, out: 1, prompt: 6, complete: 3,
		pushName: "Customer " + c1, botID: b2.ID, lastID: "4"}); got != want {
		t.Fatalf("c1 after deleting bot-1's history: %+v, want %+v", got, want)
	}
	if got, want := summarise(mustConversation(t, s, in.ID, c2)), (summary{in: 1, unread: 1,
		pushName: "Customer " + c2, lastID: "5"}); got != want {
		t.Fatalf("c2 after deleting bot-1's history: %+v, want %+v", got, want)
	}
	// A chat's whole history.
	if n, err := s.DeleteChatHistory(ctx, in.ID, c1, ""); err != nil || n != 2 {
		t.Fatalf("DeleteChatHistory = %d, %v; want 2", n, err)
	}
	_, err = s.Conversation(ctx, in.ID, c1)
	wantCode(t, err, wagate.ENOTFOUND)
	if n, err := s.DeleteChatHistory(ctx, "id-nobody", c2, ""); err != nil || n != 0 {
		t.Fatalf("DeleteChatHistory of another instance = %d, %v", n, err)
	}
	mustConversation(t, s, in.ID, c2)
}

func TestConversationsMigration(t *testing.T) { storetest.Run(t, testConversationsMigration) }

// testConversationsMigration takes a database back to schema v5 with
// messages in it and checks that upgrading builds the same summaries the
// gateway keeps as messages arrive.
func testConversationsMigration(t *testing.T, backend storetest.Backend) {
	dsn := storetest.NewURL(t, backend)
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{URL: dsn, SecretKey: key1}, discard())
	if err != nil {
		t.Fatal(err)
	}
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	bot := mustCreateBot(t, s, in.ID, "bot-1")
	chats := []string{"a@s.whatsapp.net", "b@s.whatsapp.net"}
	for i, m := range []chatMsg{
		{chat: chats[0], dir: store.Inbound}, {chat: chats[0], dir: store.Outbound, botID: bot.ID, tokens: 8},
		{chat: chats[0], dir: store.Inbound}, {chat: chats[0], dir: store.Inbound},
		{chat: chats[1], dir: store.Inbound}, {chat: chats[1], dir: store.Inbound, fromMe: true},
	} {
		m.id, m.at = fmt.Sprint(i), t0.Add(time.Duration(i)*time.Second)
		insertChatMsg(t, s, in.ID, m)
	}
	kept := map[string]summary{}
	for _, chat := range chats {
		kept[chat] = summarise(mustConversation(t, s, in.ID, chat))
	}
	s.Close()

	// Later migrations stay: the upgrade below stops at v6.
	db := rawDB(t, dsn)
	for _, q := range []string{
		"DROP TABLE conversations",
		"DROP INDEX messages_conversation_idx",
		"DROP INDEX messages_seq_idx",
		"DROP INDEX openai_sessions_closed_idx",
		"ALTER TABLE openai_sessions DROP COLUMN status_reason",
		"UPDATE wagate_version SET version = 5, compat = 5",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	s, err = store.Open(ctx, store.UpgradeTo(store.Options{URL: dsn, SecretKey: key1}, 6), discard())
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, chat := range chats {
		if got := summarise(mustConversation(t, s, in.ID, chat)); got != kept[chat] {
			t.Errorf("%s after migrating: %+v, want %+v", chat, got, kept[chat])
		}
	}
}
