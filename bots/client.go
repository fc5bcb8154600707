package bots

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
)

// Clients builds provider clients. Each call returns a client bound to one
// credential: no client is shared across credentials or mutated, so one
// tenant's key can never serve another's request. The HTTP transport (and
// its connection pool) is shared; every request of a credential's client
// runs within that credential's Limits.
type Clients struct {
	DefaultBaseURL string
	HTTP           *http.Client
	Limits         *Limits // nil: model calls are not bounded
}

// For returns a client for c.
func (cl Clients) For(c *store.Creds) *openai.Client {
	cfg := openai.DefaultConfig(c.APIKey)
	cfg.BaseURL = cl.BaseURL(c)
	base := http.DefaultTransport
	if cl.HTTP != nil && cl.HTTP.Transport != nil {
		base = cl.HTTP.Transport
	}
	cfg.HTTPClient = &http.Client{Transport: limitTransport{base: base, limits: cl.Limits, cred: credID(c)}}
	return openai.NewClientWithConfig(cfg)
}

// credID is the identity c's limits are kept under: its id, which every way
// of naming a credential resolves to (an organization's or instance's
// credentials, an organization default, a chatbot's own key as
// "chatbot:<id>"). It is no secret, so it also labels metrics.
func credID(c *store.Creds) string {
	if c.ID != "" {
		return c.ID
	}
	return "unnamed"
}

// retryHint carries a provider's Retry-After out of the client library,
// which does not expose response headers of failed calls.
type retryHint struct{ after time.Duration }

type retryHintKey struct{}

func withRetryHint(ctx context.Context, h *retryHint) context.Context {
	return context.WithValue(ctx, retryHintKey{}, h)
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
