package gateway_test

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/proto/waHistorySync"
	"go.mau.fi/whatsmeow/proto/waSyncAction"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wagate/wagate/gateway/whatsapp/watest"
)

// list decodes a delivery's data as an array of objects.
func (d delivery) list(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(d.Envelope.Data, &l); err != nil {
		t.Fatalf("%s data %s: %v", d.Envelope.Event, d.Envelope.Data, err)
	}
	return l
}

func (r response) array(t *testing.T) []map[string]any {
	t.Helper()
	var l []map[string]any
	if err := json.Unmarshal(r.Body, &l); err != nil {
		t.Fatalf("%s: %v", r.Body, err)
	}
	return l
}

func TestContactsAndChatsOnWhatsApp(t *testing.T) {
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	rc := newReceiver(t)
	cl, inst := connectedWhatsApp(t, s, fac, "wa", rc)
	ana := types.NewJID("5511911111111", types.DefaultUserServer)
	bia := types.NewJID("5511922222222", types.DefaultUserServer)
	group := types.NewJID("120363000000000001", types.GroupServer)

	// A history sync lists a chat the gateway has no message of, and a
	// push name.
	cl.Emit(&events.HistorySync{Data: &waHistorySync.HistorySync{
		SyncType: waHistorySync.HistorySync_INITIAL_BOOTSTRAP.Enum(),
		Conversations: []*waHistorySync.Conversation{
			{ID: proto.String(bia.String()), Name: proto.String("Bia"), UnreadCount: proto.Uint32(2), ConversationTimestamp: proto.Uint64(uint64(time.Now().Add(-time.Hour).Unix()))},
			{ID: proto.String("status@broadcast")},
		},
		Pushnames: []*waHistorySync.Pushname{{ID: proto.String(bia.String()), Pushname: proto.String("Bia B.")}},
	}})
	up := rc.waitEvents(t, "chats.upsert", 1)[0].list(t)
	if len(up) != 1 || up[0]["remoteJid"] != bia.String() || up[0]["name"] != "Bia" || up[0]["unreadMessages"] != float64(2) {
		t.Fatalf("chats.upsert from history = %v", up)
	}
	if c := rc.waitEvents(t, "contacts.upsert", 1)[0].list(t); c[0]["remoteJid"] != bia.String() || c[0]["pushName"] != "Bia B." {
		t.Fatalf("contacts.upsert from history = %v", c)
	}

	// Ana writes: a new chat and a new contact.
	msg := func(id, name string, chat, sender types.JID) {
		cl.Emit((&events.Message{
			Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: chat, Sender: sender, IsGroup: chat.Server == types.GroupServer},
				ID: id, PushName: name, Timestamp: time.Now()},
			RawMessage: &waE2E.Message{Conversation: proto.String("hi")},
		}).UnwrapRaw())
	}
	msg("3A01", "Ana", ana, ana)
	rc.waitEvents(t, "messages.upsert", 1)
	up = rc.waitEvents(t, "chats.upsert", 2)[1].list(t)
	if up[0]["remoteJid"] != ana.String() || up[0]["name"] != "Ana" || up[0]["unreadMessages"] != float64(1) {
		t.Fatalf("chats.upsert from a message = %v", up)
	}
	if c := rc.waitEvents(t, "contacts.upsert", 2)[1].list(t); c[0]["remoteJid"] != ana.String() || c[0]["pushName"] != "Ana" {
		t.Fatalf("contacts.upsert from a message = %v", c)
	}
	// The same name again is no news; a message in a group names its sender.
	msg("3A02", "Ana", ana, ana)
	msg("3A03", "Carla", group, types.NewJID("5511933333333", types.DefaultUserServer))
	rc.waitEvents(t, "messages.upsert", 3)
	rc.waitEvents(t, "contacts.upsert", 3)
	// The address book renames Ana.
	cl.Emit(&events.Contact{JID: ana, Timestamp: time.Now(), Action: &waSyncAction.ContactAction{FullName: proto.String("Ana Souza")}})
	if c := rc.waitEvents(t, "contacts.update", 1)[0].list(t); c[0]["remoteJid"] != ana.String() || c[0]["pushName"] != "Ana Souza" {
		t.Fatalf("contacts.update = %v", c)
	}
	if n := len(rc.events("chats.upsert")); n != 3 {
		t.Fatalf("chats.upsert events = %d, want 3 (history, Ana, group)", n)
	}
	if n := len(rc.events("contacts.upsert")); n != 3 {
		t.Fatalf("contacts.upsert events = %d, want 3", n)
	}

	// findContacts: every contact, one by JID or number, one by name, pages.
	all := s.must(http.StatusOK, "POST", "/chat/findContacts/wa", inst.Token, map[string]any{}).array(t)
	if len(all) != 3 {
		t.Fatalf("findContacts = %v", all)
	}
	one := s.must(http.StatusOK, "POST", "/chat/findContacts/wa", inst.Token, map[string]any{"where": map[string]any{"remoteJid": "5511911111111"}}).array(t)
	if len(one) != 1 || one[0]["pushName"] != "Ana Souza" || one[0]["isSaved"] != true || one[0]["type"] != "contact" || one[0]["isGroup"] != false {
		t.Fatalf("findContacts by number = %v", one)
	}
	byName := s.must(http.StatusOK, "POST", "/chat/findContacts/wa", inst.Token, map[string]any{"where": map[string]any{"pushName": "bia"}}).array(t)
	if len(byName) != 1 || byName[0]["remoteJid"] != bia.String() {
		t.Fatalf("findContacts by name = %v", byName)
	}
	p1 := s.must(http.StatusOK, "POST", "/chat/findContacts/wa", inst.Token, map[string]any{"page": 1, "offset": 2}).array(t)
	p2 := s.must(http.StatusOK, "POST", "/chat/findContacts/wa", inst.Token, map[string]any{"page": 2, "offset": 2}).array(t)
	if len(p1) != 2 || len(p2) != 1 || p2[0]["remoteJid"] == p1[0]["remoteJid"] || p2[0]["remoteJid"] == p1[1]["remoteJid"] {
		t.Fatalf("findContacts pages = %v / %v", p1, p2)
	}

	// findChats: the chats with messages and the one from the history.
	chats := s.must(http.StatusOK, "POST", "/chat/findChats/wa", inst.Token, nil).array(t)
	if len(chats) != 3 {
		t.Fatalf("findChats = %v", chats)
	}
	byJID := map[string]map[string]any{}
	for _, c := range chats {
		byJID[c["remoteJid"].(string)] = c
	}
	if c := byJID[ana.String()]; c["name"] != "Ana Souza" || c["pushName"] != "Ana" || c["unreadMessages"] != float64(2) || c["lastMessage"] == nil || c["isSaved"] != true {
		t.Fatalf("findChats Ana = %v", c)
	}
	if c := byJID[bia.String()]; c["name"] != "Bia" || c["unreadMessages"] != float64(2) || c["lastMessage"] != nil {
		t.Fatalf("findChats Bia = %v", c)
	}
	if chats[2]["remoteJid"] != bia.String() {
		t.Fatalf("findChats order: history chat (an hour old) should be last: %v", chats)
	}
	pg := s.must(http.StatusOK, "POST", "/chat/findChats/wa", inst.Token, map[string]any{"page": 3, "offset": 1}).array(t)
	if len(pg) != 1 || pg[0]["remoteJid"] != bia.String() {
		t.Fatalf("findChats page 3 = %v", pg)
	}
	one = s.must(http.StatusOK, "POST", "/chat/findChats/wa", inst.Token, map[string]any{"where": map[string]any{"remoteJid": bia.String()}}).array(t)
	if len(one) != 1 || one[0]["name"] != "Bia" {
		t.Fatalf("findChats one = %v", one)
	}
	for _, bad := range []map[string]any{{"page": 0}, {"offset": 100000}, {"where": map[string]any{"remotejid": "x"}}} {
		if r := s.call("POST", "/chat/findChats/wa", inst.Token, bad); r.Status != http.StatusBadRequest {
			t.Fatalf("findChats %v = %d %s", bad, r.Status, r.Body)
		}
	}
}

