package gateway

import (
	"context"

	"github.com/wagate/wagate/gateway/console"
	"github.com/wagate/wagate/store"
)

// The console's bot pages (console.BotOps): the /openai routes'
// operations, on the instance the name resolves to in the organization.

var _ console.BotOps = (*Gateway)(nil)

func (g *Gateway) botInstance(ctx context.Context, org *store.Organization, name string) (*store.Instance, error) {
	return g.orgInstance(ctx, org.ID, name)
}

// Bots is GET /openai/find.
func (g *Gateway) Bots(ctx context.Context, org *store.Organization, name string) ([]byte, error) {
	inst, err := g.botInstance(ctx, org, name)
	if err != nil {
		return nil, err
	}
	return g.openai.FindBotsJSON(ctx, inst)
}

// Bot is GET /openai/fetch, with the effective values.
func (g *Gateway) Bot(ctx context.Context, org *store.Organization, name, id string) ([]byte, error) {
	inst, err := g.botInstance(ctx, org, name)
	if err != nil {
		return nil, err
	}
	return g.openai.FetchBotJSON(ctx, inst, id)
}

// CreateBot is POST /openai/create.
func (g *Gateway) CreateBot(ctx context.Context, org *store.Organization, name string, body []byte) ([]byte, error) {
	inst, err := g.botInstance(ctx, org, name)
	if err != nil {
		return nil, err
	}
	return g.openai.CreateBotJSON(ctx, inst, body)
}

// PatchBot is PATCH /openai/update.
func (g *Gateway) PatchBot(ctx context.Context, org *store.Organization, name, id string, body []byte) ([]byte, error) {
	inst, err := g.botInstance(ctx, org, name)
	if err != nil {
		return nil, err
	}
	return g.openai.PatchBotJSON(ctx, inst, id, body)
}

// DeleteBot is DELETE /openai/delete.
func (g *Gateway) DeleteBot(ctx context.Context, org *store.Organization, name, id string) error {
	inst, err := g.botInstance(ctx, org, name)
	if err != nil {
		return err
	}
	return g.openai.DeleteBotOp(ctx, inst, id)
}

// BotSettings is GET /openai/fetchSettings.
func (g *Gateway) BotSettings(ctx context.Context, org *store.Organization, name string) ([]byte, error) {
	inst, err := g.botInstance(ctx, org, name)
	if err != nil {
		return nil, err
	}
	return g.openai.FetchSettingsJSON(ctx, inst)
}

// SaveBotSettings is POST /openai/settings.
func (g *Gateway) SaveBotSettings(ctx context.Context, org *store.Organization, name string, body []byte) ([]byte, error) {
	inst, err := g.botInstance(ctx, org, name)
	if err != nil {
		return nil, err
	}
	return g.openai.SaveSettingsJSON(ctx, inst, body)
}

// Creds is GET /openai/creds, keys masked.
func (g *Gateway) Creds(ctx context.Context, org *store.Organization, name string) ([]byte, error) {
	inst, err := g.botInstance(ctx, org, name)
	if err != nil {
		return nil, err
	}
	return g.openai.ListCredsJSON(ctx, inst)
}

// DeleteCreds is DELETE /openai/creds/{credsId}/{instance}.
func (g *Gateway) DeleteCreds(ctx context.Context, org *store.Organization, name, id string) error {
	inst, err := g.botInstance(ctx, org, name)
	if err != nil {
		return err
	}
	return g.store.DeleteCreds(ctx, inst.ID, id)
}

// CreateCreds is POST /openai/creds.
func (g *Gateway) CreateCreds(ctx context.Context, org *store.Organization, name string, body []byte) ([]byte, error) {
	inst, err := g.botInstance(ctx, org, name)
	if err != nil {
		return nil, err
	}
	return g.openai.CreateCredsJSON(ctx, inst, body)
}
