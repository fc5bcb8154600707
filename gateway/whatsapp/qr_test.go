package whatsapp

import (
	"bytes"
	"encoding/base64"
	"image"
	"image/draw"
	"image/png"
	"regexp"
	"strconv"
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

func decodeQRImage(t *testing.T, img image.Image) string {
	t.Helper()
	bmp, err := gozxing.NewBinaryBitmapFromImage(img)
	if err != nil {
		t.Fatal(err)
	}
	res, err := qrcode.NewQRCodeReader().Decode(bmp, nil)
	if err != nil {
		t.Fatalf("decode QR: %v", err)
	}
	return res.GetText()
}

// Every format of QRImage reads back as the code.
func TestQRImageFormats(t *testing.T) {
	b, typ, err := QRImage(sampleQR, "png")
	if err != nil || typ != "image/png" {
		t.Fatalf("png: %q, %v", typ, err)
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := decodeQRImage(t, img); got != sampleQR {
		t.Fatalf("png decodes to %q", got)
	}

	b, typ, err = QRImage(sampleQR, "svg")
	if err != nil || typ != "image/svg+xml" {
		t.Fatalf("svg: %q, %v", typ, err)
	}
	// Draw the SVG's modules, four pixels each, and read the code back.
	size := regexp.MustCompile(`viewBox="0 0 (\d+) (\d+)"`).FindSubmatch(b)
	if size == nil {
		t.Fatalf("svg without a viewBox: %.80s", b)
	}
	n, _ := strconv.Atoi(string(size[1]))
	const scale = 4
	raster := image.NewGray(image.Rect(0, 0, n*scale, n*scale))
	draw.Draw(raster, raster.Bounds(), image.White, image.Point{}, draw.Src)
	for _, m := range regexp.MustCompile(`M(\d+) (\d+)h1v1h-1z`).FindAllSubmatch(b, -1) {
		x, _ := strconv.Atoi(string(m[1]))
		y, _ := strconv.Atoi(string(m[2]))
		draw.Draw(raster, image.Rect(x*scale, y*scale, (x+1)*scale, (y+1)*scale), image.Black, image.Point{}, draw.Src)
	}
	if got := decodeQRImage(t, raster); got != sampleQR {
		t.Fatalf("svg decodes to %q", got)
	}

	b, typ, err = QRImage(sampleQR, "text")
	if err != nil || !strings.HasPrefix(typ, "text/plain") || !strings.ContainsAny(string(b), "▀▄█") {
		t.Fatalf("text: %q, %v:\n%s", typ, err, b)
	}
	if _, _, err := QRImage(sampleQR, "gif"); err == nil {
		t.Fatal("an unknown format was rendered")
	}
}
