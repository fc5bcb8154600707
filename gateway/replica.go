package gateway

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/store"
)

// Replicas share one PostgreSQL database, which is their only coordinator.
// Each instance is owned by one live replica at a time, through a lease in
// the database (store/lease.go says why a lease and not an advisory lock);
// only the owner holds the instance's WhatsApp connection, runs its bot
// workers and delivers its webhook lane. Any replica accepts any request:
// what it stores for an instance it does not own, it tells the owner of
// with a notification, and the owner's workers read it from the database.
// Web chat instances are the exception on the bot side: the replica that
// holds a visitor's request answers it (and streams the answer), whoever
// owns the instance's webhook lane. On SQLite the process owns everything
// and none of this runs.

// Notification channels. A wake-up names the instance whose work is new:
// "c" and the conversation for the bot engine, "w" for the webhook lane;
// "p" names a web chat message for the visitors' event streams open on
// the other replicas.
// The replicas channel says that leases were given up, so that the others
// claim them at once rather than at their next heartbeat.
const (
	wakeChannel    = "wagate_wake"
	replicaChannel = "wagate_replicas"
)

// replicaSet is this process's membership in the group of replicas.
type replicaSet struct {
	g     *Gateway
	st    *store.Store
	log   *slog.Logger
	id    string // new at every start: a restarted replica is a new member
	name  string
	lease time.Duration
	max   int // instances owned at most; 0 means no limit

	// op makes taking an instance up and giving it up one at a time: the
	// heartbeat, the balancing and the fence each do both.
	op    sync.Mutex
	mu    sync.Mutex
	owned map[string]*ownership // by instance id
	// lastRelease is when this replica last gave an instance up to even the
	// load out: one at a time, a heartbeat apart, so the group settles
	// instead of flapping.
	lastRelease time.Time

	kick   chan struct{} // balance now
	cancel context.CancelFunc
	done   chan struct{}
}

// ownership is a lease held, as this process sees it.
type ownership struct {
	epoch int64
	// actUntil is when this process stops acting for the instance unless
	// a renewal arrives first: the lease's end as counted from before the
	// renewal was sent, less a safety margin, so that it always comes
	// before the lease ends in the database's time, where another replica
	// may take it.
	actUntil time.Time
	// webchat: the instance is a chatbot's web chat, whose bot workers
	// run wherever visitors wait and are not stopped with the lease.
	webchat bool
}

// newReplicaSet returns the replica set of a gateway on PostgreSQL; nil on
// SQLite.
func newReplicaSet(g *Gateway) *replicaSet {
	if !g.store.Postgres() {
		return nil
	}
	return &replicaSet{
		g: g, st: g.store, log: g.log.With("component", "replicas"),
		id: store.NewID(), name: g.cfg.ReplicaName, lease: g.cfg.LeaseDuration, max: g.cfg.ReplicaMaxInstances,
		owned: map[string]*ownership{}, kick: make(chan struct{}, 1), done: make(chan struct{}),
	}
}

// replicaName is the default name of a replica listening on addr.
func replicaName(addr net.Addr) string {
	host, _ := os.Hostname()
	_, port, _ := net.SplitHostPort(addr.String())
	return net.JoinHostPort(host, port)
}

// replicaAddress is the default address of the API of a replica listening
// on addr: the address itself, or the host's name when it listens on
// every interface.
func replicaAddress(addr net.Addr) string {
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host, _ = os.Hostname()
	}
	return "http://" + net.JoinHostPort(host, port)
}

// margin is how long before its lease could end in the database a replica
// stops acting for an instance it could not renew: time to stop its work,
// and room for the two clocks' rates to differ.
func (r *replicaSet) margin() time.Duration { return r.lease / 4 }

