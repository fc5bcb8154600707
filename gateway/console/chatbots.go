package console

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/okchat"
	"github.com/wagate/wagate/knowledge"
	"github.com/wagate/wagate/store"
)

// The chatbot pages act through okchat's exported operations (Create,
// Update, SetAvatar, AddSource, Query, …), the ones its REST handlers
// call: a form is turned into the JSON body the API takes, so the checks
// and the field names of their problems are the API's. The console
// depends on okchat directly rather than through Ops because okchat is a
// family package below the server; an Ops method would only forward.

// WithChatbots gives the console okchat's operations, for the chatbot
// pages; without them the pages are not registered.
func (cs *Console) WithChatbots(h *okchat.Handlers) *Console {
	cs.chatbots = h
	return cs
}

const chatbotsPath = Root + "/chatbots"

func (cs *Console) chatbotRoutes(e *echo.Echo) {
	if cs.chatbots == nil {
		return
	}
	admin := []string{store.RoleOwner, store.RoleAdmin}
	page := func(method, p string, h echo.HandlerFunc) { cs.page(e, method, p, h, admin...) }
	page(http.MethodGet, chatbotsPath, cs.chatbotList)
	page(http.MethodGet, chatbotsPath+"/new", cs.chatbotNew)
	page(http.MethodPost, chatbotsPath, cs.chatbotCreate)
	page(http.MethodGet, chatbotsPath+"/:id", cs.chatbotEdit)
	page(http.MethodPost, chatbotsPath+"/:id", cs.chatbotUpdate)
	page(http.MethodGet, chatbotsPath+"/:id/preview", cs.chatbotPreview)
	page(http.MethodPost, chatbotsPath+"/:id/avatar", cs.chatbotAvatar)
	page(http.MethodPost, chatbotsPath+"/:id/key", cs.chatbotRotateKey)
	page(http.MethodGet, chatbotsPath+"/:id/delete", cs.chatbotDeleteConfirm)
	page(http.MethodPost, chatbotsPath+"/:id/delete", cs.chatbotDelete)
	page(http.MethodGet, chatbotsPath+"/:id/knowledge", cs.knowledgePage)
	page(http.MethodGet, chatbotsPath+"/:id/knowledge/sources", cs.knowledgeSources)
	page(http.MethodPost, chatbotsPath+"/:id/knowledge", cs.knowledgeAdd)
	page(http.MethodPost, chatbotsPath+"/:id/knowledge/files", cs.knowledgeFiles)
	page(http.MethodGet, chatbotsPath+"/:id/knowledge/:source", cs.sourcePage)
	page(http.MethodPost, chatbotsPath+"/:id/knowledge/:source", cs.sourceSave)
	page(http.MethodPost, chatbotsPath+"/:id/knowledge/:source/delete", cs.knowledgeDelete)
	page(http.MethodPost, chatbotsPath+"/:id/knowledge/query", cs.knowledgeQuery)
}

// chatbotOf is the chatbot in the path, within the session's organization
// only: another organization's is not found.
func (cs *Console) chatbotOf(c echo.Context) (*store.Chatbot, error) {
	return cs.st.Chatbot(c.Request().Context(), SessionOf(c).Org.ID, c.Param("id"))
}

// formStatus is the status of a form redrawn after err, or 0 when err is
// not a problem of the form's fields.
func formStatus(err error) int {
	switch wagate.ErrorCode(err) {
	case wagate.EINVALID, wagate.ECONFLICT:
		return api.Status(err)
	}
	return 0
}

// ---- the form

// Kinds of form fields, by how their value goes into the JSON body.
const (
	kindText     = "text"     // a string; "" is sent as ""
	kindOptional = "optional" // a string; "" removes the setting (null)
	kindArea     = "textarea" // an optional string, several lines
	kindBool     = "checkbox"
	kindNumber   = "number"   // "" removes the setting; anything else is sent as a number if it is one
	kindLines    = "lines"    // one string per line; none removes the setting
	kindJSON     = "json"     // a JSON value; "" removes the setting
	kindSelect   = "select"   // an optional string out of Options
	kindSecret   = "password" // write-only: sent only when typed
)

