package console

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/openaiapi"
	"github.com/wagate/wagate/store"
)

// The bot pages of an instance: its /openai bots, their settings and the
// instance's credentials. The operations answer the routes' JSON, which
// the pages read into the types below; the forms become the routes' JSON
// bodies, so the rules and the error fields are the API's.

// BotOps are the operations of the /openai routes on the instance name
// names in org. Each answers its route's JSON.
type BotOps interface {
	Bots(ctx context.Context, org *store.Organization, name string) ([]byte, error)
	Bot(ctx context.Context, org *store.Organization, name, id string) ([]byte, error)
	CreateBot(ctx context.Context, org *store.Organization, name string, body []byte) ([]byte, error)
	// PatchBot is PATCH /openai/update: a merge patch, null inherits.
	PatchBot(ctx context.Context, org *store.Organization, name, id string, body []byte) ([]byte, error)
	DeleteBot(ctx context.Context, org *store.Organization, name, id string) error
	BotSettings(ctx context.Context, org *store.Organization, name string) ([]byte, error)
	SaveBotSettings(ctx context.Context, org *store.Organization, name string, body []byte) ([]byte, error)
	Creds(ctx context.Context, org *store.Organization, name string) ([]byte, error)
	CreateCreds(ctx context.Context, org *store.Organization, name string, body []byte) ([]byte, error)
	// DeleteCreds is DELETE /openai/creds/{credsId}/{instance}.
	DeleteCreds(ctx context.Context, org *store.Organization, name, id string) error
}

// Bot is a bot as /openai/fetch shows it.
type Bot = openaiapi.BotView

// BotSettings are the instance's bot settings (/openai/fetchSettings).
type BotSettings = openaiapi.SettingsView

// Creds are credentials of the instance, the key masked.
type Creds struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	APIKey  string `json:"apiKey"`
	BaseURL string `json:"baseUrl"`
}

func (cs *Console) botRoutes(e *echo.Echo) {
	admins := []string{store.RoleOwner, store.RoleAdmin}
	page := func(method, p string, h echo.HandlerFunc) {
		cs.page(e, method, Root+"/instances/:name"+p, h, admins...)
	}
	page(http.MethodGet, "/bots", cs.botsPage)
	page(http.MethodGet, "/bots/new", cs.newBotPage)
	page(http.MethodPost, "/bots", cs.createBot)
	page(http.MethodGet, "/bots/:id", cs.botPage)
	page(http.MethodPost, "/bots/:id", cs.updateBot)
	page(http.MethodGet, "/bots/:id/delete", cs.confirmDeleteBot)
	page(http.MethodPost, "/bots/:id/delete", cs.deleteBot)
	page(http.MethodGet, "/bot-settings", cs.botSettingsPage)
	page(http.MethodPost, "/bot-settings", cs.saveBotSettings)
	page(http.MethodPost, "/creds", cs.createCreds)
	page(http.MethodPost, "/creds/:id/delete", cs.deleteCreds)
}

func decodeOp[T any](b []byte, err error) (T, error) {
	var v T
	if err != nil {
		return v, err
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, wagate.Errorf(wagate.EINTERNAL, "console: reading the API's answer: %v", err)
	}
	return v, nil
}

// behaviourField is a behaviour field of the bot and settings forms.
type behaviourField struct {
	Name, Label, Kind string // Kind: int, text, bool or enum
	Options           []string
}

var behaviourFields = []behaviourField{
	{Name: "expire", Label: "Session expiry (minutes; 0: never)", Kind: "int"},
	{Name: "keywordFinish", Label: "Keyword that ends the session", Kind: "text"},
	{Name: "delayMessage", Label: "Delay before each message (ms)", Kind: "int"},
	{Name: "unknownMessage", Label: "Reply to a message the bot cannot read", Kind: "text"},
	{Name: "listeningFromMe", Label: "Answer messages sent from the phone", Kind: "bool"},
	{Name: "stopBotFromMe", Label: "Pause the bot when someone answers from the phone", Kind: "bool"},
	{Name: "keepOpen", Label: "Keep the session open after keywordFinish", Kind: "bool"},
	{Name: "debounceTime", Label: "Wait for more messages (seconds)", Kind: "int"},
	{Name: "splitMessages", Label: "Split replies into several messages", Kind: "bool"},
	{Name: "timePerChar", Label: "Typing time per character (ms)", Kind: "int"},
	{Name: "speechToText", Label: "Transcribe voice messages", Kind: "bool"},
	{Name: "pauseMinutes", Label: "Pause after a human answers (minutes)", Kind: "int"},
	{Name: "groupMode", Label: "In groups", Kind: "enum", Options: bots.GroupModes},
}

