package gateway

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/bots"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/gateway/webhook"
	"github.com/wagate/wagate/store"
)

// contactEvent is a contact in contacts.upsert and contacts.update.
type contactEvent struct {
	RemoteJID     string  `json:"remoteJid"`
	PushName      string  `json:"pushName"`
	ProfilePicURL *string `json:"profilePicUrl"`
	InstanceID    string  `json:"instanceId"`
}

// chatEvent is a chat in chats.upsert and chats.update.
type chatEvent struct {
	RemoteJID      string `json:"remoteJid"`
	InstanceID     string `json:"instanceId"`
	Name           string `json:"name"`
	UnreadMessages int    `json:"unreadMessages"`
	Archived       bool   `json:"archived"`
}

// Contacts records what a channel's network says about contacts (push
// names, the address book, a history sync) and reports the new ones as
// contacts.upsert and the renamed ones as contacts.update (channel.Host).
func (g *Gateway) Contacts(ctx context.Context, inst *store.Instance, list []store.Contact) error {
	return g.outbox.Tx(ctx, func(ctx context.Context) error { return g.saveContacts(ctx, inst, list) })
}

func (g *Gateway) saveContacts(ctx context.Context, inst *store.Instance, list []store.Contact) error {
	changed, err := g.store.SaveContacts(ctx, inst.ID, list)
	if err != nil {
		return err
	}
	return g.contactsChanged(ctx, inst, changed)
}

// contactsChanged reports contacts saved new (contacts.upsert) or changed
// (contacts.update).
func (g *Gateway) contactsChanged(ctx context.Context, inst *store.Instance, changed []*store.Contact) error {
	if len(changed) == 0 {
		return nil
	}
	return emitNewAndChanged(ctx, g, inst, webhook.ContactsUpsert, webhook.ContactsUpdate, changed,
		func(c *store.Contact) (contactEvent, bool) {
			return contactEvent{RemoteJID: c.JID, PushName: c.Name(), InstanceID: inst.ID}, c.New
		})
}

// emitNewAndChanged reports the new ones of changed as the event upsert
// and the others as update, each list in one event, as Evolution does.
func emitNewAndChanged[T, E any](ctx context.Context, g *Gateway, inst *store.Instance, upsert, update string,
	changed []T, event func(T) (E, bool)) error {
	var upserted, updated []E
	for _, c := range changed {
		if e, isNew := event(c); isNew {
			upserted = append(upserted, e)
		} else {
			updated = append(updated, e)
		}
	}
	if len(upserted) > 0 {
		if err := g.outbox.Emit(ctx, inst, upsert, upserted); err != nil {
			return err
		}
	}
	if len(updated) > 0 {
		return g.outbox.Emit(ctx, inst, update, updated)
	}
	return nil
}

// Chats records what a channel's network says about chats (a history
// sync) and reports the new ones as chats.upsert and the changed ones as
// chats.update (channel.Host).
func (g *Gateway) Chats(ctx context.Context, inst *store.Instance, list []store.ChatInfo) error {
	return g.outbox.Tx(ctx, func(ctx context.Context) error {
		changed, err := g.store.SaveChats(ctx, inst.ID, list)
		if err != nil || len(changed) == 0 {
			return err
		}
		return emitNewAndChanged(ctx, g, inst, webhook.ChatsUpsert, webhook.ChatsUpdate, changed,
			func(c *store.ChatInfo) (chatEvent, bool) {
				return chatEvent{RemoteJID: c.JID, InstanceID: inst.ID, Name: c.Name, UnreadMessages: c.Unread, Archived: c.Archived}, c.New
			})
	})
}

// noteReceived reports, in the transaction that stored m, the chat m began
// (chats.upsert). Broadcasts, statuses and newsletters are nobody's chat.
func (g *Gateway) noteReceived(ctx context.Context, inst *store.Instance, in bots.Inbound, m *store.Message) error {
	if !m.NewChat || nobodysChat(in) {
		return nil
	}
	name := ""
	if !in.IsGroup && !in.FromMe {
		name = in.PushName
	}
	unread := 0
	if !in.FromMe {
		unread = 1
	}
	ev := []chatEvent{{RemoteJID: m.ChatKey, InstanceID: inst.ID, Name: name, UnreadMessages: unread}}
	return g.outbox.Emit(ctx, inst, webhook.ChatsUpsert, ev)
}

