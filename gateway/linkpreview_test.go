package gateway_test

import (
	"bytes"
	"image"
	"image/jpeg"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wagate/wagate/gateway/whatsapp/watest"
)

func TestSendTextLinkPreview(t *testing.T) {
	var thumb bytes.Buffer
	if err := jpeg.Encode(&thumb, image.NewRGBA(image.Rect(0, 0, 8, 8)), nil); err != nil {
		t.Fatal(err)
	}
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/menu":
			w.Write([]byte(`<!doctype html><html><head><title>Plain title</title>
				<meta property="og:title" content="Today's menu">
				<meta name="description" content="Soups &amp; salads">
				<meta property="og:image" content="/thumb.jpg"></head><body>…</body></html>`))
		case "/thumb.jpg":
			w.Write(thumb.Bytes())
		default:
			http.NotFound(w, r)
		}
	}))
	defer pages.Close()

	fac := watest.NewFactory()
	s := startWhatsAppServer(t, "", fac)
	cl, inst := connectedWhatsApp(t, s, fac, "wa", newReceiver(t))
	text := "See " + pages.URL + "/menu."
	s.must(http.StatusCreated, "POST", "/message/sendText/wa", inst.Token, map[string]any{"number": "5511911111111", "text": text, "linkPreview": true})
	msgs := cl.SentMessages()
	et := msgs[len(msgs)-1].Message.GetExtendedTextMessage()
	if et.GetText() != text || et.GetMatchedText() != pages.URL+"/menu" || et.GetTitle() != "Today's menu" ||
		et.GetDescription() != "Soups & salads" || !bytes.Equal(et.GetJPEGThumbnail(), thumb.Bytes()) {
		t.Fatalf("preview = %v", et)
	}
	// A page that cannot be read never blocks the send; without
	// linkPreview no page is fetched.
	s.must(http.StatusCreated, "POST", "/message/sendText/wa", inst.Token, map[string]any{"number": "5511911111111", "text": pages.URL + "/gone", "linkPreview": true})
	s.must(http.StatusCreated, "POST", "/message/sendText/wa", inst.Token, map[string]any{"number": "5511911111111", "text": pages.URL + "/menu"})
	msgs = cl.SentMessages()
	for _, m := range msgs[len(msgs)-2:] {
		if m.Message.GetConversation() == "" {
			t.Fatalf("send without a preview = %v", m.Message)
		}
	}

	// On EVOLUTION the preview is in the send.message record.
	evo := s.createInstance("evo", "")
	rec := s.must(http.StatusCreated, "POST", "/message/sendText/evo", evo.Token, map[string]any{"number": "5511911111111", "text": text, "linkPreview": true}).json(t)
	if et := rec["message"].(map[string]any)["extendedTextMessage"].(map[string]any); et["title"] != "Today's menu" || et["matchedText"] != pages.URL+"/menu" {
		t.Fatalf("EVOLUTION preview = %v", rec["message"])
	}
}
