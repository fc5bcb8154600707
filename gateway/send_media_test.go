package gateway_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/gateway/whatsapp"
	"github.com/wagate/wagate/gateway/whatsapp/watest"
)

// webpBytes is the header of a WebP image: enough for sniffing.
var webpBytes = append([]byte("RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00"), bytes.Repeat([]byte{0x2f}, 13)...)

// oggOpus is the start of an Ogg Opus stream whose last page ends at 2 s.
var oggOpus = func() []byte {
	page := func(granule uint64, payload string) []byte {
		p := []byte("OggS\x00\x00")
		for i := 0; i < 8; i++ {
			p = append(p, byte(granule>>(8*i)))
		}
		p = append(p, make([]byte, 13)...)
		return append(p, payload...)
	}
	return append(page(0, "OpusHead\x01\x01\x00\x00\x80\xbb\x00\x00\x00\x00\x00"), page(96000, "audio")...)
}()

// mediaServer serves the PNG at /pic.png and an HTML page at /page.
func mediaServer(t *testing.T, pic []byte) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/pic.png":
			w.Header().Set("Content-Type", "image/png")
			w.Write(pic)
		default:
			w.Header().Set("Content-Type", "text/html")
			w.Write([]byte("<html><body>not found</body></html>"))
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}

func TestSendKindsOnEvolution(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	inst := s.createInstance("shop", rc.URL)
	rc.setSecret(inst.Secret)
	pic := pngBytes(t)
	media := mediaServer(t, pic)
	b64 := base64.StdEncoding.EncodeToString(pic)

	tests := []struct {
		name, path string
		body       map[string]any
		kind       string
		check      func(t *testing.T, msg map[string]any)
	}{
		{"image by URL with caption", "sendMedia", map[string]any{"number": "5511", "mediatype": "image", "media": media.URL + "/pic.png", "caption": "our menu"},
			"imageMessage", func(t *testing.T, msg map[string]any) {
				im := msg["imageMessage"].(map[string]any)
				if im["caption"] != "our menu" || im["mimetype"] != "image/png" || im["url"] != media.URL+"/pic.png" || msg["base64"] != b64 {
					t.Fatalf("message = %v", msg)
				}
			}},
		{"document in base64", "sendMedia", map[string]any{"number": "5511", "mediatype": "document", "media": "data:application/pdf;base64," + base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 x")), "fileName": "menu.pdf"},
			"documentMessage", func(t *testing.T, msg map[string]any) {
				d := msg["documentMessage"].(map[string]any)
				if d["fileName"] != "menu.pdf" || d["mimetype"] != "application/pdf" {
					t.Fatalf("message = %v", msg)
				}
			}},
		{"voice note", "sendWhatsAppAudio", map[string]any{"number": "5511", "audio": base64.StdEncoding.EncodeToString(oggOpus), "delay": 10},
			"audioMessage", func(t *testing.T, msg map[string]any) {
				if a := msg["audioMessage"].(map[string]any); a["ptt"] != true {
					t.Fatalf("message = %v", msg)
				}
			}},
		{"sticker", "sendSticker", map[string]any{"number": "5511", "sticker": base64.StdEncoding.EncodeToString(webpBytes)},
			"stickerMessage", func(t *testing.T, msg map[string]any) {
				if st := msg["stickerMessage"].(map[string]any); st["mimetype"] != "image/webp" {
					t.Fatalf("message = %v", msg)
				}
			}},
		{"location", "sendLocation", map[string]any{"number": "5511", "latitude": -23.5, "longitude": -46.6, "name": "Shop", "address": "Rua A, 1"},
			"locationMessage", func(t *testing.T, msg map[string]any) {
				l := msg["locationMessage"].(map[string]any)
				if l["degreesLatitude"] != -23.5 || l["name"] != "Shop" {
					t.Fatalf("message = %v", msg)
				}
			}},
		{"contact", "sendContact", map[string]any{"number": "5511", "contact": []map[string]any{{"fullName": "Ana Lima", "phoneNumber": "+55 11 91111-1111", "organization": "Shop"}}},
			"contactMessage", func(t *testing.T, msg map[string]any) {
				v := msg["contactMessage"].(map[string]any)["vcard"].(string)
				if !strings.Contains(v, "FN:Ana Lima") || !strings.Contains(v, "waid=5511911111111:") {
					t.Fatalf("vcard = %q", v)
				}
			}},
		{"reaction", "sendReaction", map[string]any{"key": map[string]any{"remoteJid": "5511@s.whatsapp.net", "fromMe": false, "id": "IN-1"}, "reaction": "👍"},
			"reactionMessage", func(t *testing.T, msg map[string]any) {
				r := msg["reactionMessage"].(map[string]any)
				if r["text"] != "👍" || r["key"].(map[string]any)["id"] != "IN-1" {
					t.Fatalf("message = %v", msg)
				}
			}},
		{"poll", "sendPoll", map[string]any{"number": "5511", "name": "Pizza?", "selectableCount": 1, "values": []string{"yes", "no"}},
			"pollCreationMessage", func(t *testing.T, msg map[string]any) {
				if p := msg["pollCreationMessage"].(map[string]any); p["name"] != "Pizza?" || len(p["options"].([]any)) != 2 {
					t.Fatalf("message = %v", msg)
				}
			}},
		{"list", "sendList", map[string]any{"number": "5511", "title": "Menu", "footerText": "f", "buttonText": "Open", "sections": []map[string]any{{"title": "Food", "rows": []map[string]any{{"title": "Pizza", "rowId": "p"}}}}},
			"listMessage", func(t *testing.T, msg map[string]any) {}},
		{"buttons", "sendButtons", map[string]any{"number": "5511", "title": "Choose", "buttons": []map[string]any{{"type": "reply", "displayText": "Yes", "id": "y"}}},
			"buttonsMessage", func(t *testing.T, msg map[string]any) {}},
		{"text status", "sendStatus", map[string]any{"type": "text", "content": "Open today", "backgroundColor": "#008000", "font": 1},
			"extendedTextMessage", func(t *testing.T, msg map[string]any) {}},
		{"text quoting with mentions", "sendText", map[string]any{"number": "1203@g.us", "text": "hi @5511", "mentioned": []string{"5511"}, "everyOne": false,
			"quoted": map[string]any{"key": map[string]any{"id": "Q1", "remoteJid": "1203@g.us", "fromMe": false, "participant": "5522@s.whatsapp.net"}}, "linkPreview": true, "encoding": true},
			"extendedTextMessage", func(t *testing.T, msg map[string]any) {
				ci := msg["extendedTextMessage"].(map[string]any)["contextInfo"].(map[string]any)
				if ci["stanzaId"] != "Q1" || ci["participant"] != "5522@s.whatsapp.net" || ci["mentionedJid"].([]any)[0] != "5511@s.whatsapp.net" {
					t.Fatalf("contextInfo = %v", ci)
				}
			}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sent := s.must(http.StatusCreated, "POST", "/message/"+tc.path+"/shop", inst.Token, tc.body).json(t)
			if sent["messageType"] != tc.kind || sent["key"].(map[string]any)["fromMe"] != true {
				t.Fatalf("%s = %v", tc.path, sent)
			}
			tc.check(t, sent["message"].(map[string]any))
			ev := rc.waitEvents(t, "send.message", i+1)[i].record(t)
			if ev["key"].(map[string]any)["id"] != sent["key"].(map[string]any)["id"] || ev["messageType"] != tc.kind {
				t.Fatalf("send.message = %v", ev)
			}
			tc.check(t, ev["message"].(map[string]any))
		})
	}
	// The stored records show what was sent.
	found := s.must(http.StatusOK, "POST", "/chat/findMessages/shop", inst.Token, map[string]any{"where": map[string]any{"key": map[string]any{"remoteJid": "5511@s.whatsapp.net"}}}).json(t)
	records := found["messages"].(map[string]any)["records"].([]any)
	kinds := map[string]bool{}
	for _, r := range records {
		kinds[r.(map[string]any)["messageType"].(string)] = true
	}
	for _, k := range []string{"imageMessage", "documentMessage", "audioMessage", "stickerMessage", "locationMessage", "contactMessage", "reactionMessage", "pollCreationMessage"} {
		if !kinds[k] {
			t.Errorf("findMessages has no %s: %v", k, kinds)
		}
	}
}

