package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Contact is a person (or group) an instance knows of from its network.
type Contact struct {
	InstanceID string
	JID        string
	PushName   string // the name they gave themselves
	FullName   string // the name in the account's address book
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// New is set by SaveContacts: the contact was not known before.
	New bool
}

// Name is the name to show: the address book's, else their own.
func (c *Contact) Name() string {
	if c.FullName != "" {
		return c.FullName
	}
	return c.PushName
}

const contactColumns = `instance_id, jid, push_name, full_name, created_at, updated_at`

func scanContact(row scanner) (*Contact, error) {
	var (
		c                Contact
		created, updated int64
	)
	if err := row.Scan(&c.InstanceID, &c.JID, &c.PushName, &c.FullName, &created, &updated); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &c, nil
}

// SaveContacts stores what the network says about the instance's contacts;
// an empty name keeps the stored one. It returns the contacts that are new
// or whose names changed, as stored now: a name seen again changes nothing
// and costs no event.
func (s *Store) SaveContacts(ctx context.Context, instanceID string, list []Contact) ([]*Contact, error) {
	var changed []*Contact
	err := s.DoTxn(ctx, func(ctx context.Context) error {
		if err := s.SaveContactsLater(ctx, instanceID, list, &changed); err != nil {
			return err
		}
		return s.db.Flush(ctx) // the caller reads changed now
	})
	return changed, err
}

// SaveContactsLater is SaveContacts for a caller that sends the upserts
// with its transaction's next statement: inside a PostgreSQL transaction
// changed is set once a statement that answers at once has answered (or
// at the commit); elsewhere before it returns.
func (s *Store) SaveContactsLater(ctx context.Context, instanceID string, list []Contact, changed *[]*Contact) error {
	now := millis(time.Now())
	for _, c := range list {
		if c.JID == "" || (c.PushName == "" && c.FullName == "") {
			continue
		}
		err := s.db.DeferRow(ctx, func(row scanner) error {
			got, err := scanContact(row)
			if errors.Is(err, sql.ErrNoRows) {
				return nil // known, with these names
			}
			if err != nil {
				return fmt.Errorf("save contact: %w", err)
			}
			got.New = millis(got.CreatedAt) == now && got.CreatedAt.Equal(got.UpdatedAt)
			*changed = append(*changed, got)
			return nil
		}, `INSERT INTO contacts (`+contactColumns+`)
			VALUES ($1, $2, $3, $4, $5, $5)
			ON CONFLICT (instance_id, jid) DO UPDATE SET
				push_name = CASE WHEN excluded.push_name <> '' THEN excluded.push_name ELSE contacts.push_name END,
				full_name = CASE WHEN excluded.full_name <> '' THEN excluded.full_name ELSE contacts.full_name END,
				updated_at = excluded.updated_at
			WHERE (excluded.push_name <> '' AND excluded.push_name <> contacts.push_name)
				OR (excluded.full_name <> '' AND excluded.full_name <> contacts.full_name)
			RETURNING `+contactColumns, instanceID, c.JID, c.PushName, c.FullName, now)
		if err != nil {
			return err
		}
	}
	return nil
}

// ContactFilter is Evolution's findContacts where.
type ContactFilter struct {
	JID  string // one contact
	Name string // part of the push name or the address book's name, any case
}

// FindContacts returns the instance's contacts matching f, most recently
// changed first, skipping offset, and how many match in all.
func (s *Store) FindContacts(ctx context.Context, instanceID string, f ContactFilter, offset, limit int) ([]*Contact, int, error) {
	var q query
	q.add(" WHERE instance_id = " + q.arg(instanceID))
	if f.JID != "" {
		q.add(" AND jid = " + q.arg(f.JID))
	}
	if f.Name != "" {
		like := q.arg("%" + likeEscaper.Replace(strings.ToLower(f.Name)) + "%")
		q.add(` AND (LOWER(push_name) LIKE ` + like + ` ESCAPE '\' OR LOWER(full_name) LIKE ` + like + ` ESCAPE '\')`)
	}
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) FROM contacts"+q.sql.String(), q.args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if offset >= total {
		return nil, total, nil
	}
	q.add(" ORDER BY updated_at DESC, jid LIMIT " + q.arg(limit) + " OFFSET " + q.arg(offset))
	list, err := collect(scanContact)(s.db.Query(ctx, "SELECT "+contactColumns+" FROM contacts"+q.sql.String(), q.args...))
	return list, total, err
}

// contactsOf returns the instance's contacts among jids, by JID.
func (s *Store) contactsOf(ctx context.Context, instanceID string, jids []any) (map[string]*Contact, error) {
	var q query
	q.add("SELECT " + contactColumns + " FROM contacts WHERE instance_id = " + q.arg(instanceID) +
		" AND jid IN (" + q.in(jids, "") + ")")
	list, err := collect(scanContact)(s.db.Query(ctx, q.sql.String(), q.args...))
	if err != nil {
		return nil, err
	}
	out := make(map[string]*Contact, len(list))
	for _, c := range list {
		out[c.JID] = c
	}
	return out, nil
}

// ChatInfo is what the network says about one chat of an instance.
type ChatInfo struct {
	InstanceID string
	JID        string
	Name       string
	Unread     int
	Archived   bool
	LastAt     time.Time // the newest message, by the network's clock; zero when unknown
	CreatedAt  time.Time
	UpdatedAt  time.Time
	// New is set by SaveChats: the chat was not known before.
	New bool
}

const chatColumns = `instance_id, jid, name, unread, archived, last_at, created_at, updated_at`

