package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
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

// limitBody bounds request bodies to the route's limit while they are
// read (see api.Decode). A declared length over it is refused by
// authenticate, once the caller is known: an unauthenticated caller hears
// 401 whatever it sends.
func (g *Gateway) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		req := c.Request()
		req.Body = http.MaxBytesReader(c.Response(), req.Body, g.bodyLimit(c))
		return next(c)
	}
}

// bodyLimit is the largest body the route of c accepts.
func (g *Gateway) bodyLimit(c echo.Context) int64 {
	if l, ok := g.bodyLimits[c.Path()]; ok && l > g.cfg.MaxBodyBytes {
		return l
	}
	return g.cfg.MaxBodyBytes
}
