package okchat

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/knowledge"
	"github.com/wagate/wagate/store"
)

const (
	maxSettingsBytes = 64 << 10
	maxSlugLen       = 64
)

var slugPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// readOnlyFields are fields of the chatbot object that a client which
// fetched a chatbot may send back; they are ignored, as are the configs
// that have routes of their own.
var readOnlyFields = map[string]bool{
	"id": true, "chatbotId": true, "organization_id": true, "created_at": true, "updated_at": true,
	"suggestions": true, "enabled_plugins": true, "docs_metadata": true, "managers": true, "migrated_data": true,
	"v1_chatbot_id": true, "version_id": true, "voice_widget_config": true, "chat_widget_config": true,
	"api_key_prefix": true, "message": true,
}

// change is what a create or update body asks of a chatbot, checked.
type change struct {
	body     map[string]any
	settings map[string]any // the merge patch for settings
	problems wagate.Problems
}

// apply checks body and applies it to cb: top-level fields replace,
// personality_config and settings are merged as RFC 7386 merge patches
// (objects merge, null removes a key). Checks that need the database come
// after, in resolve.
func apply(cb *store.Chatbot, body map[string]any, creating bool, avatarURL string) *change {
	ch := &change{body: body}
	p := &ch.problems
	if name, ok := body["name"]; ok && name != nil {
		if s, ok := checkString(p, "name", name, 255); ok {
			if strings.TrimSpace(s) == "" {
				p.Add("name", "must not be empty")
			}
			cb.Name = strings.TrimSpace(s)
		}
	} else if creating {
		p.Add("name", "required")
	} else if name == nil && ok {
		p.Add("name", "must be a string")
	}
	for k, v := range body {
		switch k {
		case "name":
		case "slug":
			if s, ok := checkString(p, k, v, maxSlugLen); ok {
				if !slugPattern.MatchString(s) {
					p.Add(k, "must be lowercase letters, digits and single dashes, e.g. support-bot")
				}
				cb.Slug = s
			}
		case "description":
			if s, ok := checkString(p, k, v, 2000); ok {
				cb.Description = s
			}
		case "is_public":
			if b, ok := checkBool(p, k, v); ok {
				cb.IsPublic = b
			}
		case "active":
			if b, ok := checkBool(p, k, v); ok {
				cb.Active = b
			}
		case "personality_config":
			if patch, ok := checkObject(p, k, v); ok {
				checkFields(p, k+".", patch, false, map[string]func(string, any){
					"tone":  func(path string, v any) { checkString(p, path, v, 255) },
					"style": func(path string, v any) { checkString(p, path, v, 255) },
				})
				cb.Personality = api.MergePatch(maps.Clone(cb.Personality), patch)
			}
		case "settings":
			if patch, ok := checkObject(p, k, v); ok {
				ch.settings = patch
			}
		case "openai_api_key":
			switch key := v.(type) {
			case nil:
				cb.OpenAIKey, cb.OpenAIKeyHint = "", ""
			case string:
				if key == "" || len(key) > 4096 || strings.ContainsFunc(key, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
					p.Add(k, "must be an API key of at most 4096 characters without spaces, or null to remove it")
				} else {
					cb.OpenAIKey, cb.OpenAIKeyHint = key, api.MaskKey(key)
				}
			default:
				p.Add(k, "must be a string, or null to remove the key")
			}
		default:
			if !readOnlyFields[k] {
				p.Add(k, "unknown field")
			}
		}
	}
	if ch.settings != nil {
		applySettings(cb, ch.settings, avatarURL, p)
	}
	return ch
}

