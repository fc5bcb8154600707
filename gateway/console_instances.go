package gateway

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/gateway/console"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// The console's instance pages (console.InstanceOps): each operation is
// the one the instance and webhook routes run, on the instance the name
// resolves to in the session's organization, as the routes resolve it.

var _ console.InstanceOps = (*Gateway)(nil)

// CreateInstance is POST /instance/create with body.
func (g *Gateway) CreateInstance(ctx context.Context, org *store.Organization, body []byte) (*console.CreatedInstance, error) {
	var req createInstanceRequest
	if err := api.DecodeBytes(body, &req, true); err != nil {
		return nil, err
	}
	inst, token, hook, err := g.addInstance(ctx, org.ID, &req)
	if err != nil {
		return nil, err
	}
	out := &console.CreatedInstance{Name: inst.Name, Token: token}
	if hook != nil {
		out.WebhookSecret = hook.Secret
	}
	return out, nil
}

// Instance is the instance with its connection state, the pairing under
// way and its webhook (header values masked, as /webhook/find shows them).
func (g *Gateway) Instance(ctx context.Context, org *store.Organization, name string) (*console.InstanceDetail, error) {
	inst, err := g.orgInstance(ctx, org.ID, name)
	if err != nil {
		return nil, err
	}
	st := g.channelOf(inst).State(ctx, inst)
	d := &console.InstanceDetail{
		InstanceSummary: console.InstanceSummary{Name: inst.Name, Integration: inst.Integration, Number: inst.Number,
			State: st.State, Reason: st.Reason},
		TokenPrefix: inst.TokenPrefix, CreatedAt: inst.CreatedAt,
		Pairable: inst.Integration != store.IntegrationEvolution,
	}
	if p := g.pairing(inst); p != nil {
		d.Pairing = &console.Pairing{QR: p.Base64, PairingCode: p.PairingCode, Count: p.Count}
	}
	w, err := g.store.Webhook(ctx, inst.ID)
	if err == nil {
		v := viewWebhook(w, false)
		d.Webhook = console.WebhookDetail{Set: true, Enabled: v.Enabled, URL: v.URL, ByEvents: v.WebhookByEvents,
			Base64: v.WebhookBase64, Events: v.Events}
		for _, k := range slices.Sorted(maps.Keys(v.Headers)) {
			d.Webhook.Headers = append(d.Webhook.Headers, console.HeaderView{Name: k, Masked: v.Headers[k]})
		}
	} else if wagate.ErrorCode(err) != wagate.ENOTFOUND {
		return nil, err
	}
	return d, nil
}

// pairing is the pairing under way on a channel that pairs (WhatsApp).
func (g *Gateway) pairing(inst *store.Instance) *channel.Pairing {
	if p, ok := g.channelOf(inst).(interface {
		Pairing(*store.Instance) *channel.Pairing
	}); ok {
		return p.Pairing(inst)
	}
	return nil
}

// ConnectInstance is GET /instance/connect.
func (g *Gateway) ConnectInstance(ctx context.Context, org *store.Organization, name, phone string) error {
	inst, err := g.orgInstance(ctx, org.ID, name)
	if err != nil {
		return err
	}
	_, err = g.connect(ctx, inst, phone)
	return err
}

// RestartInstance is POST /instance/restart.
func (g *Gateway) RestartInstance(ctx context.Context, org *store.Organization, name string) error {
	inst, err := g.orgInstance(ctx, org.ID, name)
	if err != nil {
		return err
	}
	return g.channelOf(inst).Restart(ctx, inst)
}

// LogoutInstance is DELETE /instance/logout.
func (g *Gateway) LogoutInstance(ctx context.Context, org *store.Organization, name string) error {
	inst, err := g.orgInstance(ctx, org.ID, name)
	if err != nil {
		return err
	}
	return g.channelOf(inst).Logout(ctx, inst)
}

// DeleteInstance is DELETE /instance/delete.
func (g *Gateway) DeleteInstance(ctx context.Context, org *store.Organization, name string) error {
	inst, err := g.orgInstance(ctx, org.ID, name)
	if err != nil {
		return err
	}
	return g.removeInstance(ctx, inst)
}

// WatchInstance signals on the channel returned whenever the instance's
// connection state or QR code changes, until ctx is done.
func (g *Gateway) WatchInstance(ctx context.Context, org *store.Organization, name string) (<-chan struct{}, error) {
	inst, err := g.orgInstance(ctx, org.ID, name)
	if err != nil {
		return nil, err
	}
	return g.watch.subscribe(ctx, inst.ID), nil
}

