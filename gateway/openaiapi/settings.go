package openaiapi

import (
	"context"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/store"
)

// Bounds of behaviour fields, in Evolution's units.
const (
	maxExpire       = 525600 // minutes: a year
	maxDebounce     = 300    // seconds
	maxDelayMessage = 300000 // ms
	maxTimePerChar  = 1000   // ms per character
	maxShortText    = 100
	maxMessageText  = 4096
	maxJIDs         = 10000
)

// checkBehaviour reports every set field that is out of bounds.
func checkBehaviour(b store.Behaviour, p *wagate.Problems) {
	between := func(field string, v *int, max int, unit string) {
		if v != nil && (*v < 0 || *v > max) {
			p.Add(field, fmt.Sprintf("must be from 0 to %d %s", max, unit))
		}
	}
	between("expire", b.Expire, maxExpire, "minutes")
	between("pauseMinutes", b.PauseMinutes, maxExpire, "minutes")
	between("debounceTime", b.DebounceTime, maxDebounce, "seconds")
	between("delayMessage", b.DelayMessage, maxDelayMessage, "milliseconds")
	between("timePerChar", b.TimePerChar, maxTimePerChar, "milliseconds per character")
	if b.KeywordFinish != nil && len(*b.KeywordFinish) > maxShortText {
		p.Add("keywordFinish", fmt.Sprintf("longer than %d characters", maxShortText))
	}
	if b.UnknownMessage != nil && len(*b.UnknownMessage) > maxMessageText {
		p.Add("unknownMessage", fmt.Sprintf("longer than %d characters", maxMessageText))
	}
	if b.GroupMode != nil && !slices.Contains(bots.GroupModes, *b.GroupMode) {
		p.Add("groupMode", "must be one of "+strings.Join(bots.GroupModes, ", "))
	}
}

// ignoreJIDPattern is what an ignoreJids entry may be: a WhatsApp JID, or
// a server alone ("@g.us") to ignore every chat on it.
var ignoreJIDPattern = regexp.MustCompile(`^[0-9A-Za-z._:-]*@(s\.whatsapp\.net|g\.us|lid|broadcast|newsletter|c\.us)$`)

func checkJIDs(field string, jids []string, p *wagate.Problems) []string {
	if len(jids) > maxJIDs {
		p.Add(field, fmt.Sprintf("more than %d entries", maxJIDs))
		return nil
	}
	out := []string{}
	for i, j := range jids {
		j = strings.TrimSpace(j)
		if len(j) > 256 || !ignoreJIDPattern.MatchString(j) {
			p.Add(fmt.Sprintf("%s[%d]", field, i), `must be a JID, "@g.us", "@s.whatsapp.net" or "@lid"`)
			continue
		}
		if !slices.Contains(out, j) {
			out = append(out, j)
		}
	}
	return out
}

// openAISettings returns the instance's saved settings, or the defaults.
func (h *Handlers) openAISettings(ctx context.Context, inst *store.Instance) (*store.OpenAISettings, error) {
	st, err := h.store.OpenAISettings(ctx, inst.ID)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		return bots.DefaultSettings(inst.ID), nil
	}
	if err != nil {
		return nil, err
	}
	// Settings saved before a field existed get its default.
	st.Behaviour = bots.Inherit(st.Behaviour, bots.DefaultBehaviour())
	return st, nil
}

type settingsRequest struct {
	store.Behaviour
	IgnoreJids                []string `json:"ignoreJids"`
	OpenaiCredsID             string   `json:"openaiCredsId"`
	OpenaiIDFallback          *string  `json:"openaiIdFallback"`
	FallbackID                *string  `json:"fallbackId"` // Evolution's other name for it
	TranscriptionErrorMessage *string  `json:"transcriptionErrorMessage"`
}

// SettingsView is an instance's bot settings as /openai/fetchSettings
// answers them.
type SettingsView struct {
	store.Behaviour
	IgnoreJids                []string   `json:"ignoreJids"`
	OpenaiCredsID             *string    `json:"openaiCredsId"`
	OpenaiIDFallback          *string    `json:"openaiIdFallback"`
	FallbackID                *string    `json:"fallbackId"`
	TranscriptionErrorMessage string     `json:"transcriptionErrorMessage"`
	CreatedAt                 *time.Time `json:"createdAt,omitempty"`
	UpdatedAt                 *time.Time `json:"updatedAt,omitempty"`
	Fallback                  *BotView   `json:"fallback,omitempty"`
}

func viewSettings(st *store.OpenAISettings) SettingsView {
	v := SettingsView{Behaviour: st.Behaviour, IgnoreJids: st.IgnoreJids, TranscriptionErrorMessage: st.TranscriptionErrorMessage}
	if st.CredsID != "" {
		v.OpenaiCredsID = &st.CredsID
	}
	if st.FallbackID != "" {
		v.OpenaiIDFallback, v.FallbackID = &st.FallbackID, &st.FallbackID
	}
	if !st.CreatedAt.IsZero() {
		v.CreatedAt, v.UpdatedAt = &st.CreatedAt, &st.UpdatedAt
	}
	if v.IgnoreJids == nil {
		v.IgnoreJids = []string{}
	}
	return v
}

