package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"maps"
	"net/http"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// webhookRequest is Evolution's webhook object, in instance create and in
// webhook set.
type webhookRequest struct {
	Enabled  *bool  `json:"enabled"`
	URL      string `json:"url"`
	ByEvents bool   `json:"byEvents"`
	Base64   bool   `json:"base64"`
	// Evolution's record spells them so, and clients send them back.
	WebhookByEvents bool              `json:"webhookByEvents"`
	WebhookBase64   bool              `json:"webhookBase64"`
	Events          []string          `json:"events"`
	Headers         map[string]string `json:"headers"`
}

// toWebhook validates r. A webhook with a URL is enabled unless it says
// "enabled": false, as Evolution's instance create has it.
func (r *webhookRequest) toWebhook(problems *wagate.Problems, prefix string) *store.Webhook {
	w := &store.Webhook{
		URL:      strings.TrimSpace(r.URL),
		Enabled:  strings.TrimSpace(r.URL) != "",
		ByEvents: r.ByEvents || r.WebhookByEvents,
		Base64:   r.Base64 || r.WebhookBase64,
		Events:   []string{},
		Headers:  map[string]string{},
	}
	if r.Enabled != nil {
		w.Enabled = *r.Enabled
	}
	if !w.Enabled && w.URL != "" {
		if u, err := url.Parse(w.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			// A disabled webhook with a placeholder (n8n sends "vazio"):
			// nothing is delivered, so there is no URL to keep.
			w.URL = ""
		}
	}
	if w.URL != "" || w.Enabled {
		u, err := url.Parse(w.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			problems.Add(prefix+"url", "must be an absolute http or https URL")
		} else if u.User != nil {
			problems.Add(prefix+"url", "must not carry credentials; use headers")
		}
	}
	for i, e := range r.Events {
		name := strings.ToUpper(strings.TrimSpace(e))
		if !slices.Contains(webhook.Subscriptions, name) {
			problems.Add(fmt.Sprintf("%sevents[%d]", prefix, i), fmt.Sprintf("unknown event %q; use names such as MESSAGES_UPSERT or SEND_MESSAGE", e))
			continue
		}
		if !slices.Contains(w.Events, name) {
			w.Events = append(w.Events, name)
		}
	}
	// Headers are checked as net/http sends them: a value it refuses, or
	// one receivers refuse (431), would fail every delivery of the instance.
	keys := slices.Sorted(maps.Keys(r.Headers))
	for _, k := range keys {
		v := r.Headers[k]
		name := textproto.CanonicalMIMEHeaderKey(strings.TrimSpace(k))
		if p := webhook.HeaderNameProblem(name); p != "" && webhook.ReservedProblem(name) == "" {
			problems.Add(prefix+"headers", p) // a bad name is quoted in the message, not put in the path
		} else if p != "" {
			problems.Add(prefix+"headers."+k, p)
		} else if p := webhook.HeaderValueProblem(v); p != "" {
			problems.Add(prefix+"headers."+k, p)
		} else {
			w.Headers[name] = v
		}
	}
	if n := webhook.HeadersSize(w.Headers); n > webhook.MaxHeadersTotal {
		problems.Add(prefix+"headers", fmt.Sprintf("%d bytes of names and values, more than %d in all", n, webhook.MaxHeadersTotal))
	}
	return w
}

// webhookView is Evolution's webhook record. Header values are masked: they
// often carry the receiver's credentials. The signing secret appears only
// when it was just generated.
type webhookView struct {
	Enabled         bool              `json:"enabled"`
	URL             string            `json:"url"`
	Events          []string          `json:"events"`
	WebhookByEvents bool              `json:"webhookByEvents"`
	WebhookBase64   bool              `json:"webhookBase64"`
	Headers         map[string]string `json:"headers"`
	Secret          string            `json:"secret,omitempty"`
	CreatedAt       *time.Time        `json:"createdAt,omitempty"`
	UpdatedAt       *time.Time        `json:"updatedAt,omitempty"`
}

func viewWebhook(w *store.Webhook, withSecret bool) webhookView {
	v := webhookView{
		Enabled: w.Enabled, URL: w.URL, Events: w.Events, WebhookByEvents: w.ByEvents, WebhookBase64: w.Base64,
		Headers: map[string]string{}, CreatedAt: &w.CreatedAt, UpdatedAt: &w.UpdatedAt,
	}
	if v.Events == nil {
		v.Events = []string{}
	}
	for k, val := range w.Headers {
		v.Headers[k] = mask(val)
	}
	if withSecret {
		v.Secret = w.Secret
	}
	return v
}

// mask shows at most the last four characters of a secret value.
func mask(s string) string {
	if len(s) <= 8 {
		return "…"
	}
	return "…" + s[len(s)-4:]
}

func newWebhookSecret() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "whsec_" + base64.RawURLEncoding.EncodeToString(b)
}

