package whatsapp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waAdv"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/store/sqlstore"
	"go.mau.fi/whatsmeow/store/sqlstore/upgrades"
	"go.mau.fi/whatsmeow/types"
	"go.mau.fi/whatsmeow/types/events"
	"google.golang.org/protobuf/proto"

	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/gateway/whatsapp"
	"github.com/wagate/wagate/gateway/whatsapp/watest"
	"github.com/wagate/wagate/store"
)

const wait = 10 * time.Second

var (
	devJID = types.JID{User: "5511900000000", Device: 12, Server: types.DefaultUserServer}
	devLID = types.JID{User: "90000000000001", Device: 12, Server: types.HiddenUserServer}
	ana    = types.NewJID("5511911111111", types.DefaultUserServer)
	anaLID = types.NewJID("91111111111111", types.HiddenUserServer)
)

// host is a channel.Host that records what the channel reports.
type host struct {
	mu       sync.Mutex
	events   []emitted
	received []received
	sent     map[string]bool // message ids the gateway recorded as sent
}

type emitted struct {
	Event string
	Data  map[string]any
}

type received struct {
	In      bots.Inbound
	Content json.RawMessage
}

func (h *host) Receive(_ context.Context, _ *store.Instance, in bots.Inbound, content json.RawMessage) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.received = append(h.received, received{in, content})
	return nil
}

func (h *host) Emit(_ context.Context, _ *store.Instance, event string, data any) error {
	raw, err := json.Marshal(data)
	if err != nil {
		return err
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.events = append(h.events, emitted{event, m})
	return nil
}

func (h *host) Update(context.Context, *store.Instance, channel.Update) error { return nil }

func (h *host) Contacts(context.Context, *store.Instance, []store.Contact) error { return nil }

func (h *host) Chats(context.Context, *store.Instance, []store.ChatInfo) error { return nil }

func (h *host) Sent(_ context.Context, _, id string) (bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.sent[id], nil
}

func (h *host) emitted(event string) []emitted {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []emitted
	for _, e := range h.events {
		if e.Event == event {
			out = append(out, e)
		}
	}
	return out
}

func (h *host) inbound() []received {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]received(nil), h.received...)
}

// states returns the states reported by connection.update, in order.
func (h *host) states() []string {
	var out []string
	for _, e := range h.emitted(webhook.ConnectionUpdate) {
		out = append(out, e.Data["state"].(string))
	}
	return out
}

func eventually(t *testing.T, cond func() bool, what string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for "+what, args...)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type fixture struct {
	t    *testing.T
	st   *store.Store
	host *host
	fac  *watest.Factory
	ch   *whatsapp.Channel
	term *syncBuffer
}

// syncBuffer is a bytes.Buffer safe for the channel's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st, err := store.Open(context.Background(), store.Options{
		URL:       "file:" + filepath.Join(t.TempDir(), "wagate.db"),
		SecretKey: bytes.Repeat([]byte{7}, 32),
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, host: &host{sent: map[string]bool{}}, fac: watest.NewFactory(), term: &syncBuffer{}}
	f.start()
	t.Cleanup(func() { f.ch.Stop(); st.Close() })
	return f
}

func (f *fixture) start() {
	f.t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	f.ch = whatsapp.New(f.host, f.st, log, whatsapp.Config{NewClient: f.fac.New, QRTerminal: true, Terminal: f.term})
	if err := f.ch.Start(context.Background()); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) instance(name string, settings store.InstanceSettings) *store.Instance {
	f.t.Helper()
	now := time.Now()
	inst := &store.Instance{ID: "id-" + name, Name: name, Integration: store.IntegrationWhatsApp, TokenHash: "hash-" + name,
		TokenPrefix: "tok", Settings: settings, CreatedAt: now, UpdatedAt: now}
	org, err := f.st.DefaultOrganization(context.Background())
	if err != nil {
		f.t.Fatal(err)
	}
	inst.OrganizationID = org.ID
	if err := f.st.CreateInstance(context.Background(), inst); err != nil {
		f.t.Fatal(err)
	}
	return inst
}

