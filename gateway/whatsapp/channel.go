// Package whatsapp is the WhatsApp channel: one whatsmeow client per
// instance, all keeping their devices in wagate's own database. It pairs
// numbers (QR code or phone code), derives each instance's connection state
// from whatsmeow's events, turns incoming messages into bots.Inbound for
// the gateway, and sends replies with a typing indicator.
package whatsapp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/store/sqlstore/upgrades"
	"go.mau.fi/whatsmeow/types"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/store"
)

// Config tunes the channel.
type Config struct {
	// QRTerminal prints every new QR code on Terminal as well.
	QRTerminal bool
	Terminal   io.Writer // where QR codes are printed; os.Stdout when nil
	// NewClient makes the client of a device; NewWhatsmeowClient when nil.
	// Tests put a fake here: nothing else in the channel touches a socket.
	NewClient ClientFactory
	// MaxMediaBytes caps FetchMedia; 25 MiB (OpenAI's transcription
	// limit) when zero.
	MaxMediaBytes int64
	// FFmpeg is the ffmpeg program that converts voice notes and stickers;
	// "ffmpeg" on PATH when empty.
	FFmpeg string
	// Owns, when set, says whether this process holds the instance's
	// connection: replicas on one database each connect the instances
	// they own (Acquire, Release). Nil owns every instance.
	Owns func(instanceID string) bool
}

// Timings.
const (
	firstQRTimeout = 20 * time.Second // for the first QR code after Connect
	logoutTimeout  = 20 * time.Second // for WhatsApp to confirm a logout
	drainTimeout   = 10 * time.Second // for queued inbound work at Stop
	sentTTL        = 10 * time.Minute // how long a sent id is known in memory
)

// Channel implements channel.Channel for WHATSAPP and WHATSAPP-BAILEYS
// instances.
type Channel struct {
	host  channel.Host
	store *store.Store
	log   *slog.Logger
	cfg   Config
	sent  *sentIDs

	// ctx lives until Stop: connects and QR channels run under it.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // session workers

	mu        sync.Mutex
	container *sqlstore.Container // set by Start
	sessions  map[string]*session // by instance id
	stopped   bool
}

var _ channel.Channel = (*Channel)(nil)

// New returns the channel. Start opens the device store and reconnects
// paired instances.
func New(host channel.Host, st *store.Store, log *slog.Logger, cfg Config) *Channel {
	if cfg.NewClient == nil {
		cfg.NewClient = NewWhatsmeowClient
	}
	if cfg.Terminal == nil {
		cfg.Terminal = os.Stdout
	}
	if cfg.MaxMediaBytes <= 0 {
		cfg.MaxMediaBytes = 25 << 20
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Channel{
		host: host, store: st, log: log, cfg: cfg, sent: newSentIDs(sentTTL),
		ctx: ctx, cancel: cancel, sessions: map[string]*session{},
	}
}

// Start upgrades whatsmeow's tables (a child of wagate's database with its
// own whatsmeow_version table) and reconnects every paired instance in the
// background. whatsmeow's own auto-reconnect keeps them connected from then
// on.
func (c *Channel) Start(ctx context.Context) error {
	db := c.store.DB().Child("whatsmeow_version", upgrades.Table, store.MigrationLogger(c.log.With("schema", "whatsmeow")))
	container := sqlstore.NewWithWrappedDB(db, newWALogger(c.log.With("module", "store")))
	if err := c.store.WithMigrationLock(ctx, container.Upgrade); err != nil {
		return fmt.Errorf("whatsapp device store: %w", err)
	}
	c.mu.Lock()
	c.container = container
	c.mu.Unlock()

	paired, err := c.store.PairedInstances(ctx)
	if err != nil {
		return fmt.Errorf("whatsapp: list paired instances: %w", err)
	}
	for _, p := range paired {
		if p.Integration == store.IntegrationEvolution || (c.cfg.Owns != nil && !c.cfg.Owns(p.ID)) {
			continue
		}
		s := c.session(p.Instance)
		s.op.Lock()
		err := s.resume(ctx, p.DeviceJID)
		s.op.Unlock()
		if err != nil {
			c.log.Error("whatsapp: cannot resume instance", "instance", p.Name, "error", err)
		}
	}
	if len(paired) > 0 {
		c.log.Info("whatsapp: reconnecting paired instances", "count", len(paired))
	}
	return nil
}

// Stop disconnects every instance and waits (briefly) for received
// messages still queued to be handed to the gateway. whatsmeow emits no
// events for a disconnect it was asked for, so the instances' last
// reported state stands until the next start.
func (c *Channel) Stop() {
	c.mu.Lock()
	c.stopped = true
	sessions := make([]*session, 0, len(c.sessions))
	for _, s := range c.sessions {
		sessions = append(sessions, s)
	}
	c.mu.Unlock()
	for _, s := range sessions {
		s.currentClient().Disconnect()
	}
	c.cancel()
	for _, s := range sessions {
		close(s.quit)
	}
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(drainTimeout):
		c.log.Warn("whatsapp: stopped before every received message was stored")
	}
}

