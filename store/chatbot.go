package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/wagate/wagate"
)

// Chatbot is an organization's brain: persona, prompt, model, greeting and
// branding, shared by every channel that answers as it. Settings and
// Personality are JSON objects as clients sent them (settings keys the
// gateway knows are validated before they are stored). The chatbot key is
// stored as its SHA-256 hash with a short prefix; OpenAIKey, a provider key
// for this chatbot alone, is plaintext here and sealed at rest.
type Chatbot struct {
	ID             string
	OrganizationID string
	Name           string
	Slug           string
	Description    string
	Active         bool
	IsPublic       bool
	Personality    map[string]any
	Settings       map[string]any
	ChatWidget     map[string]any // nil until configured
	VoiceWidget    map[string]any // nil until configured
	CredsID        string         // settings.openaiCredsId; "" for none
	OpenAIKey      string         // "" for none
	OpenAIKeyHint  string
	KeyHash        string
	KeyPrefix      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Setting returns the string setting key, "" when absent or not a string.
func (c *Chatbot) Setting(key string) string {
	s, _ := c.Settings[key].(string)
	return s
}

// Avatar is a chatbot's uploaded picture.
type Avatar struct {
	ID          string
	ChatbotID   string
	ContentType string
	Data        []byte
	CreatedAt   time.Time
}

const chatbotColumns = `id, organization_id, name, slug, description, active, is_public, personality_config, settings,
	chat_widget_config, voice_widget_config, creds_id, openai_api_key, openai_key_hint, key_hash, key_prefix, created_at, updated_at`

func (s *Store) scanChatbot(row scanner) (*Chatbot, error) {
	var (
		c                              Chatbot
		personality, settings          string
		chatWidget, voiceWidget, creds *string
		sealedKey                      *string
		created, updated               int64
	)
	err := row.Scan(&c.ID, &c.OrganizationID, &c.Name, &c.Slug, &c.Description, &c.Active, &c.IsPublic, &personality,
		&settings, &chatWidget, &voiceWidget, &creds, &sealedKey, &c.OpenAIKeyHint, &c.KeyHash, &c.KeyPrefix, &created, &updated)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		src *string
		dst *map[string]any
	}{{&personality, &c.Personality}, {&settings, &c.Settings}, {chatWidget, &c.ChatWidget}, {voiceWidget, &c.VoiceWidget}} {
		if f.src == nil {
			continue
		}
		if err := json.Unmarshal([]byte(*f.src), f.dst); err != nil {
			return nil, fmt.Errorf("chatbot %s: %w", c.ID, err)
		}
	}
	if creds != nil {
		c.CredsID = *creds
	}
	if sealedKey != nil {
		key, err := s.seal.open(*sealedKey, "chatbot.openai_api_key:"+c.ID)
		if err != nil {
			return nil, fmt.Errorf("chatbot %s: %w", c.ID, err)
		}
		c.OpenAIKey = string(key)
	}
	c.CreatedAt, c.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &c, nil
}

func (s *Store) chatbotArgs(c *Chatbot) ([]any, error) {
	var texts [4]*string
	for i, m := range []map[string]any{nonNilMap(c.Personality), nonNilMap(c.Settings), c.ChatWidget, c.VoiceWidget} {
		if m == nil {
			continue
		}
		b, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		t := string(b)
		texts[i] = &t
	}
	var sealedKey any
	if c.OpenAIKey != "" {
		sealedKey = s.seal.seal([]byte(c.OpenAIKey), "chatbot.openai_api_key:"+c.ID)
	}
	return []any{c.ID, c.OrganizationID, c.Name, c.Slug, c.Description, c.Active, c.IsPublic, *texts[0], *texts[1],
		texts[2], texts[3], nullable(c.CredsID), sealedKey, c.OpenAIKeyHint, c.KeyHash, c.KeyPrefix,
		millis(c.CreatedAt), millis(c.UpdatedAt)}, nil
}

