package store

import (
	"cmp"
	"context"
	"fmt"
	"slices"
)

// InboxFilter selects and pages an organization's conversations, across
// its instances (web chats included), for the inbox.
type InboxFilter struct {
	Integrations []string // the channels: instance integrations; none for all
	BotID        string   // conversations this bot took part in
	Status       string   // opened, paused or closed (see Conversation.Status)
	// Before continues below this conversation position (its last_seq):
	// 0 from the top.
	Before int64
	Limit  int
}

// ListInbox returns a page of the organization's conversations, newest
// activity first. Unlike ListConversations it pages by position alone: the
// inbox is read from the top and follows new activity live, so a chat that
// moves up while a client pages is simply shown again at the top.
//
// Each instance's page is read through its activity index and the pages
// are merged (message seqs are global, so positions compare across
// instances): the cost grows with the organization's instances and the
// page size, not with its history.
func (s *Store) ListInbox(ctx context.Context, orgID string, f InboxFilter) ([]*Conversation, error) {
	var iq query
	iq.add(`SELECT id FROM instances WHERE organization_id = ` + iq.arg(orgID))
	if len(f.Integrations) > 0 {
		vs := make([]any, len(f.Integrations))
		for i, v := range f.Integrations {
			vs[i] = v
		}
		iq.add(` AND integration IN (` + iq.in(vs, "") + `)`)
	}
	insts, err := collect(scanString)(s.db.Query(ctx, iq.sql.String(), iq.args...))
	if err != nil {
		return nil, fmt.Errorf("inbox: %w", err)
	}
	var list []*Conversation
	for _, inst := range insts {
		var q query
		ph := q.arg(inst)
		q.add(`SELECT ` + conversationColumns + `, c.last_seq FROM conversations c WHERE c.instance_id = ` + ph)
		if f.Before > 0 {
			q.add(` AND c.last_seq < ` + q.arg(f.Before))
		}
		conversationFilters(&q, ph, ConversationFilter{BotID: f.BotID, Status: f.Status})
		q.add(` ORDER BY c.last_seq DESC LIMIT ` + q.arg(f.Limit))
		page, err := collect(scanConversation)(s.db.Query(ctx, q.sql.String(), q.args...))
		if err != nil {
			return nil, fmt.Errorf("inbox: %w", err)
		}
		list = append(list, page...)
	}
	slices.SortFunc(list, func(a, b *Conversation) int { return cmp.Compare(b.LastSeq, a.LastSeq) })
	if len(list) > f.Limit {
		list = list[:f.Limit]
	}
	byInstance := map[string][]*Conversation{}
	for _, c := range list {
		byInstance[c.InstanceID] = append(byInstance[c.InstanceID], c)
	}
	for inst, convs := range byInstance {
		if err := s.completeConversations(ctx, inst, convs); err != nil {
			return nil, fmt.Errorf("inbox: %w", err)
		}
	}
	return list, nil
}

// InboxVersion is a fingerprint of the organization's conversations and
// their live sessions: it changes with every stored message and every
// session opened, paused, resumed or closed, so that an open inbox can
// poll it cheaply and redraw only when something happened, whichever
// replica stored the change. Each part is read through an index: the
// newest conversation of each instance, and the live sessions.
func (s *Store) InboxVersion(ctx context.Context, orgID string) (string, error) {
	var lastSeq, live, paused, updated int64
	err := s.db.QueryRow(ctx, `SELECT COALESCE(MAX((SELECT MAX(c.last_seq) FROM conversations c WHERE c.instance_id = i.id)), 0)
		FROM instances i WHERE i.organization_id = $1`, orgID).Scan(&lastSeq)
	if err != nil {
		return "", fmt.Errorf("inbox version: %w", err)
	}
	err = s.db.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN ss.status = 'paused' THEN 1 ELSE 0 END), 0),
			COALESCE(MAX(ss.updated_at), 0)
		FROM openai_sessions ss WHERE ss.status <> 'closed'
			AND ss.instance_id IN (SELECT i.id FROM instances i WHERE i.organization_id = $1)`,
		orgID).Scan(&live, &paused, &updated)
	if err != nil {
		return "", fmt.Errorf("inbox version: %w", err)
	}
	return fmt.Sprintf("%d.%d.%d.%d", lastSeq, live, paused, updated), nil
}

// ChatVersion is the fingerprint of one conversation: its newest message,
// how many of its messages wait for the engine's decision, and its live
// session's state.
func (s *Store) ChatVersion(ctx context.Context, instanceID, chatKey string) (string, error) {
	var lastSeq, pending, live, paused, updated int64
	err := s.db.QueryRow(ctx, `SELECT COALESCE(MAX(last_seq), 0),
			(SELECT COUNT(*) FROM messages m WHERE m.instance_id = $1 AND m.chat_key = $2 AND m.state = 'received')
		FROM conversations WHERE instance_id = $1 AND chat_key = $2`, instanceID, chatKey).Scan(&lastSeq, &pending)
	if err != nil {
		return "", fmt.Errorf("chat version: %w", err)
	}
	err = s.db.QueryRow(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN status = 'paused' THEN 1 ELSE 0 END), 0),
			COALESCE(MAX(updated_at), 0)
		FROM openai_sessions WHERE instance_id = $1 AND remote_jid = $2 AND status <> 'closed'`,
		instanceID, chatKey).Scan(&live, &paused, &updated)
	if err != nil {
		return "", fmt.Errorf("chat version: %w", err)
	}
	return fmt.Sprintf("%d.%d.%d.%d.%d", lastSeq, pending, live, paused, updated), nil
}

// MessagesBySeq returns the conversation's messages among seqs.
func (s *Store) MessagesBySeq(ctx context.Context, instanceID, chatKey string, seqs []int64) ([]*Message, error) {
	if len(seqs) == 0 {
		return nil, nil
	}
	var q query
	vs := make([]any, len(seqs))
	for i, v := range seqs {
		vs[i] = v
	}
	q.add("WHERE instance_id = " + q.arg(instanceID) + " AND chat_key = " + q.arg(chatKey) +
		" AND seq IN (" + q.in(vs, int64(0)) + ") ORDER BY seq")
	return s.queryMessages(ctx, q.sql.String(), q.args...)
}
