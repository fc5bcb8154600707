package gateway_test

import (
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/gateway/whatsapp/watest"
)

// TestWhatsAppBotReadsDocuments: a customer's PDF or text file reaches the
// model as its text, downloaded through the channel and read by the
// knowledge base's extractor; a scanned PDF, or a kind the extractor does
// not know, as the document's name.
func TestWhatsAppBotReadsDocuments(t *testing.T) {
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	rc := newReceiver(t)
	cl, inst := connectedWhatsApp(t, s, fac, "wa", rc)
	long := strings.Repeat("word ", 5000) // 25000 characters
	cl.Media = map[string][]byte{
		"/doc/pdf":  makePDF([]string{"Opening hours", "Monday to Friday 9-18"}),
		"/doc/txt":  []byte("Return policy\n\nThirty days with the receipt."),
		"/doc/scan": makePDF(),
		"/doc/zip":  []byte("PK\x03\x04 not a word document"),
		"/doc/long": []byte(long),
	}
	ai := fakeai.NewTestServer(t, fakeai.Options{})
	creds := s.createCreds(inst, "fake", testProviderKey, ai.BaseURL())
	s.createBot(inst, map[string]any{
		"openaiCredsId": creds, "botType": "chatCompletion", "model": "gpt-4o", "triggerType": "all", "delayMessage": 0,
	})
	ana := types.NewJID("5511911111111", types.DefaultUserServer)
	n := 0
	send := func(path, name, mimetype, caption string) string {
		t.Helper()
		n++
		d := &waE2E.DocumentMessage{
			URL: proto.String("https://mmg.whatsapp.net" + path), DirectPath: proto.String(path), MediaKey: []byte("k"),
			FileEncSHA256: []byte("e"), FileSHA256: []byte("s"), FileLength: proto.Uint64(uint64(len(cl.Media[path]))),
			Mimetype: proto.String(mimetype), FileName: proto.String(name),
		}
		if caption != "" {
			d.Caption = proto.String(caption)
		}
		cl.Emit((&events.Message{
			Info:       types.MessageInfo{MessageSource: types.MessageSource{Chat: ana, Sender: ana}, ID: types.MessageID("3D0" + string(rune('0'+n))), PushName: "Ana", Timestamp: time.Now()},
			RawMessage: &waE2E.Message{DocumentMessage: d},
		}).UnwrapRaw())
		rc.waitEvents(t, webhook.SendMessage, n)
		calls := ai.RequestsTo(fakeai.EndpointChat)
		if len(calls) != n {
			t.Fatalf("%d model calls, want %d", len(calls), n)
		}
		msgs := calls[n-1].Messages
		return msgs[len(msgs)-1].Content
	}

	if got, want := send("/doc/pdf", "hours.pdf", "application/pdf", "see this"), "see this\n\n[document: hours.pdf]\nOpening hoursMonday to Friday 9-18"; got != want {
		t.Errorf("PDF turn = %q, want %q", got, want)
	}
	if got, want := send("/doc/txt", "returns.txt", "text/plain", ""), "[document: returns.txt]\nReturn policy\nThirty days with the receipt."; got != want {
		t.Errorf("text turn = %q, want %q", got, want)
	}
	if got := send("/doc/scan", "scan.pdf", "application/pdf", ""); got != "[document: scan.pdf]" {
		t.Errorf("scanned PDF turn = %q", got)
	}
	if got := send("/doc/zip", "archive.zip", "application/zip", ""); got != "[document: archive.zip]" {
		t.Errorf("unsupported document turn = %q", got)
	}
	got := send("/doc/long", "long.txt", "text/plain", "")
	if !strings.HasPrefix(got, "[document: long.txt]\nword word") || !strings.HasSuffix(got, "[the document goes on: only its first 12000 of 24999 characters are shown]") || len(got) > 12200 {
		t.Errorf("long document turn: %d bytes, ends %q", len(got), got[max(0, len(got)-120):])
	}
}

// TestEngineReadsEvolutionDocuments: on an EVOLUTION instance a document
// in base64, or by URL through the gateway's fetcher, is read as on
// WhatsApp.
func TestEngineReadsEvolutionDocuments(t *testing.T) {
	files := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte("name,price\nBread,3\n"))
	}))
	defer files.Close()
	e := newBotEnv(t, withConfig(func(c *config.Config) { c.AllowPrivateFetch = true }))
	e.bot(nil)
	chat := "5511@s.whatsapp.net"
	e.say("d0", chat, "hi", nil) // opens the session: a bare attachment triggers no bot
	e.replies(1)
	lastUser := func(n int) string {
		t.Helper()
		e.replies(n)
		calls := e.ai.RequestsTo(fakeai.EndpointChat)
		msgs := calls[len(calls)-1].Messages
		return msgs[len(msgs)-1].Content
	}
	pdf := makePDF([]string{"Price list", "Cake 10"})
	e.say("d1", chat, "", map[string]any{"message": map[string]any{"documentMessage": map[string]any{
		"base64": base64.StdEncoding.EncodeToString(pdf), "mimetype": "application/pdf", "fileName": "prices.pdf",
	}}})
	if got, want := lastUser(2), "[document: prices.pdf]\nPrice listCake 10"; got != want {
		t.Errorf("base64 document turn = %q, want %q", got, want)
	}
	e.say("d2", chat, "", map[string]any{"message": map[string]any{"documentMessage": map[string]any{
		"url": files.URL + "/bread.csv", "mimetype": "text/csv", "fileName": "bread.csv", "caption": "our prices",
	}}})
	if got, want := lastUser(3), "our prices\n\n[document: bread.csv]\nname: Bread | price: 3"; got != want {
		t.Errorf("document by URL turn = %q, want %q", got, want)
	}
}