// setWebhook replaces the instance's webhook. The first set generates the
// signing secret and returns it; later sets keep it (see rotateSecret).
func (g *Gateway) setWebhook(c echo.Context) error {
	var req struct {
		Webhook *webhookRequest `json:"webhook"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	w, newSecret, err := g.putWebhook(c.Request().Context(), instanceOf(c), req.Webhook)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewWebhook(w, newSecret))
}

// putWebhook validates r and makes it the instance's webhook, reporting
// whether a signing secret was generated (the first set).
func (g *Gateway) putWebhook(ctx context.Context, inst *store.Instance, r *webhookRequest) (*store.Webhook, bool, error) {
	if r == nil {
		return nil, false, wagate.Invalid("webhook", "required")
	}
	var problems wagate.Problems
	w := r.toWebhook(&problems, "webhook.")
	if err := problems.Err(); err != nil {
		return nil, false, err
	}
	now := stamp()
	w.InstanceID, w.CreatedAt, w.UpdatedAt = inst.ID, now, now
	var newSecret bool
	err := g.store.DoTxn(ctx, func(ctx context.Context) error {
		old, err := g.store.Webhook(ctx, inst.ID)
		newSecret = wagate.ErrorCode(err) == wagate.ENOTFOUND
		switch {
		case newSecret:
			w.Secret = newWebhookSecret()
		case err != nil:
			return err
		default:
			w.Secret, w.CreatedAt = old.Secret, old.CreatedAt
		}
		return g.store.PutWebhook(ctx, w)
	})
	if err != nil {
		return nil, false, err
	}
	return w, newSecret, nil
}

// findWebhook returns the webhook; one never set is reported as disabled.
func (g *Gateway) findWebhook(c echo.Context) error {
	inst := instanceOf(c)
	w, err := g.store.Webhook(c.Request().Context(), inst.ID)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		return c.JSON(http.StatusOK, webhookView{Events: []string{}, Headers: map[string]string{}})
	} else if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewWebhook(w, false))
}

// rotateWebhookSecret replaces the signing secret; deliveries from now on,
// including retries of pending ones, are signed with the new one.
func (g *Gateway) rotateWebhookSecret(c echo.Context) error {
	secret, err := g.rotateSecret(c.Request().Context(), instanceOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]string{"secret": secret})
}

func (g *Gateway) rotateSecret(ctx context.Context, inst *store.Instance) (string, error) {
	var secret string
	err := g.store.DoTxn(ctx, func(ctx context.Context) error {
		w, err := g.store.Webhook(ctx, inst.ID)
		if err != nil {
			return err
		}
		w.Secret, w.UpdatedAt = newWebhookSecret(), stamp()
		secret = w.Secret
		return g.store.PutWebhook(ctx, w)
	})
	if err != nil {
		return "", err
	}
	g.log.Info("webhook secret rotated", "instance", inst.Name)
	return secret, nil
}

type deliveryView struct {
	ID            string     `json:"id"`
	Event         string     `json:"event"`
	Status        string     `json:"status"`
	Attempts      int        `json:"attempts"`
	LastStatus    int        `json:"lastStatusCode,omitempty"`
	LastError     string     `json:"lastError,omitempty"`
	CreatedAt     time.Time  `json:"createdAt"`
	NextAttemptAt *time.Time `json:"nextAttemptAt,omitempty"`
	FinishedAt    *time.Time `json:"finishedAt,omitempty"`
}

// listDeliveries shows the instance's recent webhook deliveries, newest
// first, paginated by an opaque cursor.
func (g *Gateway) listDeliveries(c echo.Context) error {
	status := c.QueryParam("status")
	if status != "" && status != store.EventPending && status != store.EventDelivered && status != store.EventFailed {
		return wagate.Invalid("status", "must be pending, delivered or failed")
	}
	limit, err := api.PageLimit(c.QueryParam("limit"))
	if err != nil {
		return err
	}
	var before int64
	if cur := c.QueryParam("cursor"); cur != "" {
		if before, err = strconv.ParseInt(cur, 10, 64); err != nil || before <= 0 {
			return wagate.Invalid("cursor", "not a cursor returned by this route")
		}
	}
	inst := instanceOf(c)
	events, err := g.store.ListEvents(c.Request().Context(), inst.ID, status, before, limit+1)
	if err != nil {
		return err
	}
	var next *string
	if len(events) > limit {
		events = events[:limit]
		cur := strconv.FormatInt(events[limit-1].Seq, 10)
		next = &cur
	}
	data := make([]deliveryView, 0, len(events))
	for _, e := range events {
		data = append(data, viewDelivery(e))
	}
	return c.JSON(http.StatusOK, map[string]any{"data": data, "nextCursor": next})
}

func viewDelivery(e *store.Event) deliveryView {
	v := deliveryView{
		ID: e.DeliveryID, Event: e.Name, Status: e.Status, Attempts: e.Attempts,
		LastStatus: e.LastStatus, LastError: e.LastError, CreatedAt: e.CreatedAt,
	}
	if e.Status == store.EventPending {
		v.NextAttemptAt = &e.NextAttemptAt
	} else {
		v.FinishedAt = &e.FinishedAt
	}
	return v
}

// retryDelivery sends a failed delivery of the instance again (202: it is
// queued, and its outcome shows in the deliveries list).
func (g *Gateway) retryDelivery(c echo.Context) error {
	e, err := g.outbox.Retry(c.Request().Context(), instanceOf(c).ID, c.Param("deliveryId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, viewDelivery(e))
}
