package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Webhook is an instance's event subscription. Headers and Secret are
// plaintext here; the store seals them at rest.
type Webhook struct {
	InstanceID string
	URL        string
	Enabled    bool
	ByEvents   bool
	Base64     bool
	Events     []string // Evolution's upper snake names; empty means all
	Headers    map[string]string
	Secret     string // HMAC key for X-Wagate-Signature
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Webhook returns the instance's webhook, ENOTFOUND when none was set.
func (s *Store) Webhook(ctx context.Context, instanceID string) (*Webhook, error) {
	var (
		w                       Webhook
		events, headers, secret string
		created, updated        int64
	)
	err := s.db.QueryRow(ctx, `SELECT instance_id, url, enabled, by_events, base64, events, headers, secret, created_at, updated_at
		FROM webhooks WHERE instance_id = $1`, instanceID).
		Scan(&w.InstanceID, &w.URL, &w.Enabled, &w.ByEvents, &w.Base64, &events, &headers, &secret, &created, &updated)
	if err != nil {
		return nil, notFound(err, "webhook: not set for this instance")
	}
	if err := json.Unmarshal([]byte(events), &w.Events); err != nil {
		return nil, fmt.Errorf("webhook events: %w", err)
	}
	plainHeaders, err := s.seal.open(headers, "webhook.headers:"+instanceID)
	if err != nil {
		return nil, fmt.Errorf("webhook headers: %w", err)
	}
	if err := json.Unmarshal(plainHeaders, &w.Headers); err != nil {
		return nil, fmt.Errorf("webhook headers: %w", err)
	}
	plainSecret, err := s.seal.open(secret, "webhook.secret:"+instanceID)
	if err != nil {
		return nil, fmt.Errorf("webhook secret: %w", err)
	}
	w.Secret = string(plainSecret)
	w.CreatedAt, w.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &w, nil
}

// PutWebhook creates or replaces the instance's webhook.
func (s *Store) PutWebhook(ctx context.Context, w *Webhook) error {
	defer s.configChanged()
	events := w.Events
	if events == nil {
		events = []string{}
	}
	eventsJSON, err := json.Marshal(events)
	if err != nil {
		return err
	}
	headers := w.Headers
	if headers == nil {
		headers = map[string]string{}
	}
	headersJSON, err := json.Marshal(headers)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO webhooks (instance_id, url, enabled, by_events, base64, events, headers, secret, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
		ON CONFLICT (instance_id) DO UPDATE SET url = excluded.url, enabled = excluded.enabled, by_events = excluded.by_events,
			base64 = excluded.base64, events = excluded.events, headers = excluded.headers, secret = excluded.secret,
			updated_at = excluded.updated_at`,
		w.InstanceID, w.URL, w.Enabled, w.ByEvents, w.Base64, string(eventsJSON),
		s.seal.seal(headersJSON, "webhook.headers:"+w.InstanceID),
		s.seal.seal([]byte(w.Secret), "webhook.secret:"+w.InstanceID),
		millis(w.CreatedAt), millis(w.UpdatedAt))
	return err
}

// WebhookWants reports whether the instance's webhook is enabled, has a URL
// and whose event list satisfies wants. It reads
// no sealed column, as it runs for every event.
func (s *Store) WebhookWants(ctx context.Context, instanceID string, wants func(events []string) bool) (bool, error) {
	var (
		enabled bool
		url     string
		events  string
	)
	err := s.db.QueryRow(ctx, "SELECT enabled, url, events FROM webhooks WHERE instance_id = $1", instanceID).Scan(&enabled, &url, &events)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if !enabled || url == "" {
		return false, nil
	}
	var list []string
	if err := json.Unmarshal([]byte(events), &list); err != nil {
		return false, fmt.Errorf("webhook events: %w", err)
	}
	return wants(list), nil
}