// applySettings merges patch into cb's settings and checks the keys the
// gateway acts on; other keys are kept as the client sent them.
// openaiCredsId is checked by resolve.
func applySettings(cb *store.Chatbot, patch map[string]any, avatarURL string, p *wagate.Problems) {
	// A client that fetched the chatbot may send its avatar back unchanged.
	if av, ok := patch["avatar"]; ok {
		if av != cb.Settings["avatar"] && av != avatarURL {
			p.Add("settings.avatar", "set by PATCH /api/external/chatbot/{chatbotId}/update-avatar")
		}
		delete(patch, "avatar")
	}
	checkFields(p, "settings.", patch, false, map[string]func(string, any){
		"model":                          func(path string, v any) { checkString(p, path, v, 128) },
		"prompt":                         func(path string, v any) { checkString(p, path, v, 32<<10) },
		"greeting":                       func(path string, v any) { checkString(p, path, v, 4096) },
		"isToolEnabled":                  func(path string, v any) { checkBool(p, path, v) },
		"isRequestUserInfoEnabled":       func(path string, v any) { checkBool(p, path, v) },
		"openaiCredsId":                  func(path string, v any) { checkString(p, path, v, 64) },
		knowledge.KeyEmbeddingModel:      func(path string, v any) { checkString(p, path, v, 128) },
		knowledge.KeyEmbeddingDimensions: func(path string, v any) { checkInteger(p, path, v, 0, 3072) },
		knowledge.KeyTopK:                func(path string, v any) { checkInteger(p, path, v, 1, knowledge.MaxTopK) },
		knowledge.KeyMinSimilarity:       func(path string, v any) { checkNumber(p, path, v, -1, 1) },
		knowledge.KeyFallback: func(path string, v any) {
			if s, ok := checkString(p, path, v, 16); ok && s != knowledge.FallbackAnswer && s != knowledge.FallbackMessage && s != knowledge.FallbackHandoff {
				p.Add(path, "must be answer, message or handoff")
			}
		},
		knowledge.KeyFallbackMessage: func(path string, v any) { checkString(p, path, v, 4096) },
		"allowedOrigins":             func(path string, v any) { checkOrigins(p, path, v) },
		"tools": func(path string, v any) {
			raw, _ := json.Marshal(v)
			if tools, ok := api.CheckTools(path, raw, p); ok && tools != nil {
				var stored []any
				if json.Unmarshal(tools, &stored) == nil {
					patch["tools"] = stored // in the chat completions form, as the model gets them
				}
			}
		},
		"functionUrl": func(path string, v any) {
			if s, ok := checkString(p, path, v, 2048); ok && s != "" {
				if u, err := url.Parse(s); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					p.Add(path, "must be an absolute http or https URL")
				}
			}
		},
		"snippet": func(path string, v any) {
			if o, ok := checkObject(p, path, v); ok {
				checkFields(p, path+".", o, true, widgetChecks(p))
			}
		},
	})
	settings := maps.Clone(cb.Settings)
	if cb.CredsID != "" {
		settings["openaiCredsId"] = cb.CredsID
	}
	settings = api.MergePatch(settings, patch)
	cb.CredsID, _ = settings["openaiCredsId"].(string)
	delete(settings, "openaiCredsId")
	if tools, _ := settings["tools"].([]any); len(tools) > 0 {
		if u, _ := settings["functionUrl"].(string); strings.TrimSpace(u) == "" {
			p.Add("settings.functionUrl", "required when settings.tools are defined: tool calls are posted there")
		}
	}
	if b, _ := json.Marshal(settings); len(b) > maxSettingsBytes {
		p.Add("settings", fmt.Sprintf("larger than %d bytes", maxSettingsBytes))
	}
	cb.Settings = settings
	// The chat widget's branding is settings.snippet; its language is its own.
	if snippet, ok := settings["snippet"].(map[string]any); ok {
		widget := maps.Clone(snippet)
		if lang, ok := cb.ChatWidget["language"]; ok {
			widget["language"] = lang
		}
		cb.ChatWidget = widget
	}
}

// resolve runs the checks that need the database, after the others.
func (h *Handlers) resolve(ctx context.Context, cb *store.Chatbot, ch *change) error {
	if err := ch.problems.Err(); err != nil {
		slices.Sort(ch.problems)
		return err
	}
	if cb.CredsID != "" {
		if _, err := h.store.OrgCreds(ctx, cb.OrganizationID, cb.CredsID); wagate.ErrorCode(err) == wagate.ENOTFOUND {
			return wagate.Invalid("settings.openaiCredsId", "no credentials with this id in this organization")
		} else if err != nil {
			return err
		}
	}
	return nil
}

