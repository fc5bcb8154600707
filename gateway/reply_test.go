package gateway_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store/storetest"
)

// outbound returns the texts of the chat's stored outbound messages, in order.
func (e *botEnv) outbound(chat string) []string {
	e.t.Helper()
	return e.column(`SELECT text FROM messages WHERE remote_jid = $1 AND direction = 'out' ORDER BY seq`, chat)
}

// column returns the text column that query selects, row by row.
func (e *botEnv) column(query string, args ...any) []string {
	e.t.Helper()
	rows, err := storetest.RawDB(e.t, e.s.dbURL).Query(query, args...)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	var texts []string
	for rows.Next() {
		var text string
		if err := rows.Scan(&text); err != nil {
			e.t.Fatal(err)
		}
		texts = append(texts, text)
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return texts
}

// queuedAt returns when the outbox queued each event of the instance, in
// order, by name.
func (e *botEnv) queuedAt() (names []string, times []time.Time) {
	e.t.Helper()
	rows, err := storetest.RawDB(e.t, e.s.dbURL).Query(`SELECT event, created_at FROM webhook_events
		WHERE instance_name = $1 ORDER BY seq`, e.inst.Name)
	if err != nil {
		e.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			name string
			ms   int64
		)
		if err := rows.Scan(&name, &ms); err != nil {
			e.t.Fatal(err)
		}
		names, times = append(names, name), append(times, time.UnixMilli(ms))
	}
	if err := rows.Err(); err != nil {
		e.t.Fatal(err)
	}
	return names, times
}

// chatReplies returns the texts of the send.message events received for
// chat, each message once: a delivery cut off by a stop is made again.
func (e *botEnv) chatReplies(chat string) []string {
	e.t.Helper()
	var out []string
	seen := map[string]bool{}
	for _, d := range e.rc.events(webhook.SendMessage) {
		var rec struct {
			Key struct{ ID, RemoteJID string } `json:"key"`
		}
		if err := json.Unmarshal(d.Envelope.Data, &rec); err != nil {
			e.t.Fatal(err)
		}
		if rec.Key.RemoteJID == chat && !seen[rec.Key.ID] {
			seen[rec.Key.ID] = true
			out = append(out, replyText(e.t, d))
		}
	}
	return out
}

// TestEngineReplyPartsSpacedByDelay checks that each part of a split reply
// goes out (is recorded and reported as send.message) after its own typing
// delay, not all together after the sum of them. The store's record times
// are the measure: consecutive parts are at least delayMessage apart.
func TestEngineReplyPartsSpacedByDelay(t *testing.T) {
	e := newBotEnv(t)
	const delay = 150 * time.Millisecond
	e.bot(func(b map[string]any) { b["splitMessages"], b["delayMessage"] = true, delay.Milliseconds() })
	e.ai.Enqueue(fakeai.Reply("one\n\ntwo\n\nthree\n\nfour"))
	const chat = "5511@s.whatsapp.net"
	e.say("m1", chat, "hi", nil)
	want := []string{"one", "two", "three", "four"}
	if got := e.replies(4); !slices.Equal(got, want) {
		t.Fatalf("replies = %q, want %q", got, want)
	}
	if got := e.outbound(chat); !slices.Equal(got, want) {
		t.Fatalf("stored replies = %q, want %q", got, want)
	}
	// From the inbound message on, each send.message is queued at least a
	// delay after the event before it. The store keeps milliseconds.
	names, times := e.queuedAt()
	var last time.Time
	for i, name := range names {
		switch name {
		case webhook.MessagesUpsert:
			last = times[i]
		case webhook.SendMessage:
			if gap := times[i].Sub(last); gap < delay-time.Millisecond {
				t.Errorf("event %d (%s) queued %v after the one before; each part waits its delay of %v first", i, name, gap, delay)
			}
			last = times[i]
		}
	}
}

