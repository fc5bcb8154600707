package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"

	"github.com/wagate/wagate/gateway/whatsapp/watest"
)

var chatActions = []struct {
	method, path string
	body         map[string]any
}{
	{"POST", "/chat/whatsappNumbers/", map[string]any{"numbers": []string{"5511911111111", "5511900001111"}}},
	{"POST", "/chat/markMessageAsRead/", map[string]any{"readMessages": []map[string]any{{"id": "3A30", "fromMe": false, "remoteJid": "5511911111111@s.whatsapp.net"}}}},
	{"POST", "/chat/archiveChat/", map[string]any{"chat": "5511911111111", "archive": true, "lastMessage": map[string]any{"key": map[string]any{"id": "3A30", "remoteJid": "5511911111111@s.whatsapp.net", "fromMe": false}, "messageTimestamp": 1700000000}}},
	{"POST", "/chat/markChatUnread/", map[string]any{"chat": "5511911111111"}},
	{"POST", "/chat/sendPresence/", map[string]any{"number": "5511911111111", "presence": "recording", "delay": 20}},
	{"POST", "/chat/updateBlockStatus/", map[string]any{"number": "5511911111111", "status": "block"}},
	{"POST", "/chat/fetchProfilePictureUrl/", map[string]any{"number": "5511911111111"}},
	{"POST", "/instance/setPresence/", map[string]any{"presence": "available"}},
}

func TestChatActionsOnEvolutionNameTheChannel(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	routes := append(chatActions[:len(chatActions):len(chatActions)],
		struct {
			method, path string
			body         map[string]any
		}{"DELETE", "/chat/deleteMessageForEveryone/", map[string]any{"id": "X", "remoteJid": "5511", "fromMe": true}},
		struct {
			method, path string
			body         map[string]any
		}{"POST", "/chat/updateMessage/", map[string]any{"number": "5511", "key": map[string]any{"id": "X", "fromMe": true}, "text": "new"}},
	)
	for _, r := range routes {
		msgs := s.must(http.StatusBadRequest, r.method, r.path+"shop", inst.Token, r.body).messages(t)
		if len(msgs) != 1 || !strings.Contains(msgs[0], "the EVOLUTION channel has no") {
			t.Errorf("%s %s: %q", r.method, r.path, msgs)
		}
	}
	// Settings are the instance's on every channel.
	s.must(http.StatusCreated, "POST", "/settings/set/shop", inst.Token, map[string]any{"rejectCall": true, "msgCall": "no calls", "wavoipToken": ""})
	if got := s.must(http.StatusOK, "GET", "/settings/find/shop", inst.Token, nil).json(t); got["rejectCall"] != true || got["msgCall"] != "no calls" || got["groupsIgnore"] != false {
		t.Fatalf("settings = %v", got)
	}
	s.must(http.StatusBadRequest, "POST", "/settings/set/shop", inst.Token, map[string]any{"rejectCalls": true})
}

