package webchat

import (
	"embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

// The widget is plain JavaScript and CSS, embedded: no build step, no CDN.
//
//go:embed assets/widget.js assets/widget.css
var assets embed.FS

func (ch *Channel) serveAsset(name, contentType string) echo.HandlerFunc {
	data, err := assets.ReadFile("assets/" + name)
	if err != nil {
		panic(err) // embedded at build time
	}
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("Access-Control-Allow-Origin", "*")
		return c.Blob(http.StatusOK, contentType, data)
	}
}
