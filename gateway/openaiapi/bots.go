package openaiapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// botFields is a bot as the API reads and writes it: Evolution's body plus
// priority, groupMode, pauseMinutes, speechToText, tools and chatbotId.
// Behaviour fields left null inherit the instance settings.
type botFields struct {
	Enabled           *bool           `json:"enabled"`
	Description       string          `json:"description"`
	OpenaiCredsID     *string         `json:"openaiCredsId"`
	ChatbotID         *string         `json:"chatbotId"`
	BotType           string          `json:"botType"`
	AssistantID       string          `json:"assistantId"`
	FunctionURL       string          `json:"functionUrl"`
	Model             string          `json:"model"`
	SystemMessages    []string        `json:"systemMessages"`
	AssistantMessages []string        `json:"assistantMessages"`
	UserMessages      []string        `json:"userMessages"`
	MaxTokens         *int            `json:"maxTokens"`
	TriggerType       string          `json:"triggerType"`
	TriggerOperator   string          `json:"triggerOperator"`
	TriggerValue      string          `json:"triggerValue"`
	Priority          int             `json:"priority"`
	IgnoreJids        []string        `json:"ignoreJids"`
	Tools             json.RawMessage `json:"tools"`
	store.Behaviour
}

// BotView is a bot as the /openai routes answer it; the console reads
// those answers into it.
type BotView struct {
	ID string `json:"id"`
	botFields
	CreatedAt time.Time       `json:"createdAt"`
	UpdatedAt time.Time       `json:"updatedAt"`
	Effective *bots.Effective `json:"effective,omitempty"`
}

