package whatsapp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/wagate/wagate"
)

// convertTimeout bounds one ffmpeg run: a voice note or sticker converts in
// well under a second; a stuck decoder must not hold a request forever.
const convertTimeout = 60 * time.Second

// ffmpeg output arguments: mono Opus at 48 kHz in Ogg, what WhatsApp's
// own voice notes are; and a sticker-sized WebP.
var (
	voiceArgs   = []string{"-vn", "-ac", "1", "-ar", "48000", "-c:a", "libopus", "-b:a", "32k", "-application", "voip", "-f", "ogg"}
	stickerArgs = []string{"-vf", "scale=512:512:force_original_aspect_ratio=decrease", "-frames:v", "1", "-c:v", "libwebp", "-f", "webp"}
)

// IsOggOpus reports whether data is Opus audio in an Ogg container.
func IsOggOpus(data []byte) bool {
	return bytes.HasPrefix(data, []byte("OggS")) && bytes.Contains(data[:min(len(data), 128)], []byte("OpusHead"))
}

// IsWebP reports whether data is a WebP image.
func IsWebP(data []byte) bool {
	return len(data) >= 12 && string(data[:4]) == "RIFF" && string(data[8:12]) == "WEBP"
}

// OggSeconds is the duration of Ogg Opus audio, rounded: the granule
// position of its last page counts 48 kHz samples, including the encoder's
// pre-skip, which the OpusHead header gives.
func OggSeconds(data []byte) uint32 {
	i := bytes.LastIndex(data, []byte("OggS"))
	if i < 0 || len(data) < i+14 {
		return 0
	}
	granule := binary.LittleEndian.Uint64(data[i+6 : i+14])
	if granule == ^uint64(0) {
		return 0 // a page with no finished packet
	}
	if h := bytes.Index(data, []byte("OpusHead")); h >= 0 && len(data) >= h+12 {
		if skip := uint64(binary.LittleEndian.Uint16(data[h+10 : h+12])); skip < granule {
			granule -= skip
		}
	}
	secs := uint32((granule + 24000) / 48000)
	if secs == 0 && granule > 0 {
		secs = 1
	}
	return secs
}

// convert runs ffmpeg (at path, or found on PATH when empty) on data with
// the output arguments args. The input goes through a temporary file
// because some containers (MP4/M4A with the index at the end) cannot be
// read from a pipe. what names the operation in errors.
func convert(ctx context.Context, path string, data []byte, args []string, what string) ([]byte, error) {
	if path == "" {
		path = "ffmpeg"
	}
	bin, err := exec.LookPath(path)
	if err != nil {
		return nil, wagate.Errorf(wagate.EUNPROCESSABLE, "%s needs ffmpeg, which is not installed on the gateway; send Ogg Opus (or WebP) instead", what)
	}
	in, err := os.CreateTemp("", "wagate-convert-*")
	if err != nil {
		return nil, fmt.Errorf("convert temp file: %w", err)
	}
	defer os.Remove(in.Name())
	if _, err := in.Write(data); err != nil {
		in.Close()
		return nil, fmt.Errorf("convert temp file: %w", err)
	}
	if err := in.Close(); err != nil {
		return nil, fmt.Errorf("convert temp file: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, convertTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append(append([]string{"-hide_banner", "-loglevel", "error", "-nostdin", "-i", in.Name()}, args...), "pipe:1")...)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) || ctx.Err() != nil {
			// The input is the user's: say it could not be read, and keep
			// ffmpeg's words for the log.
			return nil, &wagate.Error{Code: wagate.EUNPROCESSABLE, Messages: []string{what + " failed: the media could not be decoded"},
				Err: fmt.Errorf("ffmpeg: %w: %s", err, strings.TrimSpace(stderr.String()))}
		}
		return nil, fmt.Errorf("ffmpeg: %w", err)
	}
	if out.Len() == 0 {
		return nil, wagate.Errorf(wagate.EUNPROCESSABLE, "%s failed: the media has no usable stream", what)
	}
	return out.Bytes(), nil
}
