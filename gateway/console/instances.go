package console

import (
	"context"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// The instance pages: create, the instance's page with its connection
// (the QR code live over server-sent events), logout, restart and delete
// behind a confirmation page, the webhook and its deliveries. Every form
// becomes the JSON body of the REST route it stands for and goes through
// that route's operation (InstanceOps), so the rules and the field names
// of the errors are the API's.

// CreatedInstance is what creating an instance shows once: its token and
// the webhook's signing secret.
type CreatedInstance struct {
	Name          string
	Token         string
	WebhookSecret string
}

// Pairing is the pairing under way: the QR code as a PNG data URL, and the
// code to type on the phone when pairing by number.
type Pairing struct {
	QR          string
	PairingCode string
	Count       int
}

// InstanceDetail is the instance as its page shows it.
type InstanceDetail struct {
	InstanceSummary
	TokenPrefix string
	CreatedAt   time.Time
	Pairable    bool // it pairs a phone (WhatsApp); EVOLUTION does not
	Pairing     *Pairing
	Webhook     WebhookDetail
}

// WebhookDetail is the instance's webhook, header values masked.
type WebhookDetail struct {
	Set                       bool
	Enabled, ByEvents, Base64 bool
	URL                       string
	Events                    []string
	Headers                   []HeaderView
}

// HeaderView is a webhook header with its value masked.
type HeaderView struct{ Name, Masked string }

// Delivery is a webhook delivery as GET /webhook/deliveries lists it.
type Delivery struct {
	ID, Event, Status string
	Attempts          int
	LastStatus        int
	LastError         string
	CreatedAt         time.Time
}

// InstanceOps are the operations of the instance and webhook routes, on
// the instance name names in org (ENOTFOUND for another organization's).
type InstanceOps interface {
	// CreateInstance is POST /instance/create with body.
	CreateInstance(ctx context.Context, org *store.Organization, body []byte) (*CreatedInstance, error)
	Instance(ctx context.Context, org *store.Organization, name string) (*InstanceDetail, error)
	// ConnectInstance is GET /instance/connect (?number=phone).
	ConnectInstance(ctx context.Context, org *store.Organization, name, phone string) error
	RestartInstance(ctx context.Context, org *store.Organization, name string) error
	LogoutInstance(ctx context.Context, org *store.Organization, name string) error
	DeleteInstance(ctx context.Context, org *store.Organization, name string) error
	// WatchInstance signals after changes of the connection state or the
	// QR code, until ctx is done or the server stops (then it is closed).
	WatchInstance(ctx context.Context, org *store.Organization, name string) (<-chan struct{}, error)
	// SetWebhook is POST /webhook/set with body; keepHeaders keeps the
	// stored headers when body has none. It returns a new signing secret.
	SetWebhook(ctx context.Context, org *store.Organization, name string, body []byte, keepHeaders bool) (string, error)
	RotateWebhookSecret(ctx context.Context, org *store.Organization, name string) (string, error)
	Deliveries(ctx context.Context, org *store.Organization, name string, limit int) ([]Delivery, error)
	RetryDelivery(ctx context.Context, org *store.Organization, name, deliveryID string) error
}

// deliveriesShown is how many recent deliveries the instance page lists.
const deliveriesShown = 20

func (cs *Console) instanceRoutes(e *echo.Echo) {
	admins := []string{store.RoleOwner, store.RoleAdmin}
	page := func(method, p string, h echo.HandlerFunc) {
		if cs.onInstance != nil && strings.HasPrefix(p, "/:name") {
			h = cs.onInstance(h)
		}
		cs.page(e, method, Root+"/instances"+p, h, admins...)
	}
	page(http.MethodGet, "/new", cs.newInstancePage)
	page(http.MethodPost, "", cs.createInstance)
	page(http.MethodGet, "/:name", cs.instancePage)
	page(http.MethodGet, "/:name/events", cs.instanceEvents)
	page(http.MethodGet, "/:name/deliveries", cs.deliveriesPart)
	page(http.MethodPost, "/:name/connect", cs.connectInstance)
	page(http.MethodGet, "/:name/confirm/:action", cs.confirmPage)
	page(http.MethodPost, "/:name/restart", cs.instanceAction)
	page(http.MethodPost, "/:name/logout", cs.instanceAction)
	page(http.MethodPost, "/:name/delete", cs.instanceAction)
	page(http.MethodPost, "/:name/webhook", cs.setWebhook)
	page(http.MethodPost, "/:name/webhook/secret", cs.instanceAction)
	page(http.MethodPost, "/:name/deliveries/:id/retry", cs.retryDelivery)
}

// WithInstanceMiddleware has mw run on the pages of one instance
// (/console/instances/:name/…) once the session and its role are checked.
func (cs *Console) WithInstanceMiddleware(mw echo.MiddlewareFunc) *Console {
	cs.onInstance = mw
	return cs
}

func instancePath(name string) string { return Root + "/instances/" + url.PathEscape(name) }

// newInstanceForm is the create form's values, kept across a failed post.
type newInstanceForm struct {
	Integrations []string
	Events       []string
	Values       url.Values
}

func (f newInstanceForm) Value(name string) string { return f.Values.Get(name) }

func (f newInstanceForm) Checked(name, value string) bool {
	for _, v := range f.Values[name] {
		if v == value {
			return true
		}
	}
	return false
}

func (cs *Console) newInstancePage(c echo.Context) error {
	return cs.render(c, http.StatusOK, "instance_new", newInstanceForm{Integrations: store.Integrations,
		Events: webhook.Subscriptions, Values: url.Values{"integration": {store.IntegrationWhatsAppBaileys}}})
}

// instanceSettingFlags are the boolean settings of /instance/create.
var instanceSettingFlags = []string{"rejectCall", "groupsIgnore", "alwaysOnline", "readMessages", "readStatus", "syncFullHistory"}

// createBody is the /instance/create body the form stands for.
func createBody(form url.Values) ([]byte, error) {
	body := map[string]any{"instanceName": form.Get("instanceName"), "integration": form.Get("integration")}
	for _, k := range []string{"token", "number", "msgCall"} {
		if v := form.Get(k); v != "" {
			body[k] = v
		}
	}
	for _, k := range instanceSettingFlags {
		body[k] = form.Get(k) != ""
	}
	if u := strings.TrimSpace(form.Get("webhook.url")); u != "" {
		body["webhook"] = map[string]any{"url": u, "byEvents": form.Get("webhook.byEvents") != "",
			"events": nonNilStrings(form["webhook.events"])}
	}
	return json.Marshal(body)
}

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

type createdPage struct {
	*CreatedInstance
	Path string
}

func (cs *Console) createInstance(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return wagate.Invalid("body", "not a form")
	}
	body, err := createBody(form)
	if err != nil {
		return err
	}
	created, err := cs.ops.CreateInstance(c.Request().Context(), &SessionOf(c).Org, body)
	if err != nil {
		if status := formStatus(err); status != 0 {
			return cs.renderForm(c, status, "instance_new", newInstanceForm{Integrations: store.Integrations,
				Events: webhook.Subscriptions, Values: form}, err)
		}
		return err
	}
	// The token and the secret are shown this once, so the answer is the
	// page itself rather than a redirect.
	return cs.render(c, http.StatusCreated, "instance_created", createdPage{CreatedInstance: created, Path: instancePath(created.Name)})
}