// start registers the replica and runs its heartbeat until stop.
func (r *replicaSet) start(ctx context.Context, addr net.Addr) error {
	if r == nil {
		return nil
	}
	if r.name == "" {
		r.name = replicaName(addr)
	}
	address := r.g.cfg.ReplicaAddress
	if address == "" {
		address = replicaAddress(addr)
	}
	if err := r.st.RegisterReplica(ctx, r.id, r.name, address); err != nil {
		return err
	}
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	notes := r.st.Listen(ctx, wakeChannel, replicaChannel)
	go r.fenceLoop(ctx)
	// The first claim before the API serves: a replica that starts alone
	// acts for its instances at once.
	r.heartbeat(ctx)
	go r.run(ctx, notes)
	r.log.Info("replica joined", "replica", r.name, "address", address, "lease", r.lease)
	return nil
}

// stop hands every instance over: it stops acting for them, ends its
// leases in the database and tells the others, who take them over without
// waiting for the leases to expire.
func (r *replicaSet) stop() {
	if r == nil || r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.op.Lock()
	defer r.op.Unlock()
	r.mu.Lock()
	ids := make([]string, 0, len(r.owned))
	for id := range r.owned {
		ids = append(ids, id)
	}
	r.mu.Unlock()
	for _, id := range ids {
		r.releaseLocal(id)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := r.st.ReleaseInstances(ctx, r.id)
	if err == nil {
		err = r.st.RemoveReplica(ctx, r.id)
	}
	if err == nil {
		err = r.st.Notify(ctx, replicaChannel, "left")
	}
	if err != nil {
		r.log.Warn("replica could not hand its instances over; they move when their leases expire", "error", err)
		return
	}
	r.log.Info("replica left; its instances were handed over", "replica", r.name, "instances", len(ids))
}

func (r *replicaSet) run(ctx context.Context, notes <-chan store.Notification) {
	defer close(r.done)
	beat := time.NewTicker(r.lease / 3)
	defer beat.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-beat.C:
			r.heartbeat(ctx)
		case <-r.kick:
			r.balance(ctx)
		case n, ok := <-notes:
			if !ok {
				notes = nil
				continue
			}
			r.notified(ctx, n)
		}
	}
}

// notified acts on a notification.
func (r *replicaSet) notified(ctx context.Context, n store.Notification) {
	switch n.Channel {
	case "":
		// Connected again: wake-ups sent meanwhile are lost, so every
		// instance owned resumes from the database.
		for _, id := range r.ownedIDs() {
			r.resume(ctx, id)
		}
	case replicaChannel:
		r.balance(ctx)
	case wakeChannel:
		kind, rest, _ := strings.Cut(n.Payload, ":")
		switch kind {
		case "c":
			instanceID, key, _ := strings.Cut(rest, "\n")
			if r.owns(instanceID) {
				r.g.engine.Notify(store.Chat{InstanceID: instanceID, Key: key})
			}
		case "w":
			r.g.disp.Wake(rest)
		case "p":
			from, rest, _ := strings.Cut(rest, "\n")
			instanceID, messageID, _ := strings.Cut(rest, "\n")
			if from != r.id {
				if err := r.g.webchat.Republish(ctx, instanceID, messageID); err != nil && ctx.Err() == nil {
					r.log.Warn("replica cannot pass a web chat message to its visitors", "instance_id", instanceID, "error", err)
				}
			}
		}
	}
}

// changed tells every replica, this one too, that the instances to share
// have changed, so that a new instance has an owner at once.
func (r *replicaSet) changed(ctx context.Context) {
	if r == nil {
		return
	}
	if err := r.st.Notify(context.WithoutCancel(ctx), replicaChannel, "changed"); err != nil {
		r.log.Warn("replica cannot tell the others of a new instance; it is shared at the next heartbeat", "error", err)
	}
}

