package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// BenchmarkInboundInsertAndSessionLookup measures the store's share of one
// inbound message on SQLite: the insert (with its redelivery check) in a
// transaction, then the live session lookup the engine makes for the chat.
func BenchmarkInboundInsertAndSessionLookup(b *testing.B) {
	ctx := context.Background()
	s, inst, bot := benchStore(b, storetest.SQLite)
	const chats = 100
	for i := range chats {
		if err := s.CreateSession(ctx, newSession(inst.ID, bot.ID, chatJID(i), fmt.Sprintf("se-%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	content := []byte(`{"conversation":"hello there"}`)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		m := &store.Message{
			InstanceID: inst.ID, ID: fmt.Sprintf("M%d", i), Direction: store.Inbound, RemoteJID: chatJID(i % chats),
			PushName: "Ana", MessageType: "conversation", Content: content, Text: "hello there",
			Status: "DELIVERY_ACK", Timestamp: t0, CreatedAt: time.Now(),
		}
		err := s.DoTxn(ctx, func(ctx context.Context) error {
			_, err := s.InsertMessage(ctx, m)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		se, err := s.LiveSession(ctx, inst.ID, m.RemoteJID)
		if err != nil || se == nil {
			b.Fatalf("LiveSession: %v %v", se, err)
		}
	}
}

func chatJID(i int) string { return fmt.Sprintf("55119%08d@s.whatsapp.net", i) }

// benchStore opens a store on backend for a benchmark, with an instance
// and a bot on it; it is closed when b ends.
func benchStore(b *testing.B, backend storetest.Backend) (*store.Store, *store.Instance, *store.Bot) {
	b.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{URL: storetest.NewURL(b, backend), SecretKey: key1}, discard())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	inst := newInstance("bench", "num-bench")
	if err := s.CreateInstance(ctx, inDefaultOrg(b, s, inst)); err != nil {
		b.Fatal(err)
	}
	bot := &store.Bot{ID: "bot-1", InstanceID: inst.ID, Enabled: true, BotType: "chatCompletion", Model: "gpt-test",
		TriggerType: "all", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateBot(ctx, bot); err != nil {
		b.Fatal(err)
	}
	return s, inst, bot
}

// BenchmarkRecentTurnsLongSession reads the history within the default
// budget (8,000 tokens) of a session of 5,000 turns of 40 tokens: the
// newest 200 turns.
func BenchmarkRecentTurnsLongSession(b *testing.B) {
	for _, backend := range storetest.Backends {
		b.Run(string(backend), func(b *testing.B) {
			if why := storetest.Unavailable(backend); why != "" {
				b.Skip(why)
			}
			ctx := context.Background()
			s, inst, bot := benchStore(b, backend)
			se := &store.Session{ID: "s-long", InstanceID: inst.ID, BotID: bot.ID, RemoteJID: chatJID(1),
				Status: store.SessionOpened, CreatedAt: t0, UpdatedAt: t0}
			if err := s.CreateSession(ctx, se); err != nil {
				b.Fatal(err)
			}
			msg := json.RawMessage(`{"role":"user","content":"` + strings.Repeat("a question of some length ", 6) + `"}`)
			for i := 0; i < 5000; i += 100 {
				turns := make([]*store.Turn, 100)
				for j := range turns {
					turns[j] = &store.Turn{SessionID: se.ID, Role: "user", Message: msg, Tokens: 40, CreatedAt: t0}
				}
				if err := s.AppendTurns(ctx, turns...); err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for b.Loop() {
				turns, err := s.RecentTurns(ctx, se.ID, 8000)
				if err != nil || len(turns) != 200 {
					b.Fatalf("RecentTurns = %d turns, %v", len(turns), err)
				}
			}
		})
	}
}
