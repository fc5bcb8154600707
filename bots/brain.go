package bots

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
)

// brain is what one turn answers with: the system prompts, the model, the
// credentials and the tools. A bot carries its own, or takes them from its chatbot
// at the time of each message, so a change to the chatbot applies to the
// next message of every bot that answers as it.
type brain struct {
	system  []string
	model   string
	creds   *store.Creds
	chatbot *store.Chatbot // nil for a bot with a brain of its own

	// tools are the function definitions offered to the model, as stored
	// (the chat completions form); calls are posted to functionURL.
	// toolsOf is the chatbot that defined them, nil for a bot's own.
	tools       json.RawMessage
	functionURL string
	toolsOf     *store.Chatbot
}

// brainFor resolves b's brain for the next turn.
func (c *chat) brainFor(ctx context.Context, b *bot) (*brain, error) {
	if b.ChatbotID == "" {
		creds, err := c.e.credsFor(ctx, c.cfg, b.eff.CredsID)
		if err != nil {
			return nil, err
		}
		return &brain{system: b.Prompts.System, model: b.Model, creds: creds, tools: b.Tools, functionURL: b.FunctionURL}, nil
	}
	cb, err := c.e.chatbotFor(ctx, c.cfg, b.ChatbotID)
	if err != nil {
		return nil, err
	}
	br := &brain{system: b.Prompts.System, model: b.Model, chatbot: cb}
	if prompt := chatbotPrompt(cb); prompt != "" {
		br.system = []string{prompt}
	}
	if m := strings.TrimSpace(cb.Setting("model")); m != "" {
		br.model = m
	}
	if br.model == "" {
		return nil, wagate.Errorf(wagate.EUNPROCESSABLE, "chatbot %s: no model: its settings.model is empty and the bot names none", cb.ID)
	}
	if br.creds, err = c.chatbotCreds(ctx, b, cb); err != nil {
		return nil, err
	}
	// The tools belong to the brain: a bot answering as a chatbot calls the
	// chatbot's, and none while the chatbot has them switched off.
	if on, _ := cb.Settings["isToolEnabled"].(bool); on {
		if tools, ok := cb.Settings["tools"].([]any); ok && len(tools) > 0 {
			if br.tools, err = json.Marshal(tools); err != nil {
				return nil, fmt.Errorf("chatbot %s tools: %w", cb.ID, err)
			}
			br.functionURL, br.toolsOf = strings.TrimSpace(cb.Setting("functionUrl")), cb
		}
	}
	return br, nil
}

// chatbotPrompt is the chatbot's system prompt: settings.prompt, then its
// personality as instructions.
func chatbotPrompt(cb *store.Chatbot) string {
	var parts []string
	if p := strings.TrimSpace(cb.Setting("prompt")); p != "" {
		parts = append(parts, p)
	}
	var traits []string
	for _, t := range []struct{ key, label string }{{"tone", "Tone"}, {"style", "Style"}} {
		if v, _ := cb.Personality[t.key].(string); strings.TrimSpace(v) != "" {
			traits = append(traits, "- "+t.label+": "+strings.TrimSpace(v))
		}
	}
	if len(traits) > 0 {
		parts = append(parts, "Answer with this personality:\n"+strings.Join(traits, "\n"))
	}
	return strings.Join(parts, "\n\n")
}

// chatbotCreds picks the credentials a chatbot's turn uses: those its
// settings name, else its own provider key, else the organization's
// default, else the bot's usual ones. None at all is an error, so that the
// turn fails where operators see it instead of going nowhere.
func (c *chat) chatbotCreds(ctx context.Context, b *bot, cb *store.Chatbot) (*store.Creds, error) {
	orgID := c.inst.OrganizationID
	switch {
	case cb.CredsID != "":
		return c.e.cachedCreds(ctx, c.cfg, "org:"+cb.CredsID, func(ctx context.Context) (*store.Creds, error) {
			return c.e.store.OrgCreds(ctx, orgID, cb.CredsID)
		})
	case cb.OpenAIKey != "":
		// A key of the chatbot's own, at the gateway's default base URL.
		return &store.Creds{ID: "chatbot:" + cb.ID, OrganizationID: cb.OrganizationID, Name: "chatbot " + cb.Name,
			APIKey: cb.OpenAIKey}, nil
	}
	def, err := c.e.cachedCreds(ctx, c.cfg, "org-default", func(ctx context.Context) (*store.Creds, error) {
		def, err := c.e.store.DefaultCreds(ctx, orgID)
		if wagate.ErrorCode(err) == wagate.ENOTFOUND {
			return &store.Creds{}, nil // none: remembered as such
		}
		return def, err
	})
	switch {
	case err != nil:
		return nil, err
	case def.ID != "":
		return def, nil
	case b.eff.CredsID != "":
		return c.e.credsFor(ctx, c.cfg, b.eff.CredsID)
	}
	return nil, wagate.Errorf(wagate.EUNPROCESSABLE, "chatbot %s: no credentials: it names none (settings.openaiCredsId) "+
		"and has no key of its own, its organization has no default credentials, and neither the bot nor the "+
		"instance settings name any", cb.ID)
}
