package store_test

import (
	"testing"
	"time"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// TestTouchSession: saving a session's activity keeps the status another
// writer gave it since the session was read, and a session that is gone is
// not found.
func TestTouchSession(t *testing.T) { storetest.Run(t, testTouchSession) }

func testTouchSession(t *testing.T, backend storetest.Backend) {
	ctx := t.Context()
	s := open(t, storetest.NewURL(t, backend), key1)
	inst := mustCreate(t, s, newInstance("shop", "1"))
	bot := &store.Bot{ID: "bot-1", InstanceID: inst.ID, Enabled: true, BotType: "chatCompletion", TriggerType: "all",
		Prompts: store.Prompts{System: []string{}, User: []string{}, Assistant: []string{}}, IgnoreJids: []string{}, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateBot(ctx, bot); err != nil {
		t.Fatal(err)
	}
	se := &store.Session{ID: "se-1", InstanceID: inst.ID, BotID: bot.ID, RemoteJID: "a@s.whatsapp.net",
		Status: store.SessionOpened, CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateSession(ctx, se); err != nil {
		t.Fatal(err)
	}
	paused := *se
	paused.Status, paused.Reason = store.SessionPaused, "operator"
	if err := s.UpdateSession(ctx, &paused); err != nil {
		t.Fatal(err)
	}

	later := t0.Add(time.Minute)
	se.PushName, se.PreviousResponseID, se.UpdatedAt = "Ana", "resp_1", later
	if err := s.TouchSession(ctx, se); err != nil {
		t.Fatal(err)
	}
	got, err := s.LiveSession(ctx, inst.ID, se.RemoteJID)
	switch {
	case err != nil:
		t.Fatal(err)
	case got == nil:
		t.Fatal("no live session after TouchSession")
	case got.Status != store.SessionPaused || got.Reason != "operator":
		t.Errorf("status %q (%q), want the paused status kept", got.Status, got.Reason)
	case got.PushName != "Ana" || got.PreviousResponseID != "resp_1" || !got.UpdatedAt.Equal(later):
		t.Errorf("activity = %q, %q, %v; want Ana, resp_1, %v", got.PushName, got.PreviousResponseID, got.UpdatedAt, later)
	}

	gone := *se
	gone.ID = "se-missing"
	if err := s.TouchSession(ctx, &gone); wagate.ErrorCode(err) != wagate.ENOTFOUND {
		t.Errorf("TouchSession of a missing session: %v, want ENOTFOUND", err)
	}
}
