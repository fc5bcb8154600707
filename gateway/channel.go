package gateway

import (
	"context"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/store"
)

// channelOf returns the driver of inst's integration.
func (g *Gateway) channelOf(inst *store.Instance) channel.Channel {
	return g.channels[inst.Integration]
}

// unavailableChannel stands for an integration that is accepted and stored
// but has no driver in this build: every operation answers 501.
type unavailableChannel struct{ reason string }

func (u unavailableChannel) err() error { return wagate.Errorf(wagate.ENOTIMPLEMENTED, "%s", u.reason) }

func (u unavailableChannel) Send(context.Context, string, bots.Outbound) (bots.Sent, error) {
	return bots.Sent{}, u.err()
}

func (u unavailableChannel) State(context.Context, *store.Instance) channel.State {
	return channel.State{State: channel.Close, Reason: u.reason}
}

func (u unavailableChannel) Connect(context.Context, *store.Instance, string) (*channel.Pairing, error) {
	return nil, u.err()
}

func (u unavailableChannel) Restart(context.Context, *store.Instance) error { return u.err() }

func (u unavailableChannel) Logout(context.Context, *store.Instance) error { return u.err() }
