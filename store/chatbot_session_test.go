package store_test

import (
	"testing"
	"time"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

func TestChatbotSessions(t *testing.T) { storetest.Run(t, testChatbotSessions) }

// testChatbotSessions: a bot keeps its chatbot, and a chatbot's sessions
// are those of its bots only, in its own organization.
func testChatbotSessions(t *testing.T, backend storetest.Backend) {
	s, def, other := twoOrganizations(t, backend)
	ctx := t.Context()
	chatbot := func(id, orgID string) *store.Chatbot {
		c := &store.Chatbot{ID: id, OrganizationID: orgID, Name: id, Slug: id, KeyHash: "kh-" + id, KeyPrefix: "ob_live_",
			CreatedAt: t0, UpdatedAt: t0}
		if err := s.CreateChatbot(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	mine, theirs := chatbot("cb-mine", def.ID), chatbot("cb-theirs", other.ID)

	in := mustCreate(t, s, newInstance("alpha", "5511"))
	foreign := newInstance("beta", "5522")
	foreign.OrganizationID = other.ID
	if err := s.CreateInstance(ctx, foreign); err != nil {
		t.Fatal(err)
	}
	b := mustCreateBot(t, s, in.ID, "bot-a")
	b.ChatbotID = mine.ID
	if err := s.UpdateBot(ctx, b); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Bot(ctx, in.ID, b.ID); err != nil || got.ChatbotID != mine.ID {
		t.Fatalf("Bot = %+v, %v; want chatbot %s", got, err, mine.ID)
	}
	plain := mustCreateBot(t, s, in.ID, "bot-plain")
	fb := mustCreateBot(t, s, foreign.ID, "bot-b")
	fb.ChatbotID = theirs.ID
	if err := s.UpdateBot(ctx, fb); err != nil {
		t.Fatal(err)
	}

	mkSession := func(inst, bot, chat, id string, at time.Time) *store.Session {
		se := newSession(inst, bot, chat, id)
		se.CreatedAt, se.UpdatedAt = at, at
		if err := s.CreateSession(ctx, se); err != nil {
			t.Fatal(err)
		}
		return se
	}
	older := mkSession(in.ID, b.ID, "1@s.whatsapp.net", "s-1", t0)
	newer := mkSession(in.ID, b.ID, "2@s.whatsapp.net", "s-2", t0.Add(time.Second))
	mkSession(in.ID, plain.ID, "3@s.whatsapp.net", "s-3", t0.Add(2*time.Second))
	mkSession(foreign.ID, fb.ID, "1@s.whatsapp.net", "s-4", t0.Add(3*time.Second))

	var msgs []*store.Message
	for i, dir := range []store.Direction{store.Inbound, store.Outbound, store.Inbound} {
		m := newMessage(in.ID, "m"+string(rune('0'+i)), dir)
		m.RemoteJID, m.SessionID, m.CreatedAt, m.Timestamp = older.RemoteJID, older.ID, t0, t0
		if _, err := s.InsertMessage(ctx, m); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, m)
	}

	ids := func(list []*store.Session) []string {
		var out []string
		for _, se := range list {
			out = append(out, se.ID)
		}
		return out
	}
	tests := []struct {
		name    string
		org, cb string
		before  *store.SessionCursor
		limit   int
		want    []string
	}{
		{"newest first", def.ID, mine.ID, nil, 10, []string{newer.ID, older.ID}},
		{"paged", def.ID, mine.ID, &store.SessionCursor{CreatedAt: newer.CreatedAt, ID: newer.ID}, 10, []string{older.ID}},
		{"limited", def.ID, mine.ID, nil, 1, []string{newer.ID}},
		{"another organization's chatbot", def.ID, theirs.ID, nil, 10, nil},
		{"own chatbot from another organization", other.ID, mine.ID, nil, 10, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			list, err := s.ChatbotSessions(ctx, tc.org, tc.cb, tc.before, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(list); len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Fatalf("sessions = %v, want %v", got, tc.want)
			}
		})
	}

	if _, err := s.ChatbotSession(ctx, def.ID, mine.ID, older.ID); err != nil {
		t.Fatalf("ChatbotSession: %v", err)
	}
	for _, id := range []string{"s-3", "s-4", "missing"} {
		if _, err := s.ChatbotSession(ctx, def.ID, mine.ID, id); wagate.ErrorCode(err) != wagate.ENOTFOUND {
			t.Errorf("ChatbotSession(%s) = %v, want ENOTFOUND", id, err)
		}
	}

	last, err := s.LastSessionMessages(ctx, []string{older.ID, newer.ID})
	if err != nil {
		t.Fatal(err)
	}
	if len(last) != 1 || last[older.ID] == nil || last[older.ID].ID != msgs[2].ID {
		t.Fatalf("LastSessionMessages = %v, want %s for %s only", last, msgs[2].ID, older.ID)
	}
	page, err := s.SessionMessages(ctx, in.ID, older.ID, 0, 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].ID != msgs[0].ID || page[1].ID != msgs[1].ID {
		t.Fatalf("SessionMessages first page = %v", page)
	}
	rest, err := s.SessionMessages(ctx, in.ID, older.ID, page[1].Seq, 2)
	if err != nil || len(rest) != 1 || rest[0].ID != msgs[2].ID {
		t.Fatalf("SessionMessages rest = %v, %v", rest, err)
	}
}