// instanceView is what the instance page and its parts see.
type instanceView struct {
	*InstanceDetail
	Path       string
	QR         template.URL // the pairing's PNG data URL, checked
	Events     []string     // the webhook subscriptions, for the checkboxes
	Deliveries []Delivery
	Secret     string // a webhook secret just made, shown once
	Form       url.Values
}

func (v instanceView) Subscribed(event string) bool {
	if v.Form != nil {
		for _, e := range v.Form["webhook.events"] {
			if e == event {
				return true
			}
		}
		return false
	}
	for _, e := range v.Webhook.Events {
		if e == event {
			return true
		}
	}
	return false
}

// HasPending reports whether a delivery listed is still pending.
func (v instanceView) HasPending() bool {
	for _, d := range v.Deliveries {
		if d.Status == store.EventPending {
			return true
		}
	}
	return false
}

// FormValue is the webhook form's value of name: the one posted when the
// form is shown again, else the stored one.
func (v instanceView) FormValue(name string) string {
	if v.Form != nil {
		return v.Form.Get(name)
	}
	if name == "webhook.url" {
		return v.Webhook.URL
	}
	return ""
}

// FormFlag is a checkbox of the webhook form.
func (v instanceView) FormFlag(name string) bool {
	if v.Form != nil {
		return v.Form.Get(name) != ""
	}
	switch name {
	case "webhook.enabled":
		return v.Webhook.Enabled || !v.Webhook.Set
	case "webhook.byEvents":
		return v.Webhook.ByEvents
	case "webhook.base64":
		return v.Webhook.Base64
	case "keepHeaders":
		return true
	}
	return false
}

