package gateway_test

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow/proto/waCommon"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wagate/wagate/gateway/whatsapp/watest"
)

// imageEvent is an inbound image message whose attachment the fake client
// serves at path.
func imageEvent(from types.JID, id, path string) *events.Message {
	return (&events.Message{
		Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: from, Sender: from}, ID: id, PushName: "Ana", Timestamp: time.Now()},
		RawMessage: &waE2E.Message{ImageMessage: &waE2E.ImageMessage{
			URL: proto.String("https://mmg.whatsapp.net" + path), DirectPath: proto.String(path), MediaKey: []byte("k"),
			FileEncSHA256: []byte("e"), FileSHA256: []byte("s"), FileLength: proto.Uint64(4), Mimetype: proto.String("image/png"), Caption: proto.String("look"),
		}},
	}).UnwrapRaw()
}

func TestInboundMediaBase64(t *testing.T) {
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	rc := newReceiver(t)
	cl, inst := connectedWhatsApp(t, s, fac, "wa", rc)
	pic := pngBytes(t)
	cl.Media = map[string][]byte{"/img/1": pic, "/img/2": pic}
	ana := types.NewJID("5511911111111", types.DefaultUserServer)

	// base64 off: the event names the attachment only.
	cl.Emit(imageEvent(ana, "3A10", "/img/1"))
	up := rc.waitEvents(t, "messages.upsert", 1)[0].record(t)
	if msg := up["message"].(map[string]any); msg["base64"] != nil || msg["imageMessage"].(map[string]any)["caption"] != "look" {
		t.Fatalf("messages.upsert without base64 = %v", msg)
	}

	// base64 on: the event carries the decrypted bytes.
	s.must(http.StatusOK, "POST", "/webhook/set/wa", inst.Token, map[string]any{"webhook": map[string]any{"url": rc.URL, "base64": true}})
	cl.Emit(imageEvent(ana, "3A11", "/img/2"))
	up = rc.waitEvents(t, "messages.upsert", 2)[1].record(t)
	if msg := up["message"].(map[string]any); msg["base64"] != base64.StdEncoding.EncodeToString(pic) {
		t.Fatalf("messages.upsert with base64 = %v", msg)
	}
	// An attachment that cannot be fetched leaves a note, not a gap.
	cl.Emit(imageEvent(ana, "3A12", "/img/missing"))
	up = rc.waitEvents(t, "messages.upsert", 3)[2].record(t)
	if msg := up["message"].(map[string]any); msg["base64"] != nil || !strings.Contains(msg["base64Error"].(string), "getBase64FromMediaMessage") {
		t.Fatalf("messages.upsert of a missing attachment = %v", msg)
	}

	// getBase64FromMediaMessage downloads a stored message's attachment.
	got := s.must(http.StatusOK, "POST", "/chat/getBase64FromMediaMessage/wa", inst.Token, map[string]any{
		"message": map[string]any{"key": map[string]any{"id": "3A10", "remoteJid": ana.String(), "fromMe": false}}, "convertToMp4": false,
	}).json(t)
	if got["base64"] != base64.StdEncoding.EncodeToString(pic) || got["mediaType"] != "imageMessage" || got["mimetype"] != "image/png" ||
		got["caption"] != "look" || got["size"].(map[string]any)["fileLength"] != "4" && got["size"].(map[string]any)["fileLength"] == nil {
		t.Fatalf("getBase64FromMediaMessage = %v", got)
	}
	s.must(http.StatusNotFound, "POST", "/chat/getBase64FromMediaMessage/wa", inst.Token, map[string]any{"message": map[string]any{"key": map[string]any{"id": "nope"}}})
	s.must(http.StatusBadRequest, "POST", "/chat/getBase64FromMediaMessage/wa", inst.Token, map[string]any{"message": map[string]any{"key": map[string]any{}}})
}

func TestGetBase64OnEvolution(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	pic := pngBytes(t)
	s.must(http.StatusCreated, "POST", "/message/sendMedia/shop", inst.Token, map[string]any{"number": "5511", "mediatype": "image", "media": base64.StdEncoding.EncodeToString(pic)})
	sent := s.must(http.StatusCreated, "POST", "/message/sendMedia/shop", inst.Token, map[string]any{"number": "5511", "mediatype": "document", "media": base64.StdEncoding.EncodeToString(pic), "fileName": "a.png"}).json(t)
	id := sent["key"].(map[string]any)["id"]
	got := s.must(http.StatusOK, "POST", "/chat/getBase64FromMediaMessage/shop", inst.Token, map[string]any{"message": map[string]any{"key": map[string]any{"id": id, "fromMe": true}}}).json(t)
	if got["base64"] != base64.StdEncoding.EncodeToString(pic) || got["fileName"] != "a.png" || got["mediaType"] != "documentMessage" {
		t.Fatalf("getBase64FromMediaMessage = %v", got)
	}
}

