package bots

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strings"

	"github.com/wagate/wagate/store"
)

// maxVisionImageBytes bounds an image downloaded from the channel to show
// a model: providers refuse far smaller inputs than WhatsApp allows, and
// the image travels base64 in the request.
const maxVisionImageBytes = 8 << 20

// describe is what a message without text says to a model: a short
// description of a sticker, a location or a shared contact, else its kind
// in brackets ("[video]").
func describe(m *store.Message) string {
	var c struct {
		Location *struct {
			Lat     float64 `json:"degreesLatitude"`
			Lng     float64 `json:"degreesLongitude"`
			Name    string  `json:"name"`
			Address string  `json:"address"`
		} `json:"locationMessage"`
		LiveLocation *struct {
			Lat float64 `json:"degreesLatitude"`
			Lng float64 `json:"degreesLongitude"`
		} `json:"liveLocationMessage"`
		Contact  *contactCard `json:"contactMessage"`
		Contacts *struct {
			Contacts []contactCard `json:"contacts"`
		} `json:"contactsArrayMessage"`
		Document *struct {
			FileName string `json:"fileName"`
		} `json:"documentMessage"`
	}
	_ = json.Unmarshal(m.Content, &c)
	switch {
	case m.MessageType == "stickerMessage":
		return "[sticker]"
	case c.Location != nil:
		place := strings.Join(nonEmpty(c.Location.Name, c.Location.Address), ", ")
		if place != "" {
			place += " "
		}
		return fmt.Sprintf("[location: %s(%.6f, %.6f)]", place, c.Location.Lat, c.Location.Lng)
	case c.LiveLocation != nil:
		return fmt.Sprintf("[live location: (%.6f, %.6f)]", c.LiveLocation.Lat, c.LiveLocation.Lng)
	case c.Contact != nil:
		return "[contact: " + c.Contact.String() + "]"
	case c.Contacts != nil && len(c.Contacts.Contacts) > 0:
		cards := make([]string, 0, len(c.Contacts.Contacts))
		for _, card := range c.Contacts.Contacts {
			cards = append(cards, card.String())
		}
		return "[contacts: " + strings.Join(cards, "; ") + "]"
	case c.Document != nil && c.Document.FileName != "":
		return "[document: " + c.Document.FileName + "]"
	}
	return "[" + strings.TrimSuffix(m.MessageType, "Message") + "]"
}

// contactCard is a shared contact: a name and a vCard.
type contactCard struct {
	DisplayName string `json:"displayName"`
	VCard       string `json:"vcard"`
}

// String is the card's name and phone numbers.
func (c contactCard) String() string {
	var phones []string
	name := c.DisplayName
	for _, line := range strings.Split(c.VCard, "\n") {
		line = strings.TrimRight(line, "\r")
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch k := strings.ToUpper(key); {
		case strings.HasPrefix(k, "TEL"):
			phones = append(phones, strings.TrimSpace(value))
		case k == "FN" && name == "":
			name = strings.TrimSpace(value)
		}
	}
	return strings.Join(nonEmpty(name, strings.Join(phones, ", ")), " ")
}

func nonEmpty(ss ...string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// channelImage fetches an image message's bytes from the channel that
// received it (WhatsApp's media is encrypted: its URL is no use to a model)
// and returns them as a data URL, or "" when the image is too large or
// cannot be fetched: the model then reads "[image]".
func (c *chat) channelImage(ctx context.Context, m *store.Message) string {
	if c.e.media == nil || m.MessageType != "imageMessage" || !encryptedMedia(m.Content) {
		return ""
	}
	data, name, err := c.e.media(ctx, c.inst, m)
	if err != nil || len(data) > maxVisionImageBytes {
		if err == nil {
			err = fmt.Errorf("%d bytes, over %d", len(data), maxVisionImageBytes)
		}
		c.log.Warn("image for the model not fetched", "message", m.ID, "error", err)
		return ""
	}
	mt := http.DetectContentType(data)
	if !strings.HasPrefix(mt, "image/") {
		if byExt := mime.TypeByExtension(name[strings.LastIndexByte(name, '.')+1:]); strings.HasPrefix(byExt, "image/") {
			mt = byExt
		} else {
			c.log.Warn("image for the model is not an image", "message", m.ID, "type", mt)
			return ""
		}
	}
	return "data:" + mt + ";base64," + base64.StdEncoding.EncodeToString(data)
}

// encryptedMedia reports whether an image message's media is encrypted
// (WhatsApp's mediaKey), so that only its channel can read it.
func encryptedMedia(content json.RawMessage) bool {
	var c struct {
		Image struct {
			MediaKey string `json:"mediaKey"`
		} `json:"imageMessage"`
	}
	return json.Unmarshal(content, &c) == nil && c.Image.MediaKey != ""
}
