package store

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/wagate/wagate"
)

// Integrations (Evolution's names). EVOLUTION is the generic HTTP channel;
// the two WhatsApp names select the whatsmeow channel.
const (
	IntegrationEvolution       = "EVOLUTION"
	IntegrationWhatsAppBaileys = "WHATSAPP-BAILEYS"
	IntegrationWhatsApp        = "WHATSAPP"
)

// Integrations lists the accepted integration names.
var Integrations = []string{IntegrationEvolution, IntegrationWhatsAppBaileys, IntegrationWhatsApp}

// Instance is one messaging number connected to the gateway. Its token is
// never stored, only its SHA-256 hash and a short prefix for recognition.
type Instance struct {
	ID             string
	OrganizationID string
	Name           string
	Integration    string
	Number         string // channel id of EVOLUTION instances; "" when none
	TokenHash      string
	TokenPrefix    string
	Settings       InstanceSettings
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// InstanceSettings are Evolution's per-instance behaviour switches.
type InstanceSettings struct {
	RejectCall      bool   `json:"rejectCall"`
	MsgCall         string `json:"msgCall"`
	GroupsIgnore    bool   `json:"groupsIgnore"`
	AlwaysOnline    bool   `json:"alwaysOnline"`
	ReadMessages    bool   `json:"readMessages"`
	ReadStatus      bool   `json:"readStatus"`
	SyncFullHistory bool   `json:"syncFullHistory"`
}

const instanceColumns = "id, name, integration, number, token_hash, token_prefix, settings, created_at, updated_at, organization_id"

func scanInstance(row scanner) (*Instance, error) {
	var (
		in       Instance
		number   *string
		settings string
		created  int64
		updated  int64
	)
	if err := row.Scan(&in.ID, &in.Name, &in.Integration, &number, &in.TokenHash, &in.TokenPrefix, &settings, &created, &updated,
		&in.OrganizationID); err != nil {
		return nil, err
	}
	if number != nil {
		in.Number = *number
	}
	if err := json.Unmarshal([]byte(settings), &in.Settings); err != nil {
		return nil, fmt.Errorf("instance %s settings: %w", in.ID, err)
	}
	in.CreatedAt, in.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &in, nil
}

// CreateInstance stores a new instance. Name, number and token hash must be
// unique; a clash is an ECONFLICT naming the field.
func (s *Store) CreateInstance(ctx context.Context, in *Instance) error {
	defer s.configChanged()
	settings, err := json.Marshal(in.Settings)
	if err != nil {
		return err
	}
	return s.DoTxn(ctx, func(ctx context.Context) error {
		checks := []struct{ field, column, value string }{
			{"instanceName", "name", in.Name},
			{"number", "number", in.Number},
			{"token", "token_hash", in.TokenHash},
		}
		for _, c := range checks {
			if c.value == "" {
				continue
			}
			var n int
			if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM instances WHERE "+c.column+" = $1", c.value).Scan(&n); err != nil {
				return err
			}
			if n > 0 {
				return wagate.FieldError(wagate.ECONFLICT, c.field, "already used by another instance")
			}
		}
		_, err := s.db.Exec(ctx, "INSERT INTO instances ("+instanceColumns+") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
			in.ID, in.Name, in.Integration, nullable(in.Number), in.TokenHash, in.TokenPrefix, string(settings),
			millis(in.CreatedAt), millis(in.UpdatedAt), in.OrganizationID)
		if isUniqueViolation(err) {
			return wagate.Errorf(wagate.ECONFLICT, "instanceName: an instance with this name, number or token already exists")
		}
		return err
	})
}

// InstanceByName returns the instance called name.
func (s *Store) InstanceByName(ctx context.Context, name string) (*Instance, error) {
	in, err := scanInstance(s.db.QueryRow(ctx, "SELECT "+instanceColumns+" FROM instances WHERE name = $1", name))
	return in, notFound(err, "The %q instance does not exist", name)
}

// InstanceByTokenHash returns the instance whose token hashes to hash.
func (s *Store) InstanceByTokenHash(ctx context.Context, hash string) (*Instance, error) {
	in, err := scanInstance(s.db.QueryRow(ctx, "SELECT "+instanceColumns+" FROM instances WHERE token_hash = $1", hash))
	return in, notFound(err, "no instance has this token")
}

// InstanceByNumber returns the instance whose channel id is number.
func (s *Store) InstanceByNumber(ctx context.Context, number string) (*Instance, error) {
	in, err := scanInstance(s.db.QueryRow(ctx, "SELECT "+instanceColumns+" FROM instances WHERE number = $1", number))
	return in, notFound(err, "numberId: no instance has number %q", number)
}

// ListInstances returns every instance, oldest first.
func (s *Store) ListInstances(ctx context.Context) ([]*Instance, error) {
	return collect(scanInstance)(s.db.Query(ctx, "SELECT "+instanceColumns+" FROM instances ORDER BY created_at, name"))
}

// ListOrganizationInstances returns the organization's instances, oldest first.
func (s *Store) ListOrganizationInstances(ctx context.Context, orgID string) ([]*Instance, error) {
	return collect(scanInstance)(s.db.Query(ctx, "SELECT "+instanceColumns+
		" FROM instances WHERE organization_id = $1 ORDER BY created_at, name", orgID))
}

// SetInstanceToken replaces the instance's token hash; the old token stops
// working with the commit.
func (s *Store) SetInstanceToken(ctx context.Context, id, hash, prefix string) error {
	defer s.configChanged()
	res, err := s.db.Exec(ctx, "UPDATE instances SET token_hash = $2, token_prefix = $3, updated_at = $4 WHERE id = $1",
		id, hash, prefix, millis(time.Now()))
	if isUniqueViolation(err) {
		return wagate.Errorf(wagate.ECONFLICT, "token: already used by another instance")
	}
	return mustAffect(res, err, "instance %s does not exist", id)
}

// DeleteInstance deletes the instance; foreign keys cascade to everything it owns.
func (s *Store) DeleteInstance(ctx context.Context, id string) error {
	defer s.configChanged()
	res, err := s.db.Exec(ctx, "DELETE FROM instances WHERE id = $1", id)
	return mustAffect(res, err, "instance %s does not exist", id)
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// InstanceByID returns the instance with id.
func (s *Store) InstanceByID(ctx context.Context, id string) (*Instance, error) {
	in, err := scanInstance(s.db.QueryRow(ctx, "SELECT "+instanceColumns+" FROM instances WHERE id = $1", id))
	return in, notFound(err, "instance %s does not exist", id)
}

// SetInstanceSettings replaces the instance's settings.
func (s *Store) SetInstanceSettings(ctx context.Context, id string, settings InstanceSettings) error {
	defer s.configChanged()
	raw, err := json.Marshal(settings)
	if err != nil {
		return err
	}
	res, err := s.db.Exec(ctx, "UPDATE instances SET settings = $2, updated_at = $3 WHERE id = $1", id, string(raw), millis(time.Now()))
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return wagate.Errorf(wagate.ENOTFOUND, "instance not found")
	}
	return nil
}
