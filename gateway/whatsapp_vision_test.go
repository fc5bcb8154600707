package gateway_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/gateway/whatsapp/watest"
)

// TestWhatsAppBotSeesWhatCustomersSend: a WhatsApp image reaches the model
// as image input, downloaded and decrypted through the channel (its URL
// names an encrypted file); stickers, locations and contacts as short
// descriptions.
func TestWhatsAppBotSeesWhatCustomersSend(t *testing.T) {
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	rc := newReceiver(t)
	cl, inst := connectedWhatsApp(t, s, fac, "wa", rc)
	pic := pngBytes(t)
	cl.Media = map[string][]byte{"/img/1": pic}

	ai := fakeai.NewTestServer(t, fakeai.Options{})
	creds := s.createCreds(inst, "fake", testProviderKey, ai.BaseURL())
	s.createBot(inst, map[string]any{
		"openaiCredsId": creds, "botType": "chatCompletion", "model": "gpt-4o", "triggerType": "all", "delayMessage": 0,
	})
	ana := types.NewJID("5511911111111", types.DefaultUserServer)
	emit := func(id string, m *waE2E.Message) {
		cl.Emit((&events.Message{
			Info:       types.MessageInfo{MessageSource: types.MessageSource{Chat: ana, Sender: ana}, ID: types.MessageID(id), PushName: "Ana", Timestamp: time.Now()},
			RawMessage: m,
		}).UnwrapRaw())
	}
	lastUser := func(n int) openai.ChatCompletionMessage {
		t.Helper()
		rc.waitEvents(t, webhook.SendMessage, n)
		calls := ai.RequestsTo(fakeai.EndpointChat)
		if len(calls) != n {
			t.Fatalf("%d model calls, want %d", len(calls), n)
		}
		msgs := calls[n-1].Messages
		return msgs[len(msgs)-1]
	}

	cl.Emit(imageEvent(ana, "3A01", "/img/1"))
	user := lastUser(1)
	var image, text string
	for _, p := range user.MultiContent {
		switch p.Type {
		case openai.ChatMessagePartTypeImageURL:
			image = p.ImageURL.URL
		case openai.ChatMessagePartTypeText:
			text = p.Text
		}
	}
	if image != "data:image/png;base64,"+base64.StdEncoding.EncodeToString(pic) || text != "look" {
		t.Fatalf("image turn = image %.60q, text %q", image, text)
	}

	emit("3A02", &waE2E.Message{StickerMessage: &waE2E.StickerMessage{DirectPath: proto.String("/st"), MediaKey: []byte("k"), Mimetype: proto.String("image/webp")}})
	if got := lastUser(2).Content; got != "[sticker]" {
		t.Fatalf("sticker turn = %q", got)
	}
	emit("3A03", &waE2E.Message{LocationMessage: &waE2E.LocationMessage{
		DegreesLatitude: proto.Float64(-23.55052), DegreesLongitude: proto.Float64(-46.633308), Name: proto.String("Shop"), Address: proto.String("Av. Paulista, 1000"),
	}})
	if got := lastUser(3).Content; got != "[location: Shop, Av. Paulista, 1000 (-23.550520, -46.633308)]" {
		t.Fatalf("location turn = %q", got)
	}
	emit("3A04", &waE2E.Message{ContactMessage: &waE2E.ContactMessage{
		DisplayName: proto.String("Bia"), Vcard: proto.String("BEGIN:VCARD\nVERSION:3.0\nFN:Bia\nTEL;type=CELL;waid=5511922222222:+55 11 92222-2222\nEND:VCARD"),
	}})
	if got := lastUser(4).Content; got != "[contact: Bia +55 11 92222-2222]" {
		t.Fatalf("contact turn = %q", got)
	}
	// An image that cannot be fetched is still a turn: the model reads
	// that an image came, never WhatsApp's encrypted URL.
	cl.Emit(imageEvent(ana, "3A05", "/img/missing"))
	user = lastUser(5)
	for _, p := range user.MultiContent {
		if p.Type == openai.ChatMessagePartTypeImageURL {
			t.Fatalf("unfetchable image sent as %q", p.ImageURL.URL)
		}
	}
	if user.Content != "look" && !strings.Contains(user.Content, "look") {
		t.Fatalf("unfetchable image turn = %+v", user)
	}
}