type option struct{ Value, Label string }

// field is one input of the chatbot form, named by its JSON path.
type field struct {
	Path    string
	Label   string
	Kind    string
	Hint    string
	Preview string // what of the widget preview it changes
	Options []option
	Value   string
	Checked bool
}

// ID is the input's id.
func (f field) ID() string { return "f-" + strings.NewReplacer(".", "-", "_", "-").Replace(f.Path) }

type fieldset struct {
	Legend string
	Fields []field
}

func chatbotFieldsets(creds []*store.Creds) []fieldset {
	credOpts := []option{{"", "The organization's default"}}
	for _, cr := range creds {
		credOpts = append(credOpts, option{cr.ID, cr.Name + " (" + cr.KeyHint + ")"})
	}
	return []fieldset{
		{"Chatbot", []field{
			{Path: "name", Label: "Name", Kind: kindText, Preview: "name"},
			{Path: "slug", Label: "Slug", Kind: kindOptional, Hint: "In the hosted page's address /c/<slug>; derived from the name when empty."},
			{Path: "description", Label: "Description", Kind: kindArea},
			{Path: "active", Label: "Active", Kind: kindBool},
			{Path: "is_public", Label: "Public (the widget and the hosted page answer visitors)", Kind: kindBool},
		}},
		{"Personality and prompt", []field{
			{Path: "settings.prompt", Label: "Prompt", Kind: kindArea, Hint: "The system prompt: who the chatbot is and how it answers."},
			{Path: "personality_config.tone", Label: "Tone", Kind: kindOptional},
			{Path: "personality_config.style", Label: "Style", Kind: kindOptional},
			{Path: "settings.greeting", Label: "Greeting", Kind: kindArea, Preview: "greeting"},
		}},
		{"Model and credentials", []field{
			{Path: "settings.model", Label: "Model", Kind: kindOptional, Hint: "e.g. gpt-4o-mini"},
			{Path: "settings.openaiCredsId", Label: "Credentials", Kind: kindSelect, Options: credOpts},
			{Path: "openai_api_key", Label: "Own API key", Kind: kindSecret, Hint: "Stored encrypted and never shown again; leave empty to keep it."},
			{Path: "settings.isToolEnabled", Label: "Tools enabled", Kind: kindBool},
			{Path: "settings.tools", Label: "Tools (JSON)", Kind: kindJSON},
			{Path: "settings.functionUrl", Label: "Function URL", Kind: kindOptional, Hint: "Where tool calls are posted."},
			{Path: "settings.isRequestUserInfoEnabled", Label: "Ask visitors for their email", Kind: kindBool},
		}},
		{"Knowledge", []field{
			{Path: "settings." + knowledge.KeyFallback, Label: "When the knowledge base has no answer", Kind: kindSelect, Options: []option{
				{"", "Default"}, {knowledge.FallbackAnswer, "Answer anyway"}, {knowledge.FallbackMessage, "Send the fallback message"},
				{knowledge.FallbackHandoff, "Hand the chat to a person"},
			}},
			{Path: "settings." + knowledge.KeyFallbackMessage, Label: "Fallback message", Kind: kindArea},
			{Path: "settings." + knowledge.KeyTopK, Label: "Passages per answer", Kind: kindNumber},
			{Path: "settings." + knowledge.KeyMinSimilarity, Label: "Minimum similarity (-1 to 1)", Kind: kindNumber},
			{Path: "settings." + knowledge.KeyEmbeddingModel, Label: "Embedding model", Kind: kindOptional},
			{Path: "settings." + knowledge.KeyEmbeddingDimensions, Label: "Embedding dimensions", Kind: kindNumber},
		}},
		{"Chat widget", []field{
			{Path: "settings.snippet.name", Label: "Name shown", Kind: kindOptional, Preview: "name"},
			{Path: "settings.snippet.header", Label: "Header", Kind: kindOptional, Preview: "header"},
			{Path: "settings.snippet.slogan", Label: "Slogan", Kind: kindOptional, Preview: "slogan"},
			{Path: "settings.snippet.logo", Label: "Logo URL", Kind: kindOptional, Preview: "logo"},
			{Path: "settings.snippet.primaryColor", Label: "Primary colour (#RRGGBB)", Kind: kindOptional, Preview: "primaryColor"},
			{Path: "settings.snippet.secondaryColor", Label: "Secondary colour (#RRGGBB)", Kind: kindOptional, Preview: "secondaryColor"},
			{Path: "settings.snippet.language", Label: "Language", Kind: kindOptional, Hint: `"auto" or a tag such as en or pt-BR`},
			{Path: "settings.allowedOrigins", Label: "Allowed origins, one a line", Kind: kindLines, Hint: "Sites that may embed the widget; none: every site."},
		}},
	}
}

