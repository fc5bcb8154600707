package api

import (
	"net/http"

	"github.com/wagate/wagate"
)

// statuses maps domain error codes to HTTP statuses: the one place where
// this happens, for the API's envelopes and the console's pages alike.
var statuses = map[wagate.Code]int{
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

// Status is the HTTP status of err's domain code (500 for an error
// without one).
func Status(err error) int { return statuses[wagate.ErrorCode(err)] }