func nobodysChat(in bots.Inbound) bool {
	return strings.HasSuffix(in.ChatJID, "@broadcast") || strings.HasSuffix(in.ChatJID, "@newsletter")
}

// senderContact is the contact the name a message's sender gave belongs to,
// if any: the chat, or in a group the participant.
func senderContact(in bots.Inbound, m *store.Message) []store.Contact {
	if nobodysChat(in) || in.FromMe || strings.TrimSpace(in.PushName) == "" {
		return nil
	}
	who := m.ChatKey
	if in.IsGroup {
		who = m.Participant
	}
	if who == "" {
		return nil
	}
	return []store.Contact{{JID: who, PushName: in.PushName}}
}

// ---- findContacts

// contactRecord is a contact in Evolution's findContacts.
type contactRecord struct {
	ID            string    `json:"id"`
	RemoteJID     string    `json:"remoteJid"`
	PushName      *string   `json:"pushName"`
	ProfilePicURL *string   `json:"profilePicUrl"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
	InstanceID    string    `json:"instanceId"`
	IsGroup       bool      `json:"isGroup"`
	IsSaved       bool      `json:"isSaved"`
	Type          string    `json:"type"` // contact, group or group_member, as Evolution says
}

func viewContact(c *store.Contact) contactRecord {
	group := strings.HasSuffix(c.JID, "@g.us")
	r := contactRecord{
		ID: c.JID, RemoteJID: c.JID, PushName: optional(c.Name()), CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt,
		InstanceID: c.InstanceID, IsGroup: group, IsSaved: c.Name() != "", Type: "contact",
	}
	switch {
	case group:
		r.Type = "group"
	case !r.IsSaved:
		r.Type = "group_member"
	}
	return r
}

// findWhere is the where of Evolution's findContacts and findChats: a
// record named by id (_id in Evolution v1), or its remoteJid, and a name.
type findWhere struct {
	ID               string `json:"id"`
	LegacyID         string `json:"_id"`
	RemoteJID        string `json:"remoteJid"`
	PushName         string `json:"pushName"`
	MessageTimestamp *struct {
		Gte any `json:"gte"`
		Lte any `json:"lte"`
	} `json:"messageTimestamp"`
}

// jid is the record the where names, and the field it came from.
func (w findWhere) jid() (string, string) {
	switch {
	case strings.TrimSpace(w.RemoteJID) != "":
		return w.RemoteJID, "where.remoteJid"
	case strings.TrimSpace(w.ID) != "":
		return w.ID, "where.id"
	case strings.TrimSpace(w.LegacyID) != "":
		return w.LegacyID, "where._id"
	}
	return "", ""
}

// findPage is the paging of Evolution's find routes: page numbers and a
// page size called offset; sort is accepted, the order is newest first.
type findPage struct {
	Page   *int   `json:"page"`
	Offset *int   `json:"offset"`
	Sort   string `json:"sort"`
}

// bounds checks the page and returns the page number and size, def when
// the client gave none.
func (f findPage) bounds(def int) (page, size int, err error) {
	var p wagate.Problems
	page, size = 1, def
	if f.Page != nil {
		if page = *f.Page; page < 1 || page > maxFindPage {
			p.Add("page", fmt.Sprintf("must be from 1 to %d", maxFindPage))
		}
	}
	if f.Offset != nil {
		if size = *f.Offset; size < 1 || size > maxFindPageSize {
			p.Add("offset", fmt.Sprintf("must be a page size from 1 to %d", maxFindPageSize))
		}
	}
	switch f.Sort {
	case "", "asc", "desc":
	default:
		p.Add("sort", `must be "asc" or "desc"`)
	}
	return page, size, p.Err()
}

// readFind reads the body of Evolution's find routes, which may be empty:
// the filter and the page bounds.
func readFind(c echo.Context, defaultSize int) (findWhere, int, int, error) {
	var req struct {
		Where findWhere `json:"where"`
		findPage
	}
	if c.Request().ContentLength != 0 {
		if err := api.Decode(c, &req, false); err != nil {
			return findWhere{}, 0, 0, err
		}
	}
	page, size, err := req.bounds(defaultSize)
	return req.Where, page, size, err
}

// findContacts is Evolution's contact list: the people the instance
// learned of from their messages and its network, most recently changed
// first, a page at a time (page, and offset the page size).
func (g *Gateway) findContacts(c echo.Context) error {
	where, page, size, err := readFind(c, defaultFindPageSize)
	if err != nil {
		return err
	}
	f := store.ContactFilter{Name: strings.TrimSpace(where.PushName)}
	if raw, field := where.jid(); raw != "" {
		jid, problem := normalizeNumber(raw)
		if problem != "" {
			return wagate.Invalid(field, problem)
		}
		f.JID = jid
	}
	list, _, err := g.store.FindContacts(c.Request().Context(), instanceOf(c).ID, f, (page-1)*size, size)
	if err != nil {
		return err
	}
	out := make([]contactRecord, 0, len(list))
	for _, ct := range list {
		out = append(out, viewContact(ct))
	}
	return c.JSON(http.StatusOK, out)
}

// ---- findStatusMessage

// statusRecord is a message's delivery status in Evolution's
// findStatusMessage (its MessageUpdate rows). wagate keeps each message's
// latest status, so a message has one record.
type statusRecord struct {
	ID          string `json:"id"`
	KeyID       string `json:"keyId"`
	RemoteJID   string `json:"remoteJid"`
	FromMe      bool   `json:"fromMe"`
	Participant string `json:"participant,omitempty"`
	Status      string `json:"status"`
	MessageID   string `json:"messageId"`
	InstanceID  string `json:"instanceId"`
}

var deliveryStatuses = []string{"ERROR", "PENDING", "SERVER_ACK", "DELIVERY_ACK", "READ", "PLAYED", "DELETED"}

// findStatusMessage is Evolution's delivery status search: where names the
// message (id), the chat (remoteJid), fromMe, participant or status; page
// and offset page it, newest first.
func (g *Gateway) findStatusMessage(c echo.Context) error {
	var req struct {
		Where struct {
			LegacyID    string `json:"_id"`
			ID          string `json:"id"`
			RemoteJID   string `json:"remoteJid"`
			FromMe      *bool  `json:"fromMe"`
			Participant string `json:"participant"`
			Status      string `json:"status"`
		} `json:"where"`
		Limit *int `json:"limit"` // Evolution's schema has it; offset is the page size
		findPage
	}
	if c.Request().ContentLength != 0 {
		if err := api.Decode(c, &req, false); err != nil {
			return err
		}
	}
	page, size, err := req.bounds(defaultFindPageSize)
	if err != nil {
		return err
	}
	w := req.Where
	f := store.FindMessagesFilter{ID: strings.TrimSpace(w.ID), FromMe: w.FromMe, Status: strings.ToUpper(w.Status)}
	if f.ID == "" {
		f.ID = strings.TrimSpace(w.LegacyID)
	}
	var p wagate.Problems
	if f.Status != "" && !slices.Contains(deliveryStatuses, f.Status) {
		p.Add("where.status", "must be one of "+strings.Join(deliveryStatuses, ", "))
	}
	if w.Participant != "" {
		jid, problem := normalizeNumber(w.Participant)
		if problem != "" {
			p.Add("where.participant", problem)
		}
		f.Participant = jid
	}
	if err := p.Err(); err != nil {
		return err
	}
	ctx := c.Request().Context()
	inst := instanceOf(c)
	out := []statusRecord{}
	if strings.TrimSpace(w.RemoteJID) != "" {
		key, ok, err := g.lookupChat(ctx, inst.ID, w.RemoteJID, "where.remoteJid")
		if err != nil {
			return err
		}
		if !ok {
			return c.JSON(http.StatusOK, out)
		}
		f.ChatKey = key
	}
	list, _, err := g.store.FindMessages(ctx, inst.ID, f, (page-1)*size, size)
	if err != nil {
		return err
	}
	for _, m := range list {
		out = append(out, statusRecord{
			ID: itoa(m.Seq), KeyID: m.ID, RemoteJID: m.RemoteJID, FromMe: m.FromMe, Participant: m.Participant,
			Status: m.Status, MessageID: itoa(m.Seq), InstanceID: inst.ID,
		})
	}
	return c.JSON(http.StatusOK, out)
}