// lookup is the value at a dotted path of the chatbot's API object.
func lookup(obj map[string]any, path string) (any, bool) {
	var cur any = obj
	for _, k := range strings.Split(path, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[k]; !ok {
			return nil, false
		}
	}
	return cur, cur != nil
}

// fill sets the fields' values from the chatbot's API object.
func fill(sets []fieldset, obj map[string]any) {
	for i := range sets {
		for j := range sets[i].Fields {
			f := &sets[i].Fields[j]
			v, ok := lookup(obj, f.Path)
			if !ok || f.Kind == kindSecret {
				continue
			}
			switch f.Kind {
			case kindBool:
				f.Checked, _ = v.(bool)
			case kindLines:
				list, _ := v.([]any)
				var lines []string
				for _, s := range list {
					lines = append(lines, fmt.Sprint(s))
				}
				f.Value = strings.Join(lines, "\n")
			case kindJSON:
				b, _ := json.MarshalIndent(v, "", "  ")
				f.Value = string(b)
			default:
				if s, ok := v.(string); ok {
					f.Value = s
				} else {
					f.Value = fmt.Sprint(v)
				}
			}
		}
	}
}

// decodeForm fills the fields from the posted form and returns the JSON
// body it stands for: the body an API client would send.
func decodeForm(c echo.Context, sets []fieldset, creating bool) (map[string]any, error) {
	body := map[string]any{}
	var p wagate.Problems
	put := func(path string, v any) {
		m := body
		keys := strings.Split(path, ".")
		for _, k := range keys[:len(keys)-1] {
			next, ok := m[k].(map[string]any)
			if !ok {
				next = map[string]any{}
				m[k] = next
			}
			m = next
		}
		m[keys[len(keys)-1]] = v
	}
	for i := range sets {
		for j := range sets[i].Fields {
			f := &sets[i].Fields[j]
			raw := c.FormValue(f.Path)
			f.Value = raw
			var empty any // null: a setting left empty is removed, so its default applies
			switch f.Kind {
			case kindText:
				put(f.Path, raw)
			case kindBool:
				f.Checked = raw != ""
				put(f.Path, f.Checked)
			case kindSecret:
				f.Value = ""
				if c.FormValue(f.Path+".remove") != "" {
					put(f.Path, nil)
				} else if raw != "" {
					put(f.Path, raw)
				}
			case kindNumber:
				if strings.TrimSpace(raw) == "" {
					put(f.Path, empty)
				} else if n, err := strconv.ParseFloat(strings.TrimSpace(raw), 64); err == nil {
					put(f.Path, n)
				} else {
					put(f.Path, raw) // the API's check says what it must be
				}
			case kindLines:
				var list []any
				for _, l := range strings.Split(raw, "\n") {
					if l = strings.TrimSpace(l); l != "" {
						list = append(list, l)
					}
				}
				if list == nil {
					put(f.Path, empty)
				} else {
					put(f.Path, list)
				}
			case kindJSON:
				if strings.TrimSpace(raw) == "" {
					put(f.Path, empty)
					break
				}
				var v any
				if err := json.Unmarshal([]byte(raw), &v); err != nil {
					p.Add(f.Path, "must be JSON: "+err.Error())
					break
				}
				put(f.Path, v)
			default:
				switch {
				case raw != "":
					put(f.Path, raw)
				case f.Path == "slug":
					// Derived from the name when creating; kept when editing.
				case f.Path == "description":
					put(f.Path, "")
				default:
					put(f.Path, empty)
				}
			}
		}
	}
	if creating {
		// A new chatbot has no settings to remove: nulls would be noise.
		dropNulls(body)
	}
	return body, p.Err()
}

