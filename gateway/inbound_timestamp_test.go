package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/store"
	"github.com/wagate/wagate/store/storetest"
)

// inboundBody is an EVOLUTION inbound message with extra top-level fields
// given as raw JSON (numbers beyond float64's precision survive).
func inboundBody(inst instance, id, chat string, extra string) string {
	key, _ := json.Marshal(map[string]any{"id": id, "remoteJid": chat, "fromMe": false})
	body := fmt.Sprintf(`{"numberId":%q,"key":%s,"pushName":"Ana","message":{"conversation":"oi"}`, inst.Number, key)
	if extra != "" {
		body += "," + extra
	}
	return body + "}"
}

// chatMessages returns the messages of one chat through its route.
func (s *server) chatMessages(inst instance, chat string) []map[string]any {
	s.t.Helper()
	var body struct {
		Data []map[string]any `json:"data"`
	}
	r := s.must(http.StatusOK, "GET", "/conversations/"+inst.Name+"/"+url.PathEscape(chat)+"/messages", inst.Token, nil)
	if err := json.Unmarshal(r.Body, &body); err != nil {
		s.t.Fatal(err)
	}
	return body.Data
}

// A messageTimestamp is unix seconds, or milliseconds by magnitude; what
// cannot be a time a message was sent is refused naming the field, and no
// accepted value can break the routes that show it.
func TestInboundMessageTimestamp(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	now := time.Now().Truncate(time.Millisecond)
	tests := []struct {
		name string
		json string    // the messageTimestamp field as sent ("" leaves it out)
		want time.Time // the stored time; zero: the time of receipt
		err  string    // the expected problem, if refused
	}{
		{"seconds", fmt.Sprint(now.Unix()), now.Truncate(time.Second), ""},
		{"milliseconds", fmt.Sprint(now.UnixMilli()), now, ""},
		{"absent", "", time.Time{}, ""},
		{"zero", "0", time.Time{}, ""},
		{"a minute ahead", fmt.Sprint(now.Add(time.Minute).Unix()), now.Add(time.Minute).Truncate(time.Second), ""},
		{"old seconds", "1000000000", time.Unix(1000000000, 0), ""},
		{"negative", "-1", time.Time{}, "messageTimestamp: must be unix time in seconds or milliseconds, not negative"},
		{"days ahead", fmt.Sprint(now.Add(72 * time.Hour).Unix()), time.Time{}, "messageTimestamp: more than a day in the future"},
		{"milliseconds days ahead", fmt.Sprint(now.Add(72 * time.Hour).UnixMilli()), time.Time{}, "messageTimestamp: more than a day in the future"},
		{"microseconds", fmt.Sprint(now.UnixMicro()), time.Time{}, "messageTimestamp: more than a day in the future"},
		{"max int64", fmt.Sprint(int64(math.MaxInt64)), time.Time{}, "messageTimestamp: more than a day in the future"},
		{"overflow", "92233720368547758070", time.Time{}, "messageTimestamp: must be an integer"},
		{"fraction", "1796116066.5", time.Time{}, "messageTimestamp: must be an integer"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			chat := fmt.Sprintf("55110000%04d@s.whatsapp.net", i)
			extra := ""
			if tt.json != "" {
				extra = `"messageTimestamp":` + tt.json
			}
			before := time.Now().Truncate(time.Millisecond)
			r := s.call("POST", "/webhook/evolution", inst.Token, inboundBody(inst, fmt.Sprint("TS-", i), chat, extra))
			if tt.err != "" {
				if r.Status != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
				}
				hasMessage(t, r, tt.err)
				return
			}
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			msgs := s.chatMessages(inst, chat)
			if len(msgs) != 1 {
				t.Fatalf("messages = %v", msgs)
			}
			got, err := time.Parse(time.RFC3339Nano, msgs[0]["timestamp"].(string))
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case !tt.want.IsZero() && !got.Equal(tt.want):
				t.Fatalf("timestamp %v, want %v", got, tt.want)
			case tt.want.IsZero() && (got.Before(before) || got.After(time.Now())):
				t.Fatalf("timestamp %v, want the time of receipt", got)
			}
		})
	}
	s.must(http.StatusOK, "GET", "/conversations/shop", inst.Token, nil)
	s.must(http.StatusOK, "POST", "/chat/findMessages/shop", inst.Token, map[string]any{})
	s.must(http.StatusOK, "POST", "/chat/findChats/shop", inst.Token, map[string]any{})
}