// behaviourJSON reads the behaviour fields of form into body: an empty
// field is null (inherit); a number that does not read is sent as typed,
// for the decoder to name.
func behaviourJSON(form url.Values, body map[string]any) {
	for _, f := range behaviourFields {
		v := strings.TrimSpace(form.Get(f.Name))
		switch {
		case v == "":
			body[f.Name] = nil
		case f.Kind == "int":
			if n, err := strconv.Atoi(v); err == nil {
				body[f.Name] = n
			} else {
				body[f.Name] = v
			}
		case f.Kind == "bool":
			body[f.Name] = v == "true"
		default:
			body[f.Name] = v
		}
	}
}

// behaviourValues are a Behaviour as form values ("" for null).
func behaviourValues(b store.Behaviour, into url.Values) {
	raw, _ := json.Marshal(b)
	var m map[string]any
	json.Unmarshal(raw, &m)
	for _, f := range behaviourFields {
		into.Set(f.Name, formString(m[f.Name]))
	}
}

func formString(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case bool:
		return strconv.FormatBool(v)
	}
	return ""
}

// effectiveValues are the effective behaviour as text by field.
func effectiveValues(b store.Behaviour) map[string]string {
	v := url.Values{}
	behaviourValues(b, v)
	out := map[string]string{}
	for k := range v {
		out[k] = v.Get(k)
	}
	return out
}