func dropNulls(m map[string]any) {
	for k, v := range m {
		switch v := v.(type) {
		case nil:
			delete(m, k)
		case map[string]any:
			dropNulls(v)
			if len(v) == 0 {
				delete(m, k)
			}
		}
	}
}

// chatbotPage is the data of the new and edit pages.
type chatbotPage struct {
	Chatbot   *store.Chatbot // nil on the new page
	Fieldsets []fieldset
	Avatar    string // the avatar's path, when there is one
	KeyPrefix string
	Preview   widgetLook
}

// Action is where the form posts.
func (p chatbotPage) Action() string {
	if p.Chatbot == nil {
		return chatbotsPath
	}
	return chatbotsPath + "/" + p.Chatbot.ID
}

func (cs *Console) newChatbotPage(c echo.Context, cb *store.Chatbot) (*chatbotPage, error) {
	creds, err := cs.st.ListOrgCreds(c.Request().Context(), SessionOf(c).Org.ID)
	if err != nil {
		return nil, err
	}
	p := &chatbotPage{Chatbot: cb, Fieldsets: chatbotFieldsets(creds)}
	if cb == nil {
		fill(p.Fieldsets, map[string]any{"active": true})
		return p, nil
	}
	fill(p.Fieldsets, cs.chatbots.View(cb))
	if a := cb.Setting("avatar"); strings.HasPrefix(a, okchat.AvatarPath) {
		p.Avatar = a
	}
	p.KeyPrefix = cb.KeyPrefix
	p.Preview = lookOf(cb, p.Avatar)
	return p, nil
}

// ---- list, create, edit

type chatbotRow struct {
	ID, Name, Slug, KeyPrefix string
	Active, Public            bool
}

func (cs *Console) chatbotList(c echo.Context) error {
	list, err := cs.st.ListChatbots(c.Request().Context(), SessionOf(c).Org.ID)
	if err != nil {
		return err
	}
	rows := make([]chatbotRow, 0, len(list))
	for _, cb := range list {
		rows = append(rows, chatbotRow{ID: cb.ID, Name: cb.Name, Slug: cb.Slug, KeyPrefix: cb.KeyPrefix, Active: cb.Active, Public: cb.IsPublic})
	}
	return cs.render(c, http.StatusOK, "chatbots", rows)
}

func (cs *Console) chatbotNew(c echo.Context) error {
	p, err := cs.newChatbotPage(c, nil)
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "chatbot", p)
}

// keyPage shows a chatbot's new key, the only time it is shown.
type keyPage struct {
	Chatbot *store.Chatbot
	Key     string
	Created bool
}

func (cs *Console) chatbotCreate(c echo.Context) error {
	p, err := cs.newChatbotPage(c, nil)
	if err != nil {
		return err
	}
	body, err := decodeForm(c, p.Fieldsets, true)
	if err == nil {
		var (
			cb  *store.Chatbot
			key string
		)
		if cb, key, err = cs.chatbots.Create(c.Request().Context(), &SessionOf(c).Org, body); err == nil {
			return cs.render(c, http.StatusCreated, "chatbot_key", keyPage{Chatbot: cb, Key: key, Created: true})
		}
	}
	if status := formStatus(err); status != 0 {
		return cs.renderForm(c, status, "chatbot", p, err)
	}
	return err
}

