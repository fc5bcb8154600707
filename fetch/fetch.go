// Package fetch fetches URLs that users give the gateway (media to send or
// transcribe, web pages for a knowledge base) without letting them reach
// the gateway's own network: only http and https, no loopback, private,
// link-local, multicast or otherwise special addresses — checked on the
// address actually dialled, after DNS resolution and on every redirect, so
// neither a DNS answer nor a redirect can lead around it — and with limits
// on time, redirects and size.
package fetch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"syscall"
	"time"

	"github.com/wagate/wagate"
)

// Config sets a Client's policy.
type Config struct {
	// AllowPrivate lets URLs reach private and loopback addresses: for
	// tests and local demos only.
	AllowPrivate bool
	// Timeout bounds a whole fetch, redirects and body included.
	Timeout time.Duration
	// Deny, when set, refuses addresses in addition to the built-in rule
	// (tests use it to stand for private addresses on loopback).
	Deny func(netip.Addr) bool
}

// Client fetches URLs under a Config. It is safe for concurrent use.
type Client struct {
	http    *http.Client
	timeout time.Duration
}

const maxRedirects = 5

// New returns a client with cfg's policy.
func New(cfg Config) *Client {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	dialer := &net.Dialer{Timeout: 10 * time.Second, Control: func(_, address string, _ syscall.RawConn) error {
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("fetch: unexpected address %q", address)
		}
		ip := ap.Addr().Unmap()
		if (!cfg.AllowPrivate && Special(ip)) || (cfg.Deny != nil && cfg.Deny(ip)) {
			return &refusedError{ip}
		}
		return nil
	}}
	transport := &http.Transport{
		Proxy:                 nil, // a proxy would dial instead of us, past the check
		DialContext:           dialer.DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 20 * time.Second,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       30 * time.Second,
	}
	return &Client{timeout: cfg.Timeout, http: &http.Client{
		Transport: transport,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= maxRedirects {
				return fmt.Errorf("more than %d redirects", maxRedirects)
			}
			return checkScheme(req.URL)
		},
	}}
}

type refusedError struct{ ip netip.Addr }

func (e *refusedError) Error() string {
	return fmt.Sprintf("the address %s is not public; the gateway fetches only public addresses", e.ip)
}

// special are the address ranges no fetch may reach beyond what netip
// classifies: shared address space (CGNAT), benchmarking, IETF protocol
// assignments, documentation, reserved, NAT64 and 6to4 (which embed IPv4
// addresses), Teredo.
var special = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("64:ff9b::/96"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001::/32"),
	netip.MustParsePrefix("2001:db8::/32"),
	netip.MustParsePrefix("2002::/16"),
	netip.MustParsePrefix("100::/64"),
}

// Special reports whether ip is not a public unicast address: loopback,
// private, link-local (cloud metadata services live there), multicast,
// unspecified, or one of the special ranges.
func Special(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsLinkLocalUnicast() || ip.IsLinkLocalMulticast() ||
		ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || ip.IsUnspecified() {
		return true
	}
	for _, p := range special {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func checkScheme(u *url.URL) error {
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("only http and https URLs are fetched, not %s", u.Scheme)
	}
	if u.Host == "" {
		return errors.New("the URL has no host")
	}
	return nil
}

// Response is a fetched document.
type Response struct {
	URL         string // after redirects
	ContentType string // as the server declared it
	Sniffed     string // as its bytes say (http.DetectContentType)
	Body        []byte
}

// Get fetches rawURL, reading at most maxBytes of its body. Errors are
// domain errors about field, worded for the user who gave the URL: an
// invalid or refused URL is EINVALID, a server that fails is EUPSTREAM, a
// body over maxBytes ETOOLARGE.
func (c *Client) Get(ctx context.Context, field, rawURL string, maxBytes int64) (*Response, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, wagate.Invalid(field, "not a valid URL")
	}
	if err := checkScheme(u); err != nil {
		return nil, wagate.Invalid(field, err.Error())
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, wagate.Invalid(field, "not a valid URL")
	}
	req.Header.Set("User-Agent", "wagate")
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, c.doError(field, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, &wagate.Error{Code: wagate.EUPSTREAM,
			Messages: []string{fmt.Sprintf("%s: the server answered HTTP %d %s", field, resp.StatusCode, http.StatusText(resp.StatusCode))}}
	}
	if resp.ContentLength > maxBytes {
		return nil, wagate.Errorf(wagate.ETOOLARGE, "%s: larger than %d bytes", field, maxBytes)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBytes+1))
	if err != nil {
		return nil, c.doError(field, err)
	}
	if int64(len(body)) > maxBytes {
		return nil, wagate.Errorf(wagate.ETOOLARGE, "%s: larger than %d bytes", field, maxBytes)
	}
	return &Response{URL: resp.Request.URL.String(), ContentType: resp.Header.Get("Content-Type"),
		Sniffed: http.DetectContentType(body), Body: body}, nil
}

func (c *Client) doError(field string, err error) error {
	var refused *refusedError
	switch {
	case errors.As(err, &refused):
		return &wagate.Error{Code: wagate.EINVALID, Messages: []string{field + ": " + refused.Error()}, Err: err}
	case errors.Is(err, context.DeadlineExceeded):
		return &wagate.Error{Code: wagate.EUPSTREAM, Err: err,
			Messages: []string{fmt.Sprintf("%s: the server did not answer within %s", field, c.timeout)}}
	}
	var uerr *url.Error
	if errors.As(err, &uerr) && uerr.Err != nil {
		var dns *net.DNSError
		if errors.As(err, &dns) {
			return &wagate.Error{Code: wagate.EUPSTREAM, Err: err, Messages: []string{field + ": the host name does not resolve"}}
		}
		if s := uerr.Err.Error(); len(s) < 200 && !errors.As(err, new(*net.OpError)) {
			return &wagate.Error{Code: wagate.EINVALID, Err: err, Messages: []string{field + ": " + s}}
		}
	}
	return &wagate.Error{Code: wagate.EUPSTREAM, Err: err, Messages: []string{field + ": the server could not be reached"}}
}
