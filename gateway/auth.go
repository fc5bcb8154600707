package gateway

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/console"
	"github.com/wagate/wagate/store"
)

const (
	// tokenPrefixLen is how much of a token is kept in clear, so operators
	// can tell tokens apart without the token being recoverable.
	tokenPrefixLen = 8
	// Organization keys and chatbot keys carry their kind in a prefix, so
	// a key is looked up in one table only; instance tokens chosen by
	// clients may not take these prefixes.
	orgKeyPrefix     = "wgo_"
	chatbotKeyPrefix = "ob_live_"
	// orgHeader names the organization the global key acts in.
	orgHeader = "X-Wagate-Organization"
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
// Evolution clients send it), x-api-key (as okchat clients do) or an
// Authorization bearer token.
func requestKey(c echo.Context) string {
	h := c.Request().Header
	for _, name := range []string{"apikey", "x-api-key"} {
		if k := h.Get(name); k != "" {
			return k
		}
	}
	if scheme, token, ok := strings.Cut(h.Get(echo.HeaderAuthorization), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(token)
	}
	return ""
}

// authenticate admits requests that carry the global key, an organization
// key, an instance token or a chatbot key. It runs before any route looks
// anything up, so an unauthenticated caller cannot learn what exists.
func (g *Gateway) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		var (
			p   api.Principal
			err error
		)
		key := requestKey(c)
		switch token := console.CookieToken(c); {
		case key != "":
			// A key wins over a cookie: a key is never sent by a browser
			// on its own, so it needs no CSRF token.
			p, err = g.principalOf(c.Request().Context(), key)
		case token != "":
			p, err = g.sessionPrincipal(c, token)
		default:
			err = wagate.Errorf(wagate.EUNAUTHORIZED, "apikey: missing; send the header apikey, x-api-key or Authorization: Bearer, or sign in to the console")
		}
		if err != nil {
			return err
		}
		api.SetPrincipal(c, p)
		if limit := g.bodyLimit(c); c.Request().ContentLength > limit {
			return api.TooLarge(limit)
		}
		return next(c)
	}
}

// principalOf returns who key is. Lookups are by hash of a high-entropy
// key; comparing the hashes again in constant time keeps the check
// independent of the index.
func (g *Gateway) principalOf(ctx context.Context, key string) (api.Principal, error) {
	d := digest(key)
	if subtle.ConstantTimeCompare(d[:], g.apiKey[:]) == 1 {
		return api.Principal{Global: true}, nil
	}
	hash := hex.EncodeToString(d[:])
	var (
		p      api.Principal
		stored string
		err    error
	)
	switch {
	case strings.HasPrefix(key, orgKeyPrefix):
		var k *store.OrgKey
		if p.Org, k, err = g.store.OrganizationByKeyHash(ctx, hash); err == nil {
			stored = k.KeyHash
		}
	case strings.HasPrefix(key, chatbotKeyPrefix):
		if p.Chatbot, err = g.store.ChatbotByKeyHash(ctx, hash); err == nil {
			stored = p.Chatbot.KeyHash
		}
	default:
		if p.Instance, err = g.instanceByTokenHash(ctx, hash); err == nil {
			stored = p.Instance.TokenHash
		}
	}
	if wagate.ErrorCode(err) == wagate.ENOTFOUND || (err == nil && subtle.ConstantTimeCompare([]byte(stored), []byte(hash)) != 1) {
		return api.Principal{}, wagate.Errorf(wagate.EUNAUTHORIZED, "apikey: invalid")
	}
	return p, err
}

// sessionPrincipal authenticates a console session's cookie: the session
// must be live, a state-changing request must carry its CSRF token, and an
// agent reaches only the routes of agentRoutes.
func (g *Gateway) sessionPrincipal(c echo.Context, token string) (api.Principal, error) {
	sp, err := g.auth.Session(c.Request().Context(), token)
	if err != nil {
		return api.Principal{}, err
	}
	if err := console.CheckCSRF(c, sp); err != nil {
		return api.Principal{}, err
	}
	if sp.Role == store.RoleAgent && !agentRoutes[c.Request().Method+" "+c.Path()] {
		return api.Principal{}, errAgent
	}
	return api.Principal{Session: sp}, nil
}

var errAgent = wagate.Errorf(wagate.EFORBIDDEN, "role: an agent reaches only the inbox: conversations, messages, sending a text and pausing or resuming the bot")

// agentRoutes are what the inbox needs, and all an agent may use: read the
// organization's instances, chats, conversations and messages, and its
// chatbots' conversations; send a text; pause or resume a chat's bot; and
// the agent's own session and the overview. Owners and admins use every
// route of their organization.
var agentRoutes = map[string]bool{
	"GET /instance/fetchInstances":                                            true,
	"GET /instance/connectionState/:instance":                                 true,
	"POST /chat/findMessages/:instance":                                       true,
	"POST /chat/findChats/:instance":                                          true,
	"POST /chat/findContacts/:instance":                                       true,
	"POST /chat/markMessageAsRead/:instance":                                  true,
	"GET /conversations/:instance":                                            true,
	"GET /conversations/:instance/:remoteJid":                                 true,
	"GET /conversations/:instance/:remoteJid/messages":                        true,
	"POST /message/sendText/:instance":                                        true,
	"POST /openai/changeStatus/:instance":                                     true,
	"GET /api/v1/chatbots":                                                    true,
	"GET /api/external/chatbot/:chatbotId/conversations":                      true,
	"GET /api/external/chatbot/:chatbotId/conversations/:sessionId":           true,
	"GET /api/external/chatbot/:chatbotId/conversations/:sessionId/messages":  true,
	"PATCH /api/external/chatbot/:chatbotId/conversations/:sessionId":         true,
	"POST /api/external/chatbot/:chatbotId/conversations/:sessionId/messages": true,
	"GET /api/v1/overview":                                                    true,
	"GET /api/v1/inbox":                                                       true,
	"GET /api/v1/inbox/:conversationId":                                       true,
	"GET /api/v1/inbox/:conversationId/messages":                              true,
	"POST /api/v1/inbox/:conversationId/messages":                             true,
	"POST /api/v1/inbox/:conversationId/takeover":                             true,
	"POST /api/v1/inbox/:conversationId/handback":                             true,
	"GET /api/v1/sessions/current":                                            true,
	"DELETE /api/v1/sessions/current":                                         true,
	"POST /api/v1/sessions/current/organization":                              true,
	"DELETE /api/v1/sessions":                                                 true,
}

