package gateway_test

import (
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/gateway/whatsapp/watest"
	"github.com/wagate/wagate/store/storetest"
)

// TestWhatsAppBotAnswers runs the bot engine on a WhatsApp instance: the
// same path as EVOLUTION, with the fake whatsmeow client at the socket.
func TestWhatsAppBotAnswers(t *testing.T) {
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	rc := newReceiver(t)
	inst := s.createWhatsApp("wa", rc)
	cl, _ := connectQR(t, s, fac, "wa", inst.Token, "2@x")
	own := types.JID{User: "5511900000000", Device: 7, Server: types.DefaultUserServer}
	cl.QR(whatsmeow.QRChannelSuccess)
	cl.CloseQR()
	cl.Emit(&events.PairSuccess{ID: own})
	cl.Emit(&events.Connected{})

	ai := fakeai.NewTestServer(t, fakeai.Options{})
	creds := s.createCreds(inst, "fake", testProviderKey, ai.BaseURL())
	s.createBot(inst, map[string]any{
		"openaiCredsId": creds, "botType": "chatCompletion", "model": "gpt-4o", "triggerType": "all",
		"delayMessage": 0, "stopBotFromMe": true,
	})

	ana := types.NewJID("5511911111111", types.DefaultUserServer)
	say := func(id, text string, fromMe bool) {
		sender := ana
		if fromMe {
			sender = own.ToNonAD()
		}
		cl.Emit((&events.Message{
			Info: types.MessageInfo{
				MessageSource: types.MessageSource{Chat: ana, Sender: sender, IsFromMe: fromMe},
				ID:            types.MessageID(id), PushName: "Ana", Timestamp: time.Now(),
			},
			RawMessage: &waE2E.Message{Conversation: proto.String(text)},
		}).UnwrapRaw())
	}
	say("3A01", "hello", false)
	rc.waitEvents(t, webhook.SendMessage, 1)
	sent := cl.SentMessages()
	if len(sent) != 1 || sent[0].To != ana || sent[0].Message.GetConversation() != "echo: hello" {
		t.Fatalf("sent = %+v", sent)
	}
	// The echo of our own reply is not a human takeover: the next message
	// is answered.
	say(string(sent[0].ID), "echo: hello", true)
	say("3A02", "and tomorrow?", false)
	rc.waitEvents(t, webhook.SendMessage, 2)
	if sent := cl.SentMessages(); len(sent) != 2 || sent[1].Message.GetConversation() != "echo: and tomorrow?" {
		t.Fatalf("second reply = %+v", sent)
	}
	// A human typing on the phone takes over.
	say("3A03", "Hi Ana, Bruno here", true)
	say("3A04", "thanks Bruno", false)
	eventually(t, func() bool { return len(rc.events("openai.session.paused")) == 1 }, "the pause")
	say("3A05", "still there?", false)
	eventually(t, func() bool {
		var state, reason string
		storetest.RawDB(t, s.dbURL).QueryRow(`SELECT state, state_reason FROM messages WHERE message_id = '3A05'`).Scan(&state, &reason)
		return state == "ignored" && reason == "session paused: a human is answering"
	}, "the message during the takeover to be left to the human")
	if n := len(ai.RequestsTo(fakeai.EndpointChat)); n != 2 {
		t.Fatalf("%d model calls; the paused chat was answered", n)
	}

	// A reply the channel cannot deliver fails the turn once; it is not
	// asked of the model again and again.
	cl.Emit(&events.Disconnected{})
	bob := types.NewJID("5511922222222", types.DefaultUserServer)
	cl.Emit((&events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: bob, Sender: bob},
			ID:            "3B01", PushName: "Bob", Timestamp: time.Now(),
		},
		RawMessage: &waE2E.Message{Conversation: proto.String("hi")},
	}).UnwrapRaw())
	// The turn is answered once its reply is stored, then failed when
	// the channel refuses the reply.
	var state, reason string
	eventually(t, func() bool {
		storetest.RawDB(t, s.dbURL).QueryRow(`SELECT state, state_reason FROM messages WHERE message_id = '3B01'`).Scan(&state, &reason)
		return state == "failed"
	}, "the undeliverable turn to fail")
	if !strings.HasPrefix(reason, "reply not delivered") {
		t.Fatalf("undeliverable turn: %s (%s)", state, reason)
	}
	if n := len(ai.RequestsTo(fakeai.EndpointChat)); n != 3 {
		t.Fatalf("%d model calls, want 3", n)
	}
}
