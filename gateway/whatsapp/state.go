package whatsapp

import (
	"fmt"
	"time"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/types/events"

	"github.com/wagate/wagate/gateway/channel"
)

// connState is an instance's connection state as whatsmeow's events tell
// it. It is never stored: a stored "connected" flag drifts from the socket,
// while the events are what whatsmeow itself acts on.
type connState struct {
	State  string // channel.Open, Connecting or Close
	Reason string // why a close is permanent, for people; "" otherwise
	// Code is Evolution's statusReason: 200 while fine, else the HTTP-like
	// code of the failure (401 logged out, 440 replaced, 405 outdated, …).
	Code int
}

func (s connState) public() channel.State { return channel.State{State: s.State, Reason: s.Reason} }

// Reasons of permanent failures. They tell the operator what happened and
// what to do, since after them whatsmeow does not reconnect by itself.
const (
	reasonLoggedOut      = "logged out from the phone (the linked device was removed); pair again with /instance/connect"
	reasonReplaced       = "another process connected with the same WhatsApp session (stream replaced); stop it, then POST /instance/restart"
	reasonOutdated       = "client outdated: WhatsApp refused this whatsmeow version; upgrade wagate"
	reasonQRExpired      = "the QR codes expired before one was scanned; call /instance/connect again"
	reasonDeviceMissing  = "the paired device is missing from the store; pair again with /instance/connect"
	reasonPairingStopped = "pairing stopped before it completed; call /instance/connect again"
)

// Evolution's statusReason codes (Baileys' DisconnectReason), so existing
// clients keep their meaning.
const (
	codeOK         = 200
	codeLoggedOut  = 401
	codeBanned     = 402
	codeOutdated   = 405
	codeTimedOut   = 408
	codeClosed     = 428
	codeReplaced   = 440
	codeBadSession = 500
)

// transition returns the state after whatsmeow event evt, and whether evt
// bears on the connection at all. now dates a temporary ban's end.
func transition(cur connState, evt any, now time.Time) (connState, bool) {
	switch e := evt.(type) {
	case *events.QR:
		return connState{State: channel.Connecting, Code: codeOK}, true
	case *events.PairSuccess:
		// A reconnect with the new credentials follows; Connected opens.
		return connState{State: channel.Connecting, Code: codeOK}, true
	case *events.PairError:
		return connState{State: channel.Close, Reason: fmt.Sprintf("pairing failed: %v; call /instance/connect again", e.Error), Code: codeBadSession}, true
	case *events.Connected, *events.KeepAliveRestored:
		return connState{State: channel.Open, Code: codeOK}, true
	case *events.Disconnected:
		// whatsmeow reconnects a paired device by itself.
		return connState{State: channel.Connecting, Code: codeClosed}, true
	case *events.KeepAliveTimeout:
		// The socket may be dead; whatsmeow keeps pinging and reconnects
		// once it notices. Not open, not closed for good.
		return connState{State: channel.Connecting, Code: codeTimedOut}, true
	case *events.LoggedOut:
		reason := reasonLoggedOut
		if e.OnConnect && e.Reason != events.ConnectFailureLoggedOut {
			reason = fmt.Sprintf("logged out by WhatsApp (%s); pair again with /instance/connect", e.Reason)
		}
		return connState{State: channel.Close, Reason: reason, Code: codeLoggedOut}, true
	case *events.StreamReplaced:
		return connState{State: channel.Close, Reason: reasonReplaced, Code: codeReplaced}, true
	case *events.ClientOutdated:
		return connState{State: channel.Close, Reason: reasonOutdated, Code: codeOutdated}, true
	case *events.TemporaryBan:
		reason := "temporarily banned by WhatsApp: " + e.Code.String()
		if e.Expire > 0 {
			reason = fmt.Sprintf("temporarily banned by WhatsApp until %s: %s", now.Add(e.Expire).UTC().Format(time.RFC3339), e.Code)
		}
		return connState{State: channel.Close, Reason: reason, Code: codeBanned}, true
	case *events.ConnectFailure:
		reason := fmt.Sprintf("WhatsApp refused the connection (%s)", e.Reason)
		if e.Message != "" {
			reason += ": " + e.Message
		}
		return connState{State: channel.Close, Reason: reason + "; POST /instance/restart to try again", Code: int(e.Reason)}, true
	case *events.CATRefreshError:
		return connState{State: channel.Close, Reason: fmt.Sprintf("could not refresh the connection token: %v; POST /instance/restart", e.Error), Code: codeBadSession}, true
	}
	return cur, false
}

// qrTransition returns the state after an item of whatsmeow's QR channel.
// Only the items that end pairing change it: pairing is already
// "connecting" when codes come, and the channel is read apart from the
// event handler, so a late code must not undo a Connected.
func qrTransition(cur connState, item whatsmeow.QRChannelItem) (connState, bool) {
	switch item.Event {
	case whatsmeow.QRChannelTimeout.Event:
		return connState{State: channel.Close, Reason: reasonQRExpired, Code: codeTimedOut}, true
	case whatsmeow.QRChannelClientOutdated.Event:
		return connState{State: channel.Close, Reason: reasonOutdated, Code: codeOutdated}, true
	case whatsmeow.QRChannelEventError:
		return connState{State: channel.Close, Reason: fmt.Sprintf("pairing failed: %v; call /instance/connect again", item.Error), Code: codeBadSession}, true
	}
	// Codes: see above. Success: PairSuccess and Connected carry on. Scanned without
	// multi-device: the same code can be scanned again once it is enabled.
	return cur, false
}
