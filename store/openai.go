package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wagate/wagate"
)

// Creds is an OpenAI-compatible provider credential of an organization,
// created for one of its instances or for the whole organization. APIKey
// is plaintext here and sealed at rest; KeyHint is its masked form.
type Creds struct {
	ID             string
	OrganizationID string
	InstanceID     string // "" for credentials of the whole organization
	Name           string
	APIKey         string
	KeyHint        string
	BaseURL        string // "" means the gateway's default base URL
	IsDefault      bool   // the organization's default for chatbots that name none
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// Behaviour is the part of a bot's configuration that the instance settings
// provide when the bot leaves it unset (nil). Units follow Evolution:
// Expire and PauseMinutes minutes, DebounceTime seconds, DelayMessage ms,
// TimePerChar ms per character.
type Behaviour struct {
	Expire          *int    `json:"expire"`
	KeywordFinish   *string `json:"keywordFinish"`
	DelayMessage    *int    `json:"delayMessage"`
	UnknownMessage  *string `json:"unknownMessage"`
	ListeningFromMe *bool   `json:"listeningFromMe"`
	StopBotFromMe   *bool   `json:"stopBotFromMe"`
	KeepOpen        *bool   `json:"keepOpen"`
	DebounceTime    *int    `json:"debounceTime"`
	SplitMessages   *bool   `json:"splitMessages"`
	TimePerChar     *int    `json:"timePerChar"`
	SpeechToText    *bool   `json:"speechToText"`
	PauseMinutes    *int    `json:"pauseMinutes"`
	GroupMode       *string `json:"groupMode"`
}

// Prompts are a chatCompletion bot's seeded messages.
type Prompts struct {
	System    []string `json:"system"`
	Assistant []string `json:"assistant"`
	User      []string `json:"user"`
}

// Bot is an OpenAI bot of one instance.
type Bot struct {
	ID              string
	InstanceID      string
	Enabled         bool
	Description     string
	CredsID         string // "" means the settings' default credentials
	ChatbotID       string // the chatbot whose brain it answers with; "" for its own
	BotType         string // chatCompletion or assistant
	AssistantID     string // a stored prompt id (pmpt_…) for assistant bots
	FunctionURL     string
	Model           string
	Prompts         Prompts
	MaxTokens       *int
	TriggerType     string
	TriggerOperator string
	TriggerValue    string
	Priority        int
	Tools           json.RawMessage // OpenAI function definitions, a JSON array
	Behaviour       Behaviour
	IgnoreJids      []string // applies in addition to the settings' list
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// OpenAISettings are an instance's defaults for its bots. Behaviour is
// stored complete: every field set.
type OpenAISettings struct {
	InstanceID                string
	CredsID                   string
	FallbackID                string
	Behaviour                 Behaviour
	IgnoreJids                []string
	TranscriptionErrorMessage string
	CreatedAt                 time.Time
	UpdatedAt                 time.Time
}

// Session states.
const (
	SessionOpened = "opened"
	SessionPaused = "paused"
	SessionClosed = "closed"
)

// Session is a conversation between one chat and one bot.
type Session struct {
	ID                 string
	InstanceID         string
	BotID              string
	RemoteJID          string
	PushName           string
	Status             string
	PausedUntil        time.Time // zero: paused until reopened
	PreviousResponseID string    // Responses API continuation of assistant bots
	CloseReason        string
	Reason             string // why it has its status: trigger, fallback, operator, keyword, expire, api, pause expired
	CreatedAt          time.Time
	UpdatedAt          time.Time // last activity
	ClosedAt           time.Time
}

// ---- credentials

// CreateCreds stores c; its name must be unique in its instance, or in the
// organization for credentials of the whole organization. Default
// credentials replace the organization's previous default.
func (s *Store) CreateCreds(ctx context.Context, c *Creds) error {
	defer s.configChanged()
	return s.DoTxn(ctx, func(ctx context.Context) error {
		if c.IsDefault {
			if _, err := s.db.Exec(ctx, "UPDATE openai_creds SET is_default = false WHERE organization_id = $1 AND is_default",
				c.OrganizationID); err != nil {
				return err
			}
		}
		_, err := s.db.Exec(ctx, `INSERT INTO openai_creds (id, organization_id, instance_id, name, api_key, key_hint, base_url,
				is_default, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			c.ID, c.OrganizationID, nullable(c.InstanceID), c.Name, s.seal.seal([]byte(c.APIKey), "openai.creds:"+c.ID),
			c.KeyHint, c.BaseURL, c.IsDefault, millis(c.CreatedAt), millis(c.UpdatedAt))
		if isUniqueViolation(err) {
			if c.InstanceID == "" {
				return wagate.FieldError(wagate.ECONFLICT, "name", "credentials with this name already exist in this organization")
			}
			return wagate.FieldError(wagate.ECONFLICT, "name", "credentials with this name already exist in this instance")
		}
		return err
	})
}

const credsColumns = "id, organization_id, instance_id, name, api_key, key_hint, base_url, is_default, created_at, updated_at"

func (s *Store) scanCreds(row scanner) (*Creds, error) {
	var (
		c                Creds
		instance         *string
		sealed           string
		created, updated int64
	)
	if err := row.Scan(&c.ID, &c.OrganizationID, &instance, &c.Name, &sealed, &c.KeyHint, &c.BaseURL, &c.IsDefault,
		&created, &updated); err != nil {
		return nil, err
	}
	if instance != nil {
		c.InstanceID = *instance
	}
	key, err := s.seal.open(sealed, "openai.creds:"+c.ID)
	if err != nil {
		return nil, fmt.Errorf("credentials %s: %w", c.ID, err)
	}
	c.APIKey = string(key)
	c.CreatedAt, c.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &c, nil
}

// Creds returns credentials id that the instance's bots may use: the
// instance's own, or those of its whole organization.
func (s *Store) Creds(ctx context.Context, instanceID, id string) (*Creds, error) {
	c, err := s.scanCreds(s.db.QueryRow(ctx, "SELECT "+credsColumns+` FROM openai_creds WHERE id = $2
		AND (instance_id = $1 OR (instance_id IS NULL
			AND organization_id = (SELECT organization_id FROM instances WHERE id = $1)))`, instanceID, id))
	return c, notFound(err, "openaiCredsId: no credentials %q in this instance", id)
}

// ListCreds returns the instance's credentials, oldest first.
func (s *Store) ListCreds(ctx context.Context, instanceID string) ([]*Creds, error) {
	return collect(s.scanCreds)(s.db.Query(ctx, "SELECT "+credsColumns+" FROM openai_creds WHERE instance_id = $1 ORDER BY created_at, name", instanceID))
}

// DeleteCreds deletes the instance's credentials id, unless bots or the
// settings still use them: then the ECONFLICT names each user.
func (s *Store) DeleteCreds(ctx context.Context, instanceID, id string) error {
	defer s.configChanged()
	return s.DoTxn(ctx, func(ctx context.Context) error {
		if c, err := s.Creds(ctx, instanceID, id); err != nil {
			return err
		} else if c.InstanceID != instanceID {
			return wagate.Errorf(wagate.ENOTFOUND, "openaiCredsId: no credentials %q in this instance; those of the whole organization are deleted through /api/v1/credentials", id)
		}
		return s.deleteUnusedCreds(ctx, id)
	})
}

// deleteUnusedCreds deletes credentials id unless bots, instance settings
// or chatbots use them: then the ECONFLICT names each user.
func (s *Store) deleteUnusedCreds(ctx context.Context, id string) error {
	var users []string
	bots, err := collect(scanString)(s.db.Query(ctx, "SELECT id FROM openai_bots WHERE creds_id = $1 ORDER BY created_at", id))
	if err != nil {
		return err
	}
	for _, b := range bots {
		users = append(users, "bot "+b)
	}
	settings, err := collect(scanString)(s.db.Query(ctx, `SELECT i.name FROM openai_settings st
		JOIN instances i ON i.id = st.instance_id WHERE st.creds_id = $1 ORDER BY i.name`, id))
	if err != nil {
		return err
	}
	for _, name := range settings {
		users = append(users, "the settings of instance "+name)
	}
	chatbots, err := collect(scanString)(s.db.Query(ctx, "SELECT id FROM chatbots WHERE creds_id = $1 ORDER BY created_at", id))
	if err != nil {
		return err
	}
	for _, cb := range chatbots {
		users = append(users, "chatbot "+cb)
	}
	if len(users) > 0 {
		return wagate.FieldError(wagate.ECONFLICT, "openaiCredsId", "still used by "+strings.Join(users, ", "))
	}
	_, err = s.db.Exec(ctx, "DELETE FROM openai_creds WHERE id = $1", id)
	return err
}

// ListOrgCreds returns every credential of the organization, its
// instances' included, oldest first.
func (s *Store) ListOrgCreds(ctx context.Context, orgID string) ([]*Creds, error) {
	return collect(s.scanCreds)(s.db.Query(ctx, "SELECT "+credsColumns+
		" FROM openai_creds WHERE organization_id = $1 ORDER BY created_at, id", orgID))
}

// OrgCreds returns the organization's credentials id.
func (s *Store) OrgCreds(ctx context.Context, orgID, id string) (*Creds, error) {
	c, err := s.scanCreds(s.db.QueryRow(ctx, "SELECT "+credsColumns+" FROM openai_creds WHERE organization_id = $1 AND id = $2", orgID, id))
	return c, notFound(err, "openaiCredsId: no credentials %q in this organization", id)
}

// DefaultCreds returns the organization's default credentials, ENOTFOUND
// when it has none.
func (s *Store) DefaultCreds(ctx context.Context, orgID string) (*Creds, error) {
	c, err := s.scanCreds(s.db.QueryRow(ctx, "SELECT "+credsColumns+" FROM openai_creds WHERE organization_id = $1 AND is_default", orgID))
	return c, notFound(err, "openaiCredsId: the organization has no default credentials")
}

// DeleteOrgCreds deletes the organization's credentials id unless
// something uses them; the default ones are refused while a chatbot relies
// on them by naming no credentials of its own.
func (s *Store) DeleteOrgCreds(ctx context.Context, orgID, id string) error {
	defer s.configChanged()
	return s.DoTxn(ctx, func(ctx context.Context) error {
		c, err := s.OrgCreds(ctx, orgID, id)
		if err != nil {
			return err
		}
		if c.IsDefault {
			relying, err := collect(scanString)(s.db.Query(ctx, `SELECT id FROM chatbots WHERE organization_id = $1
				AND creds_id IS NULL AND openai_api_key IS NULL ORDER BY created_at`, orgID))
			if err != nil {
				return err
			}
			if len(relying) > 0 {
				return wagate.FieldError(wagate.ECONFLICT, "id", "the organization's default credentials, relied on by chatbot "+
					strings.Join(relying, ", chatbot "))
			}
		}
		return s.deleteUnusedCreds(ctx, id)
	})
}

// ---- bots

const botColumns = `id, instance_id, enabled, description, creds_id, bot_type, assistant_id, function_url, model, prompts,
	max_tokens, trigger_type, trigger_operator, trigger_value, priority, tools, behaviour, ignore_jids, chatbot_id, created_at,
	updated_at`

func scanBot(row scanner) (*Bot, error) {
	var (
		b                                     Bot
		creds, chatbot                        *string
		maxTokens                             *int64
		prompts, tools, behaviour, ignoreJids string
		created, updated                      int64
	)
	err := row.Scan(&b.ID, &b.InstanceID, &b.Enabled, &b.Description, &creds, &b.BotType, &b.AssistantID, &b.FunctionURL,
		&b.Model, &prompts, &maxTokens, &b.TriggerType, &b.TriggerOperator, &b.TriggerValue, &b.Priority, &tools,
		&behaviour, &ignoreJids, &chatbot, &created, &updated)
	if err != nil {
		return nil, err
	}
	if creds != nil {
		b.CredsID = *creds
	}
	if chatbot != nil {
		b.ChatbotID = *chatbot
	}
	if maxTokens != nil {
		n := int(*maxTokens)
		b.MaxTokens = &n
	}
	b.Tools = json.RawMessage(tools)
	for _, f := range []struct {
		src string
		dst any
	}{{prompts, &b.Prompts}, {behaviour, &b.Behaviour}, {ignoreJids, &b.IgnoreJids}} {
		if err := json.Unmarshal([]byte(f.src), f.dst); err != nil {
			return nil, fmt.Errorf("bot %s: %w", b.ID, err)
		}
	}
	b.CreatedAt, b.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &b, nil
}

func botArgs(b *Bot) ([]any, error) {
	prompts, err := json.Marshal(b.Prompts)
	if err != nil {
		return nil, err
	}
	behaviour, err := json.Marshal(b.Behaviour)
	if err != nil {
		return nil, err
	}
	ignore, err := json.Marshal(nonNil(b.IgnoreJids))
	if err != nil {
		return nil, err
	}
	tools := b.Tools
	if len(tools) == 0 {
		tools = json.RawMessage("[]")
	}
	return []any{b.ID, b.InstanceID, b.Enabled, b.Description, nullable(b.CredsID), b.BotType, b.AssistantID, b.FunctionURL,
		b.Model, string(prompts), b.MaxTokens, b.TriggerType, b.TriggerOperator, b.TriggerValue, b.Priority, string(tools),
		string(behaviour), string(ignore), nullable(b.ChatbotID), millis(b.CreatedAt), millis(b.UpdatedAt)}, nil
}

// CreateBot stores a new bot.
func (s *Store) CreateBot(ctx context.Context, b *Bot) error {
	defer s.configChanged()
	args, err := botArgs(b)
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, "INSERT INTO openai_bots ("+botColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,
		$11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21)`, args...)
	return err
}

// UpdateBot replaces every field of the instance's bot b.ID except its
// creation time.
func (s *Store) UpdateBot(ctx context.Context, b *Bot) error {
	defer s.configChanged()
	args, err := botArgs(b)
	if err != nil {
		return err
	}
	args = append(args[:19], args[20]) // all but created_at
	res, err := s.db.Exec(ctx, `UPDATE openai_bots SET enabled = $3, description = $4, creds_id = $5, bot_type = $6,
		assistant_id = $7, function_url = $8, model = $9, prompts = $10, max_tokens = $11, trigger_type = $12,
		trigger_operator = $13, trigger_value = $14, priority = $15, tools = $16, behaviour = $17, ignore_jids = $18,
		chatbot_id = $19, updated_at = $20 WHERE id = $1 AND instance_id = $2`, args...)
	return mustAffect(res, err, "botId: no bot %q in this instance", b.ID)
}

// Bot returns the instance's bot id.
func (s *Store) Bot(ctx context.Context, instanceID, id string) (*Bot, error) {
	b, err := scanBot(s.db.QueryRow(ctx, "SELECT "+botColumns+" FROM openai_bots WHERE instance_id = $1 AND id = $2", instanceID, id))
	return b, notFound(err, "botId: no bot %q in this instance", id)
}

// ListBots returns the instance's bots, oldest first.
func (s *Store) ListBots(ctx context.Context, instanceID string) ([]*Bot, error) {
	return collect(scanBot)(s.db.Query(ctx, "SELECT "+botColumns+" FROM openai_bots WHERE instance_id = $1 ORDER BY created_at, id", instanceID))
}

// DeleteBot deletes the instance's bot with its sessions; a settings
// fallback that named it is cleared.
func (s *Store) DeleteBot(ctx context.Context, instanceID, id string) error {
	defer s.configChanged()
	res, err := s.db.Exec(ctx, "DELETE FROM openai_bots WHERE instance_id = $1 AND id = $2", instanceID, id)
	return mustAffect(res, err, "botId: no bot %q in this instance", id)
}

// ---- settings

// OpenAISettings returns the instance's settings, ENOTFOUND if never saved.
func (s *Store) OpenAISettings(ctx context.Context, instanceID string) (*OpenAISettings, error) {
	var (
		st                OpenAISettings
		creds, fallback   *string
		behaviour, ignore string
		created, updated  int64
	)
	err := s.db.QueryRow(ctx, `SELECT instance_id, creds_id, fallback_id, behaviour, ignore_jids, transcription_error_message,
		created_at, updated_at FROM openai_settings WHERE instance_id = $1`, instanceID).
		Scan(&st.InstanceID, &creds, &fallback, &behaviour, &ignore, &st.TranscriptionErrorMessage, &created, &updated)
	if err != nil {
		return nil, notFound(err, "settings: not saved for this instance")
	}
	if creds != nil {
		st.CredsID = *creds
	}
	if fallback != nil {
		st.FallbackID = *fallback
	}
	if err := json.Unmarshal([]byte(behaviour), &st.Behaviour); err != nil {
		return nil, fmt.Errorf("settings behaviour: %w", err)
	}
	if err := json.Unmarshal([]byte(ignore), &st.IgnoreJids); err != nil {
		return nil, fmt.Errorf("settings ignoreJids: %w", err)
	}
	st.CreatedAt, st.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &st, nil
}

// PutOpenAISettings creates or replaces the instance's settings.
func (s *Store) PutOpenAISettings(ctx context.Context, st *OpenAISettings) error {
	defer s.configChanged()
	behaviour, err := json.Marshal(st.Behaviour)
	if err != nil {
		return err
	}
	ignore, err := json.Marshal(nonNil(st.IgnoreJids))
	if err != nil {
		return err
	}
	_, err = s.db.Exec(ctx, `INSERT INTO openai_settings (instance_id, creds_id, fallback_id, behaviour, ignore_jids,
			transcription_error_message, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (instance_id) DO UPDATE SET creds_id = excluded.creds_id, fallback_id = excluded.fallback_id,
			behaviour = excluded.behaviour, ignore_jids = excluded.ignore_jids,
			transcription_error_message = excluded.transcription_error_message, updated_at = excluded.updated_at`,
		st.InstanceID, nullable(st.CredsID), nullable(st.FallbackID), string(behaviour), string(ignore),
		st.TranscriptionErrorMessage, millis(st.CreatedAt), millis(st.UpdatedAt))
	return err
}

// ---- sessions

const sessionColumns = `id, instance_id, bot_id, remote_jid, push_name, status, paused_until, previous_response_id,
	close_reason, created_at, updated_at, closed_at, status_reason`

func scanSession(row scanner) (*Session, error) {
	var (
		se                  Session
		pausedUntil, closed *int64
		created, updated    int64
	)
	err := row.Scan(&se.ID, &se.InstanceID, &se.BotID, &se.RemoteJID, &se.PushName, &se.Status, &pausedUntil,
		&se.PreviousResponseID, &se.CloseReason, &created, &updated, &closed, &se.Reason)
	if err != nil {
		return nil, err
	}
	if pausedUntil != nil {
		se.PausedUntil = fromMillis(*pausedUntil)
	}
	if closed != nil {
		se.ClosedAt = fromMillis(*closed)
	}
	se.CreatedAt, se.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &se, nil
}

func optionalMillis(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	ms := millis(t)
	return &ms
}

// CreateSession opens a session. A chat that already has a live session is
// an ECONFLICT: the database allows one live session per chat.
func (s *Store) CreateSession(ctx context.Context, se *Session) error {
	_, err := s.db.Exec(ctx, "INSERT INTO openai_sessions ("+sessionColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		se.ID, se.InstanceID, se.BotID, se.RemoteJID, se.PushName, se.Status, optionalMillis(se.PausedUntil),
		se.PreviousResponseID, se.CloseReason, millis(se.CreatedAt), millis(se.UpdatedAt), optionalMillis(se.ClosedAt),
		se.Reason)
	if isUniqueViolation(err) {
		return wagate.FieldError(wagate.ECONFLICT, "remoteJid", "this chat already has a live session")
	}
	return err
}

// UpdateSession saves the mutable fields of the instance's session se.ID.
func (s *Store) UpdateSession(ctx context.Context, se *Session) error {
	return s.updateFound(ctx, fmt.Sprintf("session %q not found", se.ID), liveSessionConflict, `UPDATE openai_sessions SET push_name = $3,
			status = $4, paused_until = $5, previous_response_id = $6, close_reason = $7, updated_at = $8, closed_at = $9,
			status_reason = $10
		WHERE instance_id = $1 AND id = $2`,
		se.InstanceID, se.ID, se.PushName, se.Status, optionalMillis(se.PausedUntil), se.PreviousResponseID,
		se.CloseReason, millis(se.UpdatedAt), optionalMillis(se.ClosedAt), se.Reason)
}

// liveSessionConflict names the error of a second live session of a chat.
func liveSessionConflict(err error) error {
	if isUniqueViolation(err) {
		return wagate.FieldError(wagate.ECONFLICT, "remoteJid", "this chat already has a live session")
	}
	return err
}

// TouchSession saves the session's activity: its push name, the provider's
// last response id and its update time, leaving its status as it is. Unlike
// UpdateSession it rewrites no index entry: SQLite updates every index on a
// column of the SET list, even to the same value, and the live-session index
// is on status.
func (s *Store) TouchSession(ctx context.Context, se *Session) error {
	return s.updateFound(ctx, fmt.Sprintf("session %q not found", se.ID), liveSessionConflict, `UPDATE openai_sessions
		SET push_name = $3, previous_response_id = $4, updated_at = $5 WHERE instance_id = $1 AND id = $2`,
		se.InstanceID, se.ID, se.PushName, se.PreviousResponseID, millis(se.UpdatedAt))
}

const liveSessionSQL = "SELECT " + sessionColumns + ` FROM openai_sessions
	WHERE instance_id = $1 AND remote_jid = $2 AND status <> 'closed'`

// LiveSession returns the chat's opened or paused session, or nil.
func (s *Store) LiveSession(ctx context.Context, instanceID, remoteJID string) (*Session, error) {
	se, err := scanSession(s.db.QueryRow(ctx, liveSessionSQL, instanceID, remoteJID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return se, err
}

// SessionFilter selects sessions of one instance.
type SessionFilter struct {
	BotID     string
	RemoteJID string
	Status    string
	Before    *SessionCursor // continue after this position
	Limit     int
}

// SessionCursor is a position in the newest-first session order.
type SessionCursor struct {
	CreatedAt time.Time
	ID        string
}

// ListSessions returns the instance's sessions matching f, newest first:
// by created_at, then by id, which for ids from NewSessionID is creation
// order. The cursor is the same pair.
func (s *Store) ListSessions(ctx context.Context, instanceID string, f SessionFilter) ([]*Session, error) {
	var beforeAt int64
	var beforeID string
	if f.Before != nil {
		beforeAt, beforeID = millis(f.Before.CreatedAt), f.Before.ID
	}
	return collect(scanSession)(s.db.Query(ctx, "SELECT "+sessionColumns+` FROM openai_sessions
		WHERE instance_id = $1 AND ($2 = '' OR bot_id = $2) AND ($3 = '' OR remote_jid = $3) AND ($4 = '' OR status = $4)
			AND ($5 = '' OR created_at < $6 OR (created_at = $6 AND id < $5))
		ORDER BY created_at DESC, id DESC LIMIT $7`,
		instanceID, f.BotID, f.RemoteJID, f.Status, beforeID, beforeAt, f.Limit))
}

// DeleteSession deletes one of the instance's sessions.
func (s *Store) DeleteSession(ctx context.Context, instanceID, id string) error {
	res, err := s.db.Exec(ctx, "DELETE FROM openai_sessions WHERE instance_id = $1 AND id = $2", instanceID, id)
	return mustAffect(res, err, "session %q not found", id)
}

// DeleteChatSessions deletes every session of the chat (of one bot when
// botID is set) and reports how many.
func (s *Store) DeleteChatSessions(ctx context.Context, instanceID, remoteJID, botID string) (int64, error) {
	res, err := s.db.Exec(ctx, `DELETE FROM openai_sessions WHERE instance_id = $1 AND remote_jid = $2 AND ($3 = '' OR bot_id = $3)`,
		instanceID, remoteJID, botID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// LiveSessionsIdleSince returns opened and paused sessions of every
// instance whose last activity is before t, for the expiry sweeper.
func (s *Store) LiveSessionsIdleSince(ctx context.Context, t time.Time, limit int) ([]*Session, error) {
	return collect(scanSession)(s.db.Query(ctx, "SELECT "+sessionColumns+` FROM openai_sessions
		WHERE status <> 'closed' AND updated_at < $1 ORDER BY updated_at LIMIT $2`, millis(t), limit))
}
