package gateway

import (
	"errors"
	"net/http"
	"regexp"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/console"
)

// errorBody is Evolution's error envelope.
type errorBody struct {
	Status   int    `json:"status"`
	Error    string `json:"error"`
	Response struct {
		Message []string `json:"message"`
	} `json:"response"`
}

// apiError is the envelope of okchat's and wagate's own /api routes: a
// machine code, the whole message, and each field's problem under the JSON
// path the client sent.
type apiError struct {
	Error struct {
		Code    string            `json:"code"`
		Message string            `json:"message"`
		Fields  map[string]string `json:"fields,omitempty"`
	} `json:"error"`
}

// fieldMessage is how domain errors name a field: "path: problem".
var fieldMessage = regexp.MustCompile(`^([A-Za-z0-9_.\[\]-]+): (.+)$`)

func apiErrorBody(status int, code wagate.Code, routing bool, messages []string) apiError {
	var body apiError
	switch {
	case routing && status == http.StatusNotFound:
		body.Error.Code = string(wagate.ENOTFOUND)
	case routing && status == http.StatusMethodNotAllowed:
		body.Error.Code = "method_not_allowed"
	case routing || status >= 500:
		body.Error.Code = strings.ReplaceAll(strings.ToLower(http.StatusText(status)), " ", "_")
	default:
		body.Error.Code = string(code)
	}
	body.Error.Message = strings.Join(messages, "; ")
	for _, m := range messages {
		if sub := fieldMessage.FindStringSubmatch(m); sub != nil {
			if body.Error.Fields == nil {
				body.Error.Fields = map[string]string{}
			}
			if prev, ok := body.Error.Fields[sub[1]]; ok {
				body.Error.Fields[sub[1]] = prev + "; " + sub[2]
			} else {
				body.Error.Fields[sub[1]] = sub[2]
			}
		}
	}
	return body
}

// handleError renders every error the API returns. Errors without a domain
// code are bugs: logged with the request id, answered 500 without details.
func (g *Gateway) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	var (
		status   int
		messages []string
		he       *echo.HTTPError
	)
	switch {
	case errors.As(err, &he):
		// Router and middleware errors: unknown route, wrong method, panics.
		status = he.Code
		switch status {
		case http.StatusNotFound:
			messages = []string{"Cannot " + c.Request().Method + " " + c.Request().URL.Path}
		case http.StatusMethodNotAllowed:
			messages = []string{"method " + c.Request().Method + " is not allowed on " + c.Request().URL.Path}
		default:
			messages = []string{http.StatusText(status)}
		}
		if status >= 500 {
			messages = nil
		}
	default:
		status = api.Status(err)
		messages = wagate.ErrorMessages(err)
	}
	if status >= 500 && status != http.StatusNotImplemented && status != http.StatusBadGateway {
		rid := c.Response().Header().Get(echo.HeaderXRequestID)
		g.log.Error("request failed", "request_id", rid, "method", c.Request().Method,
			"path", c.Path(), "error", err)
		messages = []string{"internal error; request id " + rid}
	}
	if p := c.Request().URL.Path; (p == console.Root || strings.HasPrefix(p, console.Root+"/")) && c.Request().Method != http.MethodHead {
		if err := g.console.RenderError(c, status, messages); err != nil {
			g.log.Warn("writing error page failed", "error", err)
		}
		return
	}
	var body any
	if strings.HasPrefix(c.Request().URL.Path, "/api/") {
		body = apiErrorBody(status, wagate.ErrorCode(err), he != nil, messages)
	} else {
		var eb errorBody
		eb.Status, eb.Error, eb.Response.Message = status, http.StatusText(status), messages
		body = eb
	}
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, body)
	}
	if err != nil {
		g.log.Warn("writing error response failed", "error", err)
	}
}
