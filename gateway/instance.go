package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/channel"
	"github.com/wagate/wagate/gateway/whatsapp"
	"github.com/wagate/wagate/store"
)

var instanceNamePattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

const (
	minTokenLen = 16
	maxTokenLen = 256
	maxNumber   = 128
)

type createInstanceRequest struct {
	InstanceName string          `json:"instanceName"`
	Integration  string          `json:"integration"`
	Token        string          `json:"token"`
	Number       string          `json:"number"`
	QRCode       bool            `json:"qrcode"` // pairing starts with GET /instance/connect
	Webhook      *webhookRequest `json:"webhook"`
	// Evolution's flat spelling of the webhook, used when "webhook" is
	// absent.
	WebhookURL      string   `json:"webhookUrl"`
	WebhookByEvents bool     `json:"webhookByEvents"`
	WebhookEvents   []string `json:"webhookEvents"`
	store.InstanceSettings
	unsupportedInstanceFields
}

// unsupportedInstanceFields are Evolution create fields for features wagate
// does not have. Clients that send them empty (as many do) are served; a
// value that asks for the feature is refused by name rather than ignored.
type unsupportedInstanceFields struct {
	BusinessID                      json.RawMessage `json:"businessId"`
	WavoipToken                     json.RawMessage `json:"wavoipToken"`
	ProxyHost                       json.RawMessage `json:"proxyHost"`
	ProxyPort                       json.RawMessage `json:"proxyPort"`
	ProxyProtocol                   json.RawMessage `json:"proxyProtocol"`
	ProxyUsername                   json.RawMessage `json:"proxyUsername"`
	ProxyPassword                   json.RawMessage `json:"proxyPassword"`
	Rabbitmq                        json.RawMessage `json:"rabbitmq"`
	Sqs                             json.RawMessage `json:"sqs"`
	Websocket                       json.RawMessage `json:"websocket"`
	Nats                            json.RawMessage `json:"nats"`
	RabbitmqEnabled                 json.RawMessage `json:"rabbitmqEnabled"`
	RabbitmqEvents                  json.RawMessage `json:"rabbitmqEvents"`
	NatsEnabled                     json.RawMessage `json:"natsEnabled"`
	NatsEvents                      json.RawMessage `json:"natsEvents"`
	SqsEnabled                      json.RawMessage `json:"sqsEnabled"`
	SqsEvents                       json.RawMessage `json:"sqsEvents"`
	ChatwootAccountID               json.RawMessage `json:"chatwootAccountId"`
	ChatwootToken                   json.RawMessage `json:"chatwootToken"`
	ChatwootURL                     json.RawMessage `json:"chatwootUrl"`
	ChatwootSignMsg                 json.RawMessage `json:"chatwootSignMsg"`
	ChatwootReopenConversation      json.RawMessage `json:"chatwootReopenConversation"`
	ChatwootConversationPending     json.RawMessage `json:"chatwootConversationPending"`
	ChatwootImportContacts          json.RawMessage `json:"chatwootImportContacts"`
	ChatwootNameInbox               json.RawMessage `json:"chatwootNameInbox"`
	ChatwootMergeBrazilContacts     json.RawMessage `json:"chatwootMergeBrazilContacts"`
	ChatwootImportMessages          json.RawMessage `json:"chatwootImportMessages"`
	ChatwootDaysLimitImportMessages json.RawMessage `json:"chatwootDaysLimitImportMessages"`
	ChatwootOrganization            json.RawMessage `json:"chatwootOrganization"`
	ChatwootLogo                    json.RawMessage `json:"chatwootLogo"`
}

func (u *unsupportedInstanceFields) check(problems *wagate.Problems) {
	v, t := reflect.ValueOf(u).Elem(), reflect.TypeFor[unsupportedInstanceFields]()
	for i := range t.NumField() {
		raw := strings.TrimSpace(string(v.Field(i).Bytes()))
		switch raw {
		case "", "null", `""`, "false", "0", "{}", "[]":
		default:
			problems.Add(t.Field(i).Tag.Get("json"), "not supported by wagate; leave it out")
		}
	}
}