func (cs *Console) chatbotEdit(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	p, err := cs.newChatbotPage(c, cb)
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "chatbot", p)
}

func (cs *Console) chatbotUpdate(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	p, err := cs.newChatbotPage(c, cb)
	if err != nil {
		return err
	}
	body, err := decodeForm(c, p.Fieldsets, false)
	if err == nil {
		// Update changes cb as it checks; the form is redrawn from what was posted.
		changed := *cb
		if err = cs.chatbots.Update(c.Request().Context(), &changed, body); err == nil {
			cs.flash(c, "Saved.")
			return c.Redirect(http.StatusSeeOther, p.Action())
		}
	}
	if status := formStatus(err); status != 0 {
		return cs.renderForm(c, status, "chatbot", p, err)
	}
	return err
}

func (cs *Console) chatbotAvatar(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	data, err := okchat.ReadAvatar(c)
	if err == nil {
		err = cs.chatbots.SetAvatar(c.Request().Context(), cb, data)
	}
	if err == nil {
		cs.flash(c, "The avatar is updated.")
		return c.Redirect(http.StatusSeeOther, chatbotsPath+"/"+cb.ID)
	}
	if status := formStatus(err); status != 0 {
		cb, _ = cs.chatbotOf(c)
		p, perr := cs.newChatbotPage(c, cb)
		if perr != nil {
			return perr
		}
		return cs.renderForm(c, status, "chatbot", p, err)
	}
	return err
}

func (cs *Console) chatbotRotateKey(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	key, err := cs.chatbots.RotateKey(c.Request().Context(), cb)
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "chatbot_key", keyPage{Chatbot: cb, Key: key})
}

func (cs *Console) chatbotDeleteConfirm(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "chatbot_delete", cb)
}

func (cs *Console) chatbotDelete(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	if err := cs.chatbots.Delete(c.Request().Context(), cb); err != nil {
		return err
	}
	cs.flash(c, "Deleted "+cb.Name+".")
	return c.Redirect(http.StatusSeeOther, chatbotsPath)
}

// ---- the widget preview

// widgetLook is what the preview shows, as the widget would (the widget's
// own defaults apply to what is empty).
type widgetLook struct {
	Title, Slogan, Greeting, Picture string
	Primary, Secondary               string
}

var hexColor = regexp.MustCompile(`^#[0-9A-Fa-f]{6}$`)

func lookOf(cb *store.Chatbot, avatar string) widgetLook {
	get := func(key string) string {
		if v, _ := cb.ChatWidget[key].(string); v != "" {
			return v
		}
		snip, _ := cb.Settings["snippet"].(map[string]any)
		v, _ := snip[key].(string)
		return v
	}
	l := widgetLook{Title: get("header"), Slogan: get("slogan"), Greeting: cb.Setting("greeting"), Picture: get("logo")}
	if l.Title == "" {
		l.Title = get("name")
	}
	if l.Title == "" {
		l.Title = cb.Name
	}
	if l.Picture == "" {
		l.Picture = avatar
	}
	if s := get("primaryColor"); hexColor.MatchString(s) {
		l.Primary = s
	}
	if s := get("secondaryColor"); hexColor.MatchString(s) {
		l.Secondary = s
	}
	return l
}

// chatbotPreview is the widget, drawn by its own stylesheet (/widget.css)
// in the markup widget.js builds, for the edit page's frame; the page's
// script repaints it as the fields change.
func (cs *Console) chatbotPreview(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	avatar := ""
	if a := cb.Setting("avatar"); strings.HasPrefix(a, okchat.AvatarPath) {
		avatar = a
	}
	html, err := cs.fragment(c, "chatbot_preview", "preview", lookOf(cb, avatar))
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set("Cache-Control", "no-store")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	// The colours are CSS variables in a style attribute, as widget.js sets them.
	h.Set("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src * data:; script-src 'none'; frame-ancestors 'self'")
	return c.HTML(http.StatusOK, html)
}