func viewBot(b *store.Bot) BotView {
	f := botFields{
		Enabled: &b.Enabled, Description: b.Description, BotType: b.BotType, AssistantID: b.AssistantID,
		FunctionURL: b.FunctionURL, Model: b.Model, MaxTokens: b.MaxTokens,
		SystemMessages: nonNil(b.Prompts.System), AssistantMessages: nonNil(b.Prompts.Assistant), UserMessages: nonNil(b.Prompts.User),
		TriggerType: b.TriggerType, TriggerOperator: b.TriggerOperator, TriggerValue: b.TriggerValue,
		Priority: b.Priority, IgnoreJids: nonNil(b.IgnoreJids), Tools: b.Tools, Behaviour: b.Behaviour,
	}
	if b.CredsID != "" {
		f.OpenaiCredsID = &b.CredsID
	}
	if b.ChatbotID != "" {
		f.ChatbotID = &b.ChatbotID
	}
	if len(f.Tools) == 0 {
		f.Tools = json.RawMessage("[]")
	}
	return BotView{ID: b.ID, botFields: f, CreatedAt: b.CreatedAt, UpdatedAt: b.UpdatedAt}
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

const (
	maxPriority   = 1_000_000
	maxMaxTokens  = 1_000_000
	maxPrompts    = 100
	maxPromptText = 100_000
)

// toBot validates f and returns the bot it describes, with id and times
// left to the caller. Every problem is reported, each naming its field.
func (h *Handlers) toBot(ctx context.Context, inst *store.Instance, f *botFields) (*store.Bot, error) {
	var p wagate.Problems
	b := &store.Bot{
		InstanceID:      inst.ID,
		Enabled:         f.Enabled == nil || *f.Enabled,
		Description:     strings.TrimSpace(f.Description),
		BotType:         f.BotType,
		FunctionURL:     strings.TrimSpace(f.FunctionURL),
		Model:           strings.TrimSpace(f.Model),
		Prompts:         store.Prompts{System: f.SystemMessages, Assistant: f.AssistantMessages, User: f.UserMessages},
		TriggerType:     f.TriggerType,
		TriggerOperator: f.TriggerOperator,
		TriggerValue:    f.TriggerValue,
		Priority:        f.Priority,
		Behaviour:       f.Behaviour,
		Tools:           json.RawMessage("[]"),
	}
	if len(b.Description) > 255 {
		p.Add("description", "longer than 255 characters")
	}
	if len(b.Model) > 100 {
		p.Add("model", "longer than 100 characters")
	}
	if f.ChatbotID != nil {
		b.ChatbotID = strings.TrimSpace(*f.ChatbotID)
	}
	switch f.BotType {
	case "":
		p.Add("botType", `required: "chatCompletion" or "assistant"`)
		if b.Model == "" && b.ChatbotID == "" {
			p.Add("model", "required for chatCompletion bots without a chatbotId")
		}
	case bots.ChatCompletion:
		// A bot that answers as a chatbot takes the chatbot's model.
		if b.Model == "" && b.ChatbotID == "" {
			p.Add("model", "required for chatCompletion bots without a chatbotId")
		}
	case bots.Assistant:
		if b.ChatbotID != "" {
			// The stored prompt is an assistant bot's brain; it cannot
			// have a chatbot's as well.
			p.Add("chatbotId", "only for chatCompletion bots")
		}
		switch id := strings.TrimSpace(f.AssistantID); {
		case id == "":
			p.Add("assistantId", "required for assistant bots: the id of a stored prompt (pmpt_…)")
		case strings.HasPrefix(id, "asst_"):
			p.Add("assistantId", "OpenAI retired the Assistants API on 2026-08-26; assistant bots now take a stored prompt id (pmpt_…), used through the Responses API")
		case !strings.HasPrefix(id, "pmpt_") || len(id) > 255:
			p.Add("assistantId", "must be a stored prompt id (pmpt_…)")
		default:
			b.AssistantID = id
		}
	default:
		p.Add("botType", `must be "chatCompletion" or "assistant"`)
	}
	if f.MaxTokens != nil {
		switch n := *f.MaxTokens; {
		case n < 0 || n > maxMaxTokens:
			p.Add("maxTokens", fmt.Sprintf("must be from 0 to %d", maxMaxTokens))
		case n > 0:
			b.MaxTokens = &n
		}
	}
	if b.FunctionURL != "" {
		if u, err := url.Parse(b.FunctionURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("functionUrl", "must be an absolute http or https URL")
		}
	}
	for field, list := range map[string][]string{"systemMessages": f.SystemMessages, "assistantMessages": f.AssistantMessages, "userMessages": f.UserMessages} {
		if len(list) > maxPrompts {
			p.Add(field, fmt.Sprintf("more than %d messages", maxPrompts))
		}
		for i, m := range list {
			if len(m) > maxPromptText {
				p.Add(fmt.Sprintf("%s[%d]", field, i), fmt.Sprintf("longer than %d characters", maxPromptText))
			}
		}
	}
	if f.TriggerType == "" {
		p.Add("triggerType", "required: one of "+strings.Join(bots.TriggerTypes, ", "))
	} else if _, err := bots.CompileTrigger(f.TriggerType, f.TriggerOperator, f.TriggerValue); err != nil {
		p = append(p, wagate.ErrorMessages(err)...)
	} else if f.TriggerType != bots.TriggerKeyword {
		b.TriggerOperator = "" // operators belong to keyword triggers; Evolution clients send leftovers
		if f.TriggerType != bots.TriggerAdvanced {
			b.TriggerValue = ""
		}
	}
	if f.Priority < -maxPriority || f.Priority > maxPriority {
		p.Add("priority", fmt.Sprintf("must be from %d to %d", -maxPriority, maxPriority))
	}
	b.IgnoreJids = checkJIDs("ignoreJids", f.IgnoreJids, &p)
	checkBehaviour(f.Behaviour, &p)
	if tools, ok := api.CheckTools("tools", f.Tools, &p); ok && tools != nil {
		switch {
		case f.BotType == bots.Assistant:
			p.Add("tools", "only for chatCompletion bots; an assistant bot's stored prompt defines its tools")
		case b.FunctionURL == "":
			p.Add("functionUrl", "required when tools are defined: tool calls are posted there")
		}
		b.Tools = tools
	}
	if f.OpenaiCredsID != nil {
		b.CredsID = strings.TrimSpace(*f.OpenaiCredsID)
	}
	// The checks that need the database come last, into the same answer.
	if b.ChatbotID != "" {
		// Resolved inside the instance's organization only: another
		// organization's chatbot is as unknown as a missing one.
		if _, err := h.store.Chatbot(ctx, inst.OrganizationID, b.ChatbotID); wagate.ErrorCode(err) == wagate.ENOTFOUND {
			p.Add("chatbotId", "no chatbot with this id in the instance's organization")
		} else if err != nil {
			return nil, err
		}
	}
	// A chatbot brings its credentials (or its organization's default);
	// the bot's own are a fallback, checked only if named.
	if b.ChatbotID == "" || b.CredsID != "" {
		if _, err := h.credsFor(ctx, inst, b.CredsID); wagate.ErrorCode(err) == wagate.EINVALID {
			p = append(p, wagate.ErrorMessages(err)...)
		} else if err != nil {
			return nil, err
		}
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	return b, nil
}

// botBody is what create and update read: the bot's fields, and the
// read-only ones of a fetched bot, which Evolution clients send back whole.
type botBody struct {
	botFields
	botReadOnly
}

// botReadOnly are the fields fetch shows that no request can change. A
// client that fetches a bot, edits it and sends it back (as Evolution
// clients do) sends them unchanged: they are accepted when they equal the
// stored bot's, and refused when they differ, so that nobody believes an
// id or a time was changed. On create there is no stored bot: they are
// refused.
type botReadOnly struct {
	ID         json.RawMessage `json:"id"`
	InstanceID json.RawMessage `json:"instanceId"`
	CreatedAt  json.RawMessage `json:"createdAt"`
	UpdatedAt  json.RawMessage `json:"updatedAt"`
	Effective  json.RawMessage `json:"effective"`
}

// check reports every read-only field sent that differs from old, the bot
// as stored (nil on create) whose effective values are eff.
func (ro *botReadOnly) check(inst *store.Instance, old *store.Bot, eff *bots.Effective, p *wagate.Problems) {
	sent := func(raw json.RawMessage) bool { t := bytes.TrimSpace(raw); return len(t) > 0 && string(t) != "null" }
	fields := []struct {
		name string
		raw  json.RawMessage
		same func(json.RawMessage) bool
	}{
		{"id", ro.ID, func(raw json.RawMessage) bool { return sameString(raw, old.ID) }},
		{"instanceId", ro.InstanceID, func(raw json.RawMessage) bool { return sameString(raw, inst.ID) }},
		{"createdAt", ro.CreatedAt, func(raw json.RawMessage) bool { return sameTime(raw, old.CreatedAt) }},
		{"updatedAt", ro.UpdatedAt, func(raw json.RawMessage) bool { return sameTime(raw, old.UpdatedAt) }},
		{"effective", ro.Effective, func(raw json.RawMessage) bool { return sameJSON(raw, eff) }},
	}
	for _, f := range fields {
		switch {
		case !sent(f.raw):
		case old == nil:
			p.Add(f.name, "read-only: set by wagate; leave it out")
		case !f.same(f.raw):
			p.Add(f.name, "read-only: must be left out or equal the stored bot's")
		}
	}
}

func sameString(raw json.RawMessage, want string) bool {
	var s string
	return json.Unmarshal(raw, &s) == nil && s == want
}

func sameTime(raw json.RawMessage, want time.Time) bool {
	var t time.Time
	return json.Unmarshal(raw, &t) == nil && t.Equal(want)
}

// sameJSON reports whether raw is want as JSON, whatever its layout.
func sameJSON(raw json.RawMessage, want any) bool {
	enc, err := json.Marshal(want)
	if err != nil {
		return false
	}
	var a, b any
	return json.Unmarshal(raw, &a) == nil && json.Unmarshal(enc, &b) == nil && reflect.DeepEqual(a, b)
}

// CreateBot is POST /openai/create/{instance}.
func (h *Handlers) CreateBot(c echo.Context) error {
	var body botBody
	if err := api.Decode(c, &body, true); err != nil {
		return err
	}
	b, err := h.createBot(c.Request().Context(), api.InstanceOf(c), &body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, viewBot(b))
}

func (h *Handlers) createBot(ctx context.Context, inst *store.Instance, body *botBody) (*store.Bot, error) {
	f := body.botFields
	var p wagate.Problems
	body.botReadOnly.check(inst, nil, nil, &p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	b, err := h.toBot(ctx, inst, &f)
	if err != nil {
		return nil, err
	}
	now := stamp()
	b.ID, b.CreatedAt, b.UpdatedAt = store.NewID(), now, now
	if err := h.store.CreateBot(ctx, b); err != nil {
		return nil, err
	}
	h.log.Info("bot created", "instance", inst.Name, "bot", b.ID, "type", b.BotType)
	return b, nil
}

// FindBots is GET /openai/find/{instance}: the instance's bots.
func (h *Handlers) FindBots(c echo.Context) error {
	out, err := h.findBots(c.Request().Context(), api.InstanceOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (h *Handlers) findBots(ctx context.Context, inst *store.Instance) ([]BotView, error) {
	list, err := h.store.ListBots(ctx, inst.ID)
	if err != nil {
		return nil, err
	}
	out := make([]BotView, 0, len(list))
	for _, b := range list {
		out = append(out, viewBot(b))
	}
	return out, nil
}

// FetchBot returns the stored bot and, under "effective", the values that
// would apply to its next message.
func (h *Handlers) FetchBot(c echo.Context) error {
	v, err := h.fetchBot(c.Request().Context(), api.InstanceOf(c), c.Param("botId"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (h *Handlers) fetchBot(ctx context.Context, inst *store.Instance, id string) (BotView, error) {
	b, err := h.store.Bot(ctx, inst.ID, id)
	if err != nil {
		return BotView{}, err
	}
	settings, err := h.openAISettings(ctx, inst)
	if err != nil {
		return BotView{}, err
	}
	v := viewBot(b)
	eff := bots.EffectiveFor(b, settings)
	v.Effective = &eff
	return v, nil
}

// UpdateBot replaces the bot (PUT, as Evolution clients send the whole
// object) or merges the fields sent into it (PATCH, a JSON merge patch:
// objects merge, null resets a field to inherit).
func (h *Handlers) UpdateBot(c echo.Context) error {
	// The body is read before the transaction: a slow client must not hold
	// the database's write lock.
	var (
		patch map[string]any
		body  botBody
	)
	patching := c.Request().Method == http.MethodPatch
	if patching {
		if err := api.Decode(c, &patch, false); err != nil {
			return err
		}
		// A merge patch that is not an object would replace the whole
		// bot (RFC 7386); decode already refused null, this is a guard.
		if patch == nil {
			return wagate.Invalid("body", "a JSON object is required")
		}
	} else if err := api.Decode(c, &body, true); err != nil {
		return err
	}
	b, err := h.updateBot(c.Request().Context(), api.InstanceOf(c), c.Param("botId"), patch, &body)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, viewBot(b))
}

// updateBot merges patch into the bot when it is not nil, else replaces
// the bot with body.
func (h *Handlers) updateBot(ctx context.Context, inst *store.Instance, id string, patch map[string]any, body *botBody) (*store.Bot, error) {
	var b *store.Bot
	err := h.store.DoTxn(ctx, func(ctx context.Context) error {
		old, err := h.store.Bot(ctx, inst.ID, id)
		if err != nil {
			return err
		}
		if patch != nil {
			merged, err := mergeBot(old, patch)
			if err != nil {
				return err
			}
			body = &merged
		}
		settings, err := h.openAISettings(ctx, inst)
		if err != nil {
			return err
		}
		eff := bots.EffectiveFor(old, settings)
		var p wagate.Problems
		body.botReadOnly.check(inst, old, &eff, &p)
		if err := p.Err(); err != nil {
			return err
		}
		if b, err = h.toBot(ctx, inst, &body.botFields); err != nil {
			return err
		}
		b.ID, b.CreatedAt, b.UpdatedAt = old.ID, old.CreatedAt, stamp()
		return h.store.UpdateBot(ctx, b)
	})
	return b, err
}

// mergeBot applies a merge patch to the bot as the API shows it, and reads
// the result back as strictly as a request body. Read-only fields in the
// patch are kept aside for botReadOnly.check rather than merged.
func mergeBot(old *store.Bot, patch map[string]any) (botBody, error) {
	var body botBody
	readOnly := map[string]*json.RawMessage{"id": &body.ID, "instanceId": &body.InstanceID,
		"createdAt": &body.CreatedAt, "updatedAt": &body.UpdatedAt, "effective": &body.Effective}
	for k, dst := range readOnly {
		if v, ok := patch[k]; ok {
			raw, err := json.Marshal(v)
			if err != nil {
				return body, err
			}
			*dst = raw
			delete(patch, k)
		}
	}
	current, err := json.Marshal(viewBot(old).botFields)
	if err != nil {
		return body, err
	}
	var doc map[string]any
	if err := json.Unmarshal(current, &doc); err != nil {
		return body, err
	}
	merged, err := json.Marshal(api.MergePatch(doc, patch))
	if err != nil {
		return body, err
	}
	dec := json.NewDecoder(bytes.NewReader(merged))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body.botFields); err != nil {
		return body, api.DecodeError(err)
	}
	return body, nil
}

// DeleteBot removes the bot with its sessions and their history, and the
// messages it handled or sent: deleting a bot forgets its conversations.
func (h *Handlers) DeleteBot(c echo.Context) error {
	id := c.Param("botId")
	if err := h.deleteBot(c.Request().Context(), api.InstanceOf(c), id); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"bot": map[string]string{"id": id}})
}

func (h *Handlers) deleteBot(ctx context.Context, inst *store.Instance, id string) error {
	err := h.outbox.Tx(ctx, func(ctx context.Context) error {
		for _, status := range []string{store.SessionOpened, store.SessionPaused} {
			live, err := h.store.ListSessions(ctx, inst.ID, store.SessionFilter{BotID: id, Status: status, Limit: maxJIDs})
			if err != nil {
				return err
			}
			for _, s := range live {
				s.Status = store.SessionClosed
				if err := h.outbox.Emit(ctx, inst, webhook.SessionClosed, sessionEvent(s, ReasonBotDeleted)); err != nil {
					return err
				}
			}
		}
		// Before the bot goes: deleting it would clear the messages' bot_id.
		if _, err := h.store.DeleteBotHistory(ctx, inst.ID, id); err != nil {
			return err
		}
		return h.store.DeleteBot(ctx, inst.ID, id)
	})
	if err != nil {
		return err
	}
	h.log.Info("bot deleted", "instance", inst.Name, "bot", id)
	return nil
}
