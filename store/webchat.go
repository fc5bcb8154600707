package store

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/wagate/wagate"
)

// IntegrationWebchat is the internal integration of chatbots' web chats:
// one instance per chatbot, made on demand and never listed or created
// through Evolution's instance routes.
const IntegrationWebchat = "WEBCHAT"

// WebchatInstanceName is the name of chatbot id's web chat instance.
func WebchatInstanceName(chatbotID string) string { return "webchat-" + chatbotID }

// Lead is an email a web chat visitor gave the chatbot.
type Lead struct {
	ID        string
	ChatbotID string
	SessionID string
	Platform  string
	SnsUserID string
	Email     string
	CreatedAt time.Time
}

// EnsureWebchat returns chatbot cb's web chat instance and its bot,
// creating both the first time. The bot answers as the chatbot, every
// message (triggerType all), at once and in one part, never expiring its
// sessions and holding a human takeover until it is handed back.
func (s *Store) EnsureWebchat(ctx context.Context, cb *Chatbot, tokenHash string) (*Instance, *Bot, error) {
	name := WebchatInstanceName(cb.ID)
	var (
		inst *Instance
		bot  *Bot
	)
	err := s.DoTxn(ctx, func(ctx context.Context) error {
		var err error
		inst, err = scanInstance(s.db.QueryRow(ctx, "SELECT "+instanceColumns+" FROM instances WHERE name = $1", name))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			now := time.Now().UTC()
			inst = &Instance{ID: NewID(), OrganizationID: cb.OrganizationID, Name: name, Integration: IntegrationWebchat,
				TokenHash: tokenHash, TokenPrefix: "webchat", CreatedAt: now, UpdatedAt: now}
			if err := s.CreateInstance(ctx, inst); err != nil {
				return err
			}
		case err != nil:
			return err
		case inst.OrganizationID != cb.OrganizationID || inst.Integration != IntegrationWebchat:
			return wagate.Errorf(wagate.ECONFLICT, "instance %s is not this chatbot's web chat", name)
		}
		bots, err := s.ListBots(ctx, inst.ID)
		if err != nil {
			return err
		}
		for _, b := range bots {
			if b.ChatbotID == cb.ID {
				bot = b
				return nil
			}
		}
		now := time.Now().UTC()
		bot = &Bot{
			ID: NewID(), InstanceID: inst.ID, Enabled: true, Description: "web chat of chatbot " + cb.ID,
			ChatbotID: cb.ID, BotType: "chatCompletion", TriggerType: "all",
			Prompts: Prompts{System: []string{}, User: []string{}, Assistant: []string{}},
			// Expire 0 never expires; PauseMinutes 0 holds a takeover until
			// it is handed back; no typing delays on a web page.
			Behaviour: Behaviour{Expire: ref(0), DelayMessage: ref(0), TimePerChar: ref(0), DebounceTime: ref(0),
				SplitMessages: ref(false), KeepOpen: ref(true), PauseMinutes: ref(0), UnknownMessage: ref(""),
				ListeningFromMe: ref(false), StopBotFromMe: ref(false)},
			IgnoreJids: []string{}, CreatedAt: now, UpdatedAt: now,
		}
		return s.CreateBot(ctx, bot)
	})
	if err != nil {
		return nil, nil, err
	}
	return inst, bot, nil
}

// PublicChatbot returns the chatbot id if it is public; any other is not
// found, whichever organization it belongs to.
func (s *Store) PublicChatbot(ctx context.Context, id string) (*Chatbot, error) {
	c, err := s.scanChatbot(s.db.QueryRow(ctx, "SELECT "+chatbotColumns+` FROM chatbots WHERE id = $1 AND is_public
		AND organization_id IN (SELECT id FROM organizations WHERE NOT deleting)`, id))
	return c, notFound(err, "chatbotId: no public chatbot %q", id)
}

