// Package api is the kit the gateway's API families share: decoding
// request bodies, and the principal a request authenticated as. It sits
// below the families and the server that composes them, so a family never
// imports the server.
package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
)

// Decode reads the request body as one JSON object into v. With strict,
// fields v does not declare are rejected by name. Every failure is an error
// naming the field or the byte where the JSON went wrong.
func Decode(c echo.Context, v any, strict bool) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return TooLarge(mbe.Limit)
		}
		return wagate.Invalid("body", "could not be read")
	}
	return DecodeBytes(body, v, strict)
}

// DecodeBytes is Decode of a body already read: the console turns a form
// into the JSON body of the REST route it stands for and decodes it here,
// so both are held to the same rules and name the same fields.
func DecodeBytes(body []byte, v any, strict bool) error {
	switch trimmed := bytes.TrimSpace(body); {
	case len(trimmed) == 0:
		return wagate.Invalid("body", "empty; a JSON object is required")
	case string(trimmed) == "null":
		// encoding/json leaves v untouched for null: a handler would go on
		// with zero values, e.g. reset every setting to its default.
		return wagate.Invalid("body", "null; a JSON object is required")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		// encoding/json reports the first wrong value only: on this
		// (rare) path the body is walked again for all of them.
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) || strings.HasPrefix(err.Error(), "json: unknown field ") {
			if p := typeProblems(body, v, strict); len(p) > 0 {
				return p.Err()
			}
		}
		return DecodeError(err)
	}
	if dec.More() {
		return wagate.Invalid("body", "unexpected data after the JSON object")
	}
	return nil
}

// DecodeError turns an encoding/json error into one naming the field or
// the byte where the JSON went wrong.
func DecodeError(err error) error {
	var (
		syntax *json.SyntaxError
		typ    *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &syntax):
		return wagate.Invalid("body", fmt.Sprintf("malformed JSON at byte %d", syntax.Offset))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return wagate.Invalid("body", "malformed JSON: unexpected end")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "body"
		}
		return wagate.Invalid(field, "must be "+jsonType(typ.Type))
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return wagate.Invalid(name, "unknown field")
	}
	return wagate.Invalid("body", "invalid JSON")
}

// jsonType names the JSON type that decodes into t.
func jsonType(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return "a valid value"
}

// TooLarge is the error for a body over limit bytes.
func TooLarge(limit int64) error {
	return wagate.Errorf(wagate.ETOOLARGE, "body: larger than the limit of %d bytes", limit)
}