// TestEngineReplyResumesAfterStop stops the gateway (as SIGTERM does) in
// the middle of a split reply: after the restart only the parts not sent
// yet go out, each once, and the model is not asked again.
func TestEngineReplyResumesAfterStop(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	e := attachBotEnv(t, s, nil)
	e.bot(func(b map[string]any) { b["splitMessages"], b["delayMessage"] = true, 400 })
	parts := []string{"p1", "p2", "p3", "p4", "p5"}
	e.ai.Enqueue(fakeai.Reply(strings.Join(parts, "\n\n")))
	const chat = "5511@s.whatsapp.net"
	e.say("m1", chat, "hi", nil)
	// Stop once two parts are recorded, or (were records held back to the
	// end) once two delays have passed: in the middle of the reply either
	// way. What is asserted below holds wherever the stop falls.
	for start := time.Now(); len(e.outbound(chat)) < 2 && time.Since(start) < time.Second; {
		time.Sleep(5 * time.Millisecond)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	s2 := startServer(t, dir)
	e2 := attachBotEnv(t, s2, e)
	// The chat's messages are handled in order and its events delivered in
	// order: once the answer to a later message is in, so is everything
	// the restart sent for the first.
	e2.say("m2", chat, "ping", nil)
	eventually(t, func() bool { return slices.Contains(e2.chatReplies(chat), "echo: ping") }, "the answer to ping")
	if got, want := e2.chatReplies(chat), append(parts, "echo: ping"); !slices.Equal(got, want) {
		t.Fatalf("send.message events = %q, want %q", got, want)
	}
	if got := e2.outbound(chat); !slices.Equal(got, append(parts, "echo: ping")) {
		t.Fatalf("stored replies = %q", got)
	}
	if n := len(e.ai.RequestsTo(fakeai.EndpointChat)); n != 2 {
		t.Fatalf("%d model calls, want 2 (one per message)", n)
	}
	if state, _ := e2.messageState(chat, "m1"); state != "answered" {
		t.Fatalf("m1 is %s, want answered", state)
	}
}

// TestEngineReplyPartLeftSendingIsNotResent restarts a gateway that left
// two parts of a reply: one marked as leaving when it stopped (on WhatsApp
// it may have gone out) and one not begun. Only the second goes out.
func TestEngineReplyPartLeftSendingIsNotResent(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	e := attachBotEnv(t, s, nil)
	e.bot(nil)
	const chat = "5511@s.whatsapp.net"
	e.say("m1", chat, "hi", nil)
	e.replies(1)
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []struct {
		text    string
		sending bool
	}{{"maybe sent", true}, {"not sent", false}} {
		e.exec(`INSERT INTO reply_parts (instance_id, chat_key, remote_jid, turn_seq, text, delay_ms, prompt_tokens,
				completion_tokens, latency_ms, sending, created_at)
			SELECT id, $1, $1, 1, $2, 0, 0, 0, 0, $3, 0 FROM instances WHERE name = $4`, chat, p.text, p.sending, e.inst.Name)
	}
	s2 := startServer(t, dir)
	e2 := attachBotEnv(t, s2, e)
	e2.say("m2", chat, "ping", nil)
	eventually(t, func() bool { return slices.Contains(e2.chatReplies(chat), "echo: ping") }, "the answer to ping")
	if got, want := e2.chatReplies(chat), []string{"echo: hi", "not sent", "echo: ping"}; !slices.Equal(got, want) {
		t.Fatalf("send.message events = %q, want %q", got, want)
	}
}

// TestEngineReplyRecordedWithItsTurn checks where a reply on the EVOLUTION
// channel waits to go out. Sending it is recording it, so a reply without
// typing delay is recorded as sent in the transaction that records its
// turn and is never stored to send later; one with a delay is stored
// first, part by part, and each part recorded after its wait. A trigger
// in the database logs every part stored.
func TestEngineReplyRecordedWithItsTurn(t *testing.T) {
	for _, tc := range []struct {
		name   string
		delay  int
		stored []string
	}{
		{"no delay", 0, nil},
		{"delay", 20, []string{"one", "two"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newBotEnv(t)
			e.bot(func(b map[string]any) { b["splitMessages"], b["delayMessage"] = true, tc.delay })
			e.exec(`CREATE TABLE parts_stored (text TEXT NOT NULL)`)
			if storetest.SuiteBackend() == storetest.SQLite {
				e.exec(`CREATE TRIGGER log_parts AFTER INSERT ON reply_parts BEGIN INSERT INTO parts_stored VALUES (NEW.text); END`)
			} else {
				e.exec(`CREATE FUNCTION log_parts() RETURNS trigger LANGUAGE plpgsql AS
					$$ BEGIN INSERT INTO parts_stored VALUES (NEW.text); RETURN NEW; END $$`)
				e.exec(`CREATE TRIGGER log_parts AFTER INSERT ON reply_parts FOR EACH ROW EXECUTE FUNCTION log_parts()`)
			}
			e.ai.Enqueue(fakeai.Reply("one\n\ntwo"))
			const chat = "5511@s.whatsapp.net"
			e.say("m1", chat, "hi", nil)
			want := []string{"one", "two"}
			if got := e.replies(2); !slices.Equal(got, want) {
				t.Fatalf("replies = %q, want %q", got, want)
			}
			if got := e.outbound(chat); !slices.Equal(got, want) {
				t.Fatalf("stored replies = %q, want %q", got, want)
			}
			if state, _ := e.messageState(chat, "m1"); state != "answered" {
				t.Fatalf("m1 is %s, want answered", state)
			}
			stored := e.column(`SELECT text FROM parts_stored`)
			if !slices.Equal(stored, tc.stored) {
				t.Fatalf("parts stored to send later = %q, want %q", stored, tc.stored)
			}
		})
	}
}
