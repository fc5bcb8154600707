package gateway_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"bytes"
	"github.com/makiuchi-d/gozxing"
	zxingqr "github.com/makiuchi-d/gozxing/qrcode"
	"github.com/wagate/wagate/gateway/whatsapp/watest"
	"image/png"
)

// startWhatsAppServer is startServer with the WhatsApp channel's clients
// made by fac: the real gateway, HTTP API, store and webhooks, with a fake
// whatsmeow client at the socket.
func startWhatsAppServer(t *testing.T, dir string, fac *watest.Factory) *server {
	t.Helper()
	return startServer(t, dir, withWhatsApp(fac))
}

// connectQR asks the gateway to connect the instance with key, lets the
// fake client it creates show the QR code, and returns the client with the
// connect response.
func connectQR(t *testing.T, s *server, fac *watest.Factory, name, key, code string) (*watest.Client, response) {
	t.Helper()
	got := make(chan response, 1)
	go func() { got <- s.call("GET", "/instance/connect/"+name, key, nil) }()
	cl, err := fac.Next(15 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitConnect(15 * time.Second); err != nil {
		t.Fatal(err)
	}
	cl.QR(whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: code, Timeout: time.Minute})
	return cl, <-got
}

// createWhatsApp creates a WHATSAPP instance whose webhook posts to rc.
func (s *server) createWhatsApp(name string, rc *receiver) instance {
	s.t.Helper()
	m := s.must(http.StatusCreated, "POST", "/instance/create", testAPIKey, map[string]any{
		"instanceName": name, "integration": "WHATSAPP", "webhook": map[string]any{"url": rc.URL},
	}).json(s.t)
	if st := m["instance"].(map[string]any)["status"]; st != "close" {
		s.t.Fatalf("new instance status = %v", st)
	}
	inst := instance{Name: name, Token: m["hash"].(string)}
	inst.ID = m["instance"].(map[string]any)["instanceId"].(string)
	inst.Secret = m["webhook"].(map[string]any)["secret"].(string)
	rc.setSecret(inst.Secret)
	return inst
}

func (s *server) state(name string) map[string]any {
	s.t.Helper()
	return s.must(http.StatusOK, "GET", "/instance/connectionState/"+name, testAPIKey, nil).json(s.t)["instance"].(map[string]any)
}

