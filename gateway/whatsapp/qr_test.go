package whatsapp

import (
	"bytes"
	"encoding/base64"
	"image/png"
	"strings"
	"testing"

	"github.com/makiuchi-d/gozxing"
	"github.com/makiuchi-d/gozxing/qrcode"
)

// A real WhatsApp pairing code has this shape: ref, noise key, identity
// key and adv secret, comma-separated, about 240 characters.
const sampleQR = "2@Yq0VHi3cDkLKu0oNc5TnDPU1N4e6zLq1JfRbuTFt3f9bHNFJtA2/mSSDAyv9cmTQXKCcIqWMq84FvlFjGvZB0UfDsE6UDrW2dq8=," +
	"3gKIXhKc7zfQUWkQEbETc5R4P1aD7CjOFJ5g9+yKDEE=,LqJ6rJr8ZpGUv4QWxZ9BvT1Xo5sKcL2EM2bA3TTkWTc=,b2N+q3BGFwLh8p9q8g6cWnPnH7mY8UJk1zUQ8Jt4C0o="

func TestQRDataURLDecodesToTheCode(t *testing.T) {
	url, err := qrDataURL(sampleQR)
	if err != nil {
		t.Fatal(err)
	}
	const prefix = "data:image/png;base64,"
	if !strings.HasPrefix(url, prefix) {
		t.Fatalf("not a PNG data URL: %.40s", url)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(url, prefix))
	if err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	if res.GetText() != sampleQR {
		t.Fatalf("decoded %q\nwant    %q", res.GetText(), sampleQR)
	}
}

func TestPrintQR(t *testing.T) {
	var buf bytes.Buffer
	if err := printQR(&buf, "shop", sampleQR); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.Contains(out, `pair instance "shop"`) || !strings.ContainsAny(out, "▀▄█") || strings.Count(out, "\n") < 20 {
		t.Fatalf("terminal QR:\n%s", out)
	}
}
