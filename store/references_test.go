package store_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// What an instance and its bot own, and what deleting either does, through
// the foreign keys' cascades, on both backends.
func TestDeleteCascadesThroughTheMessagePath(t *testing.T) {
	storetest.Run(t, testDeleteCascadesThroughTheMessagePath)
}

func testDeleteCascadesThroughTheMessagePath(t *testing.T, backend storetest.Backend) {
	dsn := storetest.NewURL(t, backend)
	s := open(t, dsn, key1)
	ctx := t.Context()
	db := rawDB(t, dsn)

	type owned struct {
		in  *store.Instance
		bot *store.Bot
		se  *store.Session
	}
	var all []owned
	for _, name := range []string{"alpha", "bravo"} {
		in := mustCreate(t, s, newInstance(name, "55"+name))
		bot := mustCreateBot(t, s, in.ID, "bot-"+name)
		se := newSession(in.ID, bot.ID, "5511999@s.whatsapp.net", "session-"+name)
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
		m := newMessage(in.ID, "m-"+name, store.Inbound)
		if _, err := s.InsertMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		err := s.DoTxn(ctx, func(ctx context.Context) error {
			if err := s.SetMessagesState(ctx, in.ID, []int64{m.Seq}, store.MessageOutcome{State: "answered", BotID: bot.ID, SessionID: se.ID}); err != nil {
				return err
			}
			if err := s.AppendTurns(ctx, &store.Turn{SessionID: se.ID, Role: "user", Message: json.RawMessage(`{"role":"user","content":"hi"}`), CreatedAt: t0}); err != nil {
				return err
			}
			return s.InsertReplyParts(ctx, &store.ReplyPart{InstanceID: in.ID, ChatKey: m.ChatKey, RemoteJID: m.RemoteJID,
				TurnSeq: m.Seq, Text: "hello", BotID: bot.ID, SessionID: se.ID, CreatedAt: t0})
		})
		if err != nil {
			t.Fatal(err)
		}
		mustInsertEvent(t, s, newEvent(in.ID, in.ID, "messages.upsert"))
		all = append(all, owned{in, bot, se})
	}
	alpha, bravo := all[0], all[1]
	rows := func(query string, args ...any) int { t.Helper(); return count(t, db, query, args...) }

	// Deleting alpha's bot clears it from alpha's rows, with its sessions and their history.
	if err := s.DeleteBot(ctx, alpha.in.ID, alpha.bot.ID); err != nil {
		t.Fatal(err)
	}
	for _, o := range all {
		gone := o.bot.ID == alpha.bot.ID
		for _, q := range []string{
			"SELECT COUNT(*) FROM messages WHERE bot_id = $1",
			"SELECT COUNT(*) FROM reply_parts WHERE bot_id = $1",
		} {
			if n := rows(q, o.bot.ID); (n == 0) != gone {
				t.Errorf("%s: %d rows with bot %s after deleting %s", q, n, o.bot.ID, alpha.bot.ID)
			}
		}
		for _, q := range []string{
			"SELECT COUNT(*) FROM openai_sessions WHERE id = $1",
			"SELECT COUNT(*) FROM openai_history WHERE session_id = $1",
			"SELECT COUNT(*) FROM messages WHERE session_id = $1",
			"SELECT COUNT(*) FROM reply_parts WHERE session_id = $1",
		} {
			if n := rows(q, o.se.ID); (n == 0) != gone {
				t.Errorf("%s: %d rows of session %s after deleting bot %s", q, n, o.se.ID, alpha.bot.ID)
			}
		}
	}
	if n := rows("SELECT COUNT(*) FROM messages WHERE instance_id = $1", alpha.in.ID); n != 1 {
		t.Errorf("alpha has %d messages after its bot's deletion, want 1", n)
	}

	// Deleting alpha takes everything of alpha, and nothing of bravo.
	if err := s.DeleteInstance(ctx, alpha.in.ID); err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"messages", "reply_parts", "conversations", "webhook_events", "openai_sessions", "openai_bots"} {
		if n := rows("SELECT COUNT(*) FROM "+table+" WHERE instance_id = $1", alpha.in.ID); n != 0 {
			t.Errorf("%s keeps %d rows of the deleted instance", table, n)
		}
		if n := rows("SELECT COUNT(*) FROM "+table+" WHERE instance_id = $1", bravo.in.ID); n == 0 {
			t.Errorf("%s lost bravo's rows", table)
		}
	}

	// Nothing can be written for what is gone.
	if _, err := s.InsertMessage(ctx, newMessage(alpha.in.ID, "late", store.Inbound)); err == nil {
		t.Error("a message was stored for a deleted instance")
	}
	err := s.DoTxn(ctx, func(ctx context.Context) error {
		return s.InsertReplyParts(ctx, &store.ReplyPart{InstanceID: bravo.in.ID, ChatKey: "5511999@s.whatsapp.net",
			RemoteJID: "5511999@s.whatsapp.net", Text: "x", BotID: alpha.bot.ID, CreatedAt: t0})
	})
	if err == nil {
		t.Error("a reply part was stored naming a deleted bot")
	}
	m := newMessage(bravo.in.ID, "m-bravo-2", store.Inbound)
	if _, err := s.InsertMessage(ctx, m); err != nil {
		t.Fatal(err)
	}
	err = s.DoTxn(ctx, func(ctx context.Context) error {
		return s.SetMessagesState(ctx, bravo.in.ID, []int64{m.Seq}, store.MessageOutcome{State: "answered", BotID: alpha.bot.ID})
	})
	if err == nil {
		t.Error("a message was decided for a deleted bot")
	}
}

