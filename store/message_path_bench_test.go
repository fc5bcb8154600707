package store_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// BenchmarkMessagePath runs the store's share of one answered message on
// SQLite, one caller at a time, as its transactions follow each other in
// the gateway: the inbound message with its conversation and
// messages.upsert event; the answer (reply part, two history turns, the
// session, the message's outcome); the reply
// with its conversation, send.message event and the part's deletion; the
// webhook outcomes of both events. Messages go round robin over 1,000
// chats that already hold history, with a live session each. (A channel
// whose send leaves the gateway, WhatsApp, adds a transaction marking the
// part as sending; the HTTP channel's reply is the record itself.)
//
// wal-pages/op is how many pages its transactions wrote, every B-tree page
// of every index they touched once per transaction: the figure that index
// changes move, and which, unlike time, other work on the machine does not.
//
//	go test ./store -run '^$' -bench MessagePath -benchtime 3000x
func BenchmarkMessagePath(b *testing.B) {
	b.Run("pages", func(b *testing.B) { benchmarkMessagePath(b, false) })
	b.Run("latency", func(b *testing.B) { benchmarkMessagePath(b, true) })
}

// benchmarkMessagePath reports, with latency, the distribution of one
// message's time in the store with checkpoints running, whose tail is a
// checkpoint copying the WAL in the committing transaction; without, how
// many pages the WAL took per message.
func benchmarkMessagePath(b *testing.B, latency bool) {
	ctx := context.Background()
	s, inst, bot := benchStore(b, storetest.SQLite)
	const chats = 1000
	sessions := make([]*store.Session, chats)
	for i := range chats {
		sessions[i] = newSession(inst.ID, bot.ID, chatJID(i), store.NewID())
		if err := s.CreateSession(ctx, sessions[i]); err != nil {
			b.Fatal(err)
		}
	}
	step := func(i int) {
		se := sessions[i%chats]
		in := &store.Message{
			InstanceID: inst.ID, ID: fmt.Sprintf("IN-%s", uuid.NewString()), Direction: store.Inbound,
			RemoteJID: se.RemoteJID, PushName: "Ana", MessageType: "conversation",
			Content: json.RawMessage(`{"conversation":"hello there"}`), Text: "hello there", Status: "DELIVERY_ACK",
			Timestamp: t0, CreatedAt: time.Now(),
		}
		var events []*store.Event
		event := func(ctx context.Context, name string) error {
			e := newEvent(inst.ID, inst.ID, name)
			e.DeliveryID = uuid.NewString() // as the outbox does
			events = append(events, e)
			return s.InsertEvent(ctx, e)
		}
		must := func(err error) {
			if err != nil {
				b.Fatal(err)
			}
		}
		must(s.DoTxn(ctx, func(ctx context.Context) error {
			if _, err := s.InsertMessage(ctx, in); err != nil {
				return err
			}
			return event(ctx, "messages.upsert")
		}))
		part := &store.ReplyPart{InstanceID: inst.ID, ChatKey: in.ChatKey, RemoteJID: in.RemoteJID, TurnSeq: in.Seq,
			Text: "hello there", BotID: bot.ID, SessionID: se.ID, CreatedAt: time.Now()}
		must(s.DoTxn(ctx, func(ctx context.Context) error {
			if err := s.InsertReplyParts(ctx, part); err != nil {
				return err
			}
			now := time.Now()
			if err := s.AppendTurns(ctx,
				&store.Turn{SessionID: se.ID, Role: "user", Message: json.RawMessage(`{"role":"user","content":"hello there"}`), CreatedAt: now},
				&store.Turn{SessionID: se.ID, Role: "assistant", Message: json.RawMessage(`{"role":"assistant","content":"hello there"}`), Tokens: 3, CreatedAt: now},
			); err != nil {
				return err
			}
			se.UpdatedAt = now
			if err := s.UpdateSession(ctx, se); err != nil {
				return err
			}
			return s.SetMessagesState(ctx, inst.ID, []int64{in.Seq},
				store.MessageOutcome{State: store.MessageAnswered, BotID: bot.ID, SessionID: se.ID})
		}))
		out := &store.Message{
			InstanceID: inst.ID, ID: uuid.NewString(), Direction: store.Outbound, RemoteJID: in.RemoteJID,
			ChatKey: in.ChatKey, FromMe: true, MessageType: "conversation", Content: json.RawMessage(`{"conversation":"hello there"}`),
			Text: "hello there", Status: "PENDING", Timestamp: time.Now(), CreatedAt: time.Now(), BotID: bot.ID, SessionID: se.ID,
		}
		must(s.DoTxn(ctx, func(ctx context.Context) error {
			if _, err := s.InsertMessage(ctx, out); err != nil {
				return err
			}
			if err := event(ctx, "send.message"); err != nil {
				return err
			}
			return s.DeleteReplyPart(ctx, inst.ID, part.Seq)
		}))
		for _, e := range events {
			e.Status, e.Attempts, e.LastStatus, e.FinishedAt = "delivered", 1, 200, time.Now()
		}
		must(s.UpdateEventAttempts(ctx, events))
	}
	// Every chat holds history, as after a while in production.
	for i := range 5 * chats {
		step(i)
	}
	if latency {
		took := make([]time.Duration, b.N)
		b.ResetTimer()
		for i := range b.N {
			start := time.Now()
			step(i)
			took[i] = time.Since(start)
		}
		b.StopTimer()
		slices.Sort(took)
		for _, q := range []struct {
			name string
			at   float64
		}{{"p50-µs", 0.5}, {"p99-µs", 0.99}, {"max-µs", 1}} {
			b.ReportMetric(float64(took[min(int(q.at*float64(b.N)), b.N-1)].Microseconds()), q.name)
		}
		return
	}
	if err := store.StopCheckpoints(s); err != nil {
		b.Fatal(err)
	}
	before, err := store.WALFrames(s)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		step(i)
	}
	b.StopTimer()
	after, err := store.WALFrames(s)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(after-before)/float64(b.N), "wal-pages/op")
}
