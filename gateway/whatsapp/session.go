package whatsapp

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// queueSize bounds the work waiting for an instance's worker. whatsmeow
// handles incoming nodes one at a time, so its event handler only queues
// work and returns; if the database falls this far behind, the handler
// waits (and WhatsApp's delivery slows down) rather than drop messages that
// whatsmeow has already acknowledged.
const queueSize = 256

// maxUnread bounds the messages per chat waiting to be marked read.
const maxUnread = 50

// session is one instance's WhatsApp connection.
type session struct {
	c   *Channel
	log *slog.Logger

	// op serialises the operations that change the connection (connect,
	// pair, restart, logout). It may be held across network calls; mu is
	// never held across them, so events are never kept waiting on it.
	op sync.Mutex

	mu          sync.Mutex
	inst        *store.Instance
	client      Client // nil until the instance connects or pairs
	state       connState
	qr          string // the current QR code while pairing
	qrImage     string // qr as a PNG data URL
	qrCount     int
	qrSeen      chan struct{} // closed at the first code or when pairing ends
	stopQR      context.CancelFunc
	pairingCode string
	unread      map[types.JID][]unread // by chat: messages to mark read after a reply

	work chan func(ctx context.Context)
	quit chan struct{}
}

type unread struct {
	id     types.MessageID
	sender types.JID
}

func newSession(c *Channel, inst *store.Instance) *session {
	return &session{
		c:      c,
		log:    c.log.With("instance", inst.Name),
		inst:   inst,
		state:  connState{State: channel.Close},
		unread: map[types.JID][]unread{},
		work:   make(chan func(ctx context.Context), queueSize),
		quit:   make(chan struct{}),
	}
}

// run does the session's queued work in order, until quit; then it
// finishes what is already queued.
func (s *session) run(wg *sync.WaitGroup) {
	defer wg.Done()
	// Work already accepted must complete even while the gateway stops:
	// whatsmeow has acknowledged those messages to WhatsApp.
	ctx := context.Background()
	for {
		select {
		case f := <-s.work:
			f(ctx)
		case <-s.quit:
			for {
				select {
				case f := <-s.work:
					f(ctx)
				default:
					return
				}
			}
		}
	}
}

// enqueue hands f to the worker.
func (s *session) enqueue(f func(ctx context.Context)) {
	select {
	case s.work <- f:
		return
	default:
	}
	s.log.Warn("whatsapp: work queue full; holding whatsmeow until the gateway catches up")
	select {
	case s.work <- f:
	case <-s.quit:
	}
}

// handle is the whatsmeow event handler of client from. It runs on
// whatsmeow's goroutine, which handles the connection's nodes one at a
// time, so it only updates the in-memory state and queues the rest. Events
// of a client the session has let go (logged out) are ignored.
func (s *session) handle(from Client, evt any) {
	s.mu.Lock()
	current := s.client == from
	s.mu.Unlock()
	if !current {
		return
	}
	switch e := evt.(type) {
	case *events.Message:
		s.enqueue(func(ctx context.Context) { s.receive(ctx, e) })
		return
	case *events.CallOffer:
		s.enqueue(func(ctx context.Context) { s.rejectCall(ctx, e) })
		return
	case *events.Receipt:
		s.enqueue(func(ctx context.Context) { s.receipt(ctx, e) })
		return
	case *events.Contact:
		s.enqueue(func(ctx context.Context) { s.contact(ctx, e) })
		return
	case *events.HistorySync:
		s.enqueue(func(ctx context.Context) { s.historySync(ctx, e) })
		return
	case *events.QR:
		return // the QR channel drives pairing (consumeQR)
	case *events.UndecryptableMessage:
		// whatsmeow asks the sender to retry; a message that stays
		// undecryptable never reaches the gateway, so leave a trace.
		s.log.Warn("whatsapp: undecryptable message", "id", e.Info.ID, "chat", e.Info.Chat.String(), "unavailable", e.IsUnavailable)
		return
	case *events.Disconnected:
		if s.currentClient().OwnJID().IsEmpty() {
			return // a pairing socket closing: the QR channel says how pairing ended
		}
	case *events.PairSuccess:
		s.enqueue(func(ctx context.Context) { s.paired(ctx, e) })
	case *events.LoggedOut:
		// whatsmeow has deleted the device; forget it here too, and the
		// client with it: pairing again starts from a new device, not
		// from keys WhatsApp has revoked.
		s.enqueue(func(ctx context.Context) { s.forgetDevice(ctx) })
		s.apply(evt)
		s.mu.Lock()
		if s.client == from {
			s.client = nil
		}
		s.mu.Unlock()
		return
	case *events.Connected:
		s.enqueue(s.connected)
	}
	s.apply(evt)
}

