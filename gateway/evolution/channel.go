// Package evolution is the EVOLUTION channel: a generic HTTP channel where an
// external system posts inbound messages to POST /webhook/evolution and
// receives replies as send.message webhook events.
package evolution

import (
	"context"
	"time"

	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/fetch"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/store"
)

// Channel implements channel.Channel for EVOLUTION instances. It has no
// connection: the instance is always open, and sending means recording the
// message, which the gateway then reports as send.message.
type Channel struct {
	Fetch *fetch.Client // fetches media that senders give by URL
}

var _ channel.Channel = Channel{}

// Send waits out the typing delay and accepts the message. It leaves
// msg.BeforeSend alone: the message goes out only when the gateway records
// it (send.message), so there is no moment at which it may have left
// unrecorded.
func (Channel) Send(ctx context.Context, _ string, msg bots.Outbound) (bots.Sent, error) {
	if msg.Delay > 0 {
		t := time.NewTimer(msg.Delay)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return bots.Sent{}, ctx.Err()
		case <-t.C:
		}
	}
	return bots.Sent{ID: msg.ID, Status: "SERVER_ACK", Timestamp: time.Now()}, nil
}

// RecordsAtOnce is true when msg waits for no typing delay: sending it is
// recording it.
func (Channel) RecordsAtOnce(msg bots.Outbound) bool { return msg.Delay <= 0 }

// State is always open.
func (Channel) State(context.Context, *store.Instance) channel.State {
	return channel.State{State: channel.Open}
}

// Connect has nothing to pair: the instance is connected.
func (Channel) Connect(context.Context, *store.Instance, string) (*channel.Pairing, error) {
	return nil, nil
}

// Restart has no connection to restart.
func (Channel) Restart(context.Context, *store.Instance) error { return nil }

// Logout has no session to end.
func (Channel) Logout(context.Context, *store.Instance) error { return nil }