func (cs *Console) instanceView(c echo.Context, deliveries bool) (*instanceView, error) {
	ctx, org, name := c.Request().Context(), &SessionOf(c).Org, c.Param("name")
	d, err := cs.ops.Instance(ctx, org, name)
	if err != nil {
		return nil, err
	}
	v := &instanceView{InstanceDetail: d, Path: instancePath(d.Name), Events: webhook.Subscriptions}
	if d.Pairing != nil && strings.HasPrefix(d.Pairing.QR, "data:image/png;base64,") {
		v.QR = template.URL(d.Pairing.QR)
	}
	if deliveries {
		if v.Deliveries, err = cs.ops.Deliveries(ctx, org, name, deliveriesShown); err != nil {
			return nil, err
		}
	}
	return v, nil
}

func (cs *Console) instancePage(c echo.Context) error {
	v, err := cs.instanceView(c, true)
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "instance", v)
}

// instanceEvents streams the connection part of the page each time the
// instance's state or QR code changes: WhatsApp rotates the code every 20
// seconds or so, and the page shows "connected" once the phone pairs.
func (cs *Console) instanceEvents(c echo.Context) error {
	ctx := c.Request().Context()
	changes, err := cs.ops.WatchInstance(ctx, &SessionOf(c).Org, c.Param("name"))
	if err != nil {
		return err
	}
	s, err := startEvents(c)
	if err != nil {
		return err
	}
	// The first event covers a change between the page and the stream.
	for {
		v, err := cs.instanceView(c, false)
		if wagate.ErrorCode(err) == wagate.ENOTFOUND || ctx.Err() != nil {
			return nil // deleted, or the page went away
		} else if err != nil {
			cs.log.Error("console: instance event stream", "instance", c.Param("name"), "error", err)
			return nil // the answer has begun: an error page cannot follow
		}
		html, err := cs.fragment(c, "instance", "connection", v)
		if err != nil {
			return err
		}
		if err := s.send("connection", html); err != nil {
			return nil // the page went away
		}
		select {
		case <-ctx.Done():
			return nil
		case _, ok := <-changes:
			if !ok {
				return nil // the server is stopping
			}
		}
	}
}

func (cs *Console) deliveriesPart(c echo.Context) error {
	v, err := cs.instanceView(c, true)
	if err != nil {
		return err
	}
	if isHTMX(c) {
		return cs.renderPartial(c, http.StatusOK, "instance", "deliveries", v)
	}
	return c.Redirect(http.StatusSeeOther, v.Path+"#deliveries")
}

// formError shows err on the instance page, next to the form's fields.
func (cs *Console) formError(c echo.Context, err error, form url.Values) error {
	// So is an upstream failure, such as WhatsApp refusing a pairing.
	if formStatus(err) == 0 && wagate.ErrorCode(err) != wagate.EUPSTREAM {
		return err
	}
	v, verr := cs.instanceView(c, true)
	if verr != nil {
		return verr
	}
	v.Form = form
	return cs.renderForm(c, api.Status(err), "instance", v, err)
}

func (cs *Console) connectInstance(c echo.Context) error {
	phone := strings.TrimSpace(c.FormValue("number"))
	if err := cs.ops.ConnectInstance(c.Request().Context(), &SessionOf(c).Org, c.Param("name"), phone); err != nil {
		return cs.formError(c, err, nil)
	}
	return c.Redirect(http.StatusSeeOther, instancePath(c.Param("name"))+"#connection")
}

// confirmation is a confirmation page: what the action does, and the
// form that does it.
type confirmation struct {
	Name, Path, Action, Title, Explain, Button string
}

var confirmations = map[string]confirmation{
	"logout": {Action: "logout", Title: "Log out %s?", Button: "Log out",
		Explain: "The linked device is removed: the number stops receiving and sending through wagate until it is paired again with a new QR code."},
	"restart": {Action: "restart", Title: "Restart %s?", Button: "Restart",
		Explain: "The connection to WhatsApp is closed and opened again; a pairing under way stops."},
	"delete": {Action: "delete", Title: "Delete %s?", Button: "Delete the instance",
		Explain: "The instance, its bots, sessions, messages, webhook and deliveries are deleted for good. This cannot be undone."},
	"webhook/secret": {Action: "webhook/secret", Title: "Rotate the webhook secret of %s?", Button: "Rotate the secret",
		Explain: "A new signing secret replaces the current one at once: receivers that check signatures refuse deliveries until they have the new secret, which is shown once."},
}

func (cs *Console) confirmPage(c echo.Context) error {
	action := strings.ReplaceAll(c.Param("action"), "-", "/")
	cf, ok := confirmations[action]
	if !ok {
		return wagate.Errorf(wagate.ENOTFOUND, "no such action")
	}
	d, err := cs.ops.Instance(c.Request().Context(), &SessionOf(c).Org, c.Param("name"))
	if err != nil {
		return err
	}
	cf.Name, cf.Path = d.Name, instancePath(d.Name)
	cf.Title = strings.Replace(cf.Title, "%s", d.Name, 1)
	return cs.render(c, http.StatusOK, "instance_confirm", cf)
}

