package whatsapp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wagate/wagate/gateway/channel"
)

func TestTransition(t *testing.T) {
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	open := connState{State: channel.Open, Code: codeOK}
	tests := []struct {
		name   string
		evt    any
		state  string
		reason string // substring; "" means none
		code   int
	}{
		{"qr", &events.QR{Codes: []string{"a"}}, channel.Connecting, "", codeOK},
		{"pair success", &events.PairSuccess{}, channel.Connecting, "", codeOK},
		{"pair error", &events.PairError{Error: errors.New("hmac mismatch")}, channel.Close, "pairing failed: hmac mismatch", codeBadSession},
		{"connected", &events.Connected{}, channel.Open, "", codeOK},
		{"disconnected", &events.Disconnected{}, channel.Connecting, "", codeClosed},
		{"keepalive timeout", &events.KeepAliveTimeout{ErrorCount: 1}, channel.Connecting, "", codeTimedOut},
		{"keepalive restored", &events.KeepAliveRestored{}, channel.Open, "", codeOK},
		{"logged out from phone", &events.LoggedOut{}, channel.Close, "logged out from the phone", codeLoggedOut},
		{"logged out on connect", &events.LoggedOut{OnConnect: true, Reason: events.ConnectFailureMainDeviceGone}, channel.Close, "403: primary device was logged out", codeLoggedOut},
		{"stream replaced", &events.StreamReplaced{}, channel.Close, "stream replaced", codeReplaced},
		{"client outdated", &events.ClientOutdated{}, channel.Close, "upgrade wagate", codeOutdated},
		{"temporary ban", &events.TemporaryBan{Code: events.TempBanBlockedByUsers, Expire: 2 * time.Hour}, channel.Close, "temporarily banned by WhatsApp until 2026-05-01T14:00:00Z: 102: too many people blocked you", codeBanned},
		{"connect failure", &events.ConnectFailure{Reason: events.ConnectFailureBadUserAgent, Message: "nope"}, channel.Close, "(409: client user agent was rejected): nope", 409},
		{"CAT refresh", &events.CATRefreshError{Error: errors.New("x")}, channel.Close, "refresh", codeBadSession},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := transition(open, tt.evt, now)
			if !ok || got.State != tt.state || got.Code != tt.code {
				t.Fatalf("transition = %+v, %v; want %s %d", got, ok, tt.state, tt.code)
			}
			if (tt.reason == "") != (got.Reason == "") || !strings.Contains(got.Reason, tt.reason) {
				t.Fatalf("reason = %q, want %q", got.Reason, tt.reason)
			}
		})
	}
	// Events that say nothing about the connection leave it alone.
	for _, evt := range []any{&events.Message{}, &events.Receipt{}, &events.OfflineSyncCompleted{}, &events.StreamError{Code: "x"}} {
		if got, ok := transition(open, evt, now); ok || got != open {
			t.Errorf("%T changed the state to %+v", evt, got)
		}
	}
}

func TestQRTransition(t *testing.T) {
	cur := connState{State: channel.Connecting, Code: codeOK}
	for item, want := range map[string]connState{
		whatsmeow.QRChannelEventCode:                       cur,
		whatsmeow.QRChannelTimeout.Event:                   {State: channel.Close, Reason: reasonQRExpired, Code: codeTimedOut},
		whatsmeow.QRChannelClientOutdated.Event:            {State: channel.Close, Reason: reasonOutdated, Code: codeOutdated},
		whatsmeow.QRChannelSuccess.Event:                   cur,
		whatsmeow.QRChannelScannedWithoutMultidevice.Event: cur,
		whatsmeow.QRChannelErrUnexpectedEvent.Event:        cur,
	} {
		if got, _ := qrTransition(cur, whatsmeow.QRChannelItem{Event: item}); got != want {
			t.Errorf("%s: %+v, want %+v", item, got, want)
		}
	}
	got, _ := qrTransition(cur, whatsmeow.QRChannelItem{Event: whatsmeow.QRChannelEventError, Error: errors.New("boom")})
	if got.State != channel.Close || !strings.Contains(got.Reason, "boom") {
		t.Errorf("error item: %+v", got)
	}
}