// slugFor derives a slug from a chatbot's name: api-docs-demo-chatbot for
// "API Docs Demo Chatbot".
func slugFor(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		switch {
		case r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			dash = false
			b.WriteRune(r)
		default:
			dash = true
		}
		if b.Len() >= maxSlugLen-4 { // room for a -N suffix
			break
		}
	}
	if b.Len() == 0 {
		return "chatbot"
	}
	return strings.TrimRight(b.String(), "-")
}

// freeSlug returns base, or base-2, base-3, … whichever the organization
// has not used.
func (h *Handlers) freeSlug(ctx context.Context, orgID, base string) (string, error) {
	taken, err := h.store.SlugsLike(ctx, orgID, base)
	if err != nil {
		return "", err
	}
	if !slices.Contains(taken, base) {
		return base, nil
	}
	for n := 2; ; n++ {
		if s := base + "-" + strconv.Itoa(n); !slices.Contains(taken, s) {
			return s, nil
		}
	}
}

// Create makes a chatbot of org from body (okchat's chatbot object, as
// decoded JSON) and returns it with its key, which is shown only here.
func (h *Handlers) Create(ctx context.Context, org *store.Organization, body map[string]any) (*store.Chatbot, string, error) {
	now := stamp()
	cb := &store.Chatbot{
		ID: store.NewID(), OrganizationID: org.ID, Active: true,
		Personality: map[string]any{}, Settings: map[string]any{}, CreatedAt: now, UpdatedAt: now,
	}
	ch := apply(cb, body, true, "")
	if err := h.resolve(ctx, cb, ch); err != nil {
		return nil, "", err
	}
	key := newKey()
	cb.KeyHash, cb.KeyPrefix = api.HashKey(key), keyPrefix(key)
	_, explicit := body["slug"]
	// Two creates may derive the same slug at once; the loser takes the next.
	for try := 0; ; try++ {
		if !explicit {
			slug, err := h.freeSlug(ctx, org.ID, slugFor(cb.Name))
			if err != nil {
				return nil, "", err
			}
			cb.Slug = slug
		}
		err := h.store.CreateChatbot(ctx, cb)
		if err == nil {
			break
		}
		if explicit || wagate.ErrorCode(err) != wagate.ECONFLICT || try == 2 {
			return nil, "", err
		}
	}
	h.log.Info("chatbot created", "organization", org.ID, "chatbot", cb.ID, "key_prefix", cb.KeyPrefix)
	return cb, key, nil
}

// Update applies body (okchat's chatbot object, as decoded JSON) to cb
// and saves it; problems are reported under the body's JSON paths.
func (h *Handlers) Update(ctx context.Context, cb *store.Chatbot, body map[string]any) error {
	avatarURL, _ := h.settingsView(cb)["avatar"].(string)
	ch := apply(cb, body, false, avatarURL)
	if err := h.resolve(ctx, cb, ch); err != nil {
		return err
	}
	cb.UpdatedAt = stamp()
	return h.store.UpdateChatbot(ctx, cb)
}

// readObject decodes a JSON object body.
func readObject(c echo.Context) (map[string]any, error) {
	var body map[string]any
	if err := api.Decode(c, &body, false); err != nil {
		return nil, err
	}
	return body, nil
}

// ---- views

// settingsView is the chatbot's settings as clients see them.
func (h *Handlers) settingsView(cb *store.Chatbot) map[string]any {
	s := maps.Clone(cb.Settings)
	if s == nil {
		s = map[string]any{}
	}
	if cb.CredsID != "" {
		s["openaiCredsId"] = cb.CredsID
	}
	// Avatars are stored by path, so they follow the gateway's public URL.
	if path, ok := s["avatar"].(string); ok && strings.HasPrefix(path, AvatarPath) {
		s["avatar"] = h.serverURL + path
	}
	return s
}