// ownerOnly keeps a console session that is not the organization's owner
// out; organization keys and the global key pass.
func ownerOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s := api.PrincipalOf(c).Session; s != nil && s.Role != store.RoleOwner {
			return wagate.Errorf(wagate.EFORBIDDEN, "role: only an owner of the organization manages its users")
		}
		return next(c)
	}
}

// sessionOnly admits only a console session.
func sessionOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if api.PrincipalOf(c).Session == nil {
			return wagate.Errorf(wagate.EFORBIDDEN, "session: this route is about a console session; sign in with POST /api/v1/sessions")
		}
		return next(c)
	}
}

// globalOnly admits only the global key.
func globalOnly(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if !api.PrincipalOf(c).Global {
			return wagate.Errorf(wagate.EFORBIDDEN, "apikey: this route needs the global API key")
		}
		return next(c)
	}
}

var errChatbotKey = wagate.Errorf(wagate.EFORBIDDEN, "apikey: a chatbot key reaches only its chatbot's chat, conversations and knowledge routes")

// orgScoped resolves the organization a request acts in: an organization
// key's own; for the global key the one named by X-Wagate-Organization, or
// the default organization. Instance tokens and chatbot keys have no
// organization scope.
func (g *Gateway) orgScoped(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		org, err := g.orgOf(c)
		if err != nil {
			return err
		}
		api.SetOrg(c, org)
		return next(c)
	}
}

func (g *Gateway) orgOf(c echo.Context) (*store.Organization, error) {
	p := api.PrincipalOf(c)
	switch {
	case p.Org != nil:
		return p.Org, nil
	case p.Session != nil:
		return &p.Session.Org, nil
	case p.Global:
		ctx := c.Request().Context()
		if id := c.Request().Header.Get(orgHeader); id != "" {
			org, err := g.store.Organization(ctx, id)
			if wagate.ErrorCode(err) == wagate.ENOTFOUND {
				return nil, wagate.FieldError(wagate.ENOTFOUND, orgHeader, "no such organization")
			}
			return org, err
		}
		return g.store.DefaultOrganization(ctx)
	case p.Chatbot != nil:
		return nil, errChatbotKey
	}
	return nil, wagate.Errorf(wagate.EFORBIDDEN, "apikey: an instance token reaches only its instance's routes")
}

// chatbotScoped resolves the chatbot named in the path inside the
// request's organization. A chatbot key may name only its own chatbot, and
// only on the routes registered with chatbotScoped(true).
func (g *Gateway) chatbotScoped(chatbotKeyAllowed bool) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			id := c.Param("chatbotId")
			if cb := api.PrincipalOf(c).Chatbot; cb != nil {
				if !chatbotKeyAllowed {
					return errChatbotKey
				}
				if cb.ID != id {
					return wagate.Errorf(wagate.EFORBIDDEN, "apikey: this chatbot key belongs to another chatbot")
				}
				org, err := g.store.Organization(c.Request().Context(), cb.OrganizationID)
				if err != nil {
					return err
				}
				api.SetOrg(c, org)
				api.SetChatbot(c, cb)
				return next(c)
			}
			org, err := g.orgOf(c)
			if err != nil {
				return err
			}
			cb, err := g.store.Chatbot(c.Request().Context(), org.ID, id)
			if err != nil {
				return err
			}
			api.SetOrg(c, org)
			api.SetChatbot(c, cb)
			return next(c)
		}
	}
}

// scoped resolves the instance named in the path, which is the only scope
// of the request: an instance token may act only on its own instance, an
// organization key only on its organization's.
func (g *Gateway) scoped(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		name := c.Param("instance")
		p := api.PrincipalOf(c)
		switch {
		case p.Instance != nil:
			if p.Instance.Name != name {
				return wagate.Errorf(wagate.EFORBIDDEN, "apikey: this token belongs to another instance")
			}
			api.SetInstance(c, p.Instance)
			return next(c)
		case p.Chatbot != nil:
			return errChatbotKey
		}
		inst, err := g.orgInstance(c.Request().Context(), p.OrgID(), name)
		if err != nil {
			return err
		}
		api.SetInstance(c, inst)
		return next(c)
	}
}

// orgInstance resolves the instance name in the organization orgID (in
// every organization when "", for the global key).
func (g *Gateway) orgInstance(ctx context.Context, orgID, name string) (*store.Instance, error) {
	inst, err := g.store.InstanceByName(ctx, name)
	if err != nil {
		return nil, err
	}
	if (orgID != "" && inst.OrganizationID != orgID) || inst.Integration == store.IntegrationWebchat {
		// Another organization's instance is as unknown as a missing
		// one; so is a chatbot's web chat channel, which is reached
		// through its chatbot's routes only.
		return nil, wagate.Errorf(wagate.ENOTFOUND, "The %q instance does not exist", name)
	}
	return inst, nil
}

// instanceOf returns the instance resolved by scoped.
func instanceOf(c echo.Context) *store.Instance { return api.InstanceOf(c) }
