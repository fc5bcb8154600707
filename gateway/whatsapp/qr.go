package whatsapp

import (
	"encoding/base64"
	"fmt"
	"io"
	"strings"

	qrcode "github.com/skip2/go-qrcode"
)

// qrPNGSize is the side of the QR image in pixels: WhatsApp's codes (about
// 240 characters) come out at version 10 or so, which leaves several pixels
// per module plus the quiet zone, enough for a phone camera off a screen.
const qrPNGSize = 320

// qrDataURL renders code as a PNG data URL, the form Evolution's connect
// route returns in base64 and clients put straight into an <img>.
func qrDataURL(code string) (string, error) {
	png, err := qrcode.Encode(code, qrcode.Medium, qrPNGSize)
	if err != nil {
		return "", fmt.Errorf("render QR code: %w", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(png), nil
}

// printQR writes code to a terminal as half-block characters, two modules
// per line, with a title naming the instance. The blocks draw the light
// modules, so the code reads on the usual dark terminal background.
func printQR(w io.Writer, instance, code string) error {
	q, err := qrcode.New(code, qrcode.Low)
	if err != nil {
		return fmt.Errorf("render QR code: %w", err)
	}
	_, err = fmt.Fprintf(w, "\nScan with WhatsApp (Linked devices → Link a device) to pair instance %q:\n%s\n", instance, q.ToSmallString(false))
	return err
}

// QRImage renders a pairing code for GET /instance/qrcode: as a PNG, an
// SVG, or text for a terminal, by format ("png", "svg" or "text"), with
// its content type.
func QRImage(code, format string) ([]byte, string, error) {
	switch format {
	case "", "png":
		png, err := qrcode.Encode(code, qrcode.Medium, qrPNGSize)
		if err != nil {
			return nil, "", fmt.Errorf("render QR code: %w", err)
		}
		return png, "image/png", nil
	case "svg":
		q, err := qrcode.New(code, qrcode.Medium)
		if err != nil {
			return nil, "", fmt.Errorf("render QR code: %w", err)
		}
		return qrSVG(q.Bitmap()), "image/svg+xml", nil
	case "text":
		q, err := qrcode.New(code, qrcode.Low)
		if err != nil {
			return nil, "", fmt.Errorf("render QR code: %w", err)
		}
		return []byte(q.ToSmallString(false)), "text/plain; charset=utf-8", nil
	}
	return nil, "", fmt.Errorf("unknown QR format %q", format)
}

// qrSVG draws the dark modules of bitmap (quiet zone included) as one path
// of unit squares.
func qrSVG(bitmap [][]bool) []byte {
	var b strings.Builder
	n := len(bitmap)
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" shape-rendering="crispEdges">`, n, n)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/><path fill="#000" d="`, n, n)
	for y, row := range bitmap {
		for x, dark := range row {
			if dark {
				fmt.Fprintf(&b, "M%d %dh1v1h-1z", x, y)
			}
		}
	}
	b.WriteString(`"/></svg>`)
	return []byte(b.String())
}
