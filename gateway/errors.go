package gateway

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
)

// statusOf maps domain error codes to HTTP statuses: the one place where
// this happens.
var statusOf = map[wagate.Code]int{
	wagate.EINVALID:        http.StatusBadRequest,
	wagate.EUNAUTHORIZED:   http.StatusUnauthorized,
	wagate.EFORBIDDEN:      http.StatusForbidden,
	wagate.ENOTFOUND:       http.StatusNotFound,
	wagate.ECONFLICT:       http.StatusConflict,
	wagate.ETOOLARGE:       http.StatusRequestEntityTooLarge,
	wagate.EUNPROCESSABLE:  http.StatusUnprocessableEntity,
	wagate.ERATELIMITED:    http.StatusTooManyRequests,
	wagate.EUPSTREAM:       http.StatusBadGateway,
	wagate.ENOTIMPLEMENTED: http.StatusNotImplemented,
	wagate.EINTERNAL:       http.StatusInternalServerError,
}

// errorBody is Evolution's error envelope.
type errorBody struct {
	Status   int    `json:"status"`
	Error    string `json:"error"`
	Response struct {
		Message []string `json:"message"`
	} `json:"response"`
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
		status = statusOf[wagate.ErrorCode(err)]
		messages = wagate.ErrorMessages(err)
	}
	if status >= 500 && status != http.StatusNotImplemented && status != http.StatusBadGateway {
		rid := c.Response().Header().Get(echo.HeaderXRequestID)
		g.log.Error("request failed", "request_id", rid, "method", c.Request().Method,
			"path", c.Path(), "error", err)
		messages = []string{"internal error; request id " + rid}
	}
	var body errorBody
	body.Status, body.Error, body.Response.Message = status, http.StatusText(status), messages
	if c.Request().Method == http.MethodHead {
		err = c.NoContent(status)
	} else {
		err = c.JSON(status, body)
	}
	if err != nil {
		g.log.Warn("writing error response failed", "error", err)
	}
}