func scanChat(row scanner) (*ChatInfo, error) {
	var (
		c                        ChatInfo
		lastAt, created, updated int64
	)
	if err := row.Scan(&c.InstanceID, &c.JID, &c.Name, &c.Unread, &c.Archived, &lastAt, &created, &updated); err != nil {
		return nil, err
	}
	if lastAt > 0 {
		c.LastAt = fromMillis(lastAt)
	}
	c.CreatedAt, c.UpdatedAt = fromMillis(created), fromMillis(updated)
	return &c, nil
}

// SaveChats stores what the network says about the instance's chats (a
// history sync): the name unless empty, the unread count and archived flag,
// the newest message's time unless older than the stored one. It returns
// the chats that are new or changed, as stored now.
func (s *Store) SaveChats(ctx context.Context, instanceID string, list []ChatInfo) ([]*ChatInfo, error) {
	var changed []*ChatInfo
	now := millis(time.Now())
	err := s.DoTxn(ctx, func(ctx context.Context) error {
		for _, c := range list {
			if c.JID == "" {
				continue
			}
			var lastAt int64
			if !c.LastAt.IsZero() {
				lastAt = millis(c.LastAt)
			}
			got, err := scanChat(s.db.QueryRow(ctx, `INSERT INTO chats (`+chatColumns+`)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
				ON CONFLICT (instance_id, jid) DO UPDATE SET
					name = CASE WHEN excluded.name <> '' THEN excluded.name ELSE chats.name END,
					unread = excluded.unread,
					archived = excluded.archived,
					last_at = CASE WHEN excluded.last_at > chats.last_at THEN excluded.last_at ELSE chats.last_at END,
					updated_at = excluded.updated_at
				WHERE (excluded.name <> '' AND excluded.name <> chats.name) OR excluded.unread <> chats.unread
					OR excluded.archived <> chats.archived OR excluded.last_at > chats.last_at
				RETURNING `+chatColumns, instanceID, c.JID, c.Name, c.Unread, c.Archived, lastAt, now))
			if errors.Is(err, sql.ErrNoRows) {
				continue
			}
			if err != nil {
				return fmt.Errorf("save chat: %w", err)
			}
			got.New = millis(got.CreatedAt) == now && got.CreatedAt.Equal(got.UpdatedAt)
			changed = append(changed, got)
		}
		return nil
	})
	return changed, err
}

// ChatListing is one chat of FindChats: its conversation when messages
// were stored, what the network said about it, and its contact; any of the
// three may be nil, never all.
type ChatListing struct {
	Key          string
	Conversation *Conversation
	Chat         *ChatInfo
	Contact      *Contact
}

// FindChats returns the instance's chats, newest activity first, skipping
// offset, and how many there are: the conversations of stored messages and
// the chats only the network told of. A non-empty key selects one chat.
func (s *Store) FindChats(ctx context.Context, instanceID, key string, offset, limit int) ([]*ChatListing, int, error) {
	var q query
	inst := q.arg(instanceID)
	var oneConv, oneChat string
	if key != "" {
		k := q.arg(key)
		oneConv, oneChat = " AND c.chat_key = "+k, " AND h.jid = "+k
	}
	q.add(`FROM (SELECT c.chat_key AS jid, c.last_at AS at FROM conversations c WHERE c.instance_id = ` + inst + oneConv + `
		UNION ALL
		SELECT h.jid, h.last_at FROM chats h WHERE h.instance_id = ` + inst + oneChat + ` AND NOT EXISTS (
			SELECT 1 FROM conversations c WHERE c.instance_id = ` + inst + ` AND c.chat_key = h.jid)) k`)
	var total int
	if err := s.db.QueryRow(ctx, "SELECT COUNT(*) "+q.sql.String(), q.args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	if offset >= total {
		return nil, total, nil
	}
	sel := "SELECT k.jid " + q.sql.String() + " ORDER BY k.at DESC, k.jid LIMIT " + q.arg(limit) + " OFFSET " + q.arg(offset)
	keys, err := collect(scanString)(s.db.Query(ctx, sel, q.args...))
	if err != nil || len(keys) == 0 {
		return nil, total, err
	}
	args := make([]any, len(keys))
	for i, k := range keys {
		args[i] = k
	}
	var cq query
	cq.add(`SELECT ` + conversationColumns + `, c.last_seq FROM conversations c WHERE c.instance_id = ` + cq.arg(instanceID) +
		` AND c.chat_key IN (` + cq.in(args, "") + `)`)
	convs, err := collect(scanConversation)(s.db.Query(ctx, cq.sql.String(), cq.args...))
	if err != nil {
		return nil, 0, err
	}
	if err := s.completeConversations(ctx, instanceID, convs); err != nil {
		return nil, 0, err
	}
	var hq query
	hq.add(`SELECT ` + chatColumns + ` FROM chats WHERE instance_id = ` + hq.arg(instanceID) + ` AND jid IN (` + hq.in(args, "") + `)`)
	chats, err := collect(scanChat)(s.db.Query(ctx, hq.sql.String(), hq.args...))
	if err != nil {
		return nil, 0, err
	}
	contacts, err := s.contactsOf(ctx, instanceID, args)
	if err != nil {
		return nil, 0, err
	}
	out := make([]*ChatListing, len(keys))
	byKey := make(map[string]*ChatListing, len(keys))
	for i, k := range keys {
		out[i] = &ChatListing{Key: k, Contact: contacts[k]}
		byKey[k] = out[i]
	}
	for _, c := range convs {
		byKey[c.ChatKey].Conversation = c
	}
	for _, c := range chats {
		byKey[c.JID].Chat = c
	}
	return out, total, nil
}
