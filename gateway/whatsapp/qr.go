package whatsapp

import (
	"encoding/base64"
	"fmt"
	"io"

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
