package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate/store"
)

// Principal is who a request authenticated as: the global key, an
// organization key, an instance token, a chatbot key or a console
// session. Exactly one of its fields is set.
type Principal struct {
	Global   bool
	Org      *store.Organization     // an organization key's organization
	Instance *store.Instance         // an instance token's instance
	Chatbot  *store.Chatbot          // a chatbot key's chatbot
	Session  *store.SessionPrincipal // a console session: a user with a role in one organization
}

// OrgID returns the organization the principal is confined to, or "" for
// the global key, instance tokens and chatbot keys.
func (p Principal) OrgID() string {
	switch {
	case p.Org != nil:
		return p.Org.ID
	case p.Session != nil:
		return p.Session.Org.ID
	}
	return ""
}

const (
	principalKey = "wagate.principal"
	orgKey       = "wagate.organization"
	chatbotKey   = "wagate.chatbot"
	instanceKey  = "wagate.instance"
)

// SetPrincipal records who c authenticated as.
func SetPrincipal(c echo.Context, p Principal) { c.Set(principalKey, p) }

// PrincipalOf returns who c authenticated as.
func PrincipalOf(c echo.Context) Principal {
	p, _ := c.Get(principalKey).(Principal)
	return p
}

// SetOrg records the organization a request acts in.
func SetOrg(c echo.Context, o *store.Organization) { c.Set(orgKey, o) }

// OrgOf returns the organization the request acts in, as resolved by the
// server before an organization-scoped handler runs.
func OrgOf(c echo.Context) *store.Organization { return c.Get(orgKey).(*store.Organization) }

// SetChatbot records the chatbot named in the path.
func SetChatbot(c echo.Context, cb *store.Chatbot) { c.Set(chatbotKey, cb) }

// ChatbotOf returns the chatbot the path names, as resolved by the server
// inside the request's organization.
func ChatbotOf(c echo.Context) *store.Chatbot { return c.Get(chatbotKey).(*store.Chatbot) }

// SetInstance records the instance named in the path.
func SetInstance(c echo.Context, inst *store.Instance) { c.Set(instanceKey, inst) }

// InstanceOf returns the instance the path names, as resolved by the
// server inside the request's scope before an instance-scoped handler runs.
func InstanceOf(c echo.Context) *store.Instance { return c.Get(instanceKey).(*store.Instance) }

// HashKey is how keys and tokens are stored and looked up: SHA-256, hex.
func HashKey(key string) string {
	d := sha256.Sum256([]byte(key))
	return hex.EncodeToString(d[:])
}

// NewKey returns prefix followed by n random bytes in hex.
func NewKey(prefix string, n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}