func TestContactsOnEvolution(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	inst := s.createInstance("evo", rc.URL)
	rc.setSecret(inst.Secret)
	if r := s.inbound(inst, "m1", "5511911111111@s.whatsapp.net", "hello"); r.Status >= 300 {
		t.Fatalf("inbound: %d %s", r.Status, r.Body)
	}
	if up := rc.waitEvents(t, "chats.upsert", 1)[0].list(t); up[0]["remoteJid"] != "5511911111111@s.whatsapp.net" || up[0]["name"] != "Ana" {
		t.Fatalf("chats.upsert = %v", up)
	}
	rc.waitEvents(t, "contacts.upsert", 1)
	got := s.must(http.StatusOK, "POST", "/chat/findContacts/evo", inst.Token, nil).array(t)
	if len(got) != 1 || got[0]["pushName"] != "Ana" || got[0]["instanceId"] != inst.ID {
		t.Fatalf("findContacts = %v", got)
	}

	st := s.must(http.StatusOK, "POST", "/chat/findStatusMessage/evo", inst.Token, map[string]any{"where": map[string]any{"remoteJid": "5511911111111", "id": "m1"}}).array(t)
	if len(st) != 1 || st[0]["keyId"] != "m1" || st[0]["status"] != "DELIVERY_ACK" || st[0]["fromMe"] != false {
		t.Fatalf("findStatusMessage = %v", st)
	}
	if st := s.must(http.StatusOK, "POST", "/chat/findStatusMessage/evo", inst.Token, map[string]any{"where": map[string]any{"status": "READ"}, "page": 1, "offset": 10}).array(t); len(st) != 0 {
		t.Fatalf("findStatusMessage READ = %v", st)
	}
	s.must(http.StatusBadRequest, "POST", "/chat/findStatusMessage/evo", inst.Token, map[string]any{"where": map[string]any{"status": "SEEN"}})
}