// SaveSettings replaces the instance's settings; fields left out take their
// defaults. Settings may exist without credentials.
func (h *Handlers) SaveSettings(c echo.Context) error {
	var req settingsRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	v, err := h.saveSettings(c.Request().Context(), api.InstanceOf(c), &req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (h *Handlers) saveSettings(ctx context.Context, inst *store.Instance, req *settingsRequest) (SettingsView, error) {
	var p wagate.Problems
	checkBehaviour(req.Behaviour, &p)
	st := bots.DefaultSettings(inst.ID)
	st.Behaviour = bots.Inherit(req.Behaviour, st.Behaviour)
	st.IgnoreJids = checkJIDs("ignoreJids", req.IgnoreJids, &p)
	if req.TranscriptionErrorMessage != nil {
		if len(*req.TranscriptionErrorMessage) > maxMessageText {
			p.Add("transcriptionErrorMessage", fmt.Sprintf("longer than %d characters", maxMessageText))
		}
		st.TranscriptionErrorMessage = *req.TranscriptionErrorMessage
	}
	fallback := req.OpenaiIDFallback
	if req.FallbackID != nil {
		if fallback != nil && *fallback != *req.FallbackID {
			p.Add("fallbackId", "differs from openaiIdFallback; send one of them")
		}
		fallback = req.FallbackID
	}
	if err := p.Err(); err != nil {
		return SettingsView{}, err
	}
	err := h.store.DoTxn(ctx, func(ctx context.Context) error {
		if req.OpenaiCredsID != "" {
			if _, err := h.credsFor(ctx, inst, req.OpenaiCredsID); err != nil {
				return err
			}
			st.CredsID = req.OpenaiCredsID
		} else if err := h.checkNoBotInheritsCreds(ctx, inst); err != nil {
			return err
		}
		if fallback != nil && *fallback != "" {
			if _, err := h.store.Bot(ctx, inst.ID, *fallback); wagate.ErrorCode(err) == wagate.ENOTFOUND {
				return wagate.Invalid("openaiIdFallback", "no bot with this id in this instance")
			} else if err != nil {
				return err
			}
			st.FallbackID = *fallback
		}
		now := stamp()
		st.CreatedAt, st.UpdatedAt = now, now
		if old, err := h.store.OpenAISettings(ctx, inst.ID); err == nil {
			st.CreatedAt = old.CreatedAt
		}
		return h.store.PutOpenAISettings(ctx, st)
	})
	if err != nil {
		return SettingsView{}, err
	}
	return viewSettings(st), nil
}

// FetchSettings returns the settings (the defaults when never saved) with
// the fallback bot.
func (h *Handlers) FetchSettings(c echo.Context) error {
	v, err := h.fetchSettings(c.Request().Context(), api.InstanceOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, v)
}

func (h *Handlers) fetchSettings(ctx context.Context, inst *store.Instance) (SettingsView, error) {
	st, err := h.openAISettings(ctx, inst)
	if err != nil {
		return SettingsView{}, err
	}
	v := viewSettings(st)
	if st.FallbackID != "" {
		b, err := h.store.Bot(ctx, inst.ID, st.FallbackID)
		if err != nil {
			return SettingsView{}, err
		}
		bv := viewBot(b)
		v.Fallback = &bv
	}
	return v, nil
}

// IgnoreJid adds a JID to, or removes it from, the settings' ignore list,
// saving default settings first if there were none.
func (h *Handlers) IgnoreJid(c echo.Context) error {
	var req struct {
		RemoteJID string `json:"remoteJid"`
		Action    string `json:"action"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	jid := checkJIDs("remoteJid", []string{req.RemoteJID}, &p)
	if len(p) > 0 {
		p = wagate.Problems{"remoteJid: must be a JID, \"@g.us\", \"@s.whatsapp.net\" or \"@lid\""}
	}
	if req.Action != "add" && req.Action != "remove" {
		p.Add("action", `must be "add" or "remove"`)
	}
	if err := p.Err(); err != nil {
		return err
	}
	inst := api.InstanceOf(c)
	var st *store.OpenAISettings
	err := h.store.DoTxn(c.Request().Context(), func(ctx context.Context) error {
		var err error
		if st, err = h.openAISettings(ctx, inst); err != nil {
			return err
		}
		switch i := slices.Index(st.IgnoreJids, jid[0]); {
		case req.Action == "add" && i < 0:
			st.IgnoreJids = append(st.IgnoreJids, jid[0])
		case req.Action == "remove" && i >= 0:
			st.IgnoreJids = slices.Delete(st.IgnoreJids, i, i+1)
		}
		now := stamp()
		if st.CreatedAt.IsZero() {
			st.CreatedAt = now
		}
		st.UpdatedAt = now
		return h.store.PutOpenAISettings(ctx, st)
	})
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"ignoreJids": st.IgnoreJids})
}

// checkNoBotInheritsCreds refuses settings without default credentials
// while bots rely on them.
func (h *Handlers) checkNoBotInheritsCreds(ctx context.Context, inst *store.Instance) error {
	list, err := h.store.ListBots(ctx, inst.ID)
	if err != nil {
		return err
	}
	var users []string
	for _, b := range list {
		if b.CredsID == "" {
			users = append(users, "bot "+b.ID)
		}
	}
	if len(users) > 0 {
		return wagate.FieldError(wagate.ECONFLICT, "openaiCredsId", "required: "+strings.Join(users, ", ")+" use the default credentials")
	}
	return nil
}