// PublicChatbotBySlug returns the oldest public chatbot with slug: slugs
// are unique per organization only, so the first organization to publish
// a slug keeps it, and the others' chatbots are reached by id.
func (s *Store) PublicChatbotBySlug(ctx context.Context, slug string) (*Chatbot, error) {
	c, err := s.scanChatbot(s.db.QueryRow(ctx, "SELECT "+chatbotColumns+` FROM chatbots WHERE slug = $1 AND is_public
		AND organization_id IN (SELECT id FROM organizations WHERE NOT deleting) ORDER BY created_at, id LIMIT 1`, slug))
	return c, notFound(err, "no public chatbot %q", slug)
}

// PutLead stores a visitor's lead; a visitor who already gave one keeps
// the first.
func (s *Store) PutLead(ctx context.Context, l *Lead) error {
	_, err := s.db.Exec(ctx, `INSERT INTO webchat_leads (id, chatbot_id, session_id, platform, sns_user_id, email, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (chatbot_id, platform, sns_user_id) DO NOTHING`,
		l.ID, l.ChatbotID, l.SessionID, l.Platform, l.SnsUserID, l.Email, millis(l.CreatedAt))
	return err
}

func scanLead(row scanner) (*Lead, error) {
	var (
		l       Lead
		created int64
	)
	if err := row.Scan(&l.ID, &l.ChatbotID, &l.SessionID, &l.Platform, &l.SnsUserID, &l.Email, &created); err != nil {
		return nil, err
	}
	l.CreatedAt = fromMillis(created)
	return &l, nil
}

const leadColumns = "id, chatbot_id, session_id, platform, sns_user_id, email, created_at"

// VisitorLead returns the visitor's lead, or nil.
func (s *Store) VisitorLead(ctx context.Context, chatbotID, platform, snsUserID string) (*Lead, error) {
	l, err := scanLead(s.db.QueryRow(ctx, "SELECT "+leadColumns+` FROM webchat_leads
		WHERE chatbot_id = $1 AND platform = $2 AND sns_user_id = $3`, chatbotID, platform, snsUserID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return l, err
}

// LeadCursor is a position in the newest-first lead order.
type LeadCursor struct {
	CreatedAt time.Time
	ID        string
}

// Leads returns the chatbot's leads, newest first, after before, up to limit.
func (s *Store) Leads(ctx context.Context, chatbotID string, before *LeadCursor, limit int) ([]*Lead, error) {
	var beforeAt int64
	var beforeID string
	if before != nil {
		beforeAt, beforeID = millis(before.CreatedAt), before.ID
	}
	return collect(scanLead)(s.db.Query(ctx, "SELECT "+leadColumns+` FROM webchat_leads WHERE chatbot_id = $1
		AND ($2 = '' OR created_at < $3 OR (created_at = $3 AND id < $2)) ORDER BY created_at DESC, id DESC LIMIT $4`,
		chatbotID, beforeID, beforeAt, limit))
}

// MarkPartial records that the instance's message id is an answer cut
// short.
func (s *Store) MarkPartial(ctx context.Context, instanceID, messageID string) error {
	_, err := s.db.Exec(ctx, `INSERT INTO webchat_partials (instance_id, message_id) VALUES ($1, $2)
		ON CONFLICT DO NOTHING`, instanceID, messageID)
	return err
}

// Partials returns which of the instance's message ids are answers cut short.
func (s *Store) Partials(ctx context.Context, instanceID string, ids []string) (map[string]bool, error) {
	out := map[string]bool{}
	if len(ids) == 0 {
		return out, nil
	}
	q := &query{}
	q.add("SELECT message_id FROM webchat_partials WHERE instance_id = ").add(q.arg(instanceID)).add(" AND message_id IN (")
	vs := make([]any, len(ids))
	for i, id := range ids {
		vs[i] = id
	}
	q.add(q.in(vs, "")).add(")")
	list, err := collect(scanString)(s.db.Query(ctx, q.sql.String(), q.args...))
	for _, id := range list {
		out[id] = true
	}
	return out, err
}

func ref[T any](v T) *T { return &v }