// apply moves the state machine with a connection event and reports a
// change.
func (s *session) apply(evt any) {
	s.mu.Lock()
	next, ok := transition(s.state, evt, time.Now())
	changed := ok && s.setStateLocked(next)
	s.mu.Unlock()
	if changed {
		s.emitState(next)
	}
}

func (s *session) currentClient() Client {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.client == nil {
		return nilClient{}
	}
	return s.client
}

func (s *session) instance() *store.Instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.inst
}

// setState sets the state and reports whether it changed.
func (s *session) setState(st connState) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.setStateLocked(st)
}

func (s *session) setStateLocked(st connState) bool {
	if s.state == st {
		return false
	}
	s.log.Info("whatsapp: connection state", "state", st.State, "reason", st.Reason, "code", st.Code)
	s.state = st
	return true
}

// emitState queues connection.update in Evolution's shape, with wagate's
// reason for permanent failures.
func (s *session) emitState(st connState) {
	inst, client := s.instance(), s.currentClient()
	data := map[string]any{"instance": inst.Name, "state": st.State, "statusReason": st.Code}
	if st.Reason != "" {
		data["reason"] = st.Reason
	}
	if jid := client.OwnJID(); !jid.IsEmpty() {
		data["wuid"] = jid.ToNonAD().String()
		if name := client.PushName(); name != "" {
			data["profileName"] = name
		}
	}
	s.enqueue(func(ctx context.Context) {
		if err := s.c.host.Emit(ctx, inst, webhook.ConnectionUpdate, data); err != nil {
			s.log.Error("whatsapp: report connection.update", "error", err)
		}
	})
}

// attach makes cl the session's client. Called with op held.
func (s *session) attach(cl Client) {
	s.mu.Lock()
	s.client = cl
	s.mu.Unlock()
	cl.AddEventHandler(func(evt any) { s.handle(cl, evt) })
}

// detach forgets the client (after a logout). Called with op held.
func (s *session) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopQR != nil {
		s.stopQR()
		s.stopQR = nil
	}
	s.client = nil
	s.endPairingLocked()
}

// resume connects the paired device jid, in the background: the caller
// gets "connecting" at once, and the events tell the rest. Called with op
// held. A device missing from the store is forgotten, leaving the session
// without a client and closed with the reason.
func (s *session) resume(ctx context.Context, jid string) error {
	cl := s.currentClient()
	if _, none := cl.(nilClient); none {
		container, err := s.c.deviceStore()
		if err != nil {
			return err
		}
		parsed, err := types.ParseJID(jid)
		if err != nil {
			return fmt.Errorf("whatsapp: stored device JID %q: %w", jid, err)
		}
		dev, err := container.GetDevice(ctx, parsed)
		if err != nil {
			return fmt.Errorf("whatsapp: load device: %w", err)
		}
		if dev == nil {
			s.log.Warn("whatsapp: paired device missing from the store", "device", jid)
			if err := s.c.store.SetDeviceJID(ctx, s.instance().ID, ""); err != nil {
				return err
			}
			st := connState{State: channel.Close, Reason: reasonDeviceMissing, Code: codeBadSession}
			if s.setState(st) {
				s.emitState(st)
			}
			return nil
		}
		cl = s.c.cfg.NewClient(dev, newWALogger(s.log.With("module", "whatsmeow")))
		s.attach(cl)
	}
	st := connState{State: channel.Connecting, Code: codeOK}
	if s.setState(st) {
		s.emitState(st)
	}
	s.c.wg.Add(1)
	go func() {
		defer s.c.wg.Done()
		if err := cl.Connect(); err != nil {
			s.log.Warn("whatsapp: connect failed", "error", err)
			st := connState{State: channel.Close, Reason: fmt.Sprintf("could not connect to WhatsApp: %v; POST /instance/restart to try again", err), Code: codeClosed}
			if s.setState(st) {
				s.emitState(st)
			}
		}
	}()
	return nil
}