// The inbound remoteJid follows the chat routes' rule, so every chat
// stored can be named again; what breaks it is refused naming the field.
func TestInboundRemoteJid(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	tests := []struct {
		name, key, participant string
		want                   string // the chat stored
		err                    string
	}{
		{"jid", "5511999990000@s.whatsapp.net", "", "5511999990000@s.whatsapp.net", ""},
		{"group with participant", "1203630@g.us", "5511999990001@s.whatsapp.net", "1203630@g.us", ""},
		{"phone number", "+55 11 99999-0002", "", "5511999990002@s.whatsapp.net", ""},
		{"not a jid", "not a jid", "", "", "key.remoteJid: must be a phone number"},
		{"nul byte", "55\x0011@s.whatsapp.net", "", "", "key.remoteJid: not a valid JID"},
		{"del byte", "5511\x7f@s.whatsapp.net", "", "", "key.remoteJid: not a valid JID"},
		{"space inside", "55 11@s.whatsapp.net", "", "", "key.remoteJid: not a valid JID"},
		{"no user", "@g.us", "", "", "key.remoteJid: not a valid JID"},
		{"no server", "5511@", "", "", "key.remoteJid: not a valid JID"},
		{"missing", "", "", "", "key.remoteJid: required"},
		{"too long", string(make([]byte, 300)), "", "", "key.remoteJid: longer than 256"},
		{"bad participant", "1203631@g.us", "a\x00b", "", "key.participant: must be a phone number"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := map[string]any{
				"numberId": inst.Number,
				"key":      map[string]any{"id": fmt.Sprint("J-", i), "remoteJid": tt.key, "participant": tt.participant},
				"message":  map[string]any{"conversation": "oi"},
			}
			r := s.call("POST", "/webhook/evolution", inst.Token, body)
			if tt.err != "" {
				if r.Status != http.StatusBadRequest {
					t.Fatalf("status %d, want 400: %s", r.Status, r.Body)
				}
				hasMessage(t, r, tt.err)
				return
			}
			if r.Status != http.StatusOK {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			if msgs := s.chatMessages(inst, tt.want); len(msgs) != 1 || msgs[0]["remoteJid"] != tt.want {
				t.Fatalf("messages of %s = %v", tt.want, msgs)
			}
		})
	}
}

