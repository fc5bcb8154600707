package okchat

import (
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/store"
)

// credsView shows an organization's credentials, the key masked.
type credsView struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	APIKey     string    `json:"apiKey"`
	BaseURL    string    `json:"baseUrl"`
	Default    bool      `json:"default"`
	InstanceID *string   `json:"instanceId"` // the instance they were created for; null for the organization's
	CreatedAt  time.Time `json:"createdAt"`
}

func (h *Handlers) credsView(c *store.Creds) credsView {
	v := credsView{ID: c.ID, Name: c.Name, APIKey: c.KeyHint, BaseURL: h.baseURL(c), Default: c.IsDefault, CreatedAt: c.CreatedAt}
	if c.InstanceID != "" {
		v.InstanceID = &c.InstanceID
	}
	return v
}

// ListCredentials is GET /api/v1/credentials: every credential of the
// organization, its instances' included.
func (h *Handlers) ListCredentials(c echo.Context) error {
	list, err := h.store.ListOrgCreds(c.Request().Context(), api.OrgOf(c).ID)
	if err != nil {
		return err
	}
	out := make([]credsView, 0, len(list))
	for _, cr := range list {
		out = append(out, h.credsView(cr))
	}
	return c.JSON(http.StatusOK, out)
}

type credsRequest struct {
	Name    string `json:"name"`
	APIKey  string `json:"apiKey"`
	BaseURL string `json:"baseUrl"`
	Default *bool  `json:"default"`
}

// CreateCredentials is POST /api/v1/credentials. The organization's first
// credentials become its default unless the body says otherwise.
func (h *Handlers) CreateCredentials(c echo.Context) error {
	var req credsRequest
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	var p wagate.Problems
	var baseURL string
	req.Name, baseURL = api.CheckCredentials(&p, req.Name, req.APIKey, req.BaseURL)
	slices.Sort(p)
	if err := p.Err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	org := api.OrgOf(c)
	isDefault := false
	if req.Default != nil {
		isDefault = *req.Default
	} else if _, err := h.store.DefaultCreds(ctx, org.ID); wagate.ErrorCode(err) == wagate.ENOTFOUND {
		isDefault = true
	} else if err != nil {
		return err
	}
	now := stamp()
	cr := &store.Creds{
		ID: store.NewID(), OrganizationID: org.ID, Name: req.Name, APIKey: req.APIKey, KeyHint: api.MaskKey(req.APIKey),
		BaseURL: baseURL, IsDefault: isDefault, CreatedAt: now, UpdatedAt: now,
	}
	if err := h.store.CreateCreds(ctx, cr); err != nil {
		return err
	}
	h.log.Info("organization credentials stored", "organization", org.ID, "creds", cr.ID, "key", cr.KeyHint, "default", isDefault)
	return c.JSON(http.StatusCreated, h.credsView(cr))
}

// DeleteCredentials is DELETE /api/v1/credentials/{id}.
func (h *Handlers) DeleteCredentials(c echo.Context) error {
	if err := h.store.DeleteOrgCreds(c.Request().Context(), api.OrgOf(c).ID, c.Param("id")); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"ok": true})
}