// heartbeat renews the leases, notices those lost and evens the load out.
func (r *replicaSet) heartbeat(ctx context.Context) {
	sent := time.Now()
	bctx, cancel := context.WithTimeout(ctx, r.lease/2)
	leases, err := r.st.Heartbeat(bctx, r.id, r.lease)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("replica heartbeat failed; instances not renewed stop before their leases end", "error", err)
		}
		return
	}
	actUntil := sent.Add(r.lease - r.margin())
	held := map[string]int64{}
	for _, l := range leases {
		held[l.InstanceID] = l.Epoch
	}
	var lost, gained []store.Lease
	r.op.Lock()
	r.mu.Lock()
	for id, o := range r.owned {
		if epoch, ok := held[id]; ok && epoch == o.epoch {
			o.actUntil = actUntil
		} else {
			lost = append(lost, store.Lease{InstanceID: id, Epoch: o.epoch})
		}
	}
	for _, l := range leases {
		if o := r.owned[l.InstanceID]; o == nil || o.epoch != l.Epoch {
			gained = append(gained, l)
		}
	}
	r.mu.Unlock()
	for _, l := range lost {
		r.log.Info("replica no longer holds the lease of an instance (deleted, or taken over)", "instance_id", l.InstanceID)
		r.releaseLocal(l.InstanceID)
	}
	for _, l := range gained {
		r.acquire(ctx, l, actUntil)
	}
	r.op.Unlock()
	r.balance(ctx)
}

// balance claims instances up to this replica's fair share, and gives one
// up when it holds more than its share while another replica holds less.
func (r *replicaSet) balance(ctx context.Context) {
	replicas, instances, err := r.st.LiveReplicas(ctx, r.lease)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("replica cannot read the group", "error", err)
		}
		return
	}
	live := max(len(replicas), 1)
	fair := (instances + live - 1) / live
	if r.max > 0 {
		fair = min(fair, r.max)
	}
	sent := time.Now()
	if orphans, err := r.st.ClaimOrphanLanes(ctx, r.id, r.lease, orphanLanesPerClaim); err != nil {
		if ctx.Err() == nil {
			r.log.Warn("replica cannot claim the outbox lanes of deleted instances", "error", err)
		}
	} else if len(orphans) > 0 {
		r.op.Lock()
		for _, l := range orphans {
			r.acquire(ctx, l, sent.Add(r.lease-r.margin()))
		}
		r.op.Unlock()
	}
	owned := len(r.ownedIDs())
	switch {
	case owned < fair:
		leases, err := r.st.ClaimInstances(ctx, r.id, r.lease, fair-owned)
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("replica cannot claim instances", "error", err)
			}
			return
		}
		r.op.Lock()
		for _, l := range leases {
			r.acquire(ctx, l, sent.Add(r.lease-r.margin()))
		}
		r.op.Unlock()
	case owned > fair && slices.ContainsFunc(replicas, func(o store.Replica) bool { return o.ID != r.id && o.Owned < fair }):
		r.mu.Lock()
		wait := time.Since(r.lastRelease) < r.lease/3
		r.mu.Unlock()
		if wait {
			return
		}
		r.op.Lock()
		ids := r.ownedIDs()
		if len(ids) == 0 {
			r.op.Unlock()
			return
		}
		id := ids[rand.IntN(len(ids))]
		r.releaseLocal(id)
		r.op.Unlock()
		r.mu.Lock()
		r.lastRelease = time.Now()
		r.mu.Unlock()
		if err := r.st.ReleaseInstances(ctx, r.id, id); err != nil {
			r.log.Warn("replica cannot give an instance up; it moves when its lease expires", "instance_id", id, "error", err)
			return
		}
		r.log.Info("replica gave an instance up to even the load", "instance_id", id, "owned", owned-1, "fair_share", fair)
		if err := r.st.Notify(ctx, replicaChannel, "released"); err != nil {
			r.log.Warn("replica cannot tell the others", "error", err)
		}
	}
}

// orphanLanesPerClaim bounds the deleted instances' outbox lanes one
// balance takes over.
const orphanLanesPerClaim = 16

