package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/wagate/wagate/store"
)

// Outbox records events in the database, in the transaction of the change
// they report, and wakes the dispatcher once that transaction commits.
type Outbox struct {
	store *store.Store
	disp  *Dispatcher

	mu   sync.Mutex
	subs map[string]subscription // by instance id
}

// subscription is an instance's webhook as Emit needs it, kept while the
// store's configuration version stays the same (store.ConfigVersion):
// reading it was one query per event.
type subscription struct {
	version uint64
	active  bool // enabled, with a URL
	events  []string
}

// maxSubscriptions bounds the cache; past it the cache starts over.
const maxSubscriptions = 10_000

// NewOutbox returns an outbox whose events d delivers.
func NewOutbox(s *store.Store, d *Dispatcher) *Outbox { return &Outbox{store: s, disp: d} }

type wakeKey struct{}

type lanes struct {
	mu  sync.Mutex
	set map[string]struct{}
}

// Tx runs fn in one database transaction. Events emitted with the context fn
// receives are committed with fn's other writes, and delivered only after
// the commit: an event is never sent for a change that was rolled back, and
// never lost for one that was committed.
func (o *Outbox) Tx(ctx context.Context, fn func(ctx context.Context) error) error {
	if _, nested := ctx.Value(wakeKey{}).(*lanes); nested {
		return o.store.DoTxn(ctx, fn)
	}
	pending := &lanes{set: map[string]struct{}{}}
	err := o.store.DoTxn(context.WithValue(ctx, wakeKey{}, pending), fn)
	if err == nil {
		for lane := range pending.set {
			o.disp.Wake(lane)
		}
	}
	return err
}

// Emit queues event with data for the instance's webhook, if the webhook is
// enabled and subscribed to it. Inside Tx the event commits with the
// transaction; outside it is committed at once.
func (o *Outbox) Emit(ctx context.Context, inst *store.Instance, event string, data any) error {
	sub, err := o.subscription(ctx, inst.ID)
	if err != nil || !sub.active || !Wants(sub.events, event) {
		return err
	}
	return o.insert(ctx, &store.Event{InstanceID: inst.ID, Lane: inst.ID}, inst, event, data)
}

// EmitFarewell queues event for an instance that is about to be deleted:
// the outbox row carries a sealed copy of the webhook target, so it survives
// the cascade and is delivered after the instance is gone.
func (o *Outbox) EmitFarewell(ctx context.Context, inst *store.Instance, event string, data any) error {
	w, err := o.store.Webhook(ctx, inst.ID)
	if err != nil || !w.Enabled || w.URL == "" || !Wants(w.Events, event) {
		return ignoreNotFound(err)
	}
	target := &store.Target{URL: w.URL, ByEvents: w.ByEvents, Headers: w.Headers, Secret: w.Secret}
	return o.insert(ctx, &store.Event{Lane: inst.ID, Target: target}, inst, event, data)
}

func (o *Outbox) insert(ctx context.Context, e *store.Event, inst *store.Instance, event string, data any) error {
	b, err := json.Marshal(data)
	if err != nil {
		return fmt.Errorf("event %s: %w", event, err)
	}
	now := time.Now()
	// Time-ordered, like the rows' seq: a random id took every insert to a
	// random page of the delivery id's unique index.
	e.DeliveryID = store.NewID()
	e.InstanceName = inst.Name
	e.Sender = inst.Number
	e.Name = event
	e.Data = b
	e.NextAttemptAt = now
	e.CreatedAt = now
	if err := o.store.InsertEvent(ctx, e); err != nil {
		return fmt.Errorf("event %s: %w", event, err)
	}
	if pending, ok := ctx.Value(wakeKey{}).(*lanes); ok {
		pending.mu.Lock()
		pending.set[e.Lane] = struct{}{}
		pending.mu.Unlock()
	} else {
		o.disp.Wake(e.Lane)
	}
	return nil
}

// subscription returns the instance's webhook subscription.
func (o *Outbox) subscription(ctx context.Context, instanceID string) (subscription, error) {
	version, cacheable := o.store.ConfigVersion()
	if cacheable {
		o.mu.Lock()
		sub, ok := o.subs[instanceID]
		o.mu.Unlock()
		if ok && sub.version == version {
			return sub, nil
		}
	}
	sub := subscription{version: version}
	_, err := o.store.WebhookWants(ctx, instanceID, func(events []string) bool {
		sub.active, sub.events = true, events
		return true
	})
	if err != nil || !cacheable {
		return sub, err
	}
	o.mu.Lock()
	if o.subs == nil || len(o.subs) >= maxSubscriptions {
		o.subs = map[string]subscription{}
	}
	o.subs[instanceID] = sub
	o.mu.Unlock()
	return sub, nil
}

// Retry sends a failed delivery of the instance again: it goes back to
// its lane as pending, due now, and the lane's worker is woken. Being the
// oldest pending event of the lane it goes out before the later ones; it
// gets one more attempt, and retries after that only within the maximum
// age, as any delivery.
func (o *Outbox) Retry(ctx context.Context, instanceID, deliveryID string) (*store.Event, error) {
	e, err := o.store.RetryEvent(ctx, instanceID, deliveryID, time.Now())
	if err != nil {
		return nil, err
	}
	o.disp.Wake(e.Lane)
	return e, nil
}
