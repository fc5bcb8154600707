package gateway

import (
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/store"
)

// channelOf returns the driver of inst's integration.
func (g *Gateway) channelOf(inst *store.Instance) channel.Channel {
	return g.channels[inst.Integration]
}