// SetWebhook is POST /webhook/set with body; with keepHeaders, a body
// without headers keeps the stored ones (a form cannot show their values
// to send them back). It returns the signing secret when one was made.
func (g *Gateway) SetWebhook(ctx context.Context, org *store.Organization, name string, body []byte, keepHeaders bool) (string, error) {
	inst, err := g.orgInstance(ctx, org.ID, name)
	if err != nil {
		return "", err
	}
	var req struct {
		Webhook *webhookRequest `json:"webhook"`
	}
	if err := api.DecodeBytes(body, &req, true); err != nil {
		return "", err
	}
	if keepHeaders && req.Webhook != nil && req.Webhook.Headers == nil {
		if old, err := g.store.Webhook(ctx, inst.ID); err == nil {
			req.Webhook.Headers = old.Headers
		} else if wagate.ErrorCode(err) != wagate.ENOTFOUND {
			return "", err
		}
	}
	w, newSecret, err := g.putWebhook(ctx, inst, req.Webhook)
	if err != nil || !newSecret {
		return "", err
	}
	return w.Secret, nil
}

// RotateWebhookSecret is POST /webhook/rotateSecret.
func (g *Gateway) RotateWebhookSecret(ctx context.Context, org *store.Organization, name string) (string, error) {
	inst, err := g.orgInstance(ctx, org.ID, name)
	if err != nil {
		return "", err
	}
	return g.rotateSecret(ctx, inst)
}

// Deliveries is the first page of GET /webhook/deliveries.
func (g *Gateway) Deliveries(ctx context.Context, org *store.Organization, name string, limit int) ([]console.Delivery, error) {
	inst, err := g.orgInstance(ctx, org.ID, name)
	if err != nil {
		return nil, err
	}
	events, err := g.store.ListEvents(ctx, inst.ID, "", 0, limit)
	if err != nil {
		return nil, err
	}
	out := make([]console.Delivery, 0, len(events))
	for _, e := range events {
		v := viewDelivery(e)
		out = append(out, console.Delivery{ID: v.ID, Event: v.Event, Status: v.Status, Attempts: v.Attempts,
			LastStatus: v.LastStatus, LastError: v.LastError, CreatedAt: v.CreatedAt})
	}
	return out, nil
}

// RetryDelivery is POST /webhook/deliveries/{instance}/{deliveryId}/retry.
func (g *Gateway) RetryDelivery(ctx context.Context, org *store.Organization, name, deliveryID string) error {
	inst, err := g.orgInstance(ctx, org.ID, name)
	if err != nil {
		return err
	}
	_, err = g.outbox.Retry(ctx, inst.ID, deliveryID)
	return err
}

// instanceWatch tells the console's open instance pages that an instance
// changed: its connection state or its QR code (the events the channel
// reports as connection.update and qrcode.updated).
type instanceWatch struct {
	mu      sync.Mutex
	subs    map[string]map[chan struct{}]struct{} // instance id → subscribers
	stopped bool
}

func newInstanceWatch() *instanceWatch {
	return &instanceWatch{subs: map[string]map[chan struct{}]struct{}{}}
}

// subscribe returns a channel that receives a signal after each change of
// the instance (several changes may make one signal) until ctx is done.
func (w *instanceWatch) subscribe(ctx context.Context, instanceID string) <-chan struct{} {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.stopped {
		w.mu.Unlock()
		close(ch)
		return ch
	}
	if w.subs[instanceID] == nil {
		w.subs[instanceID] = map[chan struct{}]struct{}{}
	}
	w.subs[instanceID][ch] = struct{}{}
	w.mu.Unlock()
	context.AfterFunc(ctx, func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		if _, ok := w.subs[instanceID][ch]; !ok {
			return // closed by stop
		}
		delete(w.subs[instanceID], ch)
		if len(w.subs[instanceID]) == 0 {
			delete(w.subs, instanceID)
		}
	})
	return ch
}

func (w *instanceWatch) notify(instanceID string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.subs[instanceID] {
		select {
		case ch <- struct{}{}:
		default: // a signal is already waiting
		}
	}
}

// stop closes every subscription: the pages' event streams end, so a
// graceful shutdown does not wait for them.
func (w *instanceWatch) stop() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stopped = true
	for id, subs := range w.subs {
		for ch := range subs {
			close(ch)
		}
		delete(w.subs, id)
	}
}

// watched reports whether event changes what the instance page shows.
func watched(event string) bool {
	return event == webhook.ConnectionUpdate || event == webhook.QRCodeUpdated
}