func (g *Gateway) createInstance(c echo.Context) error {
	var req createInstanceRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	ctx := c.Request().Context()
	inst, token, hook, err := g.addInstance(ctx, api.OrgOf(c).ID, &req)
	if err != nil {
		return err
	}
	resp := map[string]any{
		"instance": map[string]any{
			"instanceName": inst.Name,
			"instanceId":   inst.ID,
			"integration":  inst.Integration,
			"status":       g.channelOf(inst).State(ctx, inst).State,
		},
		"hash":     token,
		"settings": inst.Settings,
		"webhook":  map[string]any{},
	}
	if hook != nil {
		resp["webhook"] = viewWebhook(hook, true)
	}
	return c.JSON(http.StatusCreated, resp)
}

// addInstance validates a create request and creates the instance in the
// organization, with its webhook when the request has one. It returns
// the token (the one asked for, or a new one) and the webhook.
func (g *Gateway) addInstance(ctx context.Context, orgID string, req *createInstanceRequest) (*store.Instance, string, *store.Webhook, error) {
	var problems wagate.Problems
	switch {
	case req.InstanceName == "":
		problems.Add("instanceName", "required: 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")
	case !instanceNamePattern.MatchString(req.InstanceName):
		problems.Add("instanceName", "must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_' or '-'")
	case strings.Trim(req.InstanceName, ".") == "":
		// "." and ".." are path segments clients and proxies resolve away:
		// /instance/connect/.. would never reach the instance.
		problems.Add("instanceName", "must not consist of dots only: it is a segment of the API's paths")
	}
	if req.Integration == "" {
		req.Integration = store.IntegrationWhatsAppBaileys // Evolution's default
	}
	if !slices.Contains(store.Integrations, req.Integration) {
		problems.Add("integration", "must be one of "+strings.Join(store.Integrations, ", "))
	}
	req.Number = strings.TrimSpace(req.Number)
	switch {
	case req.Integration == store.IntegrationEvolution && req.Number == "":
		problems.Add("number", "required for EVOLUTION instances: the channel id inbound messages carry as numberId")
	case len(req.Number) > maxNumber || strings.ContainsFunc(req.Number, isSpaceOrControl):
		problems.Add("number", "must be at most 128 characters without spaces")
	case req.Integration != store.IntegrationEvolution && req.Number != "" && !isDigits(req.Number):
		problems.Add("number", "must be the phone number in digits, country code first")
	}
	if req.Token != "" {
		switch {
		case len(req.Token) < minTokenLen || len(req.Token) > maxTokenLen || strings.ContainsFunc(req.Token, isSpaceOrControl):
			problems.Add("token", "must be 16 to 256 characters without spaces")
		case strings.HasPrefix(req.Token, orgKeyPrefix) || strings.HasPrefix(req.Token, chatbotKeyPrefix):
			problems.Add("token", "must not start with "+orgKeyPrefix+" or "+chatbotKeyPrefix+", the prefixes of organization and chatbot keys")
		case digest(req.Token) == g.apiKey:
			problems.Add("token", "must differ from the global API key")
		}
	}
	var hook *store.Webhook
	if req.Webhook == nil && strings.TrimSpace(req.WebhookURL) != "" {
		req.Webhook = &webhookRequest{URL: req.WebhookURL, ByEvents: req.WebhookByEvents, Events: req.WebhookEvents}
	}
	if req.Webhook != nil {
		hook = req.Webhook.toWebhook(&problems, "webhook.")
	}
	req.unsupportedInstanceFields.check(&problems)
	if err := problems.Err(); err != nil {
		return nil, "", nil, err
	}

	token := req.Token
	if token == "" {
		token = newToken()
	}
	now := stamp()
	inst := &store.Instance{
		ID:             store.NewID(),
		OrganizationID: orgID,
		Name:           req.InstanceName,
		Integration:    req.Integration,
		Number:         req.Number,
		TokenHash:      hashToken(token),
		TokenPrefix:    tokenPrefix(token),
		Settings:       req.InstanceSettings,
		CreatedAt:      now,
		UpdatedAt:      now,
	}
	err := g.store.DoTxn(ctx, func(ctx context.Context) error {
		if err := g.store.CreateInstance(ctx, inst); err != nil {
			return err
		}
		if hook != nil {
			hook.InstanceID, hook.Secret, hook.CreatedAt, hook.UpdatedAt = inst.ID, newWebhookSecret(), now, now
			return g.store.PutWebhook(ctx, hook)
		}
		return nil
	})
	if err != nil {
		return nil, "", nil, err
	}
	g.log.Info("instance created", "instance", inst.Name, "integration", inst.Integration, "token_prefix", inst.TokenPrefix)
	g.replicas.changed(ctx)
	return inst, token, hook, nil
}