func TestWhatsAppEndToEnd(t *testing.T) {
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	rc := newReceiver(t)
	inst := s.createWhatsApp("wa", rc)

	// Connect: pairing starts and the first QR code comes back.
	cl, r := connectQR(t, s, fac, "wa", inst.Token, "2@ref,noise,identity,adv")
	if r.Status != http.StatusOK {
		t.Fatalf("connect: %d %s", r.Status, r.Body)
	}
	qr := r.json(t)
	if qr["pairingCode"] != nil || qr["code"] != "2@ref,noise,identity,adv" || qr["count"] != float64(1) ||
		!strings.HasPrefix(qr["base64"].(string), "data:image/png;base64,") {
		t.Fatalf("connect = %v", qr)
	}
	if st := s.state("wa"); st["state"] != "connecting" {
		t.Fatalf("state while pairing = %v", st)
	}
	q := rc.waitEvents(t, "qrcode.updated", 1)[0]
	if q.VerifyErr != nil {
		t.Fatal(q.VerifyErr)
	}
	if code := q.record(t)["qrcode"].(map[string]any)["code"]; code != "2@ref,noise,identity,adv" {
		t.Fatalf("qrcode.updated code = %v", code)
	}

	// Scanned on the phone: paired, then connected.
	own := types.JID{User: "5511900000000", Device: 7, Server: types.DefaultUserServer}
	cl.QR(whatsmeow.QRChannelSuccess)
	cl.CloseQR()
	cl.Emit(&events.PairSuccess{ID: own, LID: types.JID{User: "9000001", Device: 7, Server: types.HiddenUserServer}})
	cl.Emit(&events.Connected{})
	if st := s.state("wa"); st["state"] != "open" {
		t.Fatalf("state = %v", st)
	}
	var open map[string]any
	eventually(t, func() bool {
		for _, d := range rc.events("connection.update") {
			if m := d.record(t); m["state"] == "open" {
				open = m
				return true
			}
		}
		return false
	}, "connection.update open")
	if open["instance"] != "wa" || open["wuid"] != "5511900000000@s.whatsapp.net" || open["statusReason"] != float64(200) {
		t.Fatalf("connection.update = %v", open)
	}
	// Connected: connect answers the state.
	if st := s.must(http.StatusOK, "GET", "/instance/connect/wa", inst.Token, nil).json(t)["instance"].(map[string]any); st["state"] != "open" {
		t.Fatalf("connect when open = %v", st)
	}

	// An inbound message reaches the webhook as messages.upsert.
	ana := types.NewJID("5511911111111", types.DefaultUserServer)
	cl.Emit((&events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: ana, Sender: ana},
			ID:            "3A0000000000000001", PushName: "Ana", Timestamp: time.Now(),
		},
		RawMessage: &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String("do you have it?")}},
	}).UnwrapRaw())
	up := rc.waitEvents(t, "messages.upsert", 1)[0].record(t)
	key := up["key"].(map[string]any)
	if key["id"] != "3A0000000000000001" || key["remoteJid"] != ana.String() || key["fromMe"] != false || up["pushName"] != "Ana" ||
		up["messageType"] != "extendedTextMessage" || up["message"].(map[string]any)["extendedTextMessage"].(map[string]any)["text"] != "do you have it?" {
		t.Fatalf("messages.upsert = %v", up)
	}

	// sendText goes through the client with "composing" first and a quote.
	sent := s.must(http.StatusCreated, "POST", "/message/sendText/wa", inst.Token, map[string]any{
		"number": "5511911111111", "text": "yes, we do", "delay": 60, "quoted": map[string]any{"key": map[string]any{"id": "3A0000000000000001"}},
	}).json(t)
	msgs := cl.SentMessages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages sent", len(msgs))
	}
	if k := sent["key"].(map[string]any); k["id"] != string(msgs[0].ID) || k["remoteJid"] != ana.String() || k["fromMe"] != true || sent["status"] != "SERVER_ACK" {
		t.Fatalf("sendText = %v", sent)
	}
	if ci := msgs[0].Message.GetExtendedTextMessage().GetContextInfo(); ci.GetStanzaID() != "3A0000000000000001" || ci.GetQuotedMessage().GetConversation() != "do you have it?" {
		t.Fatalf("sent message = %v", msgs[0].Message)
	}
	if p := cl.Presences(); len(p) != 2 || p[0].State != types.ChatPresenceComposing || p[1].State != types.ChatPresencePaused || p[1].At.Sub(p[0].At) < 60*time.Millisecond {
		t.Fatalf("presences = %+v", p)
	}
	rc.waitEvents(t, "send.message", 1)

	// Our own send echoed back is not an operator's message: stored as
	// ignored, but still reported.
	cl.Emit((&events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: ana, Sender: own.ToNonAD(), IsFromMe: true},
			ID:            msgs[0].ID, Timestamp: time.Now(),
		},
		RawMessage: &waE2E.Message{Conversation: proto.String("yes, we do")},
	}).UnwrapRaw())
	rc.waitEvents(t, "messages.upsert", 2)

	// Logout unlinks the device; the instance is closed and can pair again.
	s.must(http.StatusOK, "DELETE", "/instance/logout/wa", inst.Token, nil)
	if !cl.LoggedOut() {
		t.Fatal("the device was not logged out")
	}
	if st := s.state("wa"); st["state"] != "close" || st["reason"] != nil {
		t.Fatalf("after logout = %v", st)
	}
	s.must(http.StatusOK, "DELETE", "/instance/delete/wa", testAPIKey, nil)
}

func TestWhatsAppStateSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, dir, fac)
	rc := newReceiver(t)
	s.createWhatsApp("wa", rc)
	cl, connected := connectQR(t, s, fac, "wa", testAPIKey, "2@x")
	cl.QR(whatsmeow.QRChannelSuccess)
	cl.CloseQR()
	cl.Emit(&events.PairSuccess{ID: types.JID{User: "5511900000000", Device: 7, Server: types.DefaultUserServer}})
	cl.Emit(&events.Connected{})
	if st := s.state("wa"); st["state"] != "open" {
		t.Fatalf("state = %v", st)
	}
	// The connect request returns once the QR is shown; a gateway stopping
	// while it still waited would have to wait for it.
	if r := connected; r.Status != http.StatusOK {
		t.Fatalf("connect: %d %s", r.Status, r.Body)
	}
	if err := s.stop(); err != nil {
		t.Fatal(err)
	}

	// The fake paired without writing whatsmeow's device row, so the
	// restarted gateway finds the instance paired but its device gone, and
	// says so instead of pretending to connect.
	s = startWhatsAppServer(t, dir, watest.NewFactory())
	// Closed, with no reason yet, until the start has looked for the device.
	eventually(t, func() bool {
		st := s.state("wa")
		reason, _ := st["reason"].(string)
		return st["state"] == "close" && strings.Contains(reason, "missing from the store")
	}, "closed, its device missing from the store")
	// Deleting it works without a connection.
	s.must(http.StatusOK, "DELETE", "/instance/delete/wa", testAPIKey, nil)
}