func nullIfNil(m map[string]any) any {
	if m == nil {
		return nil
	}
	return m
}

// View is okchat's full chatbot object. Fields okchat has and wagate does
// not use are null; openai_api_key is shown masked.
func (h *Handlers) View(cb *store.Chatbot) map[string]any {
	var openaiKey any
	if cb.OpenAIKeyHint != "" {
		openaiKey = cb.OpenAIKeyHint
	}
	personality := cb.Personality
	if personality == nil {
		personality = map[string]any{}
	}
	return map[string]any{
		"id": cb.ID, "organization_id": cb.OrganizationID, "name": cb.Name, "slug": cb.Slug,
		"description": cb.Description, "active": cb.Active, "is_public": cb.IsPublic,
		"personality_config": personality, "settings": h.settingsView(cb),
		"chat_widget_config": nullIfNil(cb.ChatWidget), "voice_widget_config": nullIfNil(cb.VoiceWidget),
		"openai_api_key": openaiKey, "api_key_prefix": cb.KeyPrefix,
		"suggestions": nil, "enabled_plugins": nil, "docs_metadata": nil, "managers": nil,
		"migrated_data": false, "v1_chatbot_id": nil, "version_id": nil,
		"created_at": cb.CreatedAt.Format(time.RFC3339Nano), "updated_at": cb.UpdatedAt.Format(time.RFC3339Nano),
	}
}

// v1View is the management API's chatbot object.
type v1View struct {
	ID           string         `json:"id"`
	Name         string         `json:"name"`
	APIKeyPrefix string         `json:"api_key_prefix"`
	Settings     map[string]any `json:"settings"`
	CreatedAt    string         `json:"created_at"`
}

func (h *Handlers) v1View(cb *store.Chatbot) v1View {
	return v1View{ID: cb.ID, Name: cb.Name, APIKeyPrefix: cb.KeyPrefix, Settings: h.settingsView(cb),
		CreatedAt: cb.CreatedAt.Format(time.RFC3339Nano)}
}

// ---- okchat's external API

// ListChatbots is GET /api/external/chatbots.
func (h *Handlers) ListChatbots(c echo.Context) error {
	list, err := h.store.ListChatbots(c.Request().Context(), api.OrgOf(c).ID)
	if err != nil {
		return err
	}
	out := make([]map[string]any, 0, len(list))
	for _, cb := range list {
		out = append(out, h.View(cb))
	}
	return c.JSON(http.StatusOK, map[string]any{"chatbots": out})
}

// CreateChatbot is POST /api/external/chatbots.
func (h *Handlers) CreateChatbot(c echo.Context) error {
	body, err := readObject(c)
	if err != nil {
		return err
	}
	cb, _, err := h.Create(c.Request().Context(), api.OrgOf(c), body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, map[string]any{"chatbot": h.View(cb), "message": "Chatbot created successfully"})
}

// GetChatbot is GET /api/external/chatbot/{chatbotId}.
func (h *Handlers) GetChatbot(c echo.Context) error {
	return c.JSON(http.StatusOK, map[string]any{"chatbot": h.View(api.ChatbotOf(c))})
}

// UpdateChatbot is PATCH /api/external/chatbot/{chatbotId}, and PATCH
// /api/external/chatbots, whose chatbot is named by ?id= or the body's id
// (okchat's route has no id in the path).
func (h *Handlers) UpdateChatbot(c echo.Context) error {
	body, err := readObject(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	var cb *store.Chatbot
	if c.Param("chatbotId") != "" {
		cb = api.ChatbotOf(c)
	} else {
		id := c.QueryParam("id")
		if id == "" {
			for _, k := range []string{"id", "chatbotId"} {
				if s, ok := body[k].(string); ok && s != "" {
					id = s
					break
				}
			}
		}
		if id == "" {
			return wagate.Invalid("id", "required: name the chatbot by ?id= or the body's id")
		}
		if cb, err = h.store.Chatbot(ctx, api.OrgOf(c).ID, id); err != nil {
			return err
		}
	}
	if err := h.Update(ctx, cb, body); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"chatbot": h.View(cb), "message": "Chatbot updated successfully"})
}

