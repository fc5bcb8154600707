package bots

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
)

// Clients builds provider clients. Each call returns a client bound to one
// credential: no client is shared across credentials or mutated, so one
// tenant's key can never serve another's request. The HTTP transport (and
// its connection pool) is shared.
type Clients struct {
	DefaultBaseURL string
	HTTP           *http.Client
}

// For returns a client for c.
func (cl Clients) For(c *store.Creds) *openai.Client {
	cfg := openai.DefaultConfig(c.APIKey)
	cfg.BaseURL = cl.BaseURL(c)
	base := http.DefaultTransport
	if cl.HTTP != nil && cl.HTTP.Transport != nil {
		base = cl.HTTP.Transport
	}
	cfg.HTTPClient = &http.Client{Transport: hintTransport{base}}
	return openai.NewClientWithConfig(cfg)
}

// retryHint carries a provider's Retry-After out of the client library,
// which does not expose response headers.
type retryHint struct{ after time.Duration }

type retryHintKey struct{}

func withRetryHint(ctx context.Context, h *retryHint) context.Context {
	return context.WithValue(ctx, retryHintKey{}, h)
}

type hintTransport struct{ base http.RoundTripper }

func (t hintTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(req)
	if h, ok := req.Context().Value(retryHintKey{}).(*retryHint); ok && err == nil {
		h.after = retryAfter(resp.Header)
	}
	return resp, err
}

// retryAfter reads Retry-After (seconds or an HTTP date), capped at a minute.
func retryAfter(h http.Header) time.Duration {
	v := h.Get("Retry-After")
	var d time.Duration
	if s, err := strconv.ParseInt(v, 10, 64); err == nil && s > 0 {
		d = time.Duration(min(s, 60)) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = time.Until(t)
	}
	return min(d, time.Minute)
}

// BaseURL is where c's requests go.
func (cl Clients) BaseURL(c *store.Creds) string {
	if c.BaseURL != "" {
		return c.BaseURL
	}
	return cl.DefaultBaseURL
}

// ListModels returns the provider's models for c.
func (cl Clients) ListModels(ctx context.Context, c *store.Creds) ([]openai.Model, error) {
	list, err := cl.For(c).ListModels(ctx)
	if err != nil {
		return nil, ProviderError(err)
	}
	return list.Models, nil
}

// ProviderError turns a provider failure into an EUPSTREAM error whose
// message names the provider's HTTP status only: provider messages can
// quote (part of) the API key and are not for end users.
func ProviderError(err error) error {
	switch status := providerStatus(err); {
	case status != 0:
		return &wagate.Error{Code: wagate.EUPSTREAM, Err: err,
			Messages: []string{fmt.Sprintf("provider: answered HTTP %d %s", status, http.StatusText(status))}}
	case errors.Is(err, context.DeadlineExceeded):
		return &wagate.Error{Code: wagate.EUPSTREAM, Err: err, Messages: []string{"provider: did not answer in time"}}
	}
	return &wagate.Error{Code: wagate.EUPSTREAM, Err: err, Messages: []string{"provider: unreachable"}}
}