type instanceView struct {
	ID               string                 `json:"id"`
	OrganizationID   string                 `json:"organizationId"`
	Name             string                 `json:"name"`
	ConnectionStatus string                 `json:"connectionStatus"`
	Reason           string                 `json:"disconnectionReason,omitempty"`
	Owner            string                 `json:"owner,omitempty"` // the replica owning it, on PostgreSQL
	Integration      string                 `json:"integration"`
	Number           *string                `json:"number"`
	TokenPrefix      string                 `json:"tokenPrefix"`
	CreatedAt        time.Time              `json:"createdAt"`
	UpdatedAt        time.Time              `json:"updatedAt"`
	Setting          store.InstanceSettings `json:"Setting"`
}

// fetchInstances lists every instance for the global key (those of one
// organization when X-Wagate-Organization names it), an organization's for
// its key, and only its own for an instance token. Evolution's query
// filters narrow the list; they never widen what the key may see.
func (g *Gateway) fetchInstances(c echo.Context) error {
	ctx := c.Request().Context()
	var (
		list []*store.Instance
		err  error
	)
	switch p := api.PrincipalOf(c); {
	case p.Instance != nil:
		list = []*store.Instance{p.Instance}
	case p.Chatbot != nil:
		return errChatbotKey
	case p.Global && c.Request().Header.Get(orgHeader) == "":
		list, err = g.store.ListInstances(ctx)
	default:
		var org *store.Organization
		if org, err = g.orgOf(c); err == nil {
			list, err = g.store.ListOrganizationInstances(ctx, org.ID)
		}
	}
	if err != nil {
		return err
	}
	owners, err := g.store.InstanceOwners(ctx)
	if err != nil {
		return err
	}
	name, id, number := c.QueryParam("instanceName"), c.QueryParam("instanceId"), c.QueryParam("number")
	out := []instanceView{}
	for _, inst := range list {
		if inst.Integration == store.IntegrationWebchat {
			continue // a chatbot's web chat, reached through the chatbot
		}
		if (name != "" && inst.Name != name) || (id != "" && inst.ID != id) || (number != "" && inst.Number != number) {
			continue
		}
		st := g.channelOf(inst).State(ctx, inst)
		v := instanceView{
			ID: inst.ID, OrganizationID: inst.OrganizationID, Name: inst.Name, ConnectionStatus: st.State, Reason: st.Reason, Integration: inst.Integration,
			TokenPrefix: inst.TokenPrefix, CreatedAt: inst.CreatedAt, UpdatedAt: inst.UpdatedAt, Setting: inst.Settings,
			Owner: owners[inst.ID].Replica,
		}
		if inst.Number != "" {
			v.Number = &inst.Number
		}
		out = append(out, v)
	}
	return c.JSON(http.StatusOK, out)
}

