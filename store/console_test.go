package store_test

import (
	"testing"
	"time"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

func TestConsoleUsersAndSessions(t *testing.T) { storetest.Run(t, testConsoleUsersAndSessions) }

// testConsoleUsersAndSessions: emails are unique in any case; a session
// is found only while live and while its user is a member; the last owner
// stays; sign-out everywhere ends every session of the user.
func testConsoleUsersAndSessions(t *testing.T, backend storetest.Backend) {
	s, def, other := twoOrganizations(t, backend)
	ctx := t.Context()
	ana := &store.User{ID: "u-ana", Email: " Ana@Example.COM", Name: "Ana", PasswordHash: "$argon2id$x", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(ctx, ana, def.ID, store.RoleOwner); err != nil {
		t.Fatal(err)
	}
	dup := &store.User{ID: "u-dup", Email: "ANA@example.com", Name: "Dup", PasswordHash: "x", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(ctx, dup, def.ID, store.RoleAgent); wagate.ErrorCode(err) != wagate.ECONFLICT {
		t.Fatalf("same email in another case: %v, want a conflict", err)
	}
	got, err := s.UserByEmail(ctx, "ana@EXAMPLE.com")
	if err != nil || got.ID != ana.ID || got.Email != "ana@example.com" {
		t.Fatalf("UserByEmail = %+v, %v", got, err)
	}
	if err := s.AddMember(ctx, ana.ID, other.ID, store.RoleAgent, t0); err != nil {
		t.Fatal(err)
	}
	ms, err := s.UserMemberships(ctx, ana.ID)
	if err != nil || len(ms) != 2 || ms[0].Organization.ID != def.ID || ms[1].Role != store.RoleAgent {
		t.Fatalf("memberships = %+v, %v", ms, err)
	}
	if err := s.SetMemberRole(ctx, def.ID, ana.ID, store.RoleAdmin); wagate.ErrorCode(err) != wagate.ECONFLICT {
		t.Fatalf("demoting the last owner: %v, want a conflict", err)
	}

	sess := func(id, org string, idle, abs time.Duration) *store.ConsoleSession {
		cs := &store.ConsoleSession{ID: id, TokenHash: "th-" + id, UserID: ana.ID, OrganizationID: org, CSRFToken: "csrf-" + id,
			CreatedAt: t0, LastSeenAt: t0, IdleExpiresAt: t0.Add(idle), ExpiresAt: t0.Add(abs)}
		if err := s.CreateConsoleSession(ctx, cs); err != nil {
			t.Fatal(err)
		}
		return cs
	}
	a := sess("s-a", def.ID, time.Hour, 12*time.Hour)
	b := sess("s-b", other.ID, time.Hour, 12*time.Hour)
	p, err := s.ConsoleSessionByTokenHash(ctx, a.TokenHash, t0.Add(time.Minute))
	if err != nil || p.Role != store.RoleOwner || p.Org.ID != def.ID || p.User.Email != "ana@example.com" || p.Session.CSRFToken != "csrf-s-a" {
		t.Fatalf("session = %+v, %v", p, err)
	}
	for _, tc := range []struct {
		name string
		at   time.Time
	}{{"idle expiry", t0.Add(time.Hour)}, {"absolute expiry", t0.Add(13 * time.Hour)}} {
		if _, err := s.ConsoleSessionByTokenHash(ctx, a.TokenHash, tc.at); wagate.ErrorCode(err) != wagate.ENOTFOUND {
			t.Errorf("%s: %v, want not found", tc.name, err)
		}
	}
	// Activity moves the idle expiry.
	if err := s.TouchConsoleSession(ctx, a.ID, t0.Add(50*time.Minute), t0.Add(110*time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsoleSessionByTokenHash(ctx, a.TokenHash, t0.Add(100*time.Minute)); err != nil {
		t.Fatalf("after activity: %v", err)
	}
	// Removed from the other organization: its session goes with it.
	bob := &store.User{ID: "u-bob", Email: "bob@example.com", Name: "Bob", PasswordHash: "x", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateUser(ctx, bob, other.ID, store.RoleOwner); err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveMember(ctx, other.ID, ana.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ConsoleSessionByTokenHash(ctx, b.TokenHash, t0.Add(time.Minute)); wagate.ErrorCode(err) != wagate.ENOTFOUND {
		t.Fatalf("session of a removed member: %v, want not found", err)
	}
	members, err := s.ListMembers(ctx, other.ID)
	if err != nil || len(members) != 1 || members[0].ID != bob.ID {
		t.Fatalf("members = %+v, %v", members, err)
	}
	sess("s-c", def.ID, time.Hour, 12*time.Hour)
	if n, err := s.DeleteUserConsoleSessions(ctx, ana.ID); err != nil || n != 2 {
		t.Fatalf("sign-out everywhere ended %d sessions, %v; want 2", n, err)
	}
	// Expired sessions are swept; live ones stay.
	sess("s-idle", def.ID, time.Minute, 12*time.Hour)
	live := sess("s-live", def.ID, time.Hour, 12*time.Hour)
	if n, err := s.DeleteExpiredConsoleSessions(ctx, t0.Add(2*time.Minute)); err != nil || n != 1 {
		t.Fatalf("expired sessions deleted: %d, %v; want 1", n, err)
	}
	if _, err := s.ConsoleSessionByTokenHash(ctx, live.TokenHash, t0.Add(2*time.Minute)); err != nil {
		t.Fatalf("live session after the sweep: %v", err)
	}
}

func TestInvitesAndThrottle(t *testing.T) { storetest.Run(t, testInvitesAndThrottle) }

// testInvitesAndThrottle: an invite is used once and not after expiry;
// failures count in a window and start over after it.
func testInvitesAndThrottle(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	def, err := s.DefaultOrganization(ctx)
	if err != nil {
		t.Fatal(err)
	}
	in := &store.Invite{ID: "i-1", TokenHash: "ih-1", OrganizationID: def.ID, Role: store.RoleAgent, Email: "Cy@Example.com",
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateInvite(ctx, in); err != nil {
		t.Fatal(err)
	}
	if _, err := s.InviteByTokenHash(ctx, "ih-1", t0.Add(2*time.Hour)); wagate.ErrorCode(err) != wagate.ENOTFOUND {
		t.Fatalf("expired invite: %v", err)
	}
	got, err := s.InviteByTokenHash(ctx, "ih-1", t0)
	if err != nil || got.Email != "cy@example.com" || got.Role != store.RoleAgent {
		t.Fatalf("invite = %+v, %v", got, err)
	}
	if err := s.UseInvite(ctx, in.ID, t0); err != nil {
		t.Fatal(err)
	}
	if err := s.UseInvite(ctx, in.ID, t0); wagate.ErrorCode(err) != wagate.ENOTFOUND {
		t.Fatalf("second use: %v, want not found", err)
	}
	if _, err := s.InviteByTokenHash(ctx, "ih-1", t0); wagate.ErrorCode(err) != wagate.ENOTFOUND {
		t.Fatalf("used invite: %v", err)
	}

	window := 15 * time.Minute
	for i := range 3 {
		now := t0.Add(time.Duration(i) * time.Minute)
		if err := s.RecordSigninFailure(ctx, "email:x", now, now.Add(-window)); err != nil {
			t.Fatal(err)
		}
	}
	now := t0.Add(5 * time.Minute)
	if n, start, err := s.SigninFailures(ctx, "email:x", now.Add(-window)); err != nil || n != 3 || !start.Equal(t0) {
		t.Fatalf("failures = %d since %v, %v; want 3 since %v", n, start, err, t0)
	}
	later := t0.Add(20 * time.Minute)
	if n, _, err := s.SigninFailures(ctx, "email:x", later.Add(-window)); err != nil || n != 0 {
		t.Fatalf("after the window: %d, %v", n, err)
	}
	if err := s.RecordSigninFailure(ctx, "email:x", later, later.Add(-window)); err != nil {
		t.Fatal(err)
	}
	if n, start, _ := s.SigninFailures(ctx, "email:x", later.Add(-window)); n != 1 || !start.Equal(later) {
		t.Fatalf("a new window: %d since %v", n, start)
	}
	if err := s.DeleteStaleSigninFailures(ctx, later.Add(-window)); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.SigninFailures(ctx, "email:x", later.Add(-window)); n != 1 {
		t.Fatalf("a current window was swept: %d", n)
	}
	if err := s.ClearSigninFailures(ctx, "email:x"); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := s.SigninFailures(ctx, "email:x", later.Add(-window)); n != 0 {
		t.Fatalf("after clearing: %d", n)
	}
}
