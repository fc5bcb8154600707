package store

import (
	"context"
	"time"

	"github.com/wagate/wagate"
)

// Organization is a tenant: it owns instances, credentials and chatbots.
// The default organization holds what existed before organizations and is
// where the global key acts when a request names none.
type Organization struct {
	ID        string
	Name      string
	IsDefault bool
	CreatedAt time.Time
	UpdatedAt time.Time
}

// OrgKey is an organization API key; only its SHA-256 hash and a short
// prefix are stored.
type OrgKey struct {
	ID             string
	OrganizationID string
	KeyHash        string
	KeyPrefix      string
	CreatedAt      time.Time
}

const orgColumns = "id, name, is_default, created_at, updated_at"

func scanOrg(row scanner) (*Organization, error) {
	var (
		o                Organization
		created, updated int64
	)
	if err := row.Scan(&o.ID, &o.Name, &o.IsDefault, &created, &updated); err != nil {
		return nil, err
	}
	o.CreatedAt, o.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &o, nil
}

// CreateOrganization stores o with its first key.
func (s *Store) CreateOrganization(ctx context.Context, o *Organization, key *OrgKey) error {
	defer s.configChanged()
	return s.DoTxn(ctx, func(ctx context.Context) error {
		_, err := s.db.Exec(ctx, "INSERT INTO organizations ("+orgColumns+") VALUES ($1, $2, false, $3, $4)",
			o.ID, o.Name, millis(o.CreatedAt), millis(o.UpdatedAt))
		if err != nil {
			return err
		}
		return s.CreateOrgKey(ctx, key)
	})
}

// Organization returns the organization id; one being deleted is not found.
func (s *Store) Organization(ctx context.Context, id string) (*Organization, error) {
	o, err := scanOrg(s.db.QueryRow(ctx, "SELECT "+orgColumns+" FROM organizations WHERE id = $1 AND NOT deleting", id))
	return o, notFound(err, "organization %q does not exist", id)
}

// DefaultOrganization returns the default organization.
func (s *Store) DefaultOrganization(ctx context.Context) (*Organization, error) {
	o, err := scanOrg(s.db.QueryRow(ctx, "SELECT "+orgColumns+" FROM organizations WHERE is_default"))
	return o, notFound(err, "the default organization does not exist")
}

// ListOrganizations returns every organization not being deleted, oldest first.
func (s *Store) ListOrganizations(ctx context.Context) ([]*Organization, error) {
	return collect(scanOrg)(s.db.Query(ctx, "SELECT "+orgColumns+" FROM organizations WHERE NOT deleting ORDER BY created_at, id"))
}

// CreateOrgKey stores another key of an organization.
func (s *Store) CreateOrgKey(ctx context.Context, k *OrgKey) error {
	defer s.configChanged()
	_, err := s.db.Exec(ctx, `INSERT INTO organization_keys (id, organization_id, key_hash, key_prefix, created_at)
		VALUES ($1, $2, $3, $4, $5)`, k.ID, k.OrganizationID, k.KeyHash, k.KeyPrefix, millis(k.CreatedAt))
	return err
}

func scanOrgKey(row scanner) (*OrgKey, error) {
	var (
		k       OrgKey
		created int64
	)
	if err := row.Scan(&k.ID, &k.OrganizationID, &k.KeyHash, &k.KeyPrefix, &created); err != nil {
		return nil, err
	}
	k.CreatedAt = fromMillis(created)
	return &k, nil
}

// ListOrgKeys returns the organization's keys, oldest first.
func (s *Store) ListOrgKeys(ctx context.Context, orgID string) ([]*OrgKey, error) {
	return collect(scanOrgKey)(s.db.Query(ctx, `SELECT id, organization_id, key_hash, key_prefix, created_at
		FROM organization_keys WHERE organization_id = $1 ORDER BY created_at, id`, orgID))
}

// DeleteOrgKey deletes one of the organization's keys; it stops working
// with the commit.
func (s *Store) DeleteOrgKey(ctx context.Context, orgID, keyID string) error {
	defer s.configChanged()
	res, err := s.db.Exec(ctx, "DELETE FROM organization_keys WHERE organization_id = $1 AND id = $2", orgID, keyID)
	return mustAffect(res, err, "keyId: no key %q in this organization", keyID)
}

// OrganizationByKeyHash returns the organization whose key hashes to hash,
// with the key; keys of an organization being deleted are not found.
func (s *Store) OrganizationByKeyHash(ctx context.Context, hash string) (*Organization, *OrgKey, error) {
	var (
		o                         Organization
		k                         OrgKey
		created, updated, keyTime int64
	)
	err := s.db.QueryRow(ctx, `SELECT o.id, o.name, o.is_default, o.created_at, o.updated_at,
			k.id, k.key_hash, k.key_prefix, k.created_at
		FROM organization_keys k JOIN organizations o ON o.id = k.organization_id
		WHERE k.key_hash = $1 AND NOT o.deleting`, hash).
		Scan(&o.ID, &o.Name, &o.IsDefault, &created, &updated, &k.ID, &k.KeyHash, &k.KeyPrefix, &keyTime)
	if err != nil {
		return nil, nil, notFound(err, "no organization has this key")
	}
	o.CreatedAt, o.UpdatedAt = fromMillis(created), fromMillis(updated)
	k.OrganizationID, k.CreatedAt = o.ID, fromMillis(keyTime)
	return &o, &k, nil
}

// MarkOrganizationDeleting begins deleting an organization: from the
// commit on it is not found and its keys do not authenticate. What it owns
// is removed by FinishOrganizationDelete, after its instances are deleted.
func (s *Store) MarkOrganizationDeleting(ctx context.Context, id string) error {
	defer s.configChanged()
	o, err := s.Organization(ctx, id)
	if err != nil {
		return err
	}
	if o.IsDefault {
		return wagate.Errorf(wagate.ECONFLICT, "organization: the default organization cannot be deleted")
	}
	res, err := s.db.Exec(ctx, "UPDATE organizations SET deleting = true, updated_at = $2 WHERE id = $1 AND NOT deleting",
		id, millis(time.Now()))
	return mustAffect(res, err, "organization %q does not exist", id)
}

// DeletingOrganizations returns the ids of organizations whose deletion
// has begun and not finished.
func (s *Store) DeletingOrganizations(ctx context.Context) ([]string, error) {
	return collect(scanString)(s.db.Query(ctx, "SELECT id FROM organizations WHERE deleting ORDER BY updated_at"))
}

// FinishOrganizationDelete deletes an organization being deleted, and by
// cascade its chatbots, credentials and keys. Its instances must be gone:
// they are deleted one by one first, each with its channel and webhook.
func (s *Store) FinishOrganizationDelete(ctx context.Context, id string) error {
	defer s.configChanged()
	_, err := s.db.Exec(ctx, "DELETE FROM organizations WHERE id = $1 AND deleting", id)
	return err
}
