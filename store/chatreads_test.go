package store_test

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// TestReadChat checks that ReadChat returns what the four reads it stands
// for return one by one (on PostgreSQL it sends them as one batch), and reads
// the history only when there is a live session and something pending.
func TestReadChat(t *testing.T) { storetest.Run(t, testReadChat) }

func testReadChat(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	bot := mustCreateBot(t, s, in.ID, "bot-1")
	chat := "5511999@s.whatsapp.net"

	check := func(name string, wantHistory bool) *store.ChatState {
		t.Helper()
		got, err := s.ReadChat(ctx, in.ID, chat, 100)
		if err != nil {
			t.Fatalf("%s: ReadChat: %v", name, err)
		}
		se, err := s.LiveSession(ctx, in.ID, chat)
		if err != nil {
			t.Fatal(err)
		}
		parts, err := s.ReplyParts(ctx, in.ID, chat)
		if err != nil {
			t.Fatal(err)
		}
		pending, err := s.PendingMessages(ctx, in.ID, chat)
		if err != nil {
			t.Fatal(err)
		}
		want := &store.ChatState{Session: se, Parts: parts, Pending: pending, HistoryRead: wantHistory}
		if wantHistory {
			if want.History, err = s.RecentTurns(ctx, se.ID, 100); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(got, want) {
			gj, _ := json.Marshal(got)
			wj, _ := json.Marshal(want)
			t.Fatalf("%s: ReadChat =\n%s\nwant\n%s", name, gj, wj)
		}
		return got
	}

	check("empty chat", false)
	m := newMessage(in.ID, "m1", store.Inbound)
	if _, err := s.InsertMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	if got := check("pending, no session", false); len(got.Pending) != 1 {
		t.Fatalf("pending %d messages; want 1", len(got.Pending))
	}
	se := newSession(in.ID, bot.ID, chat, "se-1")
	if err := s.CreateSession(ctx, se); err != nil {
		t.Fatal(err)
	}
	// Three turns of 40 tokens: the budget of 100 keeps the newest two.
	for i := range 3 {
		turn := &store.Turn{SessionID: se.ID, Role: "user", Message: json.RawMessage(`{"content":"q"}`), Tokens: 40,
			CreatedAt: t0.Add(time.Duration(i) * time.Second)}
		if err := s.AppendTurns(ctx, turn); err != nil {
			t.Fatal(err)
		}
	}
	part := &store.ReplyPart{InstanceID: in.ID, ChatKey: chat, RemoteJID: chat, TurnSeq: m.Seq, Text: "answer",
		BotID: bot.ID, SessionID: se.ID, CreatedAt: t0}
	if err := s.InsertReplyParts(ctx, part); err != nil {
		t.Fatal(err)
	}
	got := check("session, pending, history and a part", true)
	if got.Session == nil || len(got.History) != 2 || len(got.Parts) != 1 {
		t.Fatalf("session %v, %d turns, %d parts; want a session, 2 turns, 1 part", got.Session, len(got.History), len(got.Parts))
	}
	if err := s.SetMessagesState(ctx, in.ID, []int64{m.Seq}, store.MessageOutcome{State: store.MessageAnswered, BotID: bot.ID}); err != nil {
		t.Fatal(err)
	}
	check("session, nothing pending", false)
}
