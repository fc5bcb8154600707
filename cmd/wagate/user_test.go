package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/gateway/console"
	"github.com/wagate/wagate/store"
)

// TestUserCreate: `wagate user create` makes a console user whose
// password, read from WAGATE_USER_PASSWORD, verifies against the stored
// hash; bad input names the flag's problem and creates nothing.
func TestUserCreate(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"WAGATE_DATA_DIR": dir, "WAGATE_USER_PASSWORD": "correct horse battery"}
	getenv := func(k string) string { return env[k] }
	var logs bytes.Buffer
	ctx := context.Background()
	args := []string{"user", "create", "-org", "default", "-email", "Owner@Example.com", "-name", "Olga", "-role", "owner"}
	if err := run(ctx, args, getenv, &logs); err != nil {
		t.Fatalf("user create: %v\n%s", err, logs.String())
	}
	err := run(ctx, []string{"user", "create", "-email", "x", "-name", "", "-role", "boss"}, getenv, &logs)
	if err == nil || !strings.Contains(err.Error(), "email: must be an email address") || !strings.Contains(err.Error(), "role:") {
		t.Fatalf("bad input: %v", err)
	}
	if err := run(ctx, []string{"user", "create", "-org", "no-such-org", "-email", "a@b.c", "-name", "A"}, getenv, &logs); err == nil {
		t.Fatal("an unknown organization was accepted")
	}

	cfg, err := config.Load(nil, getenv)
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.ResolveKeys(slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, store.OptionsFrom(cfg), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	u, err := st.UserByEmail(ctx, "owner@example.com")
	if err != nil || u.Name != "Olga" || !console.CheckPassword(u.PasswordHash, "correct horse battery") || console.CheckPassword(u.PasswordHash, "wrong") {
		t.Fatalf("stored user = %+v, %v", u, err)
	}
	if !strings.HasPrefix(u.PasswordHash, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not argon2id in PHC form", u.PasswordHash)
	}
	def, _ := st.DefaultOrganization(ctx)
	if members, err := st.ListMembers(ctx, def.ID); err != nil || len(members) != 1 || members[0].Role != "owner" {
		t.Fatalf("members = %v, %v", members, err)
	}
}
