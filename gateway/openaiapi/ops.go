package openaiapi

import (
	"context"
	"encoding/json"

	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/store"
)

// Operations for the web console. Each takes the body its route takes,
// decodes it with the route's decoder and runs the route's operation, and
// answers the JSON the route answers: a console form turned into that body
// is held to the same rules, with problems under the same field names.

// FindBotsJSON is GET /openai/find/{instance}.
func (h *Handlers) FindBotsJSON(ctx context.Context, inst *store.Instance) ([]byte, error) {
	return marshal(h.findBots(ctx, inst))
}

// FetchBotJSON is GET /openai/fetch/{botId}/{instance}.
func (h *Handlers) FetchBotJSON(ctx context.Context, inst *store.Instance, id string) ([]byte, error) {
	return marshal(h.fetchBot(ctx, inst, id))
}

// CreateBotJSON is POST /openai/create/{instance}.
func (h *Handlers) CreateBotJSON(ctx context.Context, inst *store.Instance, body []byte) ([]byte, error) {
	var req botBody
	if err := api.DecodeBytes(body, &req, true); err != nil {
		return nil, err
	}
	b, err := h.createBot(ctx, inst, &req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(viewBot(b))
}

// PatchBotJSON is PATCH /openai/update/{botId}/{instance}: body is a JSON
// merge patch, null resetting a field to inherit.
func (h *Handlers) PatchBotJSON(ctx context.Context, inst *store.Instance, id string, body []byte) ([]byte, error) {
	var patch map[string]any
	if err := api.DecodeBytes(body, &patch, false); err != nil {
		return nil, err
	}
	b, err := h.updateBot(ctx, inst, id, patch, &botBody{})
	if err != nil {
		return nil, err
	}
	return json.Marshal(viewBot(b))
}

// DeleteBotOp is DELETE /openai/delete/{botId}/{instance}.
func (h *Handlers) DeleteBotOp(ctx context.Context, inst *store.Instance, id string) error {
	return h.deleteBot(ctx, inst, id)
}

// FetchSettingsJSON is GET /openai/fetchSettings/{instance}.
func (h *Handlers) FetchSettingsJSON(ctx context.Context, inst *store.Instance) ([]byte, error) {
	return marshal(h.fetchSettings(ctx, inst))
}

// SaveSettingsJSON is POST /openai/settings/{instance}.
func (h *Handlers) SaveSettingsJSON(ctx context.Context, inst *store.Instance, body []byte) ([]byte, error) {
	var req settingsRequest
	if err := api.DecodeBytes(body, &req, true); err != nil {
		return nil, err
	}
	return marshal(h.saveSettings(ctx, inst, &req))
}

// ListCredsJSON is GET /openai/creds/{instance}.
func (h *Handlers) ListCredsJSON(ctx context.Context, inst *store.Instance) ([]byte, error) {
	return marshal(h.listCreds(ctx, inst))
}

// CreateCredsJSON is POST /openai/creds/{instance}.
func (h *Handlers) CreateCredsJSON(ctx context.Context, inst *store.Instance, body []byte) ([]byte, error) {
	var req credsRequest
	if err := api.DecodeBytes(body, &req, true); err != nil {
		return nil, err
	}
	return marshal(h.createCreds(ctx, inst, &req))
}

func marshal[T any](v T, err error) ([]byte, error) {
	if err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