// acquire starts acting for an instance whose lease this replica now
// holds: it connects the instance's WhatsApp number, and resumes its
// pending turns, debounce windows, reply parts and webhook deliveries.
// r.op is held.
func (r *replicaSet) acquire(ctx context.Context, l store.Lease, actUntil time.Time) {
	// Bounded: the fence waits for r.op.
	ctx, cancel := context.WithTimeout(ctx, r.lease/4)
	defer cancel()
	inst, err := r.st.InstanceByID(ctx, l.InstanceID)
	if err != nil && wagate.ErrorCode(err) != wagate.ENOTFOUND {
		r.log.Error("replica cannot read an instance it owns", "instance_id", l.InstanceID, "error", err)
	}
	// A deleted instance (inst nil) is owned for its last webhook events.
	r.mu.Lock()
	r.owned[l.InstanceID] = &ownership{epoch: l.Epoch, actUntil: actUntil,
		webchat: inst != nil && inst.Integration == store.IntegrationWebchat}
	n := len(r.owned)
	r.mu.Unlock()
	r.log.Info("replica owns an instance", "instance_id", l.InstanceID, "epoch", l.Epoch)
	r.g.metrics.replicaOwned.Set(float64(n))
	r.resume(ctx, l.InstanceID)
	if inst != nil && (inst.Integration == store.IntegrationWhatsApp || inst.Integration == store.IntegrationWhatsAppBaileys) {
		if err := r.g.whatsapp.Acquire(ctx, inst); err != nil {
			r.log.Error("replica cannot connect an instance it owns", "instance", inst.Name, "error", err)
		}
	}
}

// resume wakes the instance's pending work.
func (r *replicaSet) resume(ctx context.Context, instanceID string) {
	if err := r.g.engine.Resume(ctx, instanceID); err != nil && ctx.Err() == nil {
		r.log.Error("replica cannot resume an instance's conversations", "instance_id", instanceID, "error", err)
	}
	r.g.disp.Wake(instanceID)
}

// releaseLocal stops acting for an instance: its webhook lane, bot
// workers and WhatsApp connection stop, leaving their work stored for the
// next owner. It returns when they have. r.op is held.
func (r *replicaSet) releaseLocal(instanceID string) {
	r.mu.Lock()
	o, ok := r.owned[instanceID]
	delete(r.owned, instanceID)
	n := len(r.owned)
	r.mu.Unlock()
	if !ok {
		return
	}
	r.g.disp.StopLane(instanceID)
	if !o.webchat {
		r.g.engine.StopInstance(instanceID)
		r.g.whatsapp.Release(instanceID)
	}
	r.g.metrics.replicaOwned.Set(float64(n))
	r.log.Info("replica stopped acting for an instance", "instance_id", instanceID)
}

// fenceLoop stops acting for every instance whose lease could not be
// renewed in time, whatever the heartbeat is blocked on.
func (r *replicaSet) fenceLoop(ctx context.Context) {
	t := time.NewTicker(min(r.lease/20, 250*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// owns and epoch already answer no for these instances; this
		// stops what runs for them.
		r.op.Lock()
		now := time.Now()
		var expired []string
		r.mu.Lock()
		for id, o := range r.owned {
			if now.After(o.actUntil) {
				expired = append(expired, id)
			}
		}
		r.mu.Unlock()
		for _, id := range expired {
			r.log.Warn("replica could not renew an instance's lease in time; it stops acting for it", "instance_id", id)
			r.releaseLocal(id)
		}
		r.op.Unlock()
	}
}

func (r *replicaSet) ownedIDs() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	ids := make([]string, 0, len(r.owned))
	for id := range r.owned {
		ids = append(ids, id)
	}
	return ids
}