// Acquire connects the instance, if it is paired, from the shared device
// store: this process has taken it over from another replica.
func (c *Channel) Acquire(ctx context.Context, inst *store.Instance) error {
	jid, err := c.store.DeviceJID(ctx, inst.ID)
	if err != nil || jid == "" {
		return err
	}
	s := c.session(inst)
	s.op.Lock()
	defer s.op.Unlock()
	if s.currentClient().IsConnected() {
		return nil
	}
	return s.resume(ctx, jid)
}

// Release disconnects the instance and forgets its session, leaving the
// device in the store for the replica that takes the instance over. Its
// last reported state stands, as at Stop.
func (c *Channel) Release(instanceID string) {
	s := c.existing(instanceID)
	if s == nil {
		return
	}
	s.op.Lock()
	s.currentClient().Disconnect()
	s.detach()
	s.op.Unlock()
	c.drop(s)
}

// session returns inst's session, creating it.
func (c *Channel) session(inst *store.Instance) *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.sessions[inst.ID]
	if s == nil {
		s = newSession(c, inst)
		c.sessions[inst.ID] = s
		if !c.stopped {
			c.wg.Add(1)
			go s.run(&c.wg)
		}
	} else {
		s.mu.Lock()
		s.inst = inst // the freshest copy: settings may have changed
		s.mu.Unlock()
	}
	return s
}

// existing returns the session of instanceID, nil when it has none.
func (c *Channel) existing(instanceID string) *session {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sessions[instanceID]
}

func (c *Channel) deviceStore() (*sqlstore.Container, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.container == nil {
		return nil, errors.New("whatsapp channel not started")
	}
	return c.container, nil
}