func TestWhatsAppRoutesWithoutAConnection(t *testing.T) {
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	for _, integration := range []string{"WHATSAPP-BAILEYS", "WHATSAPP", ""} {
		name := "wa" + strings.ToLower(strings.ReplaceAll(integration, "-", ""))
		m := s.must(http.StatusCreated, "POST", "/instance/create", testAPIKey, map[string]any{"instanceName": name, "integration": integration}).json(t)
		if integration == "" && m["instance"].(map[string]any)["integration"] != "WHATSAPP-BAILEYS" {
			t.Fatalf("default integration = %v", m["instance"])
		}
		if st := s.state(name); st["state"] != "close" {
			t.Fatalf("state = %v", st)
		}
		r := s.must(http.StatusConflict, "POST", "/message/sendText/"+name, testAPIKey, map[string]any{"number": "5511", "text": "hi"})
		if msgs := r.messages(t); !strings.Contains(msgs[0], "not connected") {
			t.Fatalf("sendText = %q", msgs)
		}
		s.must(http.StatusOK, "POST", "/instance/restart/"+name, testAPIKey, nil)
		s.must(http.StatusOK, "DELETE", "/instance/logout/"+name, testAPIKey, nil)
		s.must(http.StatusBadRequest, "GET", "/instance/connect/"+name+"?number=55-11", testAPIKey, nil)
		s.must(http.StatusOK, "DELETE", "/instance/delete/"+name, testAPIKey, nil)
	}
	if n := len(fac.Clients()); n != 0 {
		t.Fatalf("%d clients made without a connect", n)
	}
}

// A pairing that cannot reach WhatsApp says so, with the cause, and the
// state keeps the reason.
func TestWhatsAppConnectSaysWhyItFailed(t *testing.T) {
	fac := watest.NewFactory()
	fac.FailConnect(errors.New("dial tcp: lookup web.whatsapp.com: no such host"))
	s := startWhatsAppServer(t, "", fac)
	s.must(http.StatusCreated, "POST", "/instance/create", testAPIKey, map[string]any{"instanceName": "wa", "integration": "WHATSAPP"})
	r := s.must(http.StatusBadGateway, "GET", "/instance/connect/wa", testAPIKey, nil)
	if msgs := r.messages(t); len(msgs) != 1 || msgs[0] != "cannot reach WhatsApp: dial tcp: lookup web.whatsapp.com: no such host" {
		t.Fatalf("connect = %q", msgs)
	}
	if st := s.state("wa"); st["state"] != "close" || !strings.HasPrefix(st["reason"].(string), "cannot reach WhatsApp: dial tcp") {
		t.Fatalf("state after the failed pairing = %v", st)
	}
}

// GET /instance/qrcode answers the pairing's QR code as an image.
func TestWhatsAppQRCodeImage(t *testing.T) {
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	inst := s.createWhatsApp("wa", newReceiver(t))
	const code = "2@pairing-code-for-the-image,noise,identity,adv"
	connectQR(t, s, fac, "wa", inst.Token, code)
	r := s.must(http.StatusOK, "GET", "/instance/qrcode/wa", inst.Token, nil)
	img, err := png.Decode(bytes.NewReader(r.Body))
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	bmp, _ := gozxing.NewBinaryBitmapFromImage(img)
	res, err := zxingqr.NewQRCodeReader().Decode(bmp, nil)
	if err != nil || res.GetText() != code {
		t.Fatalf("QR image reads %v, %v; want %q", res, err, code)
	}
	if svg := s.must(http.StatusOK, "GET", "/instance/qrcode/wa?format=svg", inst.Token, nil); !bytes.HasPrefix(svg.Body, []byte("<svg")) {
		t.Fatalf("svg: %.60s", svg.Body)
	}
	s.must(http.StatusBadRequest, "GET", "/instance/qrcode/wa?format=gif", inst.Token, nil)
	// EVOLUTION instances have no QR code.
	evo := s.createInstance("evo", "")
	s.must(http.StatusConflict, "GET", "/instance/qrcode/evo", evo.Token, nil)
}
