// Package wagate holds the domain error type shared by every layer of the
// gateway. Lower layers return *Error values with a Code; the HTTP layer maps
// codes to status codes in exactly one place.
package wagate

import (
	"errors"
	"fmt"
	"strings"
)

// Code classifies a domain error. Each code maps to one HTTP status.
type Code string

const (
	EINVALID        Code = "invalid"         // malformed or invalid input (400)
	EUNAUTHORIZED   Code = "unauthorized"    // missing or wrong credentials (401)
	EFORBIDDEN      Code = "forbidden"       // authenticated but not allowed (403)
	ENOTFOUND       Code = "not_found"       // the addressed thing does not exist (404)
	ECONFLICT       Code = "conflict"        // clashes with existing state (409)
	ETOOLARGE       Code = "too_large"       // request body over the limit (413)
	EUNPROCESSABLE  Code = "unprocessable"   // well-formed but cannot be acted on (422)
	ERATELIMITED    Code = "rate_limited"    // too many requests (429)
	EUPSTREAM       Code = "upstream"        // a provider failed (502)
	ENOTIMPLEMENTED Code = "not_implemented" // the feature is not available (501)
	EINTERNAL       Code = "internal"        // a bug (500)
)

// Error is a domain error. Messages are shown to API callers as they are, so
// they must never contain secrets or internals; Err is the cause, for logs only.
type Error struct {
	Code     Code
	Messages []string
	Err      error
}

func (e *Error) Error() string {
	msg := strings.Join(e.Messages, "; ")
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, msg, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, msg)
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Messages: []string{fmt.Sprintf(format, args...)}}
}

// Invalid returns an EINVALID error for one field, rendered as "field: problem".
func Invalid(field, problem string) *Error { return FieldError(EINVALID, field, problem) }

// FieldError returns an error with the given code about one field.
func FieldError(code Code, field, problem string) *Error {
	return &Error{Code: code, Messages: []string{field + ": " + problem}}
}

// ErrorCode returns the code of err, EINTERNAL for errors that carry none.
func ErrorCode(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessages returns the caller-facing messages of err. Errors without a
// code are bugs and reveal nothing.
func ErrorMessages(err error) []string {
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Messages
	}
	return []string{"internal error"}
}

// Problems collects field problems so a handler can report all of them at
// once instead of stopping at the first.
type Problems []string

// Add records a problem with field.
func (p *Problems) Add(field, problem string) { *p = append(*p, field+": "+problem) }

// Err returns nil when nothing was recorded, else one EINVALID error.
func (p Problems) Err() error {
	if len(p) == 0 {
		return nil
	}
	return &Error{Code: EINVALID, Messages: p}
}
