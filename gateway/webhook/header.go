package webhook

import (
	"fmt"
	"net/textproto"
	"slices"
	"sort"
	"strings"

	"golang.org/x/net/http/httpguts"
)

// Bounds of a webhook's custom headers. Receivers commonly refuse request
// headers beyond 8 KiB to 16 KiB in all (431); a configuration over that
// would make every delivery fail.
const (
	MaxHeaderName   = 256
	MaxHeaderValue  = 8 << 10
	MaxHeadersTotal = 16 << 10 // names and values together
)

// Headers that cannot be custom headers: the dispatcher sets them on every
// delivery, or they are hop-by-hop headers that manage the connection
// rather than carry anything to the receiver (net/http drops or rewrites
// them, or they would break the request).
var (
	setHeaders      = []string{"Content-Type", "Content-Length", "Host", "User-Agent", SignatureHeader, EventHeader, DeliveryHeader}
	hopByHopHeaders = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Transfer-Encoding", "Te", "Trailer", "Upgrade", "Expect"}
)

// HeaderProblem says what is wrong with one custom header as net/http
// would send it, or "" when nothing is. name is the canonical form.
func HeaderProblem(name, value string) string {
	if p := HeaderNameProblem(name); p != "" {
		return p
	}
	return HeaderValueProblem(value)
}

// HeaderNameProblem is HeaderProblem for the name alone: its syntax, then
// ReservedProblem.
func HeaderNameProblem(name string) string {
	switch {
	case name == "" || len(name) > MaxHeaderName || !httpguts.ValidHeaderFieldName(name):
		return fmt.Sprintf("%q is not a valid header name (a token of at most %d characters)", name, MaxHeaderName)
	}
	return ReservedProblem(name)
}

// ReservedProblem says why name (canonical) cannot be a custom header, ""
// when it can.
func ReservedProblem(name string) string {
	switch {
	case slices.Contains(setHeaders, name):
		return "is set by wagate and cannot be overridden"
	case slices.Contains(hopByHopHeaders, name):
		return "manages the connection (hop-by-hop) and cannot be set"
	}
	return ""
}

// HeaderValueProblem is HeaderProblem for the value alone.
func HeaderValueProblem(value string) string {
	switch {
	case len(value) > MaxHeaderValue:
		return fmt.Sprintf("longer than %d bytes", MaxHeaderValue)
	case !httpguts.ValidHeaderFieldValue(value):
		return "must not contain control characters (NUL, DEL, line breaks, …)"
	}
	return ""
}

// HeadersSize is what headers count against MaxHeadersTotal.
func HeadersSize(headers map[string]string) int {
	n := 0
	for k, v := range headers {
		n += len(k) + len(v)
	}
	return n
}

// CheckHeaders returns an error describing why headers cannot be sent,
// nil when they can. Headers are validated when set; this catches those
// stored by versions that did not check, which would otherwise fail every
// delivery locally.
func CheckHeaders(headers map[string]string) error {
	names := make([]string, 0, len(headers))
	for k := range headers {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		if p := HeaderProblem(textproto.CanonicalMIMEHeaderKey(k), headers[k]); p != "" {
			return fmt.Errorf("header %s: %s", strings.ToValidUTF8(k, "?"), p)
		}
	}
	if n := HeadersSize(headers); n > MaxHeadersTotal {
		return fmt.Errorf("custom headers total %d bytes, more than %d", n, MaxHeadersTotal)
	}
	return nil
}