// State reports the instance's connection state.
func (c *Channel) State(_ context.Context, inst *store.Instance) channel.State {
	s := c.existing(inst.ID)
	if s == nil {
		return channel.State{State: channel.Close}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.public()
}

// Pairing returns the pairing under way for inst (its current QR code and
// phone code), or nil when none is: unlike Connect it never starts one,
// so a page can show the state without changing it.
func (c *Channel) Pairing(inst *store.Instance) *channel.Pairing {
	s := c.existing(inst.ID)
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.qr == "" {
		return nil
	}
	return &channel.Pairing{PairingCode: s.pairingCode, Code: s.qr, Base64: s.qrImage, Count: s.qrCount}
}

// Connect pairs an instance that is not paired, returning the current QR
// code (and, with phone, a code to type on that phone), or reconnects a
// paired one, returning nil: the route then answers the state.
func (c *Channel) Connect(ctx context.Context, inst *store.Instance, phone string) (*channel.Pairing, error) {
	s := c.session(inst)
	s.op.Lock()
	defer s.op.Unlock()
	jid, err := c.store.DeviceJID(ctx, inst.ID)
	if err != nil {
		return nil, err
	}
	cl := s.currentClient()
	if jid != "" {
		if phone != "" {
			return nil, wagate.Invalid("number", "the instance is already paired; log it out to pair another phone")
		}
		if cl.IsConnected() {
			return nil, nil
		}
		if err := s.resume(ctx, jid); err != nil {
			return nil, err
		}
		if _, none := s.currentClient().(nilClient); !none {
			return nil, nil
		}
		// The device was missing from the store: pair afresh.
	}
	return s.pair(ctx, phone)
}

// Restart reconnects a paired instance. An instance still pairing stops
// pairing; /instance/connect starts again.
func (c *Channel) Restart(ctx context.Context, inst *store.Instance) error {
	s := c.session(inst)
	s.op.Lock()
	defer s.op.Unlock()
	jid, err := c.store.DeviceJID(ctx, inst.ID)
	if err != nil {
		return err
	}
	cl := s.currentClient()
	if jid == "" {
		if _, none := cl.(nilClient); !none {
			s.stopPairing(reasonPairingStopped)
		}
		return nil
	}
	cl.Disconnect()
	return s.resume(ctx, jid)
}

// Logout unlinks the device on WhatsApp's side when it can, and deletes it
// from the store in any case: a device that cannot reach WhatsApp (closed,
// banned, offline) is still removed here, and the phone drops it from its
// linked devices once WhatsApp notices, or by hand. Pairing in progress is
// stopped. For an instance that was never paired it does nothing.
func (c *Channel) Logout(ctx context.Context, inst *store.Instance) error {
	jid, err := c.store.DeviceJID(ctx, inst.ID)
	if err != nil {
		return err
	}
	s := c.existing(inst.ID)
	if s == nil {
		if jid == "" {
			return nil
		}
		s = c.session(inst)
	}
	s.op.Lock()
	defer s.op.Unlock()
	cl := s.currentClient()
	_, none := cl.(nilClient)
	if none && jid == "" {
		return nil
	}
	if cl.IsLoggedIn() {
		lctx, cancel := context.WithTimeout(ctx, logoutTimeout)
		if err := cl.Logout(lctx); err != nil {
			c.log.Warn("whatsapp: WhatsApp did not confirm the logout; deleting the device here anyway, remove it from the phone's linked devices",
				"instance", inst.Name, "error", err)
		}
		cancel()
	}
	if !none {
		cl.Disconnect()
		if err := cl.DeleteDevice(ctx); err != nil {
			return fmt.Errorf("whatsapp: delete device: %w", err)
		}
	} else if err := c.deleteDevice(ctx, jid); err != nil {
		return err
	}
	if jid != "" {
		if err := c.store.SetDeviceJID(ctx, inst.ID, ""); err != nil {
			return err
		}
	}
	s.detach()
	st := connState{State: channel.Close, Code: codeLoggedOut}
	s.setState(st)
	s.emitState(st)
	c.drop(s)
	c.log.Info("whatsapp: instance logged out", "instance", inst.Name)
	return nil
}

// drop forgets a logged-out session; its worker finishes the work queued
// (the last connection.update) and ends. The next connect starts afresh.
func (c *Channel) drop(s *session) {
	id := s.instance().ID
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sessions[id] == s && !c.stopped {
		delete(c.sessions, id)
		close(s.quit)
	}
}

// deleteDevice removes a device the instance has no client for.
func (c *Channel) deleteDevice(ctx context.Context, jid string) error {
	container, err := c.deviceStore()
	if err != nil {
		return err
	}
	parsed, err := types.ParseJID(jid)
	if err != nil {
		return fmt.Errorf("whatsapp: stored device JID %q: %w", jid, err)
	}
	dev, err := container.GetDevice(ctx, parsed)
	if err != nil || dev == nil {
		return err
	}
	if err := container.DeleteDevice(ctx, dev); err != nil {
		return fmt.Errorf("whatsapp: delete device: %w", err)
	}
	return nil
}

// sentIDs remembers the ids of messages the channel sent for a while, so
// an echo that arrives before the gateway has recorded the send is still
// recognised.
type sentIDs struct {
	ttl time.Duration
	mu  sync.Mutex
	ids map[string]time.Time // instance id + "\x00" + message id → when sent
}

func newSentIDs(ttl time.Duration) *sentIDs {
	return &sentIDs{ttl: ttl, ids: map[string]time.Time{}}
}

func (s *sentIDs) add(instanceID, id string) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, t := range s.ids {
		if now.Sub(t) > s.ttl {
			delete(s.ids, k)
		}
	}
	s.ids[instanceID+"\x00"+id] = now
}

func (s *sentIDs) has(instanceID, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.ids[instanceID+"\x00"+id]
	return ok && time.Since(t) <= s.ttl
}