func lines(s string) []string {
	out := []string{}
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// promptSep separates several messages of one role in a prompt textarea.
const promptSep = "\n---\n"

func prompts(s string) []string {
	out := []string{}
	for _, p := range strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), promptSep) {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func optional(s string) any {
	if s = strings.TrimSpace(s); s == "" {
		return nil
	}
	return s
}

// botBody is the /openai/create body (or the merge patch of
// /openai/update) the bot form stands for.
func botBody(form url.Values) ([]byte, error) {
	body := map[string]any{
		"enabled":           form.Get("enabled") != "",
		"description":       form.Get("description"),
		"botType":           form.Get("botType"),
		"model":             form.Get("model"),
		"assistantId":       form.Get("assistantId"),
		"functionUrl":       form.Get("functionUrl"),
		"chatbotId":         optional(form.Get("chatbotId")),
		"openaiCredsId":     optional(form.Get("openaiCredsId")),
		"systemMessages":    prompts(form.Get("systemMessages")),
		"assistantMessages": prompts(form.Get("assistantMessages")),
		"userMessages":      prompts(form.Get("userMessages")),
		"triggerType":       form.Get("triggerType"),
		"triggerOperator":   form.Get("triggerOperator"),
		"triggerValue":      form.Get("triggerValue"),
		"ignoreJids":        lines(form.Get("ignoreJids")),
	}
	for _, k := range []string{"maxTokens", "priority"} {
		v := strings.TrimSpace(form.Get(k))
		if n, err := strconv.Atoi(v); err == nil {
			body[k] = n
		} else if v != "" {
			body[k] = v
		} else if k == "maxTokens" {
			body[k] = nil
		} else {
			body[k] = 0
		}
	}
	if t := strings.TrimSpace(form.Get("tools")); t == "" {
		body["tools"] = []any{}
	} else if json.Valid([]byte(t)) {
		body["tools"] = json.RawMessage(t)
	} else {
		return nil, wagate.Invalid("tools", "not valid JSON")
	}
	behaviourJSON(form, body)
	return json.Marshal(body)
}

// botValues are a stored bot as form values.
func botValues(b *Bot) url.Values {
	v := url.Values{
		"description": {b.Description}, "botType": {b.BotType}, "model": {b.Model}, "assistantId": {b.AssistantID},
		"functionUrl": {b.FunctionURL}, "triggerType": {b.TriggerType}, "triggerOperator": {b.TriggerOperator},
		"triggerValue": {b.TriggerValue}, "priority": {strconv.Itoa(b.Priority)},
		"systemMessages":    {strings.Join(b.SystemMessages, promptSep)},
		"assistantMessages": {strings.Join(b.AssistantMessages, promptSep)},
		"userMessages":      {strings.Join(b.UserMessages, promptSep)},
		"ignoreJids":        {strings.Join(b.IgnoreJids, "\n")},
	}
	if b.Enabled == nil || *b.Enabled {
		v.Set("enabled", "1")
	}
	if b.ChatbotID != nil {
		v.Set("chatbotId", *b.ChatbotID)
	}
	if b.OpenaiCredsID != nil {
		v.Set("openaiCredsId", *b.OpenaiCredsID)
	}
	if b.MaxTokens != nil {
		v.Set("maxTokens", strconv.Itoa(*b.MaxTokens))
	}
	if t := strings.TrimSpace(string(b.Tools)); t != "" && t != "[]" && t != "null" {
		v.Set("tools", t)
	}
	behaviourValues(b.Behaviour, v)
	return v
}

// botForm is what the bot and settings forms see.
type botForm struct {
	Instance         string
	Path             string // the instance's page
	Action           string // where the form posts
	Bot              *Bot
	Values           url.Values
	Effective        map[string]string // by field: what applies, shown by fields left empty
	Inherited        map[string]string // by field: what an emptied field would take
	EffectiveCreds   string
	Creds            []Creds
	Bots             []Bot // for the settings' fallback
	Behaviour        []behaviourField
	TriggerTypes     []string
	TriggerOperators []string
	BotTypes         []string
}

func (f botForm) Value(name string) string { return f.Values.Get(name) }

func (cs *Console) botForm(c echo.Context, b *Bot, values url.Values) (*botForm, error) {
	ctx, org, name := c.Request().Context(), &SessionOf(c).Org, c.Param("name")
	d, err := cs.ops.Instance(ctx, org, name)
	if err != nil {
		return nil, err
	}
	creds, err := decodeOp[[]Creds](cs.ops.Creds(ctx, org, name))
	if err != nil {
		return nil, err
	}
	f := &botForm{Instance: d.Name, Path: instancePath(d.Name), Bot: b, Values: values, Creds: creds,
		Behaviour: behaviourFields, TriggerTypes: bots.TriggerTypes, TriggerOperators: bots.TriggerOperators,
		BotTypes: []string{bots.ChatCompletion, bots.Assistant}}
	f.Action = f.Path + "/bots"
	// A field left empty takes the instance settings' value.
	st, err := decodeOp[BotSettings](cs.ops.BotSettings(ctx, org, name))
	if err != nil {
		return nil, err
	}
	f.Inherited = effectiveValues(st.Behaviour)
	f.Effective = f.Inherited
	if st.OpenaiCredsID != nil {
		f.EffectiveCreds = *st.OpenaiCredsID
	}
	if b != nil {
		f.Action += "/" + url.PathEscape(b.ID)
		if b.Effective != nil {
			f.Effective, f.EffectiveCreds = effectiveValues(b.Effective.Behaviour), b.Effective.CredsID
		}
	}
	return f, nil
}

type botsPage struct {
	Instance, Path string
	Bots           []Bot
	Creds          []Creds
	Values         url.Values
}

func (p botsPage) Value(name string) string { return p.Values.Get(name) }

func (cs *Console) botsView(c echo.Context, values url.Values) (*botsPage, error) {
	ctx, org, name := c.Request().Context(), &SessionOf(c).Org, c.Param("name")
	d, err := cs.ops.Instance(ctx, org, name)
	if err != nil {
		return nil, err
	}
	list, err := decodeOp[[]Bot](cs.ops.Bots(ctx, org, name))
	if err != nil {
		return nil, err
	}
	creds, err := decodeOp[[]Creds](cs.ops.Creds(ctx, org, name))
	if err != nil {
		return nil, err
	}
	return &botsPage{Instance: d.Name, Path: instancePath(d.Name), Bots: list, Creds: creds, Values: values}, nil
}

func (cs *Console) botsPage(c echo.Context) error {
	p, err := cs.botsView(c, url.Values{})
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "bots", p)
}