func TestSendRejectsBadBodies(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	media := mediaServer(t, pngBytes(t))
	tests := []struct {
		path string
		body any
		want []string
	}{
		{"sendMedia", map[string]any{"number": "5511", "mediatype": "image", "media": media.URL + "/page"}, []string{"media: is text/html, not an image"}},
		{"sendMedia", map[string]any{"number": "", "mediatype": "gif", "media": "x"}, []string{"number: ", "mediatype: must be image, video, document or audio"}},
		{"sendMedia", map[string]any{"number": "5511", "mediatype": "image", "media": "***"}, []string{"media: neither an http(s) URL nor valid base64"}},
		{"sendMedia", map[string]any{"number": "5511", "mediatype": "image", "media": "x", "colour": "red"}, []string{"colour: unknown field"}},
		{"sendLocation", map[string]any{"number": "5511", "latitude": 91}, []string{"latitude: must be from -90 to 90", "longitude: required"}},
		{"sendReaction", map[string]any{"key": map[string]any{"id": "X"}}, []string{"key.remoteJid: ", "key.fromMe: required", "reaction: required"}},
		{"sendPoll", map[string]any{"number": "5511", "name": "?", "values": []string{"a", "a"}, "selectableCount": 5}, []string{"values[1]: repeats an earlier option", "selectableCount: "}},
		{"sendButtons", map[string]any{"number": "5511", "title": "t", "buttons": []map[string]any{{"type": "pix", "displayText": "Pay", "id": "p"}}}, []string{`buttons[0].type: "pix" buttons are not supported`}},
		{"sendContact", map[string]any{"number": "5511", "contact": []map[string]any{{"fullName": ""}}}, []string{"contact[0].fullName: required", "contact[0].phoneNumber: required"}},
		{"sendStatus", map[string]any{"type": "gif"}, []string{"type: must be text, image, video or audio"}},
		{"sendSticker", map[string]any{"number": "5511", "sticker": base64.StdEncoding.EncodeToString(pngBytes(t)), "notConvertSticker": true}, []string{"sticker: is not WebP"}},
	}
	for _, tc := range tests {
		t.Run(tc.path, func(t *testing.T) {
			msgs := s.must(http.StatusBadRequest, "POST", "/message/"+tc.path+"/shop", inst.Token, tc.body).messages(t)
			joined := strings.Join(msgs, "\n")
			for _, w := range tc.want {
				if !strings.Contains(joined, w) {
					t.Errorf("messages %q lack %q", msgs, w)
				}
			}
		})
	}
}

