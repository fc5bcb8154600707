package okchat

import (
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/store"
)

// MaxAvatarBytes is the largest avatar accepted.
const MaxAvatarBytes = 5 << 20

// AvatarPath is where avatars are served, by id and extension.
const AvatarPath = "/api/public/avatars/"

// avatarTypes are the image types accepted, by the type sniffed from the
// bytes (the Content-Type a client sends is not trusted), with the
// extension of their URL.
var avatarTypes = map[string]string{
	"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp", "image/gif": ".gif",
}

// UpdateAvatar is PATCH /api/external/chatbot/{chatbotId}/update-avatar
// with the image in the multipart field avatar.
func (h *Handlers) UpdateAvatar(c echo.Context) error {
	data, err := ReadAvatar(c)
	if err != nil {
		return err
	}
	cb := api.ChatbotOf(c)
	if err := h.SetAvatar(c.Request().Context(), cb, data); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"chatbot": h.View(cb), "message": "Avatar updated successfully"})
}

// SetAvatar makes data, an image told by its bytes (the Content-Type a
// client sends is not trusted), cb's avatar. Every upload gets a new URL,
// so the long cache lifetime the image is served with never shows an old
// picture.
func (h *Handlers) SetAvatar(ctx context.Context, cb *store.Chatbot, data []byte) error {
	typ := http.DetectContentType(data)
	ext, ok := avatarTypes[typ]
	if !ok {
		return wagate.Invalid("avatar", "must be a PNG, JPEG, WebP or GIF image; this file is "+typ)
	}
	a := &store.Avatar{ID: uuid.NewString(), ChatbotID: cb.ID, ContentType: typ, Data: data, CreatedAt: stamp()}
	return h.store.DoTxn(ctx, func(ctx context.Context) error {
		if err := h.store.PutAvatar(ctx, a); err != nil {
			return err
		}
		cb.Settings = cloneSettings(cb)
		cb.Settings["avatar"] = AvatarPath + a.ID + ext
		cb.UpdatedAt = stamp()
		return h.store.UpdateChatbot(ctx, cb)
	})
}

// ReadAvatar reads the image of an avatar upload: the multipart field
// avatar.
func ReadAvatar(c echo.Context) ([]byte, error) {
	if !strings.HasPrefix(c.Request().Header.Get(echo.HeaderContentType), echo.MIMEMultipartForm) {
		return nil, wagate.Invalid("body", "must be multipart/form-data with the image in the field avatar")
	}
	fh, err := c.FormFile("avatar")
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, api.TooLarge(mbe.Limit)
	case errors.Is(err, http.ErrMissingFile):
		return nil, wagate.Invalid("avatar", "required: the image file")
	case err != nil:
		return nil, wagate.Invalid("body", "malformed multipart form")
	case fh.Size > MaxAvatarBytes:
		return nil, wagate.Invalid("avatar", "larger than 5 MiB")
	}
	f, err := fh.Open()
	if err != nil {
		return nil, wagate.Invalid("avatar", "could not be read")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxAvatarBytes+1))
	if err != nil {
		return nil, wagate.Invalid("avatar", "could not be read")
	}
	if len(data) > MaxAvatarBytes {
		return nil, wagate.Invalid("avatar", "larger than 5 MiB")
	}
	if len(data) == 0 {
		return nil, wagate.Invalid("avatar", "empty")
	}
	return data, nil
}

// ServeAvatar is GET /api/public/avatars/{file}: public, as the widget
// shows it on any website, and immutable.
func (h *Handlers) ServeAvatar(c echo.Context) error {
	id, ext, _ := strings.Cut(c.Param("file"), ".")
	a, err := h.store.Avatar(c.Request().Context(), id)
	if err != nil || "."+ext != avatarTypes[a.ContentType] {
		return wagate.Errorf(wagate.ENOTFOUND, "no such avatar")
	}
	hd := c.Response().Header()
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set("X-Content-Type-Options", "nosniff")
	return c.Blob(http.StatusOK, a.ContentType, a.Data)
}

func cloneSettings(cb *store.Chatbot) map[string]any {
	if cb.Settings == nil {
		return map[string]any{}
	}
	return maps.Clone(cb.Settings)
}
