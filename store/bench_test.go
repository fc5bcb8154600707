package store_test

import (
	"context"
	"fmt"
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
	s, inst, bot := benchStore(b)
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

// benchStore opens a SQLite store for a benchmark, with an instance and a
// bot on it; it is closed when b ends.
func benchStore(b *testing.B) (*store.Store, *store.Instance, *store.Bot) {
	b.Helper()
	ctx := context.Background()
	s, err := store.Open(ctx, store.Options{URL: storetest.NewURL(b, storetest.SQLite), SecretKey: key1}, discard())
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