func TestChatActionsOnWhatsApp(t *testing.T) {
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	rc := newReceiver(t)
	cl, inst := connectedWhatsApp(t, s, fac, "wa", rc)
	ana := types.NewJID("5511911111111", types.DefaultUserServer)
	cl.OnWhatsApp = map[string]types.JID{"5511911111111": ana}
	cl.LIDs = map[types.JID]types.JID{types.NewJID("91111111111111", types.HiddenUserServer): ana}
	cl.Pictures = map[types.JID]string{ana: "https://pps.whatsapp.net/ana.jpg"}
	cl.SetPushName("Shop")

	var answers []map[string]any
	for _, r := range chatActions {
		resp := s.call(r.method, r.path+"wa", inst.Token, r.body)
		if resp.Status != http.StatusOK && resp.Status != http.StatusCreated {
			t.Fatalf("%s %s: %d %s", r.method, r.path, resp.Status, resp.Body)
		}
		var m map[string]any
		if resp.Body[0] == '{' {
			m = resp.json(t)
		}
		answers = append(answers, m)
	}
	numbers := s.must(http.StatusOK, "POST", "/chat/whatsappNumbers/wa", inst.Token, chatActions[0].body)
	if !strings.Contains(string(numbers.Body), `{"exists":true,"jid":"5511911111111@s.whatsapp.net","number":"5511911111111","lid":"91111111111111@lid"}`) ||
		!strings.Contains(string(numbers.Body), `{"exists":false,"jid":"5511900001111@s.whatsapp.net","number":"5511900001111"}`) {
		t.Fatalf("whatsappNumbers = %s", numbers.Body)
	}
	if r := cl.Read(); len(r) != 1 || r[0][0] != "3A30" {
		t.Fatalf("read = %v", r)
	}
	if p := cl.AppState(); len(p) != 2 {
		t.Fatalf("app state patches = %d", len(p))
	}
	if p := cl.Presences(); len(p) != 2 || p[0].Media != types.ChatPresenceMediaAudio {
		t.Fatalf("presences = %+v", p)
	}
	if b := cl.Blocks(); len(b) != 1 || b[0] != "block "+ana.String() {
		t.Fatalf("blocks = %v", b)
	}
	if pic := answers[6]; pic["profilePictureUrl"] != "https://pps.whatsapp.net/ana.jpg" || pic["wuid"] != ana.String() {
		t.Fatalf("fetchProfilePictureUrl = %v", pic)
	}
	presences := cl.AccountPresences()
	if p := presences; len(p) == 0 || p[len(p)-1] != types.PresenceAvailable {
		t.Fatalf("account presences = %v", p)
	}

	// Edit, then delete for everyone, a message the instance sent.
	sent := s.must(http.StatusCreated, "POST", "/message/sendText/wa", inst.Token, map[string]any{"number": "5511911111111", "text": "10 %"}).json(t)
	id := sent["key"].(map[string]any)["id"].(string)
	s.must(http.StatusCreated, "POST", "/chat/updateMessage/wa", inst.Token, map[string]any{"number": "5511911111111", "key": map[string]any{"id": id, "fromMe": true, "remoteJid": ana.String()}, "text": "20 %"})
	s.must(http.StatusCreated, "DELETE", "/chat/deleteMessageForEveryone/wa", inst.Token, map[string]any{"id": id, "remoteJid": ana.String(), "fromMe": true})
	msgs := cl.SentMessages()
	edit := msgs[len(msgs)-2].Message.GetEditedMessage().GetMessage().GetProtocolMessage()
	revoke := msgs[len(msgs)-1].Message.GetProtocolMessage()
	if edit.GetType() != waE2E.ProtocolMessage_MESSAGE_EDIT || edit.GetKey().GetID() != id || edit.GetEditedMessage().GetConversation() != "20 %" {
		t.Fatalf("edit = %v", edit)
	}
	if revoke.GetType() != waE2E.ProtocolMessage_REVOKE || revoke.GetKey().GetID() != id || !revoke.GetKey().GetFromMe() {
		t.Fatalf("revoke = %v", revoke)
	}
	found := s.must(http.StatusOK, "POST", "/chat/findMessages/wa", inst.Token, map[string]any{"where": map[string]any{"key": map[string]any{"id": id}}}).json(t)
	rec := found["messages"].(map[string]any)["records"].([]any)[0].(map[string]any)
	if rec["status"] != "DELETED" || rec["message"].(map[string]any)["conversation"] != "20 %" {
		t.Fatalf("stored = %v", rec)
	}

	// Settings apply to the live connection at once.
	s.must(http.StatusCreated, "POST", "/settings/set/wa", inst.Token, map[string]any{"alwaysOnline": true})
	if p := cl.AccountPresences(); len(p) != len(presences)+1 || p[len(p)-1] != types.PresenceAvailable {
		t.Fatalf("account presences after alwaysOnline = %v", p)
	}
	if got := s.must(http.StatusOK, "GET", "/settings/find/wa", inst.Token, nil).json(t); got["alwaysOnline"] != true {
		t.Fatalf("settings = %v", got)
	}
}

func TestWebhookSetAcceptsEvolutionSpellings(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	s.must(http.StatusOK, "POST", "/webhook/set/shop", inst.Token, map[string]any{"webhook": map[string]any{"enabled": false, "url": "vazio", "webhookByEvents": true, "webhookBase64": true}})
	got := s.must(http.StatusOK, "GET", "/webhook/find/shop", inst.Token, nil).json(t)
	if got["enabled"] != false || got["url"] != "" || got["webhookByEvents"] != true || got["webhookBase64"] != true {
		t.Fatalf("webhook = %v", got)
	}
	s.must(http.StatusBadRequest, "POST", "/webhook/set/shop", inst.Token, map[string]any{"webhook": map[string]any{"enabled": true, "url": "vazio"}})
}