// On PostgreSQL an instance's deletion waits for the transactions writing
// for it, and a writer that waited for a deletion fails: nothing written
// for an instance outlives it. (SQLite has one writer at a time.)
func TestDeleteInstanceWaitsForWriters(t *testing.T) {
	dsn := storetest.NewURL(t, storetest.Postgres)
	s := open(t, dsn, key1)
	ctx := t.Context()
	raw := rawDB(t, dsn)
	waiting := func(what string) {
		t.Helper()
		waitFor(t, what, func() bool {
			return count(t, raw, `SELECT COUNT(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
				WHERE NOT l.granted AND a.datname = current_database()`) > 0
		})
	}

	// A writer first, then the deletion.
	alpha := mustCreate(t, s, newInstance("alpha", "5511"))
	inserted, finish, wrote := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		wrote <- s.DoTxn(ctx, func(ctx context.Context) error {
			if _, err := s.InsertMessage(ctx, newMessage(alpha.ID, "in-flight", store.Inbound)); err != nil {
				return err
			}
			close(inserted)
			<-finish
			return nil
		})
	}()
	select {
	case <-inserted:
	case err := <-wrote:
		t.Fatalf("insert: %v", err)
	}
	deleted := make(chan error, 1)
	go func() { deleted <- s.DeleteInstance(ctx, alpha.ID) }()
	waiting("the deletion to wait for the writer")
	select {
	case err := <-deleted:
		t.Fatalf("deleted (%v) while a transaction writing for the instance was open", err)
	default:
	}
	close(finish)
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if err := <-deleted; err != nil {
		t.Fatal(err)
	}
	for _, table := range []string{"messages", "conversations"} {
		if n := count(t, raw, "SELECT COUNT(*) FROM "+table+" WHERE instance_id = $1", alpha.ID); n != 0 {
			t.Errorf("%s keeps %d rows written while the instance was being deleted", table, n)
		}
	}

	// The deletion first, then a writer.
	bravo := mustCreate(t, s, newInstance("bravo", "5522"))
	tx, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, "DELETE FROM instances WHERE id = $1", bravo.ID); err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := s.InsertMessage(ctx, newMessage(bravo.ID, "late", store.Inbound))
		wrote <- err
	}()
	waiting("the writer to wait for the deletion")
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err == nil {
		t.Error("a message was stored for an instance deleted while it was written")
	}
	if n := count(t, raw, "SELECT COUNT(*) FROM messages WHERE instance_id = $1", bravo.ID); n != 0 {
		t.Errorf("messages keeps %d rows of the deleted instance", n)
	}
}