func (g *Gateway) stateResponse(c echo.Context, inst *store.Instance) error {
	st := g.channelOf(inst).State(c.Request().Context(), inst)
	body := map[string]any{"instanceName": inst.Name, "state": st.State}
	if st.Reason != "" {
		body["reason"] = st.Reason
	}
	return c.JSON(http.StatusOK, map[string]any{"instance": body})
}

func (g *Gateway) connectionState(c echo.Context) error {
	return g.stateResponse(c, instanceOf(c))
}

func (g *Gateway) connectInstance(c echo.Context) error {
	inst := instanceOf(c)
	pairing, err := g.connect(c.Request().Context(), inst, c.QueryParam("number"))
	if err != nil {
		return err
	}
	if pairing == nil {
		return g.stateResponse(c, inst)
	}
	var code *string
	if pairing.PairingCode != "" {
		code = &pairing.PairingCode
	}
	return c.JSON(http.StatusOK, map[string]any{
		"pairingCode": code, "code": pairing.Code, "base64": pairing.Base64, "count": pairing.Count,
	})
}

// connect starts pairing or connecting inst; with phone, pairing by a code
// typed on that phone. nil Pairing means connected.
func (g *Gateway) connect(ctx context.Context, inst *store.Instance, phone string) (*channel.Pairing, error) {
	if phone != "" && !isDigits(phone) {
		return nil, wagate.Invalid("number", "must be the phone number in digits, country code first")
	}
	return g.channelOf(inst).Connect(ctx, inst, phone)
}

// qrCode answers the current pairing QR code of a WhatsApp instance as an
// image (PNG, or ?format=svg, or ?format=text for a terminal), starting a
// pairing as connect does when none is under way. A browser or an image
// viewer shows it; connect's data URL is for Evolution clients.
func (g *Gateway) qrCode(c echo.Context) error {
	inst := instanceOf(c)
	format := c.QueryParam("format")
	switch format {
	case "", "png", "svg", "text":
	default:
		return wagate.Invalid("format", `must be "png", "svg" or "text"`)
	}
	pairing, err := g.channelOf(inst).Connect(c.Request().Context(), inst, "")
	if err != nil {
		return err
	}
	if pairing == nil || pairing.Code == "" {
		st := g.channelOf(inst).State(c.Request().Context(), inst)
		return wagate.Errorf(wagate.ECONFLICT, "instance: no QR code to show: the instance is %s", st.State)
	}
	img, typ, err := whatsapp.QRImage(pairing.Code, format)
	if err != nil {
		return err
	}
	// A code lives about 20 seconds; WhatsApp rotates it.
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, typ, img)
}

func (g *Gateway) restartInstance(c echo.Context) error {
	inst := instanceOf(c)
	if err := g.channelOf(inst).Restart(c.Request().Context(), inst); err != nil {
		return err
	}
	return g.stateResponse(c, inst)
}

func (g *Gateway) logoutInstance(c echo.Context) error {
	inst := instanceOf(c)
	if err := g.channelOf(inst).Logout(c.Request().Context(), inst); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, success("Instance logged out"))
}

// deleteInstance removes the instance and everything it owns.
func (g *Gateway) deleteInstance(c echo.Context) error {
	if err := g.removeInstance(c.Request().Context(), instanceOf(c)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, success("Instance deleted"))
}

func (g *Gateway) rotateToken(c echo.Context) error {
	inst := instanceOf(c)
	token := newToken()
	if err := g.store.SetInstanceToken(c.Request().Context(), inst.ID, hashToken(token), tokenPrefix(token)); err != nil {
		return err
	}
	g.log.Info("instance token rotated", "instance", inst.Name, "token_prefix", tokenPrefix(token))
	return c.JSON(http.StatusOK, map[string]string{"hash": token})
}

// success is Evolution's body for instance operations that return no data.
func success(message string) map[string]any {
	return map[string]any{"status": "SUCCESS", "error": false, "response": map[string]string{"message": message}}
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

func isSpaceOrControl(r rune) bool { return r <= ' ' || r == 0x7f }