func TestSendMediaRefusesPrivateURL(t *testing.T) {
	s := startServer(t, "", withConfig(func(c *config.Config) { c.AllowPrivateFetch = false }))
	inst := s.createInstance("shop", "")
	media := mediaServer(t, pngBytes(t))
	msgs := s.must(http.StatusBadRequest, "POST", "/message/sendMedia/shop", inst.Token, map[string]any{
		"number": "5511", "mediatype": "image", "media": media.URL + "/pic.png",
	}).messages(t)
	if len(msgs) != 1 || !strings.HasPrefix(msgs[0], "media: ") {
		t.Fatalf("messages = %q", msgs)
	}
}

// connectedWhatsApp creates a WHATSAPP instance and pairs and connects it
// through the fake client.
func connectedWhatsApp(t *testing.T, s *server, fac *watest.Factory, name string, rc *receiver) (*watest.Client, instance) {
	t.Helper()
	inst := s.createWhatsApp(name, rc)
	cl, r := connectQR(t, s, fac, name, inst.Token, "2@x")
	if r.Status != http.StatusOK {
		t.Fatalf("connect: %d %s", r.Status, r.Body)
	}
	cl.QR(whatsmeow.QRChannelSuccess)
	cl.CloseQR()
	cl.Emit(&events.PairSuccess{ID: types.JID{User: "5511900000000", Device: 7, Server: types.DefaultUserServer}})
	cl.Emit(&events.Connected{})
	eventually(t, func() bool { return s.state(name)["state"] == "open" }, "open")
	return cl, inst
}

