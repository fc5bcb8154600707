package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate/gateway/api"
)

// requestID gives every request an id, returned in X-Request-Id and logged,
// so a caller's report of a failure can be found in the logs.
func (g *Gateway) requestID(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		b := make([]byte, 8)
		rand.Read(b)
		c.Response().Header().Set(echo.HeaderXRequestID, hex.EncodeToString(b))
		return next(c)
	}
}

// accessLog logs one line per request. It never logs headers or bodies:
// they carry keys and message content.
func (g *Gateway) accessLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		req := c.Request()
		g.log.Debug("request", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
			"method", req.Method, "route", c.Path(), "status", c.Response().Status,
			"duration", time.Since(start))
		return nil
	}
}

// limitBody refuses bodies over the configured size: at once when the
// length is declared, while reading otherwise (see decode).
func (g *Gateway) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		limit := g.cfg.MaxBodyBytes
		if l, ok := g.bodyLimits[c.Path()]; ok && l > limit {
			limit = l
		}
		if req.ContentLength > limit {
			return api.TooLarge(limit)
		}
		req.Body = http.MaxBytesReader(c.Response(), req.Body, limit)
		return next(c)
	}
}