// pair starts pairing (or joins the pairing in progress) and returns the
// current QR code; with phone it also asks WhatsApp for a code to type on
// that phone. Called with op held.
func (s *session) pair(ctx context.Context, phone string) (*channel.Pairing, error) {
	s.mu.Lock()
	pairing := s.qrSeen != nil
	s.mu.Unlock()
	if !pairing {
		if err := s.startPairing(); err != nil {
			return nil, err
		}
	}
	s.mu.Lock()
	seen := s.qrSeen
	s.mu.Unlock()
	t := time.NewTimer(firstQRTimeout)
	defer t.Stop()
	select {
	case <-seen:
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-t.C:
		s.stopPairing(reasonPairingStopped)
		return nil, wagate.Errorf(wagate.EUPSTREAM, "WhatsApp sent no QR code within %s; try again", firstQRTimeout)
	}
	if phone != "" {
		code, err := s.currentClient().PairPhone(ctx, phone)
		if err != nil {
			return nil, &wagate.Error{Code: wagate.EUPSTREAM, Messages: []string{"WhatsApp refused to give a pairing code for this number"}, Err: err}
		}
		s.mu.Lock()
		s.pairingCode = code
		s.mu.Unlock()
		s.log.Info("whatsapp: pairing code issued", "phone_suffix", suffix(phone))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.qr == "" {
		// Pairing ended while we waited: the state says how.
		reason := s.state.Reason
		if reason == "" {
			return nil, nil
		}
		return nil, wagate.Errorf(wagate.EUPSTREAM, "%s", reason)
	}
	return &channel.Pairing{PairingCode: s.pairingCode, Code: s.qr, Base64: s.qrImage, Count: s.qrCount}, nil
}

// startPairing connects a new device (or the unpaired one the session
// has) and starts reading its QR channel.
func (s *session) startPairing() error {
	cl := s.currentClient()
	if _, none := cl.(nilClient); none {
		container, err := s.c.deviceStore()
		if err != nil {
			return err
		}
		cl = s.c.cfg.NewClient(container.NewDevice(), newWALogger(s.log.With("module", "whatsmeow")))
		s.attach(cl)
	}
	qctx, stop := context.WithCancel(s.c.ctx)
	ch, err := cl.GetQRChannel(qctx)
	if err != nil {
		stop()
		return fmt.Errorf("whatsapp: QR channel: %w", err)
	}
	seen := make(chan struct{})
	s.mu.Lock()
	s.qr, s.qrImage, s.qrCount, s.pairingCode = "", "", 0, ""
	s.qrSeen, s.stopQR = seen, stop
	s.mu.Unlock()
	s.c.wg.Add(1)
	go func() {
		defer s.c.wg.Done()
		s.consumeQR(ch, seen)
	}()
	st := connState{State: channel.Connecting, Code: codeOK}
	if s.setState(st) {
		s.emitState(st)
	}
	if err := cl.Connect(); err != nil {
		reason := fmt.Sprintf("cannot reach WhatsApp: %v", err)
		s.stopPairing(reason + "; call /instance/connect again")
		return &wagate.Error{Code: wagate.EUPSTREAM, Messages: []string{reason}, Err: err}
	}
	s.log.Info("whatsapp: pairing started")
	return nil
}

// consumeQR follows one pairing's QR channel: each code is kept for the
// connect route, reported (qrcode.updated) and printed if configured; the
// channel's last item says how pairing ended.
func (s *session) consumeQR(ch <-chan whatsmeow.QRChannelItem, seen chan struct{}) {
	for {
		var item whatsmeow.QRChannelItem
		select {
		case <-s.c.ctx.Done():
			return // stopping; whatsmeow closes the channel on its own
		case it, ok := <-ch:
			if !ok {
				s.mu.Lock()
				if s.qrSeen == seen {
					s.endPairingLocked()
				}
				s.mu.Unlock()
				return
			}
			item = it
		}
		if item.Event == whatsmeow.QRChannelEventCode {
			s.newQR(item.Code, seen)
		}
		s.mu.Lock()
		next, ok := qrTransition(s.state, item)
		changed := ok && s.qrSeen == seen && s.setStateLocked(next)
		if item.Event != whatsmeow.QRChannelEventCode && item.Event != whatsmeow.QRChannelScannedWithoutMultidevice.Event && s.qrSeen == seen {
			s.endPairingLocked()
		}
		s.mu.Unlock()
		if changed {
			s.emitState(next)
		}
	}
}

func (s *session) newQR(code string, seen chan struct{}) {
	image, err := qrDataURL(code)
	if err != nil {
		s.log.Error("whatsapp: QR code", "error", err)
	}
	s.mu.Lock()
	if s.qrSeen != seen {
		s.mu.Unlock()
		return // a pairing that was stopped
	}
	first := s.qr == ""
	s.qr, s.qrImage = code, image
	s.qrCount++
	inst, pairingCode, count := s.inst, s.pairingCode, s.qrCount
	if first {
		close(seen)
	}
	s.mu.Unlock()

	var pc any
	if pairingCode != "" {
		pc = pairingCode
	}
	data := map[string]any{"qrcode": map[string]any{"instance": inst.Name, "pairingCode": pc, "code": code, "base64": image}}
	s.enqueue(func(ctx context.Context) {
		if err := s.c.host.Emit(ctx, inst, webhook.QRCodeUpdated, data); err != nil {
			s.log.Error("whatsapp: report qrcode.updated", "error", err)
		}
	})
	if s.c.cfg.QRTerminal {
		if err := printQR(s.c.cfg.Terminal, inst.Name, code); err != nil {
			s.log.Warn("whatsapp: print QR code", "error", err)
		}
	}
	s.log.Info("whatsapp: new QR code", "count", count)
}

// endPairingLocked forgets the QR code of a pairing that ended.
func (s *session) endPairingLocked() {
	if s.qrSeen != nil {
		select {
		case <-s.qrSeen:
		default:
			close(s.qrSeen)
		}
	}
	s.qrSeen, s.qr, s.qrImage, s.pairingCode = nil, "", "", ""
}

// stopPairing abandons the pairing in progress, closing with reason.
func (s *session) stopPairing(reason string) {
	cl := s.currentClient()
	s.mu.Lock()
	if s.stopQR != nil {
		s.stopQR()
		s.stopQR = nil
	}
	s.endPairingLocked()
	st := connState{State: channel.Close, Reason: reason, Code: codeClosed}
	changed := s.setStateLocked(st)
	s.mu.Unlock()
	cl.Disconnect()
	if changed {
		s.emitState(st)
	}
}

// paired records the device a pairing produced, so the instance
// reconnects after a restart.
func (s *session) paired(ctx context.Context, e *events.PairSuccess) {
	inst := s.instance()
	if err := s.c.store.SetDeviceJID(ctx, inst.ID, e.ID.String()); err != nil {
		s.log.Error("whatsapp: record paired device", "device", e.ID.String(), "error", err)
		return
	}
	s.log.Info("whatsapp: paired", "device", e.ID.String(), "platform", e.Platform)
}

// forgetDevice records that the instance is no longer paired.
func (s *session) forgetDevice(ctx context.Context) {
	if err := s.c.store.SetDeviceJID(ctx, s.instance().ID, ""); err != nil {
		s.log.Error("whatsapp: forget logged-out device", "error", err)
	}
}

// connected sets the account's presence: "available" keeps the instance
// online (alwaysOnline) but mutes notifications on the phone, so it is
// only sent when asked for.
func (s *session) connected(ctx context.Context) {
	presence := types.PresenceUnavailable
	if s.instance().Settings.AlwaysOnline {
		presence = types.PresenceAvailable
	}
	if err := s.currentClient().SendPresence(ctx, presence); err != nil {
		s.log.Debug("whatsapp: send presence", "error", err)
	}
}

// receive hands an incoming message to the gateway.
func (s *session) receive(ctx context.Context, e *events.Message) {
	inst, cl := s.instance(), s.currentClient()
	me := own{pn: cl.OwnJID().ToNonAD(), lid: cl.OwnLID().ToNonAD()}
	in, content, drop, err := translate(e, me)
	if err != nil {
		s.log.Error("whatsapp: translate message", "id", e.Info.ID, "error", err)
		return
	}
	if drop {
		return
	}
	if in.IsGroup && inst.Settings.GroupsIgnore {
		return
	}
	if in.FromMe && s.sentByUs(ctx, inst.ID, in.MessageID) {
		in.Ignore = ignoreEcho
	}
	if in.QuotedID != "" && !in.RepliesToMe {
		in.RepliesToMe = s.sentByUs(ctx, inst.ID, in.QuotedID)
	}
	in.ChatKey = s.chatKey(ctx, cl, e.Info)
	if err := s.c.host.Receive(ctx, inst, in, content); err != nil {
		s.log.Error("whatsapp: store received message", "id", in.MessageID, "error", err)
		return
	}
	if in.Ignore == ignoreEdit || in.Ignore == ignoreRevoke {
		s.changed(ctx, e)
	}
	if inst.Settings.ReadMessages && !in.FromMe && in.Ignore == "" {
		s.mu.Lock()
		// Bounded: a chat the bot never answers must not grow forever.
		s.unread[e.Info.Chat] = append(s.unread[e.Info.Chat], unread{id: e.Info.ID, sender: e.Info.Sender})
		if u := s.unread[e.Info.Chat]; len(u) > maxUnread {
			s.unread[e.Info.Chat] = u[len(u)-maxUnread:]
		}
		s.mu.Unlock()
	}
}

// sentByUs reports whether the instance sent id through the gateway: in
// memory for recent sends (their rows may not be written yet), else in
// the store.
func (s *session) sentByUs(ctx context.Context, instanceID, id string) bool {
	if s.c.sent.has(instanceID, id) {
		return true
	}
	sent, err := s.c.host.Sent(ctx, instanceID, id)
	if err != nil {
		s.log.Warn("whatsapp: look up sent message", "id", id, "error", err)
	}
	return sent
}

// chatKey names a LID chat by the person's phone-number JID when it is
// known, so that one person is one conversation whichever address WhatsApp
// uses for them. Replies still go to the chat exactly as received.
func (s *session) chatKey(ctx context.Context, cl Client, info types.MessageInfo) string {
	chat := info.Chat
	if chat.Server != types.HiddenUserServer {
		return ""
	}
	if !info.IsFromMe && info.SenderAlt.Server == types.DefaultUserServer {
		return info.SenderAlt.ToNonAD().String()
	}
	if info.IsFromMe && info.RecipientAlt.Server == types.DefaultUserServer {
		return info.RecipientAlt.ToNonAD().String()
	}
	pn, err := cl.PNForLID(ctx, chat.ToNonAD())
	if err != nil {
		s.log.Debug("whatsapp: LID lookup", "lid", chat.String(), "error", err)
	}
	if pn.IsEmpty() {
		return ""
	}
	return pn.ToNonAD().String()
}

// rejectCall declines calls when the instance's rejectCall setting asks
// for it, and answers with msgCall if set.
func (s *session) rejectCall(ctx context.Context, e *events.CallOffer) {
	inst, cl := s.instance(), s.currentClient()
	if !inst.Settings.RejectCall {
		return
	}
	if err := cl.RejectCall(ctx, e.CallCreator, e.CallID); err != nil {
		s.log.Warn("whatsapp: reject call", "error", err)
		return
	}
	s.log.Info("whatsapp: call rejected", "from", e.CallCreator.String())
	if inst.Settings.MsgCall == "" {
		return
	}
	if _, err := s.c.send(ctx, s, bots.Outbound{ChatJID: e.CallCreator.ToNonAD().String(), Text: inst.Settings.MsgCall}); err != nil {
		s.log.Warn("whatsapp: answer rejected call", "error", err)
	}
}

// suffix keeps the last digits of a phone number for logs.
func suffix(phone string) string {
	if len(phone) <= 4 {
		return phone
	}
	return "…" + phone[len(phone)-4:]
}

// nilClient stands for "no client yet", so callers need not check for nil.
type nilClient struct{ Client }

func (nilClient) OwnJID() types.JID { return types.EmptyJID }
func (nilClient) OwnLID() types.JID { return types.EmptyJID }
func (nilClient) PushName() string  { return "" }
func (nilClient) Disconnect()       {}
func (nilClient) IsConnected() bool { return false }
func (nilClient) IsLoggedIn() bool  { return false }
func (nilClient) SendPresence(context.Context, types.Presence) error {
	return errNotConnected
}
func (nilClient) PNForLID(context.Context, types.JID) (types.JID, error) {
	return types.EmptyJID, nil
}
func (nilClient) LIDForPN(context.Context, types.JID) (types.JID, error) {
	return types.EmptyJID, nil
}
func (nilClient) RejectCall(context.Context, types.JID, string) error { return errNotConnected }

var errNotConnected = wagate.Errorf(wagate.ECONFLICT, "the instance is not connected to WhatsApp; connect it first")