func TestReceiptsEditsAndDeletions(t *testing.T) {
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	rc := newReceiver(t)
	cl, inst := connectedWhatsApp(t, s, fac, "wa", rc)
	ana := types.NewJID("5511911111111", types.DefaultUserServer)
	sent := s.must(http.StatusCreated, "POST", "/message/sendText/wa", inst.Token, map[string]any{"number": "5511911111111", "text": "hello"}).json(t)
	id := sent["key"].(map[string]any)["id"].(string)
	status := func() string {
		found := s.must(http.StatusOK, "POST", "/chat/findMessages/wa", inst.Token, map[string]any{"where": map[string]any{"key": map[string]any{"id": id}}}).json(t)
		return found["messages"].(map[string]any)["records"].([]any)[0].(map[string]any)["status"].(string)
	}
	receipt := func(typ types.ReceiptType) {
		cl.Emit(&events.Receipt{MessageSource: types.MessageSource{Chat: ana, Sender: ana}, MessageIDs: []types.MessageID{id}, Timestamp: time.Now(), Type: typ})
	}

	receipt(types.ReceiptTypeDelivered)
	ev := rc.waitEvents(t, "messages.update", 1)[0].record(t)
	if ev["keyId"] != id || ev["status"] != "DELIVERY_ACK" || ev["fromMe"] != true || ev["remoteJid"] != ana.String() {
		t.Fatalf("messages.update = %v", ev)
	}
	receipt(types.ReceiptTypeRead)
	if ev := rc.waitEvents(t, "messages.update", 2)[1].record(t); ev["status"] != "READ" {
		t.Fatalf("messages.update = %v", ev)
	}
	// A late delivery receipt does not move the status back.
	receipt(types.ReceiptTypeDelivered)
	receipt(types.ReceiptTypePlayed)
	if ev := rc.waitEvents(t, "messages.update", 3)[2].record(t); ev["status"] != "PLAYED" {
		t.Fatalf("messages.update = %v", ev)
	}
	if st := status(); st != "PLAYED" {
		t.Fatalf("stored status = %s", st)
	}
	if n := len(rc.events("messages.update")); n != 3 {
		t.Fatalf("%d messages.update events", n)
	}

	// The other side edits, then deletes, a message.
	cl.Emit((&events.Message{
		Info:       types.MessageInfo{MessageSource: types.MessageSource{Chat: ana, Sender: ana}, ID: "3A20", Timestamp: time.Now()},
		RawMessage: &waE2E.Message{Conversation: proto.String("see you at 5")},
	}).UnwrapRaw())
	rc.waitEvents(t, "messages.upsert", 1)
	cl.Emit((&events.Message{
		Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: ana, Sender: ana}, ID: "3A21", Timestamp: time.Now(), Edit: types.EditAttributeMessageEdit},
		RawMessage: &waE2E.Message{EditedMessage: &waE2E.FutureProofMessage{Message: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_MESSAGE_EDIT.Enum(), Key: &waCommon.MessageKey{ID: proto.String("3A20"), RemoteJID: proto.String(ana.String())},
			EditedMessage: &waE2E.Message{Conversation: proto.String("see you at 6")},
		}}}},
	}).UnwrapRaw())
	ev = rc.waitEvents(t, "messages.update", 4)[3].record(t)
	if ev["keyId"] != "3A20" || ev["text"] != "see you at 6" || ev["fromMe"] != false {
		t.Fatalf("messages.update of an edit = %v", ev)
	}
	cl.Emit((&events.Message{
		Info: types.MessageInfo{MessageSource: types.MessageSource{Chat: ana, Sender: ana}, ID: "3A22", Timestamp: time.Now(), Edit: types.EditAttributeSenderRevoke},
		RawMessage: &waE2E.Message{ProtocolMessage: &waE2E.ProtocolMessage{
			Type: waE2E.ProtocolMessage_REVOKE.Enum(), Key: &waCommon.MessageKey{ID: proto.String("3A20"), RemoteJID: proto.String(ana.String())},
		}},
	}).UnwrapRaw())
	del := rc.waitEvents(t, "messages.delete", 1)[0].record(t)
	if del["id"] != "3A20" || del["remoteJid"] != ana.String() {
		t.Fatalf("messages.delete = %v", del)
	}
	found := s.must(http.StatusOK, "POST", "/chat/findMessages/wa", inst.Token, map[string]any{"where": map[string]any{"key": map[string]any{"id": "3A20"}}}).json(t)
	rec := found["messages"].(map[string]any)["records"].([]any)[0].(map[string]any)
	if rec["status"] != "DELETED" || rec["message"].(map[string]any)["conversation"] != "see you at 6" {
		t.Fatalf("stored message = %v", rec)
	}
}