// instanceAction runs a confirmed action: the last segments of the path
// name it.
func (cs *Console) instanceAction(c echo.Context) error {
	ctx, org, name := c.Request().Context(), &SessionOf(c).Org, c.Param("name")
	action := strings.TrimPrefix(c.Request().URL.Path, instancePath(name)+"/")
	var err error
	switch action {
	case "restart":
		err = cs.ops.RestartInstance(ctx, org, name)
	case "logout":
		err = cs.ops.LogoutInstance(ctx, org, name)
	case "delete":
		if err = cs.ops.DeleteInstance(ctx, org, name); err == nil {
			cs.flash(c, "Instance "+name+" deleted.")
			return c.Redirect(http.StatusSeeOther, Root+"/instances")
		}
	case "webhook/secret":
		var secret string
		if secret, err = cs.ops.RotateWebhookSecret(ctx, org, name); err == nil {
			v, err := cs.instanceView(c, true)
			if err != nil {
				return err
			}
			v.Secret = secret
			return cs.render(c, http.StatusOK, "instance", v)
		}
	default:
		return wagate.Errorf(wagate.ENOTFOUND, "no such action")
	}
	if err != nil {
		return cs.formError(c, err, nil)
	}
	cs.flash(c, map[string]string{"restart": "Restarted.", "logout": "Logged out."}[action])
	return c.Redirect(http.StatusSeeOther, instancePath(name))
}

// webhookBody is the /webhook/set body the form stands for. Headers are
// lines "Name: value"; none keeps the stored ones unless the form asks to
// remove them.
func webhookBody(form url.Values) ([]byte, bool, error) {
	w := map[string]any{
		"enabled": form.Get("webhook.enabled") != "", "url": strings.TrimSpace(form.Get("webhook.url")),
		"byEvents": form.Get("webhook.byEvents") != "", "base64": form.Get("webhook.base64") != "",
		"events": nonNilStrings(form["webhook.events"]),
	}
	keep := form.Get("keepHeaders") != ""
	if text := strings.TrimSpace(form.Get("webhook.headers")); text != "" || !keep {
		headers := map[string]string{}
		for i, line := range strings.Split(text, "\n") {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				return nil, false, wagate.Invalid("webhook.headers", "line "+strconv.Itoa(i+1)+` is not "Name: value"`)
			}
			headers[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
		w["headers"] = headers
		keep = false
	}
	b, err := json.Marshal(map[string]any{"webhook": w})
	return b, keep, err
}

func (cs *Console) setWebhook(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return wagate.Invalid("body", "not a form")
	}
	body, keep, err := webhookBody(form)
	if err == nil {
		var secret string
		secret, err = cs.ops.SetWebhook(c.Request().Context(), &SessionOf(c).Org, c.Param("name"), body, keep)
		if err == nil && secret != "" {
			v, err := cs.instanceView(c, true)
			if err != nil {
				return err
			}
			v.Secret = secret
			return cs.render(c, http.StatusOK, "instance", v)
		}
	}
	if err != nil {
		return cs.formError(c, err, form)
	}
	cs.flash(c, "Webhook saved.")
	return c.Redirect(http.StatusSeeOther, instancePath(c.Param("name"))+"#webhook")
}

func (cs *Console) retryDelivery(c echo.Context) error {
	err := cs.ops.RetryDelivery(c.Request().Context(), &SessionOf(c).Org, c.Param("name"), c.Param("id"))
	if err != nil {
		return cs.formError(c, err, nil)
	}
	cs.flash(c, "Delivery queued again.")
	return c.Redirect(http.StatusSeeOther, instancePath(c.Param("name"))+"#deliveries")
}

// inputField is a labelled text input with its error, for the "field" template.
type inputField struct {
	Name, Label, Value, Error, Type string
}

// ID is the input's id: the field's JSON path with dots as dashes.
func (f inputField) ID() string {
	return strings.NewReplacer(".", "-", "[", "-", "]", "").Replace(f.Name)
}

func fieldOf(name, label, value, problem, typ string) inputField {
	if typ == "" {
		typ = "text"
	}
	return inputField{Name: name, Label: label, Value: value, Error: problem, Type: typ}
}

// fieldError is the problem of the input name: its own, or the first of
// an element of it (systemMessages[0], webhook.events[2]), which the
// form shows on the one input that holds the list.
func fieldError(errs formErrors, name string) string {
	if p := errs.Field(name); p != "" {
		return p
	}
	for _, s := range errs.Summary {
		if strings.HasPrefix(s, name+"[") || strings.HasPrefix(s, name+".") {
			if _, p, ok := strings.Cut(s, ": "); ok {
				return p
			}
		}
	}
	return ""
}