// Delete deletes cb with everything that belongs to it.
func (h *Handlers) Delete(ctx context.Context, cb *store.Chatbot) error {
	if err := h.store.DeleteChatbot(ctx, cb.OrganizationID, cb.ID); err != nil {
		return err
	}
	if h.kb != nil {
		h.kb.Forget(cb.ID)
	}
	h.log.Info("chatbot deleted", "organization", cb.OrganizationID, "chatbot", cb.ID)
	return nil
}

// DeleteChatbot is DELETE /api/external/chatbot/{chatbotId}.
func (h *Handlers) DeleteChatbot(c echo.Context) error {
	cb := api.ChatbotOf(c)
	if err := h.Delete(c.Request().Context(), cb); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"chatbot": map[string]string{"id": cb.ID}, "message": "Chatbot deleted successfully"})
}

// ---- the management API

// V1ListChatbots is GET /api/v1/chatbots.
func (h *Handlers) V1ListChatbots(c echo.Context) error {
	list, err := h.store.ListChatbots(c.Request().Context(), api.OrgOf(c).ID)
	if err != nil {
		return err
	}
	out := make([]v1View, 0, len(list))
	for _, cb := range list {
		out = append(out, h.v1View(cb))
	}
	return c.JSON(http.StatusOK, out)
}

// v1Body keeps to the management API's fields: name and settings.
func v1Body(c echo.Context) (map[string]any, error) {
	body, err := readObject(c)
	if err != nil {
		return nil, err
	}
	var p wagate.Problems
	for k := range body {
		if k != "name" && k != "settings" {
			p.Add(k, "unknown field; the management API takes name and settings")
		}
	}
	slices.Sort(p)
	return body, p.Err()
}

// V1CreateChatbot is POST /api/v1/chatbots; the key is in the answer only.
func (h *Handlers) V1CreateChatbot(c echo.Context) error {
	body, err := v1Body(c)
	if err != nil {
		return err
	}
	cb, key, err := h.Create(c.Request().Context(), api.OrgOf(c), body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "chatbot": h.v1View(cb), "apiKey": key})
}

// V1GetChatbot is GET /api/v1/chatbots/{id}.
func (h *Handlers) V1GetChatbot(c echo.Context) error {
	return c.JSON(http.StatusOK, h.v1View(api.ChatbotOf(c)))
}

// V1UpdateChatbot is PATCH /api/v1/chatbots/{id}: settings deep-merged.
func (h *Handlers) V1UpdateChatbot(c echo.Context) error {
	body, err := v1Body(c)
	if err != nil {
		return err
	}
	cb := api.ChatbotOf(c)
	if err := h.Update(c.Request().Context(), cb, body); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, h.v1View(cb))
}

// V1DeleteChatbot is DELETE /api/v1/chatbots/{id}.
func (h *Handlers) V1DeleteChatbot(c echo.Context) error {
	if err := h.Delete(c.Request().Context(), api.ChatbotOf(c)); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"ok": true})
}

// RotateKey gives cb a new key and returns it; the old key stops working
// with the commit.
func (h *Handlers) RotateKey(ctx context.Context, cb *store.Chatbot) (string, error) {
	key := newKey()
	if err := h.store.SetChatbotKey(ctx, cb.OrganizationID, cb.ID, api.HashKey(key), keyPrefix(key)); err != nil {
		return "", err
	}
	cb.KeyHash, cb.KeyPrefix = api.HashKey(key), keyPrefix(key)
	h.log.Info("chatbot key rotated", "organization", cb.OrganizationID, "chatbot", cb.ID, "key_prefix", cb.KeyPrefix)
	return key, nil
}

// V1RotateKey is POST /api/v1/chatbots/{id}/rotate-key.
func (h *Handlers) V1RotateKey(c echo.Context) error {
	cb := api.ChatbotOf(c)
	key, err := h.RotateKey(c.Request().Context(), cb)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"ok": true, "chatbot": h.v1View(cb), "apiKey": key})
}