func (cs *Console) newBotPage(c echo.Context) error {
	f, err := cs.botForm(c, nil, url.Values{"enabled": {"1"}, "botType": {bots.ChatCompletion}, "triggerType": {bots.TriggerAll}, "priority": {"0"}})
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "bot", f)
}

func (cs *Console) createBot(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return wagate.Invalid("body", "not a form")
	}
	body, err := botBody(form)
	if err == nil {
		_, err = cs.ops.CreateBot(c.Request().Context(), &SessionOf(c).Org, c.Param("name"), body)
	}
	if err != nil {
		if formStatus(err) == 0 {
			return err
		}
		f, ferr := cs.botForm(c, nil, form)
		if ferr != nil {
			return ferr
		}
		return cs.renderForm(c, formStatus(err), "bot", f, err)
	}
	cs.flash(c, "Bot created.")
	return c.Redirect(http.StatusSeeOther, instancePath(c.Param("name"))+"/bots")
}

func (cs *Console) fetchBot(c echo.Context) (*Bot, error) {
	b, err := decodeOp[Bot](cs.ops.Bot(c.Request().Context(), &SessionOf(c).Org, c.Param("name"), c.Param("id")))
	return &b, err
}

func (cs *Console) botPage(c echo.Context) error {
	b, err := cs.fetchBot(c)
	if err != nil {
		return err
	}
	f, err := cs.botForm(c, b, botValues(b))
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "bot", f)
}

func (cs *Console) updateBot(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return wagate.Invalid("body", "not a form")
	}
	body, err := botBody(form)
	if err == nil {
		_, err = cs.ops.PatchBot(c.Request().Context(), &SessionOf(c).Org, c.Param("name"), c.Param("id"), body)
	}
	if err != nil {
		if formStatus(err) == 0 {
			return err
		}
		b, ferr := cs.fetchBot(c)
		if ferr != nil {
			return ferr
		}
		f, ferr := cs.botForm(c, b, form)
		if ferr != nil {
			return ferr
		}
		return cs.renderForm(c, formStatus(err), "bot", f, err)
	}
	cs.flash(c, "Bot saved.")
	return c.Redirect(http.StatusSeeOther, instancePath(c.Param("name"))+"/bots/"+url.PathEscape(c.Param("id")))
}

func (cs *Console) confirmDeleteBot(c echo.Context) error {
	b, err := cs.fetchBot(c)
	if err != nil {
		return err
	}
	label := b.Description
	if label == "" {
		label = b.ID
	}
	p := instancePath(c.Param("name"))
	return cs.render(c, http.StatusOK, "instance_confirm", confirmation{
		Name: c.Param("name"), Path: p + "/bots/" + url.PathEscape(b.ID), Action: "delete",
		Title: "Delete the bot " + label + "?", Button: "Delete the bot",
		Explain: "The bot, its sessions and the messages it handled are deleted for good; open sessions are reported closed.",
	})
}

func (cs *Console) deleteBot(c echo.Context) error {
	if err := cs.ops.DeleteBot(c.Request().Context(), &SessionOf(c).Org, c.Param("name"), c.Param("id")); err != nil {
		return err
	}
	cs.flash(c, "Bot deleted.")
	return c.Redirect(http.StatusSeeOther, instancePath(c.Param("name"))+"/bots")
}