// owns reports whether this process acts for the instance now.
func (r *replicaSet) owns(instanceID string) bool {
	if r == nil {
		return true
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.owned[instanceID]
	return o != nil && time.Now().Before(o.actUntil)
}

// epoch returns the epoch of the lease this process holds on the instance.
func (r *replicaSet) epoch(instanceID string) (int64, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	o := r.owned[instanceID]
	if o == nil || !time.Now().Before(o.actUntil) {
		return 0, false
	}
	return o.epoch, true
}

// runsBots reports whether this process runs the bot engine's worker of
// the conversation: those of the instances it owns, and the web chats
// whose visitor waits on it for the answer (the turn lock across replicas,
// store.LockChat, keeps their turns one at a time).
func (g *Gateway) runsBots(inst *store.Instance, chatKey string) bool {
	if inst.Integration == store.IntegrationWebchat {
		return g.replicas == nil || g.webchat.Waiting(inst.ID, chatKey)
	}
	return g.replicas.owns(inst.ID)
}

// fence returns store.ErrNotOwner unless this process's lease on the
// instance still holds, checked in ctx's transaction (bots.Config.Fence).
func (g *Gateway) fence(ctx context.Context, inst *store.Instance) error {
	r := g.replicas
	if r == nil || inst.Integration == store.IntegrationWebchat {
		return nil
	}
	epoch, ok := r.epoch(inst.ID)
	if !ok {
		return store.ErrNotOwner
	}
	return g.store.CheckLease(ctx, inst.ID, r.id, epoch)
}

// fenceReply makes a reply part's claim to leave (BeforeSend) and its
// record check the lease: a part goes out from the instance's owner only,
// and a replica that lost the instance leaves the part stored for the new
// owner. The record of a part that a channel has already sent is not
// checked again: it went out under the lease.
func (g *Gateway) fenceReply(inst *store.Instance, out bots.Outbound) bots.Outbound {
	if g.replicas == nil || inst.Integration == store.IntegrationWebchat {
		return out
	}
	claimed := false
	if before := out.BeforeSend; before != nil {
		out.BeforeSend = func(ctx context.Context) error {
			err := g.store.DoTxn(ctx, func(ctx context.Context) error {
				if err := g.fence(ctx, inst); err != nil {
					return err
				}
				return before(ctx)
			})
			claimed = err == nil
			return err
		}
	}
	recorded := out.Recorded
	out.Recorded = func(ctx context.Context) error {
		if !claimed {
			if err := g.fence(ctx, inst); err != nil {
				return err
			}
		}
		if recorded != nil {
			return recorded(ctx)
		}
		return nil
	}
	return out
}

// wakeChat hands a stored message's conversation to the bot engine here,
// or tells the instance's owner.
func (g *Gateway) wakeChat(ctx context.Context, inst *store.Instance, chat store.Chat) {
	if g.runsBots(inst, chat.Key) {
		g.engine.Notify(chat)
		return
	}
	if err := g.store.Notify(context.WithoutCancel(ctx), wakeChannel, "c:"+chat.InstanceID+"\n"+chat.Key); err != nil {
		// The owner resumes it when it next reconnects or takes the
		// instance over; until then the message waits, stored.
		g.log.Warn("cannot wake the instance's owner", "instance", inst.Name, "error", err)
	}
}

// published tells the other replicas of a web chat message for the
// conversation's event streams (webchat.Config.Published).
func (r *replicaSet) published(instanceID, messageID string) {
	if r == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := r.st.Notify(ctx, wakeChannel, "p:"+r.id+"\n"+instanceID+"\n"+messageID); err != nil {
		r.log.Warn("replica cannot pass a web chat message on to the others", "error", err)
	}
}

// wakeLaneElsewhere tells the owner of a webhook lane that it has new
// events (webhook.Config.Elsewhere).
func (g *Gateway) wakeLaneElsewhere(lane string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := g.store.Notify(ctx, wakeChannel, "w:"+lane); err != nil {
		g.log.Warn("cannot wake the webhook lane's owner", "lane", lane, "error", err)
	}
}
