package store_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

const (
	benchChats    = 10_000
	benchMessages = 1_000_000
	benchBatch    = 1_000 // rows per INSERT: 20 columns each stay within SQLite's 32766 variables
)

// BenchmarkConversations measures the conversations views over a SQLite
// database holding 1,000,000 messages in 10,000 chats: listing chats by
// latest activity (first page, a page deep in the list, with filters) and
// reading a chat's newest 50 messages. Target: under 20 ms per operation.
//
//	go test ./store -run '^$' -bench Conversations -benchtime 200x
func BenchmarkConversations(b *testing.B) {
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		b.Skip("seeds 1,000,000 messages; runs only with -bench")
	}
	ctx := context.Background()
	dsn := storetest.NewURL(b, storetest.SQLite)
	s, err := store.Open(ctx, store.Options{URL: dsn, SecretKey: key1}, discard())
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	in := newInstance("alpha", "5511")
	if err := s.CreateInstance(ctx, inDefaultOrg(b, s, in)); err != nil {
		b.Fatal(err)
	}
	bots := []string{"bot-1", "bot-2"}
	for _, id := range bots {
		bot := &store.Bot{ID: id, InstanceID: in.ID, Enabled: true, BotType: "chatCompletion", Model: "gpt-test",
			TriggerType: "all", CreatedAt: t0, UpdatedAt: t0}
		if err := s.CreateBot(ctx, bot); err != nil {
			b.Fatal(err)
		}
	}
	start := time.Now()
	seedConversations(b, dsn, in.ID, bots)
	b.Logf("seeded %d messages in %d chats in %s", benchMessages, benchChats, time.Since(start).Round(time.Millisecond))

	// A live session in every tenth chat, paused in every hundredth.
	for c := 0; c < benchChats; c += 10 {
		se := &store.Session{ID: fmt.Sprintf("s-%d", c), InstanceID: in.ID, BotID: bots[c%2], RemoteJID: benchChat(c),
			Status: store.SessionOpened, CreatedAt: t0, UpdatedAt: t0}
		if c%100 == 0 {
			se.Status = store.SessionPaused
		}
		if err := s.CreateSession(ctx, se); err != nil {
			b.Fatal(err)
		}
	}

	first, snapshot, err := s.ListConversations(ctx, in.ID, store.ConversationFilter{Limit: 51})
	if err != nil || len(first) != 51 {
		b.Fatalf("first page: %d, %v", len(first), err)
	}
	list := func(f store.ConversationFilter, want int) func(b *testing.B) {
		return func(b *testing.B) {
			f.Limit = 51
			for b.Loop() {
				got, _, err := s.ListConversations(ctx, in.ID, f)
				if err != nil || len(got) != want {
					b.Fatalf("%+v: %d conversations, %v; want %d", f, len(got), err, want)
				}
			}
		}
	}
	b.Run("list/first-page", list(store.ConversationFilter{}, 51))
	b.Run("list/page-5000", list(store.ConversationFilter{Snapshot: snapshot, Before: first[0].Position - 5000}, 51))
	b.Run("list/status=opened", list(store.ConversationFilter{Status: store.SessionOpened}, 51))
	b.Run("list/status=paused", list(store.ConversationFilter{Status: store.SessionPaused}, 51))
	b.Run("list/botId", list(store.ConversationFilter{BotID: bots[1]}, 51))
	b.Run("list/q=one-chat", list(store.ConversationFilter{Query: benchChat(4242)}, 1))
	b.Run("chat/newest-50", func(b *testing.B) {
		n := 0
		for b.Loop() {
			n++
			msgs, err := s.ChatMessages(ctx, in.ID, benchChat(n*7919%benchChats), store.ChatMessagesFilter{Limit: 51})
			if err != nil || len(msgs) != 51 {
				b.Fatalf("%d messages, %v", len(msgs), err)
			}
		}
	})
	b.Run("chat/conversation", func(b *testing.B) {
		n := 0
		for b.Loop() {
			n++
			if _, err := s.Conversation(ctx, in.ID, benchChat(n*7919%benchChats)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("findMessages/chat-page-1", func(b *testing.B) {
		n := 0
		for b.Loop() {
			n++
			msgs, total, err := s.FindMessages(ctx, in.ID, store.FindMessagesFilter{ChatKey: benchChat(n * 7919 % benchChats)}, 0, 50)
			if err != nil || len(msgs) != 50 || total != benchMessages/benchChats {
				b.Fatalf("%d messages of %d, %v", len(msgs), total, err)
			}
		}
	})
	// Evolution's findMessages over the whole instance counts every message.
	b.Run("findMessages/instance-page-1", func(b *testing.B) {
		for b.Loop() {
			msgs, total, err := s.FindMessages(ctx, in.ID, store.FindMessagesFilter{}, 0, 50)
			if err != nil || len(msgs) != 50 || total != benchMessages {
				b.Fatalf("%d messages of %d, %v", len(msgs), total, err)
			}
		}
	})
}

func benchChat(c int) string { return fmt.Sprintf("55119%07d@s.whatsapp.net", c) }

// seedConversations writes the messages and conversation summaries with
// multi-row inserts in large transactions, the indexes on messages dropped
// while it writes and built again after, as the migrations define them.
func seedConversations(b *testing.B, dsn, instanceID string, bots []string) {
	db, err := sql.Open("sqlite", dsn+"?_pragma=synchronous(OFF)&_pragma=journal_mode(WAL)")
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	var indexes []string
	rows, err := db.Query("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'messages' AND sql IS NOT NULL")
	if err != nil {
		b.Fatal(err)
	}
	var names []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			b.Fatal(err)
		}
		names, indexes = append(names, name), append(indexes, def)
	}
	rows.Close()
	for _, name := range names {
		mustExec(b, db, "DROP INDEX "+name)
	}

	type summary struct {
		in, out, prompt, completion int64
		last, lastAt, firstAt       int64
		bot                         string
	}
	sums := make([]summary, benchChats)
	base := t0.Add(-30 * 24 * time.Hour).UnixMilli()
	const cols = `seq, instance_id, message_id, direction, remote_jid, chat_key, participant, from_me, push_name, message_type,
		message, text, status, sent_at, created_at, state, state_reason, bot_id, prompt_tokens, completion_tokens`
	const perRow = 20
	// ? placeholders: the driver binds $n ones by searching for each name,
	// which takes minutes with 20,000 of them per statement.
	row := "(" + strings.Repeat("?, ", perRow-1) + "?)"
	insert := "INSERT INTO messages (" + cols + ") VALUES " + strings.Repeat(row+", ", benchBatch-1) + row
	args := make([]any, 0, benchBatch*perRow)
	tx, err := db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for seq := int64(1); seq <= benchMessages; seq++ {
		// Chats interleave, as they do in a busy instance; every other
		// message is a bot's answer.
		c := int((seq - 1) % benchChats)
		at := base + seq*2_000 // a message every 2 s: a month of traffic
		chat := benchChat(c)
		s := &sums[c]
		if s.firstAt == 0 {
			s.firstAt = at
		}
		s.last, s.lastAt = seq, at
		if (seq-1)/benchChats%2 == 0 {
			s.in++
			text := fmt.Sprintf("message %d from the customer", seq)
			args = append(args, seq, instanceID, fmt.Sprintf("IN-%d", seq), "in", chat, chat, "", false, "Customer",
				"conversation", `{"conversation":"`+text+`"}`, text, "DELIVERY_ACK", at, at, "answered", "", bots[c%2], 0, 0)
		} else {
			s.out++
			s.prompt, s.completion, s.bot = s.prompt+120, s.completion+40, bots[c%2]
			text := fmt.Sprintf("answer %d from the bot", seq)
			args = append(args, seq, instanceID, fmt.Sprintf("OUT-%d", seq), "out", chat, chat, "", true, "",
				"conversation", `{"conversation":"`+text+`"}`, text, "SERVER_ACK", at, at, "sent", "", bots[c%2], 120, 40)
		}
		if len(args) == cap(args) {
			if _, err := tx.Exec(insert, args...); err != nil {
				b.Fatal(err)
			}
			args = args[:0]
			if seq%100_000 == 0 {
				if err := tx.Commit(); err != nil {
					b.Fatal(err)
				}
				if tx, err = db.Begin(); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	for _, def := range indexes {
		mustExec(b, db, def)
	}

	tx, err = db.Begin()
	if err != nil {
		b.Fatal(err)
	}
	for c, s := range sums {
		_, err := tx.Exec(`INSERT INTO conversations (instance_id, chat_key, push_name, bot_id, last_seq, last_at,
			messages_in, messages_out, unread, prompt_tokens, completion_tokens, created_at)
			VALUES ($1, $2, 'Customer', $3, $4, $5, $6, $7, 0, $8, $9, $10)`,
			instanceID, benchChat(c), s.bot, s.last, s.lastAt, s.in, s.out, s.prompt, s.completion, s.firstAt)
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
}

func mustExec(b *testing.B, db *sql.DB, query string) {
	b.Helper()
	if _, err := db.Exec(query); err != nil {
		b.Fatalf("%s: %v", query, err)
	}
}
