package gateway

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/store"
)

// maxWebhookBase64 caps the attachment put into a messages.upsert event:
// past it the event says so instead of carrying tens of megabytes, and the
// receiver asks getBase64FromMediaMessage when it wants the file.
const maxWebhookBase64 = 16 << 20

// withBase64 is the message object of a received media message for its
// messages.upsert event: with the attachment in message.base64 when the
// instance's webhook asks for it (base64: true), downloaded and decrypted
// by the channel, or with message.base64Error saying why it is not there.
// The stored message keeps only the reference.
func (g *Gateway) withBase64(ctx context.Context, inst *store.Instance, m *store.Message) json.RawMessage {
	w, err := g.store.Webhook(ctx, inst.ID)
	if err != nil || !w.Base64 || !w.Enabled {
		return m.Content
	}
	var fields map[string]any
	if err := json.Unmarshal(m.Content, &fields); err != nil || fields == nil {
		return m.Content
	}
	if _, ok := fields["base64"]; ok {
		return m.Content // given inline by the sender (EVOLUTION)
	}
	data, _, err := g.fetchMedia(ctx, inst, m)
	switch {
	case wagate.ErrorCode(err) == wagate.ETOOLARGE || (err == nil && len(data) > maxWebhookBase64):
		fields["base64Error"] = fmt.Sprintf("the attachment is over the %d-byte limit for webhook base64; use /chat/getBase64FromMediaMessage", maxWebhookBase64)
	case err != nil:
		g.log.Warn("webhook base64: media download failed", "instance", inst.Name, "message_id", m.ID, "error", err)
		fields["base64Error"] = "the attachment could not be downloaded; use /chat/getBase64FromMediaMessage to try again"
	default:
		fields["base64"] = base64.StdEncoding.EncodeToString(data)
	}
	raw, err := json.Marshal(fields)
	if err != nil {
		return m.Content
	}
	return raw
}

type getBase64Request struct {
	Message struct {
		Key struct {
			ID          string `json:"id"`
			RemoteJID   string `json:"remoteJid"`
			FromMe      *bool  `json:"fromMe"`
			Participant string `json:"participant"`
		} `json:"key"`
		Message          json.RawMessage `json:"message"` // accepted; the stored message is used
		MessageTimestamp any             `json:"messageTimestamp"`
		PushName         string          `json:"pushName"`
	} `json:"message"`
	ConvertToMp4 bool `json:"convertToMp4"` // accepted; videos are returned as they are
}

// getBase64FromMediaMessage returns the attachment of a stored message,
// downloaded (and decrypted) through the instance's channel.
func (g *Gateway) getBase64FromMediaMessage(c echo.Context) error {
	var req getBase64Request
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	key := req.Message.Key
	if strings.TrimSpace(key.ID) == "" {
		return wagate.Invalid("message.key.id", "required")
	}
	ctx := c.Request().Context()
	inst := instanceOf(c)
	dirs := []store.Direction{store.Inbound, store.Outbound}
	if key.FromMe != nil && *key.FromMe {
		dirs = []store.Direction{store.Outbound, store.Inbound}
	}
	var m *store.Message
	var err error
	for _, d := range dirs {
		if m, err = g.store.Message(ctx, inst.ID, key.ID, d); err == nil {
			break
		}
	}
	if err != nil {
		return err
	}
	data, name, err := g.fetchMedia(ctx, inst, m)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	_ = json.Unmarshal(m.Content, &fields)
	var media struct {
		Mimetype   string `json:"mimetype"`
		FileName   string `json:"fileName"`
		Caption    string `json:"caption"`
		FileLength any    `json:"fileLength"`
		Height     int    `json:"height"`
		Width      int    `json:"width"`
	}
	_ = json.Unmarshal(fields[m.MessageType], &media)
	if media.FileName == "" {
		media.FileName = name
	}
	if media.Mimetype == "" {
		media.Mimetype = http.DetectContentType(data)
	}
	return c.JSON(http.StatusOK, map[string]any{
		"mediaType": m.MessageType,
		"fileName":  media.FileName,
		"caption":   media.Caption,
		"size":      map[string]any{"fileLength": strconv.Itoa(len(data)), "height": media.Height, "width": media.Width},
		"mimetype":  media.Mimetype,
		"base64":    base64.StdEncoding.EncodeToString(data),
	})
}
