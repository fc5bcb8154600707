package store_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

var (
	key1 = bytes.Repeat([]byte{1}, 32)
	key2 = bytes.Repeat([]byte{2}, 32)

	// t0 is a fixed time with millisecond precision, the precision the store keeps.
	t0 = time.UnixMilli(1_700_000_000_123).UTC()
)

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// open opens the store at dsn and closes it when the test ends.
func open(t *testing.T, dsn string, key []byte) *store.Store {
	t.Helper()
	s, err := store.Open(t.Context(), store.Options{URL: dsn, SecretKey: key}, discard())
	if err != nil {
		t.Fatalf("store.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// twoOrganizations opens a store and returns its default organization and
// a second one, "org-other".
func twoOrganizations(t *testing.T, backend storetest.Backend) (s *store.Store, def, other *store.Organization) {
	t.Helper()
	s = open(t, storetest.NewURL(t, backend), key1)
	def, err := s.DefaultOrganization(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	other = &store.Organization{ID: "org-other", Name: "Other", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateOrganization(t.Context(), other, &store.OrgKey{ID: "key-other", OrganizationID: other.ID,
		KeyHash: "h-other", KeyPrefix: "wgo_x", CreatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	return s, def, other
}

// rawDB opens the database directly, bypassing the store.
func rawDB(t *testing.T, dsn string) *sql.DB { return storetest.RawDB(t, dsn) }

func count(t *testing.T, db *sql.DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}

func newInstance(name, number string) *store.Instance {
	return &store.Instance{
		ID:          "id-" + name,
		Name:        name,
		Integration: store.IntegrationEvolution,
		Number:      number,
		TokenHash:   "hash-" + name,
		TokenPrefix: "tok_" + name[:1],
		Settings:    store.InstanceSettings{RejectCall: true, MsgCall: "busy", ReadMessages: true},
		CreatedAt:   t0,
		UpdatedAt:   t0,
	}
}

func mustCreate(t *testing.T, s *store.Store, in *store.Instance) *store.Instance {
	t.Helper()
	if err := s.CreateInstance(t.Context(), inDefaultOrg(t, s, in)); err != nil {
		t.Fatalf("CreateInstance(%s): %v", in.Name, err)
	}
	return in
}

// inDefaultOrg puts in in the default organization, which the schema
// creates.
func inDefaultOrg(t testing.TB, s *store.Store, in *store.Instance) *store.Instance {
	t.Helper()
	return inDefaultOrgCtx(context.Background(), t, s, in)
}

func inDefaultOrgCtx(ctx context.Context, t testing.TB, s *store.Store, in *store.Instance) *store.Instance {
	t.Helper()
	org, err := s.DefaultOrganization(ctx)
	if err != nil {
		t.Fatalf("DefaultOrganization: %v", err)
	}
	in.OrganizationID = org.ID
	return in
}

func newMessage(instanceID, id string, dir store.Direction) *store.Message {
	return &store.Message{
		InstanceID:  instanceID,
		ID:          id,
		Direction:   dir,
		RemoteJID:   "5511999@s.whatsapp.net",
		Participant: "",
		FromMe:      dir == store.Outbound,
		PushName:    "Ana",
		MessageType: "conversation",
		Content:     json.RawMessage(`{"conversation":"hi"}`),
		Text:        "hi",
		Status:      "SERVER_ACK",
		Timestamp:   t0,
		CreatedAt:   t0.Add(time.Second),
	}
}

// eventN numbers events; concurrency tests create them from many goroutines.
var eventN atomic.Int64

func newEvent(instanceID, lane, name string) *store.Event {
	n := eventN.Add(1)
	return &store.Event{
		DeliveryID:    fmt.Sprintf("delivery-%d", n),
		InstanceID:    instanceID,
		Lane:          lane,
		InstanceName:  "inst",
		Sender:        "5511",
		Name:          name,
		Data:          json.RawMessage(fmt.Sprintf(`{"n":%d}`, n)),
		NextAttemptAt: t0,
		CreatedAt:     t0,
	}
}

func mustInsertEvent(t *testing.T, s *store.Store, e *store.Event) *store.Event {
	t.Helper()
	if err := s.InsertEvent(t.Context(), e); err != nil {
		t.Fatalf("InsertEvent: %v", err)
	}
	return e
}

func wantCode(t *testing.T, err error, code wagate.Code) {
	t.Helper()
	if got := wagate.ErrorCode(err); got != code {
		t.Fatalf("error %v has code %q, want %q", err, got, code)
	}
}

func seqs(events []*store.Event) []int64 {
	var out []int64
	for _, e := range events {
		out = append(out, e.Seq)
	}
	return out
}

func TestOpenMigratesAndReopens(t *testing.T) { storetest.Run(t, testOpenMigratesAndReopens) }

func testOpenMigratesAndReopens(t *testing.T, backend storetest.Backend) {
	dsn := storetest.NewURL(t, backend)
	ctx := t.Context()

	s, err := store.Open(ctx, store.Options{URL: dsn, SecretKey: key1}, discard())
	if err != nil {
		t.Fatalf("Open on an empty database: %v", err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	in := mustCreate(t, s, newInstance("alpha", "5511"))
	if _, err := s.InsertMessage(ctx, newMessage(in.ID, "m1", store.Inbound)); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	// Opening the migrated database again applies nothing and keeps the data.
	for i := range 2 {
		s, err = store.Open(ctx, store.Options{URL: dsn, SecretKey: key1}, discard())
		if err != nil {
			t.Fatalf("re-open %d: %v", i+1, err)
		}
		got, err := s.InstanceByName(ctx, "alpha")
		if err != nil {
			t.Fatalf("re-open %d: instance lost: %v", i+1, err)
		}
		if got.ID != in.ID {
			t.Errorf("re-open %d: got instance %q", i+1, got.ID)
		}
		if _, err := s.Message(ctx, in.ID, "m1", store.Inbound); err != nil {
			t.Errorf("re-open %d: message lost: %v", i+1, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}

	db := rawDB(t, dsn)
	tableQuery := "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1"
	if backend == storetest.Postgres {
		tableQuery = "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1"
	}
	for _, table := range []string{"instances", "webhooks", "messages", "webhook_events", "openai_creds", "openai_bots", "openai_settings", "openai_sessions"} {
		if n := count(t, db, tableQuery, table); n != 1 {
			t.Errorf("table %s missing", table)
		}
	}
	if n := count(t, db, "SELECT COUNT(*) FROM wagate_version"); n != 1 {
		t.Errorf("wagate_version has %d rows, want 1", n)
	}
	if v := count(t, db, "SELECT version FROM wagate_version"); v < 1 {
		t.Errorf("schema version = %d, want >= 1", v)
	}
	if n := count(t, db, "SELECT COUNT(*) FROM instances"); n != 1 {
		t.Errorf("instances has %d rows after re-opening, want 1", n)
	}
	if backend == storetest.SQLite {
		var mode string
		if err := db.QueryRow("PRAGMA journal_mode").Scan(&mode); err != nil || mode != "wal" {
			t.Errorf("journal_mode = %q (%v), want wal", mode, err)
		}
	}
}

func TestOpenRejects(t *testing.T) {
	tests := []struct {
		name string
		dsn  string
		key  []byte
	}{
		{"short key", "file:" + filepath.Join(t.TempDir(), "a.db"), key1[:16]},
		{"no key", "file:" + filepath.Join(t.TempDir(), "b.db"), nil},
		{"postgres, bad port", "postgres://user@127.0.0.1:port/wagate", key1},
		{"postgres, no server", "postgres://user@127.0.0.1:1/wagate?connect_timeout=5", key1},
		{"postgres, no key", "postgres://user@127.0.0.1:1/wagate", nil},
		{"empty path", "file:", key1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := store.Open(t.Context(), store.Options{URL: tt.dsn, SecretKey: tt.key}, discard())
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
		})
	}
}

func TestInstances(t *testing.T) { storetest.Run(t, testInstances) }

func testInstances(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()

	// Created out of order: the list is ordered by creation time.
	b := newInstance("bravo", "")
	b.CreatedAt, b.UpdatedAt = t0.Add(2*time.Second), t0.Add(3*time.Second)
	b.Integration = store.IntegrationWhatsApp
	b.Settings = store.InstanceSettings{GroupsIgnore: true, AlwaysOnline: true, ReadStatus: true, SyncFullHistory: true}
	mustCreate(t, s, b)
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	// A second instance without a number: "no number" is not a clash.
	c := newInstance("charlie", "")
	c.CreatedAt = t0.Add(time.Hour)
	mustCreate(t, s, c)

	for _, want := range []*store.Instance{a, b, c} {
		got, err := s.InstanceByName(ctx, want.Name)
		if err != nil {
			t.Fatalf("InstanceByName(%s): %v", want.Name, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("InstanceByName(%s)\n got %+v\nwant %+v", want.Name, got, want)
		}
		got, err = s.InstanceByTokenHash(ctx, want.TokenHash)
		if err != nil || got.ID != want.ID {
			t.Errorf("InstanceByTokenHash(%s) = %v, %v", want.TokenHash, got, err)
		}
	}
	got, err := s.InstanceByNumber(ctx, "5511")
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Errorf("InstanceByNumber(5511) = %+v, %v; want %+v", got, err, a)
	}

	_, err = s.InstanceByName(ctx, "nope")
	wantCode(t, err, wagate.ENOTFOUND)
	_, err = s.InstanceByTokenHash(ctx, "nope")
	wantCode(t, err, wagate.ENOTFOUND)
	_, err = s.InstanceByNumber(ctx, "nope")
	wantCode(t, err, wagate.ENOTFOUND)
	// An instance without a number is not found by the empty number.
	_, err = s.InstanceByNumber(ctx, "")
	wantCode(t, err, wagate.ENOTFOUND)

	list, err := s.ListInstances(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, in := range list {
		names = append(names, in.Name)
	}
	if want := []string{"alpha", "bravo", "charlie"}; !slices.Equal(names, want) {
		t.Errorf("ListInstances = %v, want %v", names, want)
	}
}

func TestListInstancesEmpty(t *testing.T) { storetest.Run(t, testListInstancesEmpty) }

func testListInstancesEmpty(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	list, err := s.ListInstances(t.Context())
	if err != nil || len(list) != 0 {
		t.Fatalf("ListInstances on an empty store = %v, %v", list, err)
	}
}

func TestCreateInstanceConflicts(t *testing.T) { storetest.Run(t, testCreateInstanceConflicts) }

func testCreateInstanceConflicts(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	mustCreate(t, s, newInstance("alpha", "5511"))

	tests := []struct {
		name  string
		in    *store.Instance
		field string
	}{
		{"duplicate name", func() *store.Instance {
			in := newInstance("other", "5522")
			in.ID, in.Name = "id-x", "alpha"
			return in
		}(), "instanceName"},
		{"duplicate number", newInstance("other", "5511"), "number"},
		{"duplicate token hash", func() *store.Instance {
			in := newInstance("other", "5522")
			in.TokenHash = "hash-alpha"
			return in
		}(), "token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.CreateInstance(ctx, inDefaultOrg(t, s, tt.in))
			wantCode(t, err, wagate.ECONFLICT)
			msgs := wagate.ErrorMessages(err)
			if len(msgs) != 1 || !strings.HasPrefix(msgs[0], tt.field+": ") {
				t.Errorf("messages = %q, want one starting with %q", msgs, tt.field+": ")
			}
			list, _ := s.ListInstances(ctx)
			if len(list) != 1 {
				t.Errorf("a conflicting create left %d instances, want 1", len(list))
			}
		})
	}
}

func TestSetInstanceToken(t *testing.T) { storetest.Run(t, testSetInstanceToken) }

func testSetInstanceToken(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	b := mustCreate(t, s, newInstance("bravo", "5522"))

	if err := s.SetInstanceToken(ctx, a.ID, "hash-new", "new_"); err != nil {
		t.Fatalf("SetInstanceToken: %v", err)
	}
	_, err := s.InstanceByTokenHash(ctx, a.TokenHash)
	wantCode(t, err, wagate.ENOTFOUND)
	got, err := s.InstanceByTokenHash(ctx, "hash-new")
	if err != nil {
		t.Fatalf("new token not found: %v", err)
	}
	if got.ID != a.ID || got.TokenPrefix != "new_" {
		t.Errorf("after rotation got id %q prefix %q", got.ID, got.TokenPrefix)
	}
	if !got.UpdatedAt.After(a.UpdatedAt) {
		t.Errorf("UpdatedAt = %v, want it moved past %v", got.UpdatedAt, a.UpdatedAt)
	}
	if !got.CreatedAt.Equal(a.CreatedAt) {
		t.Errorf("CreatedAt changed to %v", got.CreatedAt)
	}

	err = s.SetInstanceToken(ctx, "id-missing", "hash-x", "x")
	wantCode(t, err, wagate.ENOTFOUND)

	err = s.SetInstanceToken(ctx, b.ID, "hash-new", "new_")
	wantCode(t, err, wagate.ECONFLICT)
	if msgs := wagate.ErrorMessages(err); len(msgs) != 1 || !strings.HasPrefix(msgs[0], "token: ") {
		t.Errorf("messages = %q, want one about token", msgs)
	}
	if got, err := s.InstanceByTokenHash(ctx, b.TokenHash); err != nil || got.ID != b.ID {
		t.Errorf("a refused rotation changed bravo's token: %v, %v", got, err)
	}
}

func TestDeleteInstanceCascades(t *testing.T) { storetest.Run(t, testDeleteInstanceCascades) }

func testDeleteInstanceCascades(t *testing.T, backend storetest.Backend) {
	dsn := storetest.NewURL(t, backend)
	s := open(t, dsn, key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	b := mustCreate(t, s, newInstance("bravo", "5522"))

	target := &store.Target{URL: "http://receiver.invalid/hook", ByEvents: true, Headers: map[string]string{"X-A": "1"}, Secret: "farewell-secret"}
	for _, in := range []*store.Instance{a, b} {
		for _, dir := range []store.Direction{store.Inbound, store.Outbound} {
			if _, err := s.InsertMessage(ctx, newMessage(in.ID, "m-"+in.Name, dir)); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.PutWebhook(ctx, &store.Webhook{InstanceID: in.ID, URL: "http://receiver.invalid/" + in.Name, Enabled: true, Secret: "s", CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
		mustInsertEvent(t, s, newEvent(in.ID, in.ID, "messages.upsert"))
		mustInsertEvent(t, s, newEvent(in.ID, in.ID, "send.message"))
	}
	// The farewell event of alpha: no instance id, a target snapshot, alpha's lane.
	farewell := newEvent("", a.ID, "instance.delete")
	farewell.Target = target
	mustInsertEvent(t, s, farewell)

	if err := s.DeleteInstance(ctx, a.ID); err != nil {
		t.Fatalf("DeleteInstance: %v", err)
	}

	// Through the store's API.
	_, err := s.InstanceByName(ctx, "alpha")
	wantCode(t, err, wagate.ENOTFOUND)
	_, err = s.Webhook(ctx, a.ID)
	wantCode(t, err, wagate.ENOTFOUND)
	for _, dir := range []store.Direction{store.Inbound, store.Outbound} {
		_, err = s.Message(ctx, a.ID, "m-alpha", dir)
		wantCode(t, err, wagate.ENOTFOUND)
	}
	if evs, err := s.ListEvents(ctx, a.ID, "", 0, 100); err != nil || len(evs) != 0 {
		t.Errorf("ListEvents of the deleted instance = %d events, %v", len(evs), err)
	}
	if wants, err := s.WebhookWants(ctx, a.ID, func([]string) bool { return true }); err != nil || wants {
		t.Errorf("WebhookWants of the deleted instance = %v, %v", wants, err)
	}
	err = s.DeleteInstance(ctx, a.ID)
	wantCode(t, err, wagate.ENOTFOUND)

	// The farewell event survives, with its target, and is alpha's lane's only pending event.
	next, err := s.NextPendingEvent(ctx, a.ID)
	if err != nil {
		t.Fatalf("NextPendingEvent: %v", err)
	}
	if next == nil || next.DeliveryID != farewell.DeliveryID {
		t.Fatalf("NextPendingEvent(alpha lane) = %+v, want the farewell event", next)
	}
	if next.InstanceID != "" {
		t.Errorf("farewell InstanceID = %q, want empty", next.InstanceID)
	}
	if !reflect.DeepEqual(next.Target, target) {
		t.Errorf("farewell Target = %+v, want %+v", next.Target, target)
	}
	if lanes, _ := s.PendingLanes(ctx); !slices.Contains(lanes, a.ID) {
		t.Errorf("PendingLanes = %v, want alpha's lane still pending", lanes)
	}

	// The other instance keeps everything.
	if _, err := s.Webhook(ctx, b.ID); err != nil {
		t.Errorf("bravo's webhook: %v", err)
	}
	if _, err := s.Message(ctx, b.ID, "m-bravo", store.Inbound); err != nil {
		t.Errorf("bravo's message: %v", err)
	}
	if evs, _ := s.ListEvents(ctx, b.ID, "", 0, 100); len(evs) != 2 {
		t.Errorf("bravo has %d events, want 2", len(evs))
	}

	// And in the file itself.
	db := rawDB(t, dsn)
	for _, table := range []string{"messages", "webhooks", "webhook_events"} {
		if n := count(t, db, "SELECT COUNT(*) FROM "+table+" WHERE instance_id = $1", a.ID); n != 0 {
			t.Errorf("%s still has %d rows of the deleted instance", table, n)
		}
		if n := count(t, db, "SELECT COUNT(*) FROM "+table+" WHERE instance_id = $1", b.ID); n == 0 {
			t.Errorf("%s lost the other instance's rows", table)
		}
	}
	if n := count(t, db, "SELECT COUNT(*) FROM instances WHERE id = $1", a.ID); n != 0 {
		t.Errorf("instances still has the deleted row")
	}
	if n := count(t, db, "SELECT COUNT(*) FROM webhook_events WHERE lane = $1", a.ID); n != 1 {
		t.Errorf("alpha's lane has %d events in the file, want only the farewell", n)
	}
	var rawTarget string
	if err := db.QueryRow("SELECT target FROM webhook_events WHERE delivery_id = $1", farewell.DeliveryID).Scan(&rawTarget); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rawTarget, "farewell-secret") || strings.Contains(rawTarget, "receiver.invalid") {
		t.Errorf("the target snapshot is stored in plaintext: %q", rawTarget)
	}
}

func TestInsertMessageIdempotent(t *testing.T) { storetest.Run(t, testInsertMessageIdempotent) }

func testInsertMessageIdempotent(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	b := mustCreate(t, s, newInstance("bravo", "5522"))

	in := newMessage(a.ID, "ABC", store.Inbound)
	in.Participant = "5511888@s.whatsapp.net"
	in.Content = json.RawMessage(`{"extendedTextMessage":{"text":"hello"}}`)
	in.Text = "hello"
	if created, err := s.InsertMessage(ctx, in); err != nil || !created {
		t.Fatalf("first InsertMessage = %v, %v; want true", created, err)
	}

	redelivery := newMessage(a.ID, "ABC", store.Inbound)
	redelivery.Text = "changed"
	if created, err := s.InsertMessage(ctx, redelivery); err != nil || created {
		t.Fatalf("redelivered InsertMessage = %v, %v; want false, nil", created, err)
	}

	echo := newMessage(a.ID, "ABC", store.Outbound)
	echo.Text = "sent by us"
	if created, err := s.InsertMessage(ctx, echo); err != nil || !created {
		t.Fatalf("same id outbound = %v, %v; want a new row", created, err)
	}
	if created, err := s.InsertMessage(ctx, newMessage(b.ID, "ABC", store.Inbound)); err != nil || !created {
		t.Fatalf("same id in another instance = %v, %v; want a new row", created, err)
	}

	got, err := s.Message(ctx, a.ID, "ABC", store.Inbound)
	if err != nil {
		t.Fatal(err)
	}
	if got.Seq == 0 {
		t.Error("Seq not set")
	}
	want := *in
	want.Seq = got.Seq
	if !want.NewChat {
		t.Error("NewChat not set on the chat's first message")
	}
	want.NewChat = false // reported by InsertMessage, not stored
	if !reflect.DeepEqual(got, &want) {
		t.Errorf("Message round trip\n got %+v\nwant %+v", got, &want)
	}

	out, err := s.Message(ctx, a.ID, "ABC", store.Outbound)
	if err != nil {
		t.Fatal(err)
	}
	if out.Seq == got.Seq || out.Direction != store.Outbound || !out.FromMe || out.Text != "sent by us" {
		t.Errorf("outbound row = %+v, want a separate outbound row", out)
	}

	_, err = s.Message(ctx, a.ID, "nope", store.Inbound)
	wantCode(t, err, wagate.ENOTFOUND)
}

func TestWebhookRoundTrip(t *testing.T) { storetest.Run(t, testWebhookRoundTrip) }

func testWebhookRoundTrip(t *testing.T, backend storetest.Backend) {
	dsn := storetest.NewURL(t, backend)
	s := open(t, dsn, key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))

	_, err := s.Webhook(ctx, a.ID)
	wantCode(t, err, wagate.ENOTFOUND)

	const secret = "whsec-canary-7f3a9c1e"
	const headerValue = "Bearer header-canary-2b8d"
	w := &store.Webhook{
		InstanceID: a.ID,
		URL:        "https://receiver.example/hook",
		Enabled:    true,
		ByEvents:   true,
		Base64:     true,
		Events:     []string{"MESSAGES_UPSERT", "SEND_MESSAGE"},
		Headers:    map[string]string{"Authorization": headerValue, "X-Tenant": "t1"},
		Secret:     secret,
		CreatedAt:  t0,
		UpdatedAt:  t0,
	}
	if err := s.PutWebhook(ctx, w); err != nil {
		t.Fatalf("PutWebhook: %v", err)
	}
	got, err := s.Webhook(ctx, a.ID)
	if err != nil {
		t.Fatalf("Webhook: %v", err)
	}
	if !reflect.DeepEqual(got, w) {
		t.Errorf("Webhook round trip\n got %+v\nwant %+v", got, w)
	}

	// Sealed columns hold no plaintext, in the column or anywhere in the file.
	db := rawDB(t, dsn)
	var headers, sealed string
	if err := db.QueryRow("SELECT headers, secret FROM webhooks WHERE instance_id = $1", a.ID).Scan(&headers, &sealed); err != nil {
		t.Fatal(err)
	}
	for _, col := range []string{headers, sealed} {
		if col == "" || strings.Contains(col, secret) || strings.Contains(col, headerValue) || strings.Contains(col, "header-canary") {
			t.Errorf("sealed column holds plaintext or nothing: %q", col)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	// PostgreSQL's files are the server's; the column check above covers it.
	if backend == storetest.SQLite {
		path := storetest.SQLitePath(dsn)
		for _, f := range []string{path, path + "-wal"} {
			b, err := os.ReadFile(f)
			if errors.Is(err, os.ErrNotExist) {
				continue
			} else if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(b, []byte("whsec-canary")) || bytes.Contains(b, []byte("header-canary")) {
				t.Errorf("%s contains a webhook secret or header value in plaintext", f)
			}
			if f == path && !bytes.Contains(b, []byte("receiver.example")) {
				t.Errorf("%s does not contain the (unsealed) URL: is this the right file?", f)
			}
		}
	}

	// Put replaces; the creation time stays; nil lists come back empty.
	s = open(t, dsn, key1)
	w2 := &store.Webhook{InstanceID: a.ID, URL: "https://new.example/", Secret: "other", CreatedAt: t0.Add(time.Hour), UpdatedAt: t0.Add(time.Hour)}
	if err := s.PutWebhook(ctx, w2); err != nil {
		t.Fatal(err)
	}
	got, err = s.Webhook(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	want := &store.Webhook{InstanceID: a.ID, URL: "https://new.example/", Events: []string{}, Headers: map[string]string{}, Secret: "other",
		CreatedAt: t0, UpdatedAt: t0.Add(time.Hour)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after replace\n got %+v\nwant %+v", got, want)
	}
}

func TestWebhookWants(t *testing.T) { storetest.Run(t, testWebhookWants) }

func testWebhookWants(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	all := func([]string) bool { return true }

	if ok, err := s.WebhookWants(ctx, a.ID, all); err != nil || ok {
		t.Fatalf("no webhook: WebhookWants = %v, %v", ok, err)
	}
	tests := []struct {
		name    string
		w       store.Webhook
		wantArg []string
		want    bool
	}{
		{"enabled", store.Webhook{URL: "http://x.invalid", Enabled: true, Events: []string{"A", "B"}}, []string{"A", "B"}, true},
		{"enabled, empty list", store.Webhook{URL: "http://x.invalid", Enabled: true}, []string{}, true},
		{"disabled", store.Webhook{URL: "http://x.invalid", Enabled: false}, nil, false},
		{"no url", store.Webhook{URL: "", Enabled: true}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.w
			w.InstanceID, w.CreatedAt, w.UpdatedAt = a.ID, t0, t0
			if err := s.PutWebhook(ctx, &w); err != nil {
				t.Fatal(err)
			}
			var called bool
			var arg []string
			ok, err := s.WebhookWants(ctx, a.ID, func(events []string) bool {
				called, arg = true, events
				return true
			})
			if err != nil || ok != tt.want {
				t.Errorf("WebhookWants = %v, %v; want %v", ok, err, tt.want)
			}
			if called && !slices.Equal(arg, tt.wantArg) {
				t.Errorf("wants called with %q, want %q", arg, tt.wantArg)
			}
			if tt.want {
				if ok, _ := s.WebhookWants(ctx, a.ID, func([]string) bool { return false }); ok {
					t.Error("WebhookWants ignores the wants func")
				}
			}
		})
	}
}

func TestWrongSecretKey(t *testing.T) { storetest.Run(t, testWrongSecretKey) }

func testWrongSecretKey(t *testing.T, backend storetest.Backend) {
	dsn := storetest.NewURL(t, backend)
	ctx := t.Context()
	s, err := store.Open(ctx, store.Options{URL: dsn, SecretKey: key1}, discard())
	if err != nil {
		t.Fatal(err)
	}
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	if err := s.PutWebhook(ctx, &store.Webhook{InstanceID: a.ID, URL: "http://x.invalid", Enabled: true, Headers: map[string]string{"K": "V"}, Secret: "s3cret", CreatedAt: t0, UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	ev := newEvent("", a.ID, "instance.delete")
	ev.Target = &store.Target{URL: "http://x.invalid", Secret: "s3cret"}
	mustInsertEvent(t, s, ev)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, dsn, key2)
	w, err := s2.Webhook(ctx, a.ID)
	if err == nil {
		t.Fatalf("Webhook under the wrong key = %+v, want an error", w)
	}
	if w != nil {
		t.Errorf("Webhook under the wrong key returned %+v with its error", w)
	}
	if code := wagate.ErrorCode(err); code == wagate.ENOTFOUND {
		t.Errorf("wrong key reported as %s: %v", code, err)
	}
	if !strings.Contains(err.Error(), "WAGATE_SECRET_KEY") {
		t.Errorf("error %q does not hint at the secret key", err)
	}
	if e, err := s2.NextPendingEvent(ctx, a.ID); err == nil {
		t.Errorf("NextPendingEvent under the wrong key = %+v, want an error", e)
	}
	// Unsealed data stays readable.
	if _, err := s2.InstanceByName(ctx, "alpha"); err != nil {
		t.Errorf("InstanceByName under another key: %v", err)
	}
	if ok, err := s2.WebhookWants(ctx, a.ID, func([]string) bool { return true }); err != nil || !ok {
		t.Errorf("WebhookWants under another key = %v, %v", ok, err)
	}
	s2.Close()

	s3 := open(t, dsn, key1)
	if w, err := s3.Webhook(ctx, a.ID); err != nil || w.Secret != "s3cret" {
		t.Errorf("Webhook under the right key again = %+v, %v", w, err)
	}
}

func TestSealedValueBoundToItsRow(t *testing.T) { storetest.Run(t, testSealedValueBoundToItsRow) }

func testSealedValueBoundToItsRow(t *testing.T, backend storetest.Backend) {
	dsn := storetest.NewURL(t, backend)
	s := open(t, dsn, key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	b := mustCreate(t, s, newInstance("bravo", "5522"))
	for _, in := range []*store.Instance{a, b} {
		if err := s.PutWebhook(ctx, &store.Webhook{InstanceID: in.ID, URL: "http://x.invalid", Secret: "secret-of-" + in.Name, CreatedAt: t0, UpdatedAt: t0}); err != nil {
			t.Fatal(err)
		}
	}
	// Copy alpha's sealed secret into bravo's row: it must not open there.
	db := rawDB(t, dsn)
	if _, err := db.Exec("UPDATE webhooks SET secret = (SELECT secret FROM webhooks WHERE instance_id = $1) WHERE instance_id = $2", a.ID, b.ID); err != nil {
		t.Fatal(err)
	}
	if w, err := s.Webhook(ctx, b.ID); err == nil {
		t.Errorf("a secret copied from another row opened as %q", w.Secret)
	}
	if _, err := s.Webhook(ctx, a.ID); err != nil {
		t.Errorf("alpha's webhook: %v", err)
	}
}

func TestOutboxLanes(t *testing.T) { storetest.Run(t, testOutboxLanes) }

func testOutboxLanes(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	b := mustCreate(t, s, newInstance("bravo", "5522"))

	if lanes, err := s.PendingLanes(ctx); err != nil || len(lanes) != 0 {
		t.Fatalf("PendingLanes on an empty outbox = %v, %v", lanes, err)
	}
	if e, err := s.NextPendingEvent(ctx, a.ID); err != nil || e != nil {
		t.Fatalf("NextPendingEvent on an empty lane = %+v, %v; want nil, nil", e, err)
	}

	// Interleaved lanes; a later event of lane a is due earlier than the first.
	a1 := mustInsertEvent(t, s, newEvent(a.ID, a.ID, "messages.upsert"))
	b1 := mustInsertEvent(t, s, newEvent(b.ID, b.ID, "messages.upsert"))
	a2 := newEvent(a.ID, a.ID, "send.message")
	a2.NextAttemptAt = t0.Add(-time.Hour)
	mustInsertEvent(t, s, a2)
	a3 := mustInsertEvent(t, s, newEvent(a.ID, a.ID, "send.message"))

	if a1.Seq == 0 || a1.Status != store.EventPending {
		t.Fatalf("InsertEvent left Seq %d Status %q", a1.Seq, a1.Status)
	}
	if !(a1.Seq < b1.Seq && b1.Seq < a2.Seq && a2.Seq < a3.Seq) {
		t.Fatalf("seqs not increasing: %d %d %d %d", a1.Seq, b1.Seq, a2.Seq, a3.Seq)
	}

	lanes, err := s.PendingLanes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(lanes)
	if want := []string{a.ID, b.ID}; !slices.Equal(lanes, want) {
		t.Errorf("PendingLanes = %v, want %v", lanes, want)
	}

	// Lane a delivers a1, a2, a3 in insertion order; lane b is untouched.
	for i, want := range []*store.Event{a1, a2, a3} {
		got, err := s.NextPendingEvent(ctx, a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got == nil || got.Seq != want.Seq {
			t.Fatalf("step %d: NextPendingEvent = %+v, want seq %d", i, got, want.Seq)
		}
		if i == 0 {
			wantEv := *a1
			if !reflect.DeepEqual(got, &wantEv) {
				t.Errorf("event round trip\n got %+v\nwant %+v", got, &wantEv)
			}
		}
		got.Status, got.Attempts, got.LastStatus, got.FinishedAt = store.EventDelivered, 1, 200, t0.Add(time.Minute)
		if err := s.UpdateEventAttempt(ctx, got); err != nil {
			t.Fatal(err)
		}
		if got, _ := s.NextPendingEvent(ctx, b.ID); got == nil || got.Seq != b1.Seq {
			t.Fatalf("lane b changed: %+v", got)
		}
	}
	if e, err := s.NextPendingEvent(ctx, a.ID); err != nil || e != nil {
		t.Errorf("lane a after delivering everything: %+v, %v", e, err)
	}
	if lanes, _ := s.PendingLanes(ctx); !slices.Equal(lanes, []string{b.ID}) {
		t.Errorf("PendingLanes = %v, want only %s", lanes, b.ID)
	}

	// A failed retry keeps the event pending with its new schedule.
	b1.Attempts, b1.LastStatus, b1.LastError, b1.NextAttemptAt = 2, 503, "HTTP 503", t0.Add(10*time.Minute)
	if err := s.UpdateEventAttempt(ctx, b1); err != nil {
		t.Fatal(err)
	}
	got, err := s.NextPendingEvent(ctx, b.ID)
	if err != nil || got == nil {
		t.Fatalf("NextPendingEvent(b) = %v, %v", got, err)
	}
	if got.Attempts != 2 || got.LastStatus != 503 || got.LastError != "HTTP 503" || !got.NextAttemptAt.Equal(t0.Add(10*time.Minute)) || !got.FinishedAt.IsZero() {
		t.Errorf("retry not recorded: %+v", got)
	}
	// Failing it for good removes it from pending too.
	got.Status, got.FinishedAt = store.EventFailed, t0.Add(time.Hour)
	if err := s.UpdateEventAttempt(ctx, got); err != nil {
		t.Fatal(err)
	}
	if lanes, _ := s.PendingLanes(ctx); len(lanes) != 0 {
		t.Errorf("PendingLanes = %v after finishing everything", lanes)
	}
	evs, err := s.ListEvents(ctx, b.ID, "", 0, 10)
	if err != nil || len(evs) != 1 {
		t.Fatalf("ListEvents(b) = %v, %v", evs, err)
	}
	if e := evs[0]; e.Status != store.EventFailed || !e.FinishedAt.Equal(t0.Add(time.Hour)) || e.Attempts != 2 {
		t.Errorf("finished event = %+v", e)
	}
}

func TestInsertEventDuplicateDeliveryID(t *testing.T) {
	storetest.Run(t, testInsertEventDuplicateDeliveryID)
}

func testInsertEventDuplicateDeliveryID(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	e := mustInsertEvent(t, s, newEvent(a.ID, a.ID, "messages.upsert"))
	dup := newEvent(a.ID, a.ID, "messages.upsert")
	dup.DeliveryID = e.DeliveryID
	if err := s.InsertEvent(t.Context(), dup); err == nil {
		t.Error("two events with one delivery id were accepted")
	}
}

func TestListEvents(t *testing.T) { storetest.Run(t, testListEvents) }

func testListEvents(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	b := mustCreate(t, s, newInstance("bravo", "5522"))

	var evs []*store.Event
	for i := range 5 {
		evs = append(evs, mustInsertEvent(t, s, newEvent(a.ID, a.ID, "messages.upsert")))
		if i == 2 {
			mustInsertEvent(t, s, newEvent(b.ID, b.ID, "messages.upsert")) // another instance in between
		}
	}
	finish := func(e *store.Event, status string) {
		e.Status, e.Attempts, e.FinishedAt = status, 1, t0.Add(time.Minute)
		if err := s.UpdateEventAttempt(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	finish(evs[0], store.EventDelivered)
	finish(evs[1], store.EventFailed)
	finish(evs[3], store.EventDelivered)

	s0, s1, s2, s3, s4 := evs[0].Seq, evs[1].Seq, evs[2].Seq, evs[3].Seq, evs[4].Seq
	tests := []struct {
		name   string
		status string
		before int64
		limit  int
		want   []int64
	}{
		{"all newest first", "", 0, 100, []int64{s4, s3, s2, s1, s0}},
		{"limit", "", 0, 2, []int64{s4, s3}},
		{"page 2", "", s3, 2, []int64{s2, s1}},
		{"page 3", "", s1, 2, []int64{s0}},
		{"past the end", "", s0, 2, nil},
		{"pending", store.EventPending, 0, 100, []int64{s4, s2}},
		{"delivered", store.EventDelivered, 0, 100, []int64{s3, s0}},
		{"failed", store.EventFailed, 0, 100, []int64{s1}},
		{"delivered before cursor", store.EventDelivered, s3, 100, []int64{s0}},
		{"unknown status", "bogus", 0, 100, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.ListEvents(ctx, a.ID, tt.status, tt.before, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(seqs(got), tt.want) {
				t.Errorf("ListEvents(%q, before %d, limit %d) = %v, want %v", tt.status, tt.before, tt.limit, seqs(got), tt.want)
			}
			for _, e := range got {
				if e.InstanceID != a.ID {
					t.Errorf("event of instance %q listed for alpha", e.InstanceID)
				}
			}
		})
	}
}

func TestPurgeFinishedEvents(t *testing.T) { storetest.Run(t, testPurgeFinishedEvents) }

func testPurgeFinishedEvents(t *testing.T, backend storetest.Backend) {
	dsn := storetest.NewURL(t, backend)
	s := open(t, dsn, key1)
	ctx := t.Context()
	a := mustCreate(t, s, newInstance("alpha", "5511"))
	cutoff := t0.Add(24 * time.Hour)

	add := func(status string, finished time.Time) *store.Event {
		e := mustInsertEvent(t, s, newEvent(a.ID, a.ID, "messages.upsert"))
		if status != store.EventPending {
			e.Status, e.FinishedAt = status, finished
			if err := s.UpdateEventAttempt(ctx, e); err != nil {
				t.Fatal(err)
			}
		}
		return e
	}
	oldPending := add(store.EventPending, time.Time{})
	oldDelivered := add(store.EventDelivered, cutoff.Add(-time.Hour))
	oldFailed := add(store.EventFailed, cutoff.Add(-time.Millisecond))
	atCutoff := add(store.EventDelivered, cutoff)
	recentFailed := add(store.EventFailed, cutoff.Add(time.Hour))
	// A farewell event (no instance) is purged like any other.
	farewell := newEvent("", a.ID, "instance.delete")
	farewell.Target = &store.Target{URL: "http://x.invalid"}
	mustInsertEvent(t, s, farewell)
	farewell.Status, farewell.FinishedAt = store.EventDelivered, cutoff.Add(-time.Hour)
	if err := s.UpdateEventAttempt(ctx, farewell); err != nil {
		t.Fatal(err)
	}

	n, err := s.PurgeFinishedEvents(ctx, cutoff, 1)
	if err != nil || n != 1 {
		t.Fatalf("PurgeFinishedEvents(limit 1) = %d, %v; want 1", n, err)
	}
	n, err = s.PurgeFinishedEvents(ctx, cutoff, 100)
	if err != nil || n != 2 {
		t.Fatalf("PurgeFinishedEvents = %d, %v; want the 2 remaining old finished events", n, err)
	}
	n, err = s.PurgeFinishedEvents(ctx, cutoff, 100)
	if err != nil || n != 0 {
		t.Fatalf("second PurgeFinishedEvents = %d, %v; want 0", n, err)
	}

	got, err := s.ListEvents(ctx, a.ID, "", 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	if want := []int64{recentFailed.Seq, atCutoff.Seq, oldPending.Seq}; !slices.Equal(seqs(got), want) {
		t.Errorf("left after purge: %v, want %v (purged %d and %d)", seqs(got), want, oldDelivered.Seq, oldFailed.Seq)
	}
	if n := count(t, rawDB(t, dsn), "SELECT COUNT(*) FROM webhook_events WHERE delivery_id = $1", farewell.DeliveryID); n != 0 {
		t.Error("an old finished farewell event was not purged")
	}
}

func TestEventTargetRoundTrip(t *testing.T) { storetest.Run(t, testEventTargetRoundTrip) }

func testEventTargetRoundTrip(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	target := &store.Target{URL: "https://r.example/h", ByEvents: true, Headers: map[string]string{"Authorization": "Bearer x"}, Secret: "sek"}
	e := newEvent("", "lane-of-a-gone-instance", "instance.delete")
	e.Target = target
	mustInsertEvent(t, s, e)

	got, err := s.NextPendingEvent(ctx, "lane-of-a-gone-instance")
	if err != nil || got == nil {
		t.Fatalf("NextPendingEvent = %v, %v", got, err)
	}
	if got.InstanceID != "" {
		t.Errorf("InstanceID = %q, want empty", got.InstanceID)
	}
	if !reflect.DeepEqual(got.Target, target) {
		t.Errorf("Target = %+v, want %+v", got.Target, target)
	}
	if string(got.Data) != string(e.Data) || got.Name != "instance.delete" || got.Lane != "lane-of-a-gone-instance" {
		t.Errorf("event = %+v", got)
	}

	// Without a target the event reads back with none.
	plain := mustInsertEvent(t, s, newEvent("", "other-lane", "instance.delete"))
	got, err = s.NextPendingEvent(ctx, "other-lane")
	if err != nil || got == nil || got.Seq != plain.Seq || got.Target != nil {
		t.Errorf("event without target = %+v, %v", got, err)
	}
}

func TestEventForUnknownInstanceRejected(t *testing.T) {
	storetest.Run(t, testEventForUnknownInstanceRejected)
}

func testEventForUnknownInstanceRejected(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	// Foreign keys are on: an event cannot reference a missing instance.
	if err := s.InsertEvent(t.Context(), newEvent("id-missing", "id-missing", "messages.upsert")); err == nil {
		t.Error("InsertEvent accepted an event of a missing instance (foreign keys off?)")
	}
	if _, err := s.InsertMessage(t.Context(), newMessage("id-missing", "m", store.Inbound)); err == nil {
		t.Error("InsertMessage accepted a message of a missing instance (foreign keys off?)")
	}
}

func TestDoTxn(t *testing.T) { storetest.Run(t, testDoTxn) }

func testDoTxn(t *testing.T, backend storetest.Backend) {
	s := open(t, storetest.NewURL(t, backend), key1)
	ctx := t.Context()
	boom := errors.New("boom")

	err := s.DoTxn(ctx, func(ctx context.Context) error {
		in := mustCreateCtx(ctx, t, s, newInstance("alpha", "5511"))
		if _, err := s.InsertMessage(ctx, newMessage(in.ID, "m1", store.Inbound)); err != nil {
			return err
		}
		if err := s.PutWebhook(ctx, &store.Webhook{InstanceID: in.ID, URL: "http://x.invalid", Secret: "s", CreatedAt: t0, UpdatedAt: t0}); err != nil {
			return err
		}
		if err := s.InsertEvent(ctx, newEvent(in.ID, in.ID, "messages.upsert")); err != nil {
			return err
		}
		// Reads inside the transaction see its writes.
		if _, err := s.InstanceByName(ctx, "alpha"); err != nil {
			return fmt.Errorf("read inside the transaction: %w", err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("DoTxn = %v, want the fn's error", err)
	}
	_, err = s.InstanceByName(ctx, "alpha")
	wantCode(t, err, wagate.ENOTFOUND)
	_, err = s.Message(ctx, "id-alpha", "m1", store.Inbound)
	wantCode(t, err, wagate.ENOTFOUND)
	_, err = s.Webhook(ctx, "id-alpha")
	wantCode(t, err, wagate.ENOTFOUND)
	if lanes, _ := s.PendingLanes(ctx); len(lanes) != 0 {
		t.Errorf("rolled-back event still pending in lanes %v", lanes)
	}

	// A nested DoTxn joins the outer one: its writes roll back with it.
	err = s.DoTxn(ctx, func(ctx context.Context) error {
		if err := s.DoTxn(ctx, func(ctx context.Context) error {
			mustCreateCtx(ctx, t, s, newInstance("bravo", "5522"))
			return nil
		}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("outer DoTxn = %v", err)
	}
	if list, _ := s.ListInstances(ctx); len(list) != 0 {
		t.Errorf("nested write survived the outer rollback: %d instances", len(list))
	}

	// A conflict inside the transaction fails it as ECONFLICT and keeps nothing.
	err = s.DoTxn(ctx, func(ctx context.Context) error {
		mustCreateCtx(ctx, t, s, newInstance("carol", "5533"))
		return s.CreateInstance(ctx, inDefaultOrgCtx(ctx, t, s, newInstance("carol", "5544")))
	})
	wantCode(t, err, wagate.ECONFLICT)
	if list, _ := s.ListInstances(ctx); len(list) != 0 {
		t.Errorf("failed transaction left %d instances", len(list))
	}

	// And nil commits.
	err = s.DoTxn(ctx, func(ctx context.Context) error {
		mustCreateCtx(ctx, t, s, newInstance("delta", "5555"))
		return nil
	})
	if err != nil {
		t.Fatalf("DoTxn: %v", err)
	}
	if _, err := s.InstanceByName(ctx, "delta"); err != nil {
		t.Errorf("committed instance missing: %v", err)
	}
}

func mustCreateCtx(ctx context.Context, t *testing.T, s *store.Store, in *store.Instance) *store.Instance {
	t.Helper()
	if err := s.CreateInstance(ctx, inDefaultOrgCtx(ctx, t, s, in)); err != nil {
		t.Fatalf("CreateInstance(%s): %v", in.Name, err)
	}
	return in
}

func TestOpenInMemoryIsRefused(t *testing.T) {
	// Every pooled SQLite :memory: connection is a separate empty database,
	// so the store refuses it instead of failing later with missing tables.
	for _, dsn := range []string{"file::memory:", ":memory:", "file:x.db?mode=memory"} {
		if _, err := store.Open(t.Context(), store.Options{URL: dsn, SecretKey: key1}, discard()); err == nil || !strings.Contains(err.Error(), "in-memory") {
			t.Errorf("Open(%q) = %v, want an in-memory refusal", dsn, err)
		}
	}
}
