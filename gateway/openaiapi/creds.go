package openaiapi

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

func (h *Handlers) viewCreds(c *store.Creds) credsView {
	return credsView{ID: c.ID, Name: c.Name, APIKey: c.KeyHint, BaseURL: h.clients.BaseURL(c), CreatedAt: c.CreatedAt}
}

// CreateCreds is POST /openai/creds/{instance}: stores credentials in the instance.
func (h *Handlers) CreateCreds(c echo.Context) error {
	var req credsRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	v, err := h.createCreds(c.Request().Context(), api.InstanceOf(c), &req)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, v)
}

func (h *Handlers) createCreds(ctx context.Context, inst *store.Instance, req *credsRequest) (credsView, error) {
	var problems wagate.Problems
	var baseURL string
	req.Name, baseURL = api.CheckCredentials(&problems, req.Name, req.APIKey, req.BaseURL)
	if err := problems.Err(); err != nil {
		return credsView{}, err
	}
	now := stamp()
	cr := &store.Creds{
		ID: store.NewID(), OrganizationID: inst.OrganizationID, InstanceID: inst.ID, Name: req.Name, APIKey: req.APIKey,
		KeyHint: api.MaskKey(req.APIKey),
		BaseURL: baseURL, CreatedAt: now, UpdatedAt: now,
	}
	if err := h.store.CreateCreds(ctx, cr); err != nil {
		return credsView{}, err
	}
	h.log.Info("openai credentials stored", "instance", inst.Name, "creds", cr.ID, "key", cr.KeyHint)
	return h.viewCreds(cr), nil
}

// ListCreds is GET /openai/creds/{instance}, with the keys masked.
func (h *Handlers) ListCreds(c echo.Context) error {
	out, err := h.listCreds(c.Request().Context(), api.InstanceOf(c))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, out)
}

func (h *Handlers) listCreds(ctx context.Context, inst *store.Instance) ([]credsView, error) {
	list, err := h.store.ListCreds(ctx, inst.ID)
	if err != nil {
		return nil, err
	}
	out := make([]credsView, 0, len(list))
	for _, cr := range list {
		out = append(out, h.viewCreds(cr))
	}
	return out, nil
}

// DeleteCreds is DELETE /openai/creds/{credsId}/{instance}.
func (h *Handlers) DeleteCreds(c echo.Context) error {
	id := c.Param("credsId")
	if err := h.store.DeleteCreds(c.Request().Context(), api.InstanceOf(c).ID, id); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"openaiCreds": map[string]string{"id": id}})
}

// credsFor resolves the credentials a request names, or the settings'
// default ones when it names none.
func (h *Handlers) credsFor(ctx context.Context, inst *store.Instance, id string) (*store.Creds, error) {
	if id == "" {
		settings, err := h.openAISettings(ctx, inst)
		if err != nil {
			return nil, err
		}
		if settings.CredsID == "" {
			return nil, wagate.Invalid("openaiCredsId", "required: the instance settings name no default credentials")
		}
		id = settings.CredsID
	}
	cr, err := h.store.Creds(ctx, inst.ID, id)
	if wagate.ErrorCode(err) == wagate.ENOTFOUND {
		return nil, wagate.Invalid("openaiCredsId", "no credentials with this id in this instance")
	}
	return cr, err
}

// GetModels lists the provider's models with the instance's credentials.
func (h *Handlers) GetModels(c echo.Context) error {
	inst := api.InstanceOf(c)
	cr, err := h.credsFor(c.Request().Context(), inst, c.QueryParam("openaiCredsId"))
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 15*time.Second)
	defer cancel()
	models, err := h.clients.ListModels(ctx, cr)
	if err != nil {
		h.log.Warn("listing provider models failed", "instance", inst.Name, "creds", cr.ID, "error", wagate.ErrorMessages(err))
		return err
	}
	return c.JSON(http.StatusOK, models)
}
