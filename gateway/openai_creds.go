package gateway

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/store"
)

type credsRequest struct {
	Name    string `json:"name"`
	APIKey  string `json:"apiKey"`
	BaseURL string `json:"baseUrl"`
}

// credsView shows credentials with the key masked: the full key is never
// returned, not even to whoever stored it.
type credsView struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	APIKey    string    `json:"apiKey"`
	BaseURL   string    `json:"baseUrl"`
	CreatedAt time.Time `json:"createdAt"`
}

func (g *Gateway) viewCreds(c *store.Creds) credsView {
	return credsView{ID: c.ID, Name: c.Name, APIKey: c.KeyHint, BaseURL: g.clients.BaseURL(c), CreatedAt: c.CreatedAt}
}

func (g *Gateway) createCreds(c echo.Context) error {
	var req credsRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var problems wagate.Problems
	var baseURL string
	req.Name, baseURL = api.CheckCredentials(&problems, req.Name, req.APIKey, req.BaseURL)
	if err := problems.Err(); err != nil {
		return err
	}
	inst := instanceOf(c)
	now := stamp()
	cr := &store.Creds{
		ID: store.NewID(), OrganizationID: inst.OrganizationID, InstanceID: inst.ID, Name: req.Name, APIKey: req.APIKey,
		KeyHint: api.MaskKey(req.APIKey),
		BaseURL: baseURL, CreatedAt: now, UpdatedAt: now,
	}
	if err := g.store.CreateCreds(c.Request().Context(), cr); err != nil {
		return err
	}
	g.log.Info("openai credentials stored", "instance", inst.Name, "creds", cr.ID, "key", cr.KeyHint)
	return c.JSON(http.StatusCreated, g.viewCreds(cr))
}

func (g *Gateway) listCreds(c echo.Context) error {
	list, err := g.store.ListCreds(c.Request().Context(), instanceOf(c).ID)
	if err != nil {
		return err
	}
	out := make([]credsView, 0, len(list))
	for _, cr := range list {
		out = append(out, g.viewCreds(cr))
	}
	return c.JSON(http.StatusOK, out)
}

func (g *Gateway) deleteCreds(c echo.Context) error {
	id := c.Param("credsId")
	if err := g.store.DeleteCreds(c.Request().Context(), instanceOf(c).ID, id); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"openaiCreds": map[string]string{"id": id}})
}

// credsFor resolves the credentials a request names, or the settings'
// default ones when it names none.
func (g *Gateway) credsFor(ctx context.Context, inst *store.Instance, id string) (*store.Creds, error) {
	if id == "" {
		settings, err := g.openAISettings(ctx, inst)
		if err != nil {
			return nil, err
		}
		if settings.CredsID == "" {
			return nil, wagate.Invalid("openaiCredsId", "required: the instance settings name no default credentials")
		}
		id = settings.CredsID
	}
	cr, err := g.store.Creds(ctx, inst.ID, id)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		return nil, wagate.Invalid("openaiCredsId", "no credentials with this id in this instance")
	}
	return cr, err
}

// getModels lists the provider's models with the instance's credentials.
func (g *Gateway) getModels(c echo.Context) error {
	inst := instanceOf(c)
	cr, err := g.credsFor(c.Request().Context(), inst, c.QueryParam("openaiCredsId"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 15*time.Second)
	defer cancel()
	models, err := g.clients.ListModels(ctx, cr)
	if err != nil {
		g.log.Warn("listing provider models failed", "instance", inst.Name, "creds", cr.ID, "error", wagate.ErrorMessages(err))
		return err
	}
	return c.JSON(http.StatusOK, models)
}
