package store_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// A session's recent history is its newest turns while their tokens add
// up to the budget, oldest first; the first turn that does not fit ends
// it, even when older ones would.
func TestRecentTurnsBudget(t *testing.T) { storetest.Run(t, testRecentTurnsBudget) }

func testRecentTurnsBudget(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	bot := mustCreateBot(t, s, in.ID, "bot-1")
	se := newSession(in.ID, bot.ID, "5511999@s.whatsapp.net", "session-1")
	if err := s.CreateSession(ctx, se); err != nil {
		t.Fatal(err)
	}
	// Another session's turns are never part of it.
	other := newSession(in.ID, bot.ID, "5511888@s.whatsapp.net", "session-2")
	if err := s.CreateSession(ctx, other); err != nil {
		t.Fatal(err)
	}
	tokens := []int{1, 9, 3, 0, 7, 5} // oldest first
	for i, n := range tokens {
		for _, id := range []string{se.ID, other.ID} {
			err := s.AppendTurns(ctx, &store.Turn{SessionID: id, Role: "user", Tokens: n, CreatedAt: t0,
				Message: json.RawMessage(fmt.Sprintf(`{"role":"user","content":"turn %d"}`, i))})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.InsertMessage(ctx, newMessage(in.ID, "pending", store.Inbound)); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		budget int
		want   []int // tokens of the turns returned, oldest first
	}{
		{budget: 0, want: nil},
		{budget: 4, want: nil},
		{budget: 5, want: []int{5}},
		{budget: 11, want: []int{5}},
		{budget: 12, want: []int{0, 7, 5}},
		{budget: 15, want: []int{3, 0, 7, 5}},
		{budget: 23, want: []int{3, 0, 7, 5}}, // 9 does not fit, so 1 is not reached
		{budget: 25, want: tokens},
		{budget: 1000, want: tokens},
	}
	for _, tt := range tests {
		got, err := s.RecentTurns(ctx, se.ID, tt.budget)
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.ChatState(ctx, in.ID, se.RemoteJID, tt.budget)
		if err != nil {
			t.Fatal(err)
		}
		for name, turns := range map[string][]*store.Turn{"RecentTurns": got, "ChatState": st.History} {
			var n []int
			for i, turn := range turns {
				if turn.SessionID != se.ID {
					t.Errorf("%s(budget %d) turn %d is of session %s", name, tt.budget, i, turn.SessionID)
				}
				if i > 0 && turn.Seq <= turns[i-1].Seq {
					t.Errorf("%s(budget %d) is not oldest first", name, tt.budget)
				}
				n = append(n, turn.Tokens)
			}
			if !slices.Equal(n, tt.want) {
				t.Errorf("%s(budget %d) = turns of %v tokens, want %v", name, tt.budget, n, tt.want)
			}
		}
	}
	// A long session is read past the first page.
	long := newSession(in.ID, bot.ID, "5511777@s.whatsapp.net", "session-long")
	if err := s.CreateSession(ctx, long); err != nil {
		t.Fatal(err)
	}
	turns := make([]*store.Turn, 500)
	for i := range turns {
		turns[i] = &store.Turn{SessionID: long.ID, Role: "user", Tokens: 1, CreatedAt: t0,
			Message: json.RawMessage(fmt.Sprintf(`{"role":"user","content":"turn %d"}`, i))}
	}
	if err := s.AppendTurns(ctx, turns...); err != nil {
		t.Fatal(err)
	}
	pending := newMessage(in.ID, "pending-long", store.Inbound)
	pending.RemoteJID = long.RemoteJID
	if _, err := s.InsertMessage(ctx, pending); err != nil {
		t.Fatal(err)
	}
	for _, budget := range []int{63, 64, 65, 191, 192, 193, 300, 499, 500, 501, 5000} {
		want := turns[max(0, len(turns)-budget):]
		got, err := s.RecentTurns(ctx, long.ID, budget)
		if err != nil {
			t.Fatal(err)
		}
		st, err := s.ChatState(ctx, in.ID, long.RemoteJID, budget)
		if err != nil {
			t.Fatal(err)
		}
		for name, turns := range map[string][]*store.Turn{"RecentTurns": got, "ChatState": st.History} {
			if len(turns) != len(want) || turns[0].Seq != want[0].Seq || turns[len(turns)-1].Seq != want[len(want)-1].Seq {
				t.Errorf("long session, %s(budget %d): %d turns, want the newest %d", name, budget, len(turns), len(want))
				continue
			}
			for i := 1; i < len(turns); i++ {
				if turns[i].Seq <= turns[i-1].Seq {
					t.Errorf("long session, %s(budget %d) is not oldest first", name, budget)
					break
				}
			}
		}
	}

	// The newest turn's message comes back as stored.
	got, err := s.RecentTurns(ctx, se.ID, 5)
	if err != nil || len(got) != 1 {
		t.Fatalf("RecentTurns = %v, %v", got, err)
	}
	if string(got[0].Message) != `{"role":"user","content":"turn 5"}` || !got[0].CreatedAt.Equal(t0) || got[0].Role != "user" {
		t.Errorf("newest turn = %+v", got[0])
	}
}