// settingsValues are the settings as form values.
func settingsValues(st *BotSettings) url.Values {
	v := url.Values{"ignoreJids": {strings.Join(st.IgnoreJids, "\n")}, "transcriptionErrorMessage": {st.TranscriptionErrorMessage}}
	if st.OpenaiCredsID != nil {
		v.Set("openaiCredsId", *st.OpenaiCredsID)
	}
	if st.OpenaiIDFallback != nil {
		v.Set("openaiIdFallback", *st.OpenaiIDFallback)
	}
	behaviourValues(st.Behaviour, v)
	return v
}

func (cs *Console) settingsForm(c echo.Context, values url.Values) (*botForm, error) {
	f, err := cs.botForm(c, nil, values)
	if err != nil {
		return nil, err
	}
	f.Action = f.Path + "/bot-settings"
	f.Effective = effectiveValues(bots.DefaultBehaviour())
	f.Inherited = f.Effective
	if f.Bots, err = decodeOp[[]Bot](cs.ops.Bots(c.Request().Context(), &SessionOf(c).Org, c.Param("name"))); err != nil {
		return nil, err
	}
	return f, nil
}

func (cs *Console) botSettingsPage(c echo.Context) error {
	st, err := decodeOp[BotSettings](cs.ops.BotSettings(c.Request().Context(), &SessionOf(c).Org, c.Param("name")))
	if err != nil {
		return err
	}
	f, err := cs.settingsForm(c, settingsValues(&st))
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "bot_settings", f)
}

func (cs *Console) saveBotSettings(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return wagate.Invalid("body", "not a form")
	}
	body := map[string]any{"ignoreJids": lines(form.Get("ignoreJids")), "openaiCredsId": strings.TrimSpace(form.Get("openaiCredsId")),
		"transcriptionErrorMessage": form.Get("transcriptionErrorMessage")}
	if fb := strings.TrimSpace(form.Get("openaiIdFallback")); fb != "" {
		body["openaiIdFallback"] = fb
	}
	behaviourJSON(form, body)
	raw, err := json.Marshal(body)
	if err == nil {
		_, err = cs.ops.SaveBotSettings(c.Request().Context(), &SessionOf(c).Org, c.Param("name"), raw)
	}
	if err != nil {
		if formStatus(err) == 0 {
			return err
		}
		f, ferr := cs.settingsForm(c, form)
		if ferr != nil {
			return ferr
		}
		return cs.renderForm(c, formStatus(err), "bot_settings", f, err)
	}
	cs.flash(c, "Bot settings saved.")
	return c.Redirect(http.StatusSeeOther, instancePath(c.Param("name"))+"/bots")
}

func (cs *Console) createCreds(c echo.Context) error {
	form, err := c.FormParams()
	if err != nil {
		return wagate.Invalid("body", "not a form")
	}
	body, _ := json.Marshal(map[string]string{"name": form.Get("name"), "apiKey": form.Get("apiKey"), "baseUrl": form.Get("baseUrl")})
	if _, err := cs.ops.CreateCreds(c.Request().Context(), &SessionOf(c).Org, c.Param("name"), body); err != nil {
		if formStatus(err) == 0 {
			return err
		}
		form.Del("apiKey") // never sent back to the page
		p, perr := cs.botsView(c, form)
		if perr != nil {
			return perr
		}
		return cs.renderForm(c, formStatus(err), "bots", p, err)
	}
	cs.flash(c, "Credentials stored.")
	return c.Redirect(http.StatusSeeOther, instancePath(c.Param("name"))+"/bots#creds")
}

// deleteCreds deletes credentials; those a bot or the settings still use
// stay, and the page says who uses them.
func (cs *Console) deleteCreds(c echo.Context) error {
	err := cs.ops.DeleteCreds(c.Request().Context(), &SessionOf(c).Org, c.Param("name"), c.Param("id"))
	if err != nil {
		if formStatus(err) == 0 {
			return err
		}
		p, perr := cs.botsView(c, url.Values{})
		if perr != nil {
			return perr
		}
		return cs.renderForm(c, formStatus(err), "bots", p, err)
	}
	cs.flash(c, "Credentials deleted.")
	return c.Redirect(http.StatusSeeOther, instancePath(c.Param("name"))+"/bots#creds")
}