// openStore opens the database of a stopped server, as another version
// of wagate would.
func openStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	cfg, err := config.Load(nil, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir, cfg.DatabaseURL, cfg.SecretKey = dir, databaseURL(t, dir), testSecretKey
	st, err := store.Open(context.Background(), store.OptionsFrom(cfg), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// Rows older versions stored without these checks (millisecond timestamps
// read as seconds, overflowed ones, chat keys no rule accepts) read fine:
// every route that shows them answers, and odd chats can be named.
func TestLegacyRowsStayReadable(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	inst := s.createInstance("shop", "")
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	now := time.Now().UTC().Truncate(time.Millisecond)
	legacy := []struct {
		chat string
		sent time.Time
	}{
		{"5511000000001@s.whatsapp.net", time.Unix(now.UnixMilli(), 0)}, // milliseconds taken for seconds: year 58000
		{"5511000000002@s.whatsapp.net", time.Unix(math.MaxInt64, 0)},   // stored as whatever it overflowed to
		{"5511000000003@s.whatsapp.net", time.Time{}},                   // year 1: a negative unix time
		{"not a jid", now},
	}
	if storetest.SuiteBackend() == storetest.SQLite { // PostgreSQL text cannot hold NUL at all
		legacy = append(legacy, struct {
			chat string
			sent time.Time
		}{"nul\x00jid", now})
	}
	st := openStore(t, dir)
	for i, l := range legacy {
		_, err := st.InsertMessage(context.Background(), &store.Message{
			InstanceID: inst.ID, ID: fmt.Sprint("OLD-", i), Direction: store.Inbound, RemoteJID: l.chat,
			PushName: "Ana", MessageType: "conversation", Content: json.RawMessage(`{"conversation":"oi"}`), Text: "oi",
			Status: "DELIVERY_ACK", Timestamp: l.sent, CreatedAt: now,
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	st.Close()

	s = startServer(t, dir)
	var list struct {
		Data []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(s.must(http.StatusOK, "GET", "/conversations/shop", inst.Token, nil).Body, &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Data) != len(legacy) {
		t.Fatalf("conversations = %v", list.Data)
	}
	for _, l := range legacy {
		s.must(http.StatusOK, "GET", "/conversations/shop/"+url.PathEscape(l.chat), inst.Token, nil)
		msgs := s.chatMessages(inst, l.chat)
		if len(msgs) != 1 || msgs[0]["remoteJid"] != l.chat {
			t.Fatalf("messages of %q = %v", l.chat, msgs)
		}
		if l.sent != now && msgs[0]["timestamp"] != msgs[0]["createdAt"] {
			t.Fatalf("implausible timestamp of %q shown as %v, want the time of receipt %v", l.chat, msgs[0]["timestamp"], msgs[0]["createdAt"])
		}
		var found struct {
			Messages struct {
				Total int `json:"total"`
			} `json:"messages"`
		}
		r := s.must(http.StatusOK, "POST", "/chat/findMessages/shop", inst.Token, map[string]any{"where": map[string]any{"key": map[string]any{"remoteJid": l.chat}}})
		if err := json.Unmarshal(r.Body, &found); err != nil || found.Messages.Total != 1 {
			t.Fatalf("findMessages of %q: %s", l.chat, r.Body)
		}
		var chats []map[string]any
		r = s.must(http.StatusOK, "POST", "/chat/findChats/shop", inst.Token, map[string]any{"where": map[string]any{"remoteJid": l.chat}})
		if err := json.Unmarshal(r.Body, &chats); err != nil || len(chats) != 1 {
			t.Fatalf("findChats of %q: %s", l.chat, r.Body)
		}
	}
	s.must(http.StatusOK, "POST", "/chat/findChats/shop", inst.Token, map[string]any{})
	s.must(http.StatusOK, "POST", "/chat/findMessages/shop", inst.Token, map[string]any{})
	// Odd chats can be deleted by their key, as any other.
	for _, l := range legacy[3:] {
		s.must(http.StatusOK, "POST", "/openai/changeStatus/shop", inst.Token, map[string]any{"remoteJid": l.chat, "status": "delete"})
		// Gone, the key is just a name no rule accepts.
		hasMessage(t, s.must(http.StatusBadRequest, "GET", "/conversations/shop/"+url.PathEscape(l.chat), inst.Token, nil), "remoteJid:")
	}
	if err := json.Unmarshal(s.must(http.StatusOK, "GET", "/conversations/shop", inst.Token, nil).Body, &list); err != nil || len(list.Data) != 3 {
		t.Fatalf("conversations after deleting the odd ones = %v, %v", list.Data, err)
	}
	// A name that is no JID and no stored chat is still refused.
	hasMessage(t, s.must(http.StatusBadRequest, "GET", "/conversations/shop/"+url.PathEscape("no such thing")+"/messages", inst.Token, nil), "remoteJid: must be a phone number")
}

// A bot an older version stored with a regex over today's program bound
// does not match by trigger (instead of pinning a CPU per message), and
// the gateway says why in its log.
func TestStoredTooComplexRegexDoesNotMatch(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir)
	inst := s.createInstance("shop", "")
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	st := openStore(t, dir)
	now := time.Now().UTC().Truncate(time.Millisecond)
	err := st.CreateBot(context.Background(), &store.Bot{ID: "old-bot", InstanceID: inst.ID, Enabled: true, BotType: "chatCompletion",
		Model: "gpt-test", TriggerType: "keyword", TriggerOperator: "regex", TriggerValue: `(.*){1000}z`, CreatedAt: now, UpdatedAt: now})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	s = startServer(t, dir)
	s.must(http.StatusOK, "POST", "/webhook/evolution", inst.Token, inboundBody(inst, "BIG-1", "5511999990000@s.whatsapp.net", ""))
	var msgs []map[string]any
	eventually(t, func() bool {
		msgs = s.chatMessages(inst, "5511999990000@s.whatsapp.net")
		return len(msgs) == 1 && msgs[0]["status"] != "received"
	}, "the message decided")
	if msgs[0]["status"] != "ignored" || msgs[0]["reason"] != "no bot trigger matched" {
		t.Fatalf("message = %v", msgs[0])
	}
	if logs := s.logs.String(); !strings.Contains(logs, "bot trigger does not compile") || !strings.Contains(logs, "pattern too complex") {
		t.Fatalf("no log line about the stored trigger:\n%s", logs)
	}
}