func nonNilMap(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

func slugConflict(err error) error {
	if isUniqueViolation(err) {
		return wagate.FieldError(wagate.ECONFLICT, "slug", "another chatbot of this organization has this slug")
	}
	return err
}

// CreateChatbot stores a new chatbot; its slug must be unique in its
// organization.
func (s *Store) CreateChatbot(ctx context.Context, c *Chatbot) error {
	defer s.configChanged()
	args, err := s.chatbotArgs(c)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, "INSERT INTO chatbots ("+chatbotColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
		$11, $12, $13, $14, $15, $16, $17, $18)`, args...)
	return slugConflict(err)
}

// UpdateChatbot saves every field of chatbot c.ID of c's organization but
// its key and creation time.
func (s *Store) UpdateChatbot(ctx context.Context, c *Chatbot) error {
	defer s.configChanged()
	args, err := s.chatbotArgs(c)
	if err != nil {
		return err
	}
	res, err := s.db.Exec(ctx, `UPDATE chatbots SET name = $3, slug = $4, description = $5, active = $6, is_public = $7,
		personality_config = $8, settings = $9, chat_widget_config = $10, voice_widget_config = $11, creds_id = $12,
		openai_api_key = $13, openai_key_hint = $14, updated_at = $15 WHERE id = $1 AND organization_id = $2`,
		append(args[:14], args[17])...)
	if err != nil {
		return slugConflict(err)
	}
	return mustAffect(res, nil, "chatbotId: no chatbot %q in this organization", c.ID)
}

// Chatbot returns the organization's chatbot id.
func (s *Store) Chatbot(ctx context.Context, orgID, id string) (*Chatbot, error) {
	c, err := s.scanChatbot(s.db.QueryRow(ctx, "SELECT "+chatbotColumns+" FROM chatbots WHERE organization_id = $1 AND id = $2", orgID, id))
	return c, notFound(err, "chatbotId: no chatbot %q in this organization", id)
}

// ChatbotByKeyHash returns the chatbot whose key hashes to hash; chatbots
// of an organization being deleted are not found.
func (s *Store) ChatbotByKeyHash(ctx context.Context, hash string) (*Chatbot, error) {
	c, err := s.scanChatbot(s.db.QueryRow(ctx, "SELECT "+chatbotColumns+` FROM chatbots WHERE key_hash = $1
		AND organization_id IN (SELECT id FROM organizations WHERE NOT deleting)`, hash))
	return c, notFound(err, "no chatbot has this key")
}

// ListChatbots returns the organization's chatbots, oldest first.
func (s *Store) ListChatbots(ctx context.Context, orgID string) ([]*Chatbot, error) {
	return collect(s.scanChatbot)(s.db.Query(ctx, "SELECT "+chatbotColumns+
		" FROM chatbots WHERE organization_id = $1 ORDER BY created_at, id", orgID))
}

// SlugsLike returns the organization's chatbot slugs equal to base or
// starting with base followed by a dash, to choose a free one.
func (s *Store) SlugsLike(ctx context.Context, orgID, base string) ([]string, error) {
	return collect(scanString)(s.db.Query(ctx, `SELECT slug FROM chatbots WHERE organization_id = $1
		AND (slug = $2 OR substr(slug, 1, $3) = $4)`, orgID, base, len(base)+1, base+"-"))
}

// SetChatbotKey replaces the chatbot's key; the old one stops working with
// the commit.
func (s *Store) SetChatbotKey(ctx context.Context, orgID, id, hash, prefix string) error {
	defer s.configChanged()
	res, err := s.db.Exec(ctx, "UPDATE chatbots SET key_hash = $3, key_prefix = $4, updated_at = $5 WHERE organization_id = $1 AND id = $2",
		orgID, id, hash, prefix, millis(time.Now()))
	return mustAffect(res, err, "chatbotId: no chatbot %q in this organization", id)
}

// DeleteChatbot deletes the organization's chatbot and what belongs to it,
// unless instance bots take their brain from it: then the ECONFLICT names
// them.
func (s *Store) DeleteChatbot(ctx context.Context, orgID, id string) error {
	defer s.configChanged()
	return s.DoTxn(ctx, func(ctx context.Context) error {
		if _, err := s.Chatbot(ctx, orgID, id); err != nil {
			return err
		}
		bots, err := collect(scanString)(s.db.Query(ctx, `SELECT i.name || ' bot ' || b.id FROM openai_bots b
			JOIN instances i ON i.id = b.instance_id WHERE b.chatbot_id = $1 AND i.integration <> $2
			ORDER BY i.name, b.created_at`, id, IntegrationWebchat))
		if err != nil {
			return err
		}
		if len(bots) > 0 {
			return wagate.FieldError(wagate.ECONFLICT, "chatbotId", "used by instance "+strings.Join(bots, ", instance ")+
				"; change or delete those bots first")
		}
		// The chatbot's web chat goes with it, conversations included.
		if _, err := s.db.Exec(ctx, "DELETE FROM instances WHERE name = $1 AND integration = $2",
			WebchatInstanceName(id), IntegrationWebchat); err != nil {
			return err
		}
		_, err = s.db.Exec(ctx, "DELETE FROM chatbots WHERE id = $1", id)
		return err
	})
}

// PutAvatar stores a chatbot's new avatar and deletes the previous ones.
func (s *Store) PutAvatar(ctx context.Context, a *Avatar) error {
	return s.DoTxn(ctx, func(ctx context.Context) error {
		if _, err := s.db.Exec(ctx, "DELETE FROM chatbot_avatars WHERE chatbot_id = $1", a.ChatbotID); err != nil {
			return err
		}
		_, err := s.db.Exec(ctx, "INSERT INTO chatbot_avatars (id, chatbot_id, content_type, data, created_at) VALUES ($1, $2, $3, $4, $5)",
			a.ID, a.ChatbotID, a.ContentType, a.Data, millis(a.CreatedAt))
		return err
	})
}

// Avatar returns the avatar id.
func (s *Store) Avatar(ctx context.Context, id string) (*Avatar, error) {
	var (
		a       Avatar
		created int64
	)
	err := s.db.QueryRow(ctx, "SELECT id, chatbot_id, content_type, data, created_at FROM chatbot_avatars WHERE id = $1", id).
		Scan(&a.ID, &a.ChatbotID, &a.ContentType, &a.Data, &created)
	if err != nil {
		return nil, notFound(err, "avatar %q does not exist", id)
	}
	a.CreatedAt = fromMillis(created)
	return &a, nil
}
