package gateway

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
)

// principal is who a request authenticated as: the global key, or one
// instance's token.
type principal struct {
	global   bool
	instance *store.Instance // nil for the global key
}

const (
	principalKey = "wagate.principal"
	instanceKey  = "wagate.instance"
	// tokenPrefixLen is how much of a token is kept in clear, so operators
	// can tell tokens apart without the token being recoverable.
	tokenPrefixLen = 8
)

type keyDigest [sha256.Size]byte

func digest(key string) keyDigest { return sha256.Sum256([]byte(key)) }

// hashToken is how instance tokens are stored and looked up.
func hashToken(token string) string {
	d := digest(token)
	return hex.EncodeToString(d[:])
}

func tokenPrefix(token string) string {
	if len(token) <= tokenPrefixLen {
		return token[:len(token)/2]
	}
	return token[:tokenPrefixLen]
}

// newToken returns a random instance token.
func newToken() string {
	b := make([]byte, 32)
	rand.Read(b)
	return "wgt_" + base64.RawURLEncoding.EncodeToString(b)
}

// requestKey returns the key of the request: the apikey header (as
// Evolution clients send it) or an Authorization bearer token.
func requestKey(c echo.Context) string {
	if k := c.Request().Header.Get("apikey"); k != "" {
		return k
	}
	auth := c.Request().Header.Get(echo.HeaderAuthorization)
	if scheme, token, ok := strings.Cut(auth, " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return ""
}

// authenticate admits requests that carry the global key or an instance
// token. It runs before any route looks anything up, so an unauthenticated
// caller cannot learn which instances exist.
func (g *Gateway) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		key := requestKey(c)
		if key == "" {
			return wagate.Errorf(wagate.EUNAUTHORIZED, "apikey: missing; send the header apikey or Authorization: Bearer")
		}
		d := digest(key)
		if subtle.ConstantTimeCompare(d[:], g.apiKey[:]) == 1 {
			c.Set(principalKey, principal{global: true})
			return next(c)
		}
		// The lookup is by hash of a high-entropy token; comparing the hashes
		// again in constant time keeps the check independent of the index.
		hash := hex.EncodeToString(d[:])
		inst, err := g.instanceByTokenHash(c.Request().Context(), hash)
		if wagate.ErrorCode(err) == wagate.ENOTFOUND || (err == nil && subtle.ConstantTimeCompare([]byte(inst.TokenHash), []byte(hash)) != 1) {
			return wagate.Errorf(wagate.EUNAUTHORIZED, "apikey: invalid")
		} else if err != nil {
			return err
		}
		c.Set(principalKey, principal{instance: inst})
		return next(c)
	}
}

func principalOf(c echo.Context) principal {
	p, _ := c.Get(principalKey).(principal)
	return p
}

// globalOnly admits only the global key.
func globalOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !principalOf(c).global {
			return wagate.Errorf(wagate.EFORBIDDEN, "apikey: this route needs the global API key")
		}
		return next(c)
	}
}

// scoped resolves the instance named in the path, which is the only scope
// of the request: an instance token may act only on its own instance.
func (g *Gateway) scoped(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		name := c.Param("instance")
		p := principalOf(c)
		if !p.global {
			if p.instance.Name != name {
				return wagate.Errorf(wagate.EFORBIDDEN, "apikey: this token belongs to another instance")
			}
			c.Set(instanceKey, p.instance)
			return next(c)
		}
		inst, err := g.store.InstanceByName(c.Request().Context(), name)
		if err != nil {
			return err
		}
		c.Set(instanceKey, inst)
		return next(c)
	}
}

// instanceOf returns the instance resolved by scoped.
func instanceOf(c echo.Context) *store.Instance {
	return c.Get(instanceKey).(*store.Instance)
}