func TestSendKindsOnWhatsApp(t *testing.T) {
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	rc := newReceiver(t)
	cl, inst := connectedWhatsApp(t, s, fac, "wa", rc)
	group := types.NewJID("120363000000000001", types.GroupServer)
	cl.Groups = map[types.JID]*types.GroupInfo{group: {Participants: []types.GroupParticipant{
		{JID: types.NewJID("5511911111111", types.DefaultUserServer)}, {JID: types.NewJID("5511922222222", types.DefaultUserServer)},
	}}}
	pic := pngBytes(t)
	b64 := base64.StdEncoding.EncodeToString(pic)

	tests := []struct {
		name, path string
		body       map[string]any
		check      func(t *testing.T, sent watest.Sent, up []watest.Upload)
	}{
		{"image with caption", "sendMedia", map[string]any{"number": "5511911111111", "mediatype": "image", "media": b64, "caption": "menu"},
			func(t *testing.T, sent watest.Sent, up []watest.Upload) {
				im := sent.Message.GetImageMessage()
				if im.GetCaption() != "menu" || im.GetMimetype() != "image/png" || im.GetDirectPath() == "" || len(im.GetMediaKey()) == 0 ||
					im.GetFileLength() != uint64(len(pic)) || !bytes.Equal(up[len(up)-1].Data, pic) || up[len(up)-1].Kind != whatsmeow.MediaImage {
					t.Fatalf("image = %v", im)
				}
			}},
		{"document with file name", "sendMedia", map[string]any{"number": "5511911111111", "mediatype": "document", "media": base64.StdEncoding.EncodeToString([]byte("%PDF-1.4 x")), "fileName": "menu.pdf", "mimetype": "application/pdf"},
			func(t *testing.T, sent watest.Sent, up []watest.Upload) {
				d := sent.Message.GetDocumentMessage()
				if d.GetFileName() != "menu.pdf" || d.GetMimetype() != "application/pdf" || up[len(up)-1].Kind != whatsmeow.MediaDocument {
					t.Fatalf("document = %v", d)
				}
			}},
		{"voice note", "sendWhatsAppAudio", map[string]any{"number": "5511911111111", "audio": base64.StdEncoding.EncodeToString(oggOpus)},
			func(t *testing.T, sent watest.Sent, up []watest.Upload) {
				a := sent.Message.GetAudioMessage()
				if !a.GetPTT() || a.GetMimetype() != "audio/ogg; codecs=opus" || a.GetSeconds() != 2 || up[len(up)-1].Kind != whatsmeow.MediaAudio {
					t.Fatalf("audio = %v", a)
				}
			}},
		{"sticker", "sendSticker", map[string]any{"number": "5511911111111", "sticker": base64.StdEncoding.EncodeToString(webpBytes)},
			func(t *testing.T, sent watest.Sent, _ []watest.Upload) {
				if st := sent.Message.GetStickerMessage(); st.GetMimetype() != "image/webp" || st.GetDirectPath() == "" {
					t.Fatalf("sticker = %v", st)
				}
			}},
		{"location", "sendLocation", map[string]any{"number": "5511911111111", "latitude": -23.5, "longitude": -46.6, "name": "Shop", "address": "Rua A"},
			func(t *testing.T, sent watest.Sent, _ []watest.Upload) {
				l := sent.Message.GetLocationMessage()
				if l.GetDegreesLatitude() != -23.5 || l.GetDegreesLongitude() != -46.6 || l.GetName() != "Shop" || l.GetAddress() != "Rua A" {
					t.Fatalf("location = %v", l)
				}
			}},
		{"contact", "sendContact", map[string]any{"number": "5511911111111", "contact": []map[string]any{{"fullName": "Ana", "wuid": "5511933333333", "phoneNumber": "+55 11 93333-3333"}}},
			func(t *testing.T, sent watest.Sent, _ []watest.Upload) {
				c := sent.Message.GetContactMessage()
				if c.GetDisplayName() != "Ana" || !strings.Contains(c.GetVcard(), "waid=5511933333333:+55 11 93333-3333") {
					t.Fatalf("contact = %v", c)
				}
			}},
		{"reaction", "sendReaction", map[string]any{"key": map[string]any{"remoteJid": "5511911111111@s.whatsapp.net", "fromMe": false, "id": "3A01"}, "reaction": "❤️"},
			func(t *testing.T, sent watest.Sent, _ []watest.Upload) {
				r := sent.Message.GetReactionMessage()
				if r.GetText() != "❤️" || r.GetKey().GetID() != "3A01" || r.GetKey().GetFromMe() || r.GetKey().GetRemoteJID() != "5511911111111@s.whatsapp.net" {
					t.Fatalf("reaction = %v", r)
				}
			}},
		{"reaction removed", "sendReaction", map[string]any{"key": map[string]any{"remoteJid": "5511911111111@s.whatsapp.net", "fromMe": true, "id": "3A02"}, "reaction": ""},
			func(t *testing.T, sent watest.Sent, _ []watest.Upload) {
				if r := sent.Message.GetReactionMessage(); r.Text == nil || r.GetText() != "" || !r.GetKey().GetFromMe() {
					t.Fatalf("reaction = %v", r)
				}
			}},
		{"poll", "sendPoll", map[string]any{"number": "5511911111111", "name": "Pizza?", "selectableCount": 1, "values": []string{"yes", "no"}},
			func(t *testing.T, sent watest.Sent, _ []watest.Upload) {
				p := sent.Message.GetPollCreationMessage()
				if p.GetName() != "Pizza?" || len(p.GetOptions()) != 2 || p.GetOptions()[1].GetOptionName() != "no" || p.GetSelectableOptionsCount() != 1 ||
					len(sent.Message.GetMessageContextInfo().GetMessageSecret()) != 32 {
					t.Fatalf("poll = %v", sent.Message)
				}
			}},
		{"quoted reply with mentions", "sendText", map[string]any{"number": group.String(), "text": "all of you", "mentionsEveryOne": true,
			"quoted": map[string]any{"key": map[string]any{"id": "3A09", "remoteJid": group.String(), "fromMe": false, "participant": "5511922222222@s.whatsapp.net"}}},
			func(t *testing.T, sent watest.Sent, _ []watest.Upload) {
				ext := sent.Message.GetExtendedTextMessage()
				ci := ext.GetContextInfo()
				if ext.GetText() != "all of you" || ci.GetStanzaID() != "3A09" || ci.GetParticipant() != "5511922222222@s.whatsapp.net" ||
					strings.Join(ci.GetMentionedJID(), ",") != "5511911111111@s.whatsapp.net,5511922222222@s.whatsapp.net" || sent.To != group {
					t.Fatalf("text = %v", sent.Message)
				}
			}},
		{"list", "sendList", map[string]any{"number": "5511911111111", "title": "Menu", "footerText": "f", "buttonText": "Open", "sections": []map[string]any{{"title": "Food", "rows": []map[string]any{{"title": "Pizza", "rowId": "p"}}}}},
			func(t *testing.T, sent watest.Sent, _ []watest.Upload) {
				l := sent.Message.GetListMessage()
				if l.GetButtonText() != "Open" || l.GetSections()[0].GetRows()[0].GetRowID() != "p" {
					t.Fatalf("list = %v", l)
				}
			}},
		{"image status", "sendStatus", map[string]any{"type": "image", "content": b64, "caption": "new"},
			func(t *testing.T, sent watest.Sent, _ []watest.Upload) {
				if sent.To != types.StatusBroadcastJID || sent.Message.GetImageMessage().GetCaption() != "new" {
					t.Fatalf("status = %v to %v", sent.Message, sent.To)
				}
			}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := s.must(http.StatusCreated, "POST", "/message/"+tc.path+"/wa", inst.Token, tc.body).json(t)
			sent := cl.SentMessages()
			if len(sent) != i+1 {
				t.Fatalf("%d messages sent", len(sent))
			}
			last := sent[i]
			if rec["key"].(map[string]any)["id"] != string(last.ID) {
				t.Fatalf("record %v for sent %s", rec, last.ID)
			}
			tc.check(t, last, cl.Uploads())
			ev := rc.waitEvents(t, "send.message", i+1)[i].record(t)
			if ev["key"].(map[string]any)["id"] != string(last.ID) || ev["messageType"] != rec["messageType"] {
				t.Fatalf("send.message = %v", ev)
			}
		})
	}
	// A media record names the upload, so it can be downloaded again.
	image := s.must(http.StatusOK, "POST", "/chat/findMessages/wa", inst.Token, map[string]any{"where": map[string]any{"key": map[string]any{"id": string(cl.SentMessages()[0].ID)}}}).json(t)
	rec := image["messages"].(map[string]any)["records"].([]any)[0].(map[string]any)
	if im := rec["message"].(map[string]any)["imageMessage"].(map[string]any); im["directPath"] == nil || im["mediaKey"] == nil {
		t.Fatalf("stored image = %v", rec)
	}
}

