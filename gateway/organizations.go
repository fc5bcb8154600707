package gateway

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// Organizations are administered with the global key.

type orgView struct {
	ID        string       `json:"id"`
	Name      string       `json:"name"`
	Default   bool         `json:"default"`
	Keys      []orgKeyView `json:"keys,omitempty"`
	CreatedAt time.Time    `json:"created_at"`
	UpdatedAt time.Time    `json:"updated_at"`
}

type orgKeyView struct {
	ID        string    `json:"id"`
	Prefix    string    `json:"prefix"`
	CreatedAt time.Time `json:"created_at"`
}

func viewOrg(o *store.Organization) orgView {
	return orgView{ID: o.ID, Name: o.Name, Default: o.IsDefault, CreatedAt: o.CreatedAt, UpdatedAt: o.UpdatedAt}
}

// newOrgKey returns a new organization key (192 random bits) and its record.
func newOrgKey(orgID string) (string, *store.OrgKey) {
	key := api.NewKey(orgKeyPrefix, 24)
	return key, &store.OrgKey{ID: store.NewID(), OrganizationID: orgID, KeyHash: api.HashKey(key),
		KeyPrefix: key[:len(orgKeyPrefix)+8], CreatedAt: stamp()}
}

func (g *Gateway) createOrganization(c echo.Context) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := api.Decode(c, &req, true); err != nil {
		return err
	}
	req.Name = strings.TrimSpace(req.Name)
	switch {
	case req.Name == "":
		return wagate.Invalid("name", "required")
	case len(req.Name) > 255 || strings.ContainsRune(req.Name, 0):
		return wagate.Invalid("name", "must be at most 255 characters")
	}
	now := stamp()
	org := &store.Organization{ID: store.NewID(), Name: req.Name, CreatedAt: now, UpdatedAt: now}
	key, rec := newOrgKey(org.ID)
	if err := g.store.CreateOrganization(c.Request().Context(), org, rec); err != nil {
		return err
	}
	g.log.Info("organization created", "organization", org.ID, "key_prefix", rec.KeyPrefix)
	return c.JSON(http.StatusCreated, map[string]any{"organization": viewOrg(org), "apiKey": key,
		"key": orgKeyView{ID: rec.ID, Prefix: rec.KeyPrefix, CreatedAt: rec.CreatedAt}})
}

func (g *Gateway) listOrganizations(c echo.Context) error {
	list, err := g.store.ListOrganizations(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]orgView, 0, len(list))
	for _, o := range list {
		out = append(out, viewOrg(o))
	}
	return c.JSON(http.StatusOK, out)
}

func (g *Gateway) getOrganization(c echo.Context) error {
	ctx := c.Request().Context()
	org, err := g.store.Organization(ctx, c.Param("orgId"))
	if err != nil {
		return err
	}
	keys, err := g.store.ListOrgKeys(ctx, org.ID)
	if err != nil {
		return err
	}
	v := viewOrg(org)
	v.Keys = []orgKeyView{}
	for _, k := range keys {
		v.Keys = append(v.Keys, orgKeyView{ID: k.ID, Prefix: k.KeyPrefix, CreatedAt: k.CreatedAt})
	}
	return c.JSON(http.StatusOK, v)
}

func (g *Gateway) createOrgKey(c echo.Context) error {
	ctx := c.Request().Context()
	org, err := g.store.Organization(ctx, c.Param("orgId"))
	if err != nil {
		return err
	}
	key, rec := newOrgKey(org.ID)
	if err := g.store.CreateOrgKey(ctx, rec); err != nil {
		return err
	}
	g.log.Info("organization key created", "organization", org.ID, "key_prefix", rec.KeyPrefix)
	return c.JSON(http.StatusCreated, map[string]any{"apiKey": key,
		"key": orgKeyView{ID: rec.ID, Prefix: rec.KeyPrefix, CreatedAt: rec.CreatedAt}})
}

func (g *Gateway) deleteOrgKey(c echo.Context) error {
	ctx := c.Request().Context()
	org, err := g.store.Organization(ctx, c.Param("orgId"))
	if err != nil {
		return err
	}
	if err := g.store.DeleteOrgKey(ctx, org.ID, c.Param("keyId")); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]bool{"ok": true})
}

// deleteOrganization marks the organization deleted, which hides it and
// stops its keys at once, and leaves the removal of what it owns to the
// deleter: instances one by one (each logged out, its webhook told), then
// the rest. An interrupted deletion resumes at the next start.
func (g *Gateway) deleteOrganization(c echo.Context) error {
	id := c.Param("orgId")
	if err := g.store.MarkOrganizationDeleting(c.Request().Context(), id); err != nil {
		return err
	}
	g.log.Info("organization deletion begun", "organization", id)
	g.orgs.wake()
	return c.JSON(http.StatusAccepted, map[string]any{"ok": true, "status": "deleting"})
}

// orgDeleter finishes the deletion of organizations marked deleted.
type orgDeleter struct {
	g      *Gateway
	kick   chan struct{}
	cancel context.CancelFunc
	done   sync.WaitGroup
}

func (d *orgDeleter) wake() {
	select {
	case d.kick <- struct{}{}:
	default:
	}
}

func (d *orgDeleter) start(ctx context.Context) {
	ctx, d.cancel = context.WithCancel(ctx)
	d.done.Add(1)
	go func() {
		defer d.done.Done()
		retry := time.NewTicker(time.Minute)
		defer retry.Stop()
		for {
			d.run(ctx)
			select {
			case <-ctx.Done():
				return
			case <-d.kick:
			case <-retry.C:
			}
		}
	}()
}

func (d *orgDeleter) stop() {
	if d.cancel != nil {
		d.cancel()
		d.done.Wait()
	}
}

func (d *orgDeleter) run(ctx context.Context) {
	ids, err := d.g.store.DeletingOrganizations(ctx)
	if err != nil {
		if ctx.Err() == nil {
			d.g.log.Warn("listing organizations to delete failed", "error", err)
		}
		return
	}
	for _, id := range ids {
		if err := d.g.finishOrganizationDelete(ctx, id); err != nil && ctx.Err() == nil {
			d.g.log.Warn("deleting organization failed; retrying later", "organization", id, "error", err)
		}
	}
}

func (g *Gateway) finishOrganizationDelete(ctx context.Context, id string) error {
	insts, err := g.store.ListOrganizationInstances(ctx, id)
	if err != nil {
		return err
	}
	for _, inst := range insts {
		if err := g.removeInstance(ctx, inst); err != nil {
			return err
		}
	}
	if err := g.store.FinishOrganizationDelete(ctx, id); err != nil {
		return err
	}
	g.log.Info("organization deleted", "organization", id, "instances", len(insts))
	return nil
}

// removeInstance deletes the instance and, by cascade, everything it owns.
// Its webhook still hears instance.delete: the event row carries its own
// copy of the target.
func (g *Gateway) removeInstance(ctx context.Context, inst *store.Instance) error {
	// Log out whatever the state: a paired device that is closed (banned,
	// replaced, offline) still has keys in the store to delete.
	if err := g.channelOf(inst).Logout(ctx, inst); err != nil {
		return err
	}
	err := g.outbox.Tx(ctx, func(ctx context.Context) error {
		data := map[string]string{"instanceName": inst.Name, "instanceId": inst.ID}
		if err := g.outbox.EmitFarewell(ctx, inst, webhook.InstanceDelete, data); err != nil {
			return err
		}
		return g.store.DeleteInstance(ctx, inst.ID)
	})
	if err != nil {
		return err
	}
	g.log.Info("instance deleted", "instance", inst.Name)
	return nil
}