// pair runs a pairing to the end: connect, first QR, PairSuccess,
// Connected. It returns the fake client, now logged in.
func (f *fixture) pair(inst *store.Instance) *watest.Client {
	f.t.Helper()
	type result struct {
		p   *channel.Pairing
		err error
	}
	done := make(chan result, 1)
	go func() {
		p, err := f.ch.Connect(context.Background(), inst, "")
		done <- result{p, err}
	}()
	cl, err := f.fac.Next(wait)
	if err != nil {
		f.t.Fatal(err)
	}
	if err := cl.WaitConnect(wait); err != nil {
		f.t.Fatal(err)
	}
	cl.QR(whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@first,code", Timeout: time.Minute})
	r := <-done
	if r.err != nil || r.p == nil {
		f.t.Fatalf("connect = %+v, %v", r.p, r.err)
	}
	cl.QR(whatsmeow.QRChannelSuccess)
	cl.CloseQR()
	cl.Emit(&events.PairSuccess{ID: devJID, LID: devLID, Platform: "android"})
	cl.SetPushName("Shop")
	cl.Emit(&events.Connected{})
	eventually(f.t, func() bool { return f.ch.State(context.Background(), inst).State == channel.Open }, "open")
	eventually(f.t, func() bool { s := f.host.states(); return len(s) > 0 && s[len(s)-1] == channel.Open }, "connection.update open")
	eventually(f.t, func() bool {
		jid, _ := f.st.DeviceJID(context.Background(), inst.ID)
		return jid == devJID.String()
	}, "device JID stored")
	return cl
}

func TestPairByQRCode(t *testing.T) {
	f := newFixture(t)
	inst := f.instance("shop", store.InstanceSettings{})
	ctx := context.Background()
	if st := f.ch.State(ctx, inst); st.State != channel.Close || st.Reason != "" {
		t.Fatalf("before pairing: %+v", st)
	}

	done := make(chan *channel.Pairing, 1)
	go func() {
		p, err := f.ch.Connect(ctx, inst, "")
		if err != nil {
			t.Error(err)
		}
		done <- p
	}()
	cl, err := f.fac.Next(wait)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Device == nil || cl.Device.ID != nil {
		t.Fatalf("pairing did not start from a new device: %+v", cl.Device)
	}
	if err := cl.WaitConnect(wait); err != nil {
		t.Fatal(err)
	}
	cl.QR(whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@first,code", Timeout: time.Minute})
	p := <-done
	if p == nil || p.Code != "2@first,code" || p.Count != 1 || p.PairingCode != "" || !strings.HasPrefix(p.Base64, "data:image/png;base64,") {
		t.Fatalf("pairing = %+v", p)
	}
	if f.ch.State(ctx, inst).State != channel.Connecting {
		t.Fatalf("state while pairing = %+v", f.ch.State(ctx, inst))
	}
	// Every code is reported, and the connect route shows the latest.
	cl.QR(whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@second,code", Timeout: 20 * time.Second})
	eventually(t, func() bool { return len(f.host.emitted(webhook.QRCodeUpdated)) == 2 }, "two qrcode.updated")
	p, err = f.ch.Connect(ctx, inst, "")
	if err != nil || p.Code != "2@second,code" || p.Count != 2 {
		t.Fatalf("second connect = %+v, %v", p, err)
	}
	if len(f.fac.Clients()) != 1 || cl.Connects() != 1 {
		t.Fatalf("a second connect started another pairing: %d clients, %d connects", len(f.fac.Clients()), cl.Connects())
	}
	q := f.host.emitted(webhook.QRCodeUpdated)[1].Data["qrcode"].(map[string]any)
	if q["instance"] != "shop" || q["code"] != "2@second,code" || q["pairingCode"] != nil || !strings.HasPrefix(q["base64"].(string), "data:image/png;base64,") {
		t.Fatalf("qrcode.updated = %v", q)
	}
	if !strings.Contains(f.term.String(), `pair instance "shop"`) {
		t.Fatalf("QR not printed on the terminal: %q", f.term.String())
	}

	// Scanned: paired, then connected.
	cl.QR(whatsmeow.QRChannelSuccess)
	cl.CloseQR()
	cl.Emit(&events.PairSuccess{ID: devJID, LID: devLID, BusinessName: "Shop"})
	cl.Emit(&events.Connected{})
	eventually(t, func() bool {
		jid, _ := f.st.DeviceJID(ctx, inst.ID)
		return jid == devJID.String()
	}, "the full device JID stored")
	if st := f.ch.State(ctx, inst); st.State != channel.Open {
		t.Fatalf("state = %+v", st)
	}
	eventually(t, func() bool { s := f.host.states(); return len(s) > 0 && s[len(s)-1] == channel.Open }, "connection.update open")
	ups := f.host.emitted(webhook.ConnectionUpdate)
	last := ups[len(ups)-1].Data
	if last["instance"] != "shop" || last["wuid"] != "5511900000000@s.whatsapp.net" || last["profileName"] != "Shop" || last["statusReason"] != float64(200) {
		t.Fatalf("connection.update open = %v", last)
	}
	if got := strings.Join(f.host.states(), ","); got != "connecting,open" {
		t.Fatalf("states = %s", got)
	}
	// Connected: connect answers the state.
	if p, err := f.ch.Connect(ctx, inst, ""); p != nil || err != nil {
		t.Fatalf("connect when open = %+v, %v", p, err)
	}
}

func TestPairByPhoneCode(t *testing.T) {
	f := newFixture(t)
	inst := f.instance("shop", store.InstanceSettings{})
	done := make(chan *channel.Pairing, 1)
	go func() {
		p, err := f.ch.Connect(context.Background(), inst, "5511900000000")
		if err != nil {
			t.Error(err)
		}
		done <- p
	}()
	cl, err := f.fac.Next(wait)
	if err != nil {
		t.Fatal(err)
	}
	cl.PairingCode = "ABCD1234"
	if err := cl.WaitConnect(wait); err != nil {
		t.Fatal(err)
	}
	cl.QR(whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@code", Timeout: time.Minute})
	p := <-done
	if p == nil || p.PairingCode != "ABCD1234" || p.Code != "2@code" {
		t.Fatalf("pairing = %+v", p)
	}
	if got := cl.PairedPhones(); len(got) != 1 || got[0] != "5511900000000" {
		t.Fatalf("PairPhone calls = %v", got)
	}
}

func TestPairingEnds(t *testing.T) {
	for name, tc := range map[string]struct {
		item   whatsmeow.QRChannelItem
		reason string
	}{
		"codes expire":    {whatsmeow.QRChannelTimeout, "QR codes expired"},
		"client outdated": {whatsmeow.QRChannelClientOutdated, "upgrade wagate"},
		"pair error":      {whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventError, Error: errors.New("bad hmac")}, "bad hmac"},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			inst := f.instance("shop", store.InstanceSettings{})
			go f.ch.Connect(context.Background(), inst, "")
			cl, err := f.fac.Next(wait)
			if err != nil {
				t.Fatal(err)
			}
			if err := cl.WaitConnect(wait); err != nil {
				t.Fatal(err)
			}
			cl.QR(whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@code"})
			cl.QR(tc.item)
			cl.CloseQR()
			cl.Emit(&events.Disconnected{}) // a pairing socket closing says nothing more
			eventually(t, func() bool { return f.ch.State(context.Background(), inst).State == channel.Close }, "close")
			if st := f.ch.State(context.Background(), inst); !strings.Contains(st.Reason, tc.reason) {
				t.Fatalf("reason = %q, want %q", st.Reason, tc.reason)
			}
			eventually(t, func() bool { return strings.Join(f.host.states(), ",") == "connecting,close" }, "states connecting,close, got %v", f.host.states())
			// Connect again: a new pairing on the same unpaired client.
			go f.ch.Connect(context.Background(), inst, "")
			if err := cl.WaitConnect(wait); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestConnectionEvents(t *testing.T) {
	f := newFixture(t)
	inst := f.instance("shop", store.InstanceSettings{})
	cl := f.pair(inst)
	ctx := context.Background()
	steps := []struct {
		evt    any
		state  string
		reason string
	}{
		{&events.KeepAliveTimeout{ErrorCount: 1}, channel.Connecting, ""},
		{&events.KeepAliveRestored{}, channel.Open, ""},
		{&events.Disconnected{}, channel.Connecting, ""},
		{&events.Connected{}, channel.Open, ""},
		{&events.StreamReplaced{}, channel.Close, "stream replaced"},
		{&events.Connected{}, channel.Open, ""},
		{&events.TemporaryBan{Code: events.TempBanSentToTooManyPeople, Expire: time.Hour}, channel.Close, "temporarily banned by WhatsApp until"},
		{&events.Connected{}, channel.Open, ""},
		{&events.ClientOutdated{}, channel.Close, "client outdated"},
		{&events.Connected{}, channel.Open, ""},
		{&events.ConnectFailure{Reason: 418, Message: "odd"}, channel.Close, "odd"},
		{&events.Connected{}, channel.Open, ""},
		{&events.LoggedOut{}, channel.Close, "logged out from the phone"},
	}
	before := len(f.host.emitted(webhook.ConnectionUpdate))
	for i, s := range steps {
		cl.Emit(s.evt)
		st := f.ch.State(ctx, inst)
		if st.State != s.state || !strings.Contains(st.Reason, s.reason) || (s.reason == "") != (st.Reason == "") {
			t.Fatalf("step %d (%T): state %+v, want %s %q", i, s.evt, st, s.state, s.reason)
		}
		eventually(t, func() bool { return len(f.host.emitted(webhook.ConnectionUpdate)) == before+i+1 }, "connection.update for step %d", i)
		got := f.host.emitted(webhook.ConnectionUpdate)[before+i].Data
		if got["state"] != s.state || (s.reason != "" && !strings.Contains(fmt.Sprint(got["reason"]), s.reason)) {
			t.Fatalf("step %d: connection.update %v", i, got)
		}
	}
	// The same event twice is one change.
	cl.Emit(&events.LoggedOut{})
	time.Sleep(20 * time.Millisecond)
	if n := len(f.host.emitted(webhook.ConnectionUpdate)); n != before+len(steps) {
		t.Fatalf("%d updates, want %d", n, before+len(steps))
	}
	// Logged out from the phone: the device is forgotten, and pairing
	// again starts from a new device.
	eventually(t, func() bool { jid, _ := f.st.DeviceJID(ctx, inst.ID); return jid == "" }, "device JID cleared")
	go f.ch.Connect(ctx, inst, "")
	next, err := f.fac.Next(wait)
	if err != nil {
		t.Fatal(err)
	}
	if next == cl || next.Device.ID != nil {
		t.Fatalf("pairing again reused the logged-out device")
	}
	if err := next.WaitConnect(wait); err != nil {
		t.Fatal(err)
	}
	next.QR(whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventCode, Code: "2@again"})
}

func TestSendShowsComposingAndQuotes(t *testing.T) {
	f := newFixture(t)
	inst := f.instance("shop", store.InstanceSettings{})
	cl := f.pair(inst)
	ctx := context.Background()

	// A stored inbound message to quote.
	if _, err := f.st.InsertMessage(ctx, &store.Message{InstanceID: inst.ID, ID: "IN-1", Direction: store.Inbound, RemoteJID: ana.String(),
		MessageType: "conversation", Content: json.RawMessage(`{"conversation":"do you have it?"}`), Text: "do you have it?",
		Status: "DELIVERY_ACK", Timestamp: time.Now(), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	sent, err := f.ch.Send(ctx, inst.ID, bots.Outbound{ID: "GATEWAY-UUID", ChatJID: ana.String(), Text: "yes", QuotedID: "IN-1", Delay: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) < 50*time.Millisecond {
		t.Fatal("sent before the typing delay")
	}
	msgs := cl.SentMessages()
	if len(msgs) != 1 || msgs[0].ID != types.MessageID(sent.ID) || msgs[0].To != ana || sent.Status != "SERVER_ACK" || sent.Timestamp.IsZero() {
		t.Fatalf("sent %+v, messages %+v", sent, msgs)
	}
	ext := msgs[0].Message.GetExtendedTextMessage()
	ci := ext.GetContextInfo()
	if ext.GetText() != "yes" || ci.GetStanzaID() != "IN-1" || ci.GetParticipant() != ana.String() || ci.GetQuotedMessage().GetConversation() != "do you have it?" {
		t.Fatalf("quoted message = %v", msgs[0].Message)
	}
	pres := cl.Presences()
	if len(pres) != 2 || pres[0].State != types.ChatPresenceComposing || pres[1].State != types.ChatPresencePaused ||
		pres[1].At.Sub(pres[0].At) < 50*time.Millisecond || pres[0].Chat != ana {
		t.Fatalf("presences = %+v", pres)
	}

	// Without a delay or quote: plain text, no presence.
	if _, err := f.ch.Send(ctx, inst.ID, bots.Outbound{ChatJID: anaLID.String(), Text: "hi"}); err != nil {
		t.Fatal(err)
	}
	if m := cl.SentMessages()[1]; m.Message.GetConversation() != "hi" || m.To != anaLID || len(cl.Presences()) != 2 {
		t.Fatalf("plain send = %+v", m)
	}

	// Failures keep their meaning.
	if _, err := f.ch.Send(ctx, inst.ID, bots.Outbound{ChatJID: "not a jid@", Text: "x"}); err == nil {
		t.Fatal("sent to an invalid JID")
	}
	cl.SendErr = errors.New("timed out")
	if _, err := f.ch.Send(ctx, inst.ID, bots.Outbound{ChatJID: ana.String(), Text: "x"}); err == nil || !strings.Contains(err.Error(), "upstream") {
		t.Fatalf("send error = %v", err)
	}
	cl.Emit(&events.Disconnected{})
	if _, err := f.ch.Send(ctx, inst.ID, bots.Outbound{ChatJID: ana.String(), Text: "x"}); err == nil || !strings.Contains(err.Error(), "not connected") {
		t.Fatalf("send while disconnected = %v", err)
	}
	if _, err := f.ch.Send(ctx, "no-such-instance", bots.Outbound{ChatJID: ana.String(), Text: "x"}); err == nil {
		t.Fatal("sent on an instance without a session")
	}
}

// TestSendCommitsBeforeTheMessageLeaves checks the at-most-once hook of a
// bot's reply part: BeforeSend runs after the typing delay and before the
// message leaves, and a failing one keeps it from leaving.
func TestSendCommitsBeforeTheMessageLeaves(t *testing.T) {
	f := newFixture(t)
	inst := f.instance("shop", store.InstanceSettings{})
	cl := f.pair(inst)
	ctx := context.Background()
	var sentBefore []int
	_, err := f.ch.Send(ctx, inst.ID, bots.Outbound{ChatJID: ana.String(), Text: "one", Delay: time.Millisecond,
		BeforeSend: func(context.Context) error {
			sentBefore = append(sentBefore, len(cl.SentMessages()))
			if n := len(cl.Presences()); n != 2 {
				t.Errorf("BeforeSend ran with %d presences sent, want 2 (after the typing delay)", n)
			}
			return nil
		}})
	if err != nil || len(sentBefore) != 1 || sentBefore[0] != 0 || len(cl.SentMessages()) != 1 {
		t.Fatalf("send: %v; messages sent when BeforeSend ran %v, after %d", err, sentBefore, len(cl.SentMessages()))
	}
	failed := errors.New("database gone")
	_, err = f.ch.Send(ctx, inst.ID, bots.Outbound{ChatJID: ana.String(), Text: "two",
		BeforeSend: func(context.Context) error { return failed }})
	if !errors.Is(err, failed) || len(cl.SentMessages()) != 1 {
		t.Fatalf("with a failing BeforeSend: %v, %d messages sent", err, len(cl.SentMessages()))
	}
}

func dmEvent(id string, fromMe bool, m *waE2E.Message) *events.Message {
	sender := ana
	if fromMe {
		sender = devJID
	}
	evt := &events.Message{
		Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: ana, Sender: sender, IsFromMe: fromMe},
			ID:            types.MessageID(id), PushName: "Ana", Timestamp: time.Now(),
		},
		RawMessage: m,
	}
	return evt.UnwrapRaw()
}

func TestInboundEchoesRepliesAndOperators(t *testing.T) {
	f := newFixture(t)
	inst := f.instance("shop", store.InstanceSettings{})
	cl := f.pair(inst)
	ctx := context.Background()

	sent, err := f.ch.Send(ctx, inst.ID, bots.Outbound{ChatJID: ana.String(), Text: "want it?"})
	if err != nil {
		t.Fatal(err)
	}
	f.host.sent["OLDER-SEND"] = true // recorded by the gateway before this run

	text := func(s string) *waE2E.Message { return &waE2E.Message{Conversation: proto.String(s)} }
	reply := func(s, quoted, participant string) *waE2E.Message {
		return &waE2E.Message{ExtendedTextMessage: &waE2E.ExtendedTextMessage{Text: proto.String(s),
			ContextInfo: &waE2E.ContextInfo{StanzaID: proto.String(quoted), Participant: proto.String(participant)}}}
	}
	cl.Emit(dmEvent(sent.ID, true, text("want it?")))                       // our own echo, before the gateway recorded it
	cl.Emit(dmEvent("OLDER-SEND", true, text("earlier")))                   // an echo the gateway recorded
	cl.Emit(dmEvent("OPERATOR-1", true, text("I'll take it from here")))    // typed on the phone
	cl.Emit(dmEvent("REPLY-1", false, reply("yes", sent.ID, ana.String()))) // quoting our send
	cl.Emit(dmEvent("REPLY-2", false, reply("no", "SOMEONE", ana.String())))
	eventually(t, func() bool { return len(f.host.inbound()) == 5 }, "5 inbound messages")
	got := f.host.inbound()
	want := []struct {
		id      string
		fromMe  bool
		ignore  string
		replies bool
	}{
		{sent.ID, true, "echo of a message the gateway sent", false},
		{"OLDER-SEND", true, "echo of a message the gateway sent", false},
		{"OPERATOR-1", true, "", false},
		{"REPLY-1", false, "", true},
		{"REPLY-2", false, "", false},
	}
	for i, w := range want {
		in := got[i].In
		if in.MessageID != w.id || in.FromMe != w.fromMe || in.Ignore != w.ignore || in.RepliesToMe != w.replies || in.ChatJID != ana.String() {
			t.Errorf("message %d = %+v, want %+v", i, in, w)
		}
	}
}

func TestInboundLIDChatsAndSettings(t *testing.T) {
	f := newFixture(t)
	inst := f.instance("shop", store.InstanceSettings{GroupsIgnore: true, ReadMessages: true, RejectCall: true, MsgCall: "No calls, please write."})
	cl := f.pair(inst)
	ctx := context.Background()
	cl.LIDs = map[types.JID]types.JID{anaLID: ana}

	lidMsg := func(id string, alt types.JID) *events.Message {
		evt := &events.Message{Info: types.MessageInfo{
			MessageSource: types.MessageSource{Chat: anaLID, Sender: anaLID, SenderAlt: alt, AddressingMode: types.AddressingModeLID},
			ID:            types.MessageID(id), Timestamp: time.Now(),
		}, RawMessage: &waE2E.Message{Conversation: proto.String("oi")}}
		return evt.UnwrapRaw()
	}
	cl.Emit(lidMsg("LID-ALT", ana))           // the phone number comes with the message
	cl.Emit(lidMsg("LID-STORE", types.JID{})) // the LID store knows it
	stranger := lidMsg("LID-UNKNOWN", types.JID{})
	stranger.Info.Chat = types.NewJID("93333333333333", types.HiddenUserServer)
	stranger.Info.Sender = stranger.Info.Chat
	cl.Emit(stranger)
	groupEvt := (&events.Message{Info: types.MessageInfo{
		MessageSource: types.MessageSource{Chat: types.NewJID("1203630001", types.GroupServer), Sender: ana, IsGroup: true},
		ID:            "GROUP-1", Timestamp: time.Now(),
	}, RawMessage: &waE2E.Message{Conversation: proto.String("hello group")}}).UnwrapRaw()
	cl.Emit(groupEvt) // groupsIgnore: not even stored
	cl.Emit(dmEvent("PN-1", false, &waE2E.Message{Conversation: proto.String("by number")}))
	eventually(t, func() bool { return len(f.host.inbound()) == 4 }, "4 inbound messages")
	got := f.host.inbound()
	for i, w := range []struct{ id, chat, key string }{
		{"LID-ALT", anaLID.String(), ana.String()},
		{"LID-STORE", anaLID.String(), ana.String()},
		{"LID-UNKNOWN", "93333333333333@lid", ""},
		{"PN-1", ana.String(), ""},
	} {
		in := got[i].In
		if in.MessageID != w.id || in.ChatJID != w.chat || in.ChatKey != w.key {
			t.Errorf("message %d: id %s chat %s key %q, want %+v", i, in.MessageID, in.ChatJID, in.ChatKey, w)
		}
	}

	// readMessages: marked read once the instance answers in the chat.
	if len(cl.Read()) != 0 {
		t.Fatal("marked read before answering")
	}
	if _, err := f.ch.Send(ctx, inst.ID, bots.Outbound{ChatJID: anaLID.String(), Text: "oi!"}); err != nil {
		t.Fatal(err)
	}
	if r := cl.Read(); len(r) != 1 || len(r[0]) != 2 || r[0][0] != "LID-ALT" || r[0][1] != "LID-STORE" {
		t.Fatalf("read = %v", r)
	}

	// rejectCall with msgCall.
	cl.Emit(&events.CallOffer{BasicCallMeta: types.BasicCallMeta{From: ana, CallCreator: ana, CallID: "CALL-1"}})
	eventually(t, func() bool { return len(cl.Rejected()) == 1 }, "the call rejected")
	eventually(t, func() bool {
		m := cl.SentMessages()
		return len(m) == 2 && m[1].To == ana && m[1].Message.GetConversation() == "No calls, please write."
	}, "msgCall sent")
}

// deviceStore opens whatsmeow's store the way the channel does.
func deviceStore(t *testing.T, st *store.Store) *sqlstore.Container {
	t.Helper()
	c := sqlstore.NewWithWrappedDB(st.DB().Child("whatsmeow_version", upgrades.Table, nil), nil)
	if err := c.Upgrade(context.Background()); err != nil {
		t.Fatal(err)
	}
	return c
}

// putDevice stores a paired device, as whatsmeow does at the end of
// pairing (PutDevice needs the account identity).
func putDevice(t *testing.T, c *sqlstore.Container, jid, lid types.JID) {
	t.Helper()
	dev := c.NewDevice()
	dev.ID, dev.LID = &jid, lid
	dev.Account = &waAdv.ADVSignedDeviceIdentity{Details: []byte{1}, AccountSignatureKey: make([]byte, 32), AccountSignature: make([]byte, 64), DeviceSignature: make([]byte, 64)}
	dev.PushName = "Shop"
	if err := c.PutDevice(context.Background(), dev); err != nil {
		t.Fatal(err)
	}
}

func TestDeviceStoreSharesTheDatabase(t *testing.T) {
	f := newFixture(t)
	c := deviceStore(t, f.st)
	putDevice(t, c, devJID, devLID)
	ctx := context.Background()
	dev, err := c.GetDevice(ctx, devJID)
	if err != nil || dev == nil || *dev.ID != devJID || dev.LID != devLID || dev.PushName != "Shop" {
		t.Fatalf("GetDevice = %+v, %v", dev, err)
	}
	if dev, err := c.GetDevice(ctx, types.JID{User: "1", Device: 1, Server: types.DefaultUserServer}); dev != nil || err != nil {
		t.Fatalf("unknown device = %+v, %v", dev, err)
	}
	// wagate's and whatsmeow's versions are kept apart.
	var wagateVersion, waVersion int
	if err := f.st.DB().QueryRow(ctx, "SELECT version FROM wagate_version").Scan(&wagateVersion); err != nil {
		t.Fatal(err)
	}
	if err := f.st.DB().QueryRow(ctx, "SELECT version FROM whatsmeow_version").Scan(&waVersion); err != nil {
		t.Fatal(err)
	}
	if wagateVersion < 4 || waVersion < 1 {
		t.Fatalf("versions: wagate %d, whatsmeow %d", wagateVersion, waVersion)
	}
}

func TestStartReconnectsPairedInstances(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	paired := f.instance("paired", store.InstanceSettings{})
	missing := f.instance("missing", store.InstanceSettings{})
	putDevice(t, deviceStore(t, f.st), devJID, devLID)
	if err := f.st.SetDeviceJID(ctx, paired.ID, devJID.String()); err != nil {
		t.Fatal(err)
	}
	gone := types.JID{User: "5511922222222", Device: 3, Server: types.DefaultUserServer}
	if err := f.st.SetDeviceJID(ctx, missing.ID, gone.String()); err != nil {
		t.Fatal(err)
	}

	f.ch.Stop()
	f.start()
	cl, err := f.fac.Next(wait)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Device == nil || cl.Device.ID == nil || *cl.Device.ID != devJID {
		t.Fatalf("client made for %+v", cl.Device)
	}
	if err := cl.WaitConnect(wait); err != nil {
		t.Fatal(err)
	}
	if st := f.ch.State(ctx, paired); st.State != channel.Connecting {
		t.Fatalf("paired state = %+v", st)
	}
	cl.Emit(&events.Connected{})
	if st := f.ch.State(ctx, paired); st.State != channel.Open {
		t.Fatalf("paired state = %+v", st)
	}
	if st := f.ch.State(ctx, missing); st.State != channel.Close || !strings.Contains(st.Reason, "missing from the store") {
		t.Fatalf("missing state = %+v", st)
	}
	if jid, _ := f.st.DeviceJID(ctx, missing.ID); jid != "" {
		t.Fatalf("missing device still recorded: %q", jid)
	}
	if n := len(f.fac.Clients()); n != 1 {
		t.Fatalf("%d clients", n)
	}

	// Restart reconnects.
	if err := f.ch.Restart(ctx, paired); err != nil {
		t.Fatal(err)
	}
	if err := cl.WaitConnect(wait); err != nil {
		t.Fatal(err)
	}
	if st := f.ch.State(ctx, paired); st.State != channel.Connecting {
		t.Fatalf("after restart = %+v", st)
	}
}

func TestLogout(t *testing.T) {
	ctx := context.Background()
	t.Run("connected", func(t *testing.T) {
		f := newFixture(t)
		inst := f.instance("shop", store.InstanceSettings{})
		cl := f.pair(inst)
		if err := f.ch.Logout(ctx, inst); err != nil {
			t.Fatal(err)
		}
		if !cl.LoggedOut() || !cl.Deleted() {
			t.Fatalf("logged out %v, deleted %v", cl.LoggedOut(), cl.Deleted())
		}
		if jid, _ := f.st.DeviceJID(ctx, inst.ID); jid != "" {
			t.Fatalf("device still recorded: %q", jid)
		}
		if st := f.ch.State(ctx, inst); st.State != channel.Close {
			t.Fatalf("state = %+v", st)
		}
		eventually(t, func() bool { s := f.host.states(); return len(s) > 0 && s[len(s)-1] == channel.Close }, "connection.update close")
	})
	t.Run("paired but disconnected", func(t *testing.T) {
		f := newFixture(t)
		inst := f.instance("shop", store.InstanceSettings{})
		cl := f.pair(inst)
		cl.Emit(&events.StreamReplaced{})
		if err := f.ch.Logout(ctx, inst); err != nil {
			t.Fatal(err)
		}
		// WhatsApp cannot be told; the keys are deleted here all the same.
		if cl.LoggedOut() || !cl.Deleted() {
			t.Fatalf("logged out %v, deleted %v", cl.LoggedOut(), cl.Deleted())
		}
		if jid, _ := f.st.DeviceJID(ctx, inst.ID); jid != "" {
			t.Fatalf("device still recorded: %q", jid)
		}
	})
	t.Run("paired without a session", func(t *testing.T) {
		f := newFixture(t)
		inst := f.instance("shop", store.InstanceSettings{})
		c := deviceStore(t, f.st)
		putDevice(t, c, devJID, devLID)
		if err := f.st.SetDeviceJID(ctx, inst.ID, devJID.String()); err != nil {
			t.Fatal(err)
		}
		if err := f.ch.Logout(ctx, inst); err != nil {
			t.Fatal(err)
		}
		if dev, err := c.GetDevice(ctx, devJID); dev != nil || err != nil {
			t.Fatalf("device left in the store: %v %v", dev, err)
		}
	})
	t.Run("never paired", func(t *testing.T) {
		f := newFixture(t)
		inst := f.instance("shop", store.InstanceSettings{})
		if err := f.ch.Logout(ctx, inst); err != nil {
			t.Fatal(err)
		}
		if len(f.fac.Clients()) != 0 || len(f.host.emitted(webhook.ConnectionUpdate)) != 0 {
			t.Fatal("logging out an unpaired instance did something")
		}
	})
}
