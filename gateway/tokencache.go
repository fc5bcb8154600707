package gateway

import (
	"context"
	"sync"

	"github.com/wagate/wagate/store"
)

// tokenCache keeps the instance of each token hash that authenticated,
// while the store's configuration version stays the same: instance tokens
// authenticate every inbound message of the EVOLUTION channel, and reading
// the instance was a query each. Rotating a token or deleting the instance
// moves the version on, so the old token stops working at once. The
// instances are shared between requests and never modified.
type tokenCache struct {
	mu sync.Mutex
	m  map[string]tokenEntry
}

type tokenEntry struct {
	version uint64
	inst    *store.Instance
}

// maxCachedTokens bounds the cache; past it the cache starts over.
const maxCachedTokens = 10_000

// instanceByTokenHash returns the instance whose token has hash.
func (g *Gateway) instanceByTokenHash(ctx context.Context, hash string) (*store.Instance, error) {
	version, cacheable := g.store.ConfigVersion()
	if cacheable {
		g.tokens.mu.Lock()
		e, ok := g.tokens.m[hash]
		g.tokens.mu.Unlock()
		if ok && e.version == version {
			return e.inst, nil
		}
	}
	inst, err := g.store.InstanceByTokenHash(ctx, hash)
	if err != nil || !cacheable {
		return inst, err
	}
	g.tokens.mu.Lock()
	if g.tokens.m == nil || len(g.tokens.m) >= maxCachedTokens {
		g.tokens.m = map[string]tokenEntry{}
	}
	g.tokens.m[hash] = tokenEntry{version: version, inst: inst}
	g.tokens.mu.Unlock()
	return inst, nil
}
