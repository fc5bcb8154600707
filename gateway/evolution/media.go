package evolution

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/store"
)

// MaxMedia caps media the gateway reads for a bot (OpenAI's transcription
// limit is 25 MB).
const MaxMedia = 25 << 20

// Media returns the bytes of an EVOLUTION message's media, which the
// sender gives inline (base64) or as a URL to fetch.
func (ch Channel) Media(ctx context.Context, _ *store.Instance, m *store.Message) ([]byte, string, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(m.Content, &fields); err != nil {
		return nil, "", fmt.Errorf("media: %w", err)
	}
	var media struct {
		URL      string `json:"url"`
		Base64   string `json:"base64"`
		Mimetype string `json:"mimetype"`
		FileName string `json:"fileName"`
	}
	if err := json.Unmarshal(fields[m.MessageType], &media); err != nil {
		return nil, "", wagate.Errorf(wagate.EUNPROCESSABLE, "media: message.%s is not a media object", m.MessageType)
	}
	if media.Base64 == "" {
		// Evolution's media with base64 on, and what the gateway sends,
		// carry the bytes beside the media object.
		_ = json.Unmarshal(fields["base64"], &media.Base64)
	}
	name := media.FileName
	if name == "" {
		name = "audio" + extension(media.Mimetype)
	}
	switch {
	case media.Base64 != "":
		if len(media.Base64) > MaxMedia/3*4+4 {
			return nil, "", wagate.Errorf(wagate.ETOOLARGE, "media: larger than %d bytes", MaxMedia)
		}
		data, err := bots.DecodeBase64Media(media.Base64)
		if err != nil {
			return nil, "", wagate.Errorf(wagate.EINVALID, "media: base64 is not valid")
		}
		return data, name, nil
	case strings.HasPrefix(media.URL, "https://") || strings.HasPrefix(media.URL, "http://"):
		resp, err := ch.Fetch.Get(ctx, "media", media.URL, MaxMedia)
		if err != nil {
			return nil, "", err
		}
		return resp.Body, name, nil
	}
	return nil, "", wagate.Errorf(wagate.EUNPROCESSABLE, "media: message.%s has neither base64 nor an http(s) url", m.MessageType)
}

// extension guesses a file extension for the transcription API, which
// looks at the file name.
func extension(mime string) string {
	mime, _, _ = strings.Cut(mime, ";")
	switch strings.TrimSpace(mime) {
	case "audio/mpeg", "audio/mp3":
		return ".mp3"
	case "audio/mp4", "audio/m4a", "audio/x-m4a":
		return ".m4a"
	case "audio/wav", "audio/x-wav":
		return ".wav"
	case "audio/webm":
		return ".webm"
	}
	return ".ogg" // WhatsApp voice notes are Opus in Ogg
}
