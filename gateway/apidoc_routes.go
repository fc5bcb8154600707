package gateway

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate/gateway/apidoc"
)

// apiDocRoutes serves the API reference without a key: GET /openapi.json
// and GET /docs. Both are built once, when the routes are, from files
// embedded in the binary, so a request costs a write of bytes.
func (g *Gateway) apiDocRoutes(e *echo.Echo) {
	doc, err := apidoc.Document()
	if err != nil {
		// The embedded files are fixed at build time and checked by the
		// package's tests: this is a bug in them, not a runtime condition.
		panic("apidoc: " + err.Error())
	}
	page, err := apidoc.Page(doc)
	if err != nil {
		panic("apidoc: " + err.Error())
	}
	e.GET("/openapi.json", func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSON, doc)
	})
	e.GET("/docs", func(c echo.Context) error {
		c.Response().Header().Set("Cache-Control", "public, max-age=300")
		return c.Blob(http.StatusOK, echo.MIMETextHTMLCharsetUTF8, page)
	})
}