func TestSendVoiceNoteConverted(t *testing.T) {
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg is not installed (apt-get install ffmpeg); .ci/run installs it")
	}
	wav, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=frequency=440:duration=2", "-f", "wav", "pipe:1").Output()
	if err != nil {
		t.Fatalf("make a test tone: %v", err)
	}
	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	rc := newReceiver(t)
	cl, inst := connectedWhatsApp(t, s, fac, "wa", rc)
	s.must(http.StatusCreated, "POST", "/message/sendWhatsAppAudio/wa", inst.Token, map[string]any{
		"number": "5511911111111", "audio": base64.StdEncoding.EncodeToString(wav), "delay": 20,
	})
	up := cl.Uploads()
	if len(up) != 1 || !whatsapp.IsOggOpus(up[0].Data) {
		t.Fatalf("uploaded %d attachments; Ogg Opus: %v", len(up), len(up) == 1 && whatsapp.IsOggOpus(up[0].Data))
	}
	a := cl.SentMessages()[0].Message.GetAudioMessage()
	if !a.GetPTT() || a.GetMimetype() != "audio/ogg; codecs=opus" || a.GetSeconds() != 2 {
		t.Fatalf("audio = %v", a)
	}
	// "recording…" rather than "typing…" before a voice note.
	if p := cl.Presences(); len(p) < 1 || p[0].Media != types.ChatPresenceMediaAudio {
		t.Fatalf("presences = %+v", p)
	}
}
