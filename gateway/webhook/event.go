// Package webhook delivers the gateway's events to each instance's webhook:
// a durable outbox written in the same transaction as the change it reports,
// and a dispatcher that delivers it signed, in order per instance, with
// retries.
package webhook

import "strings"

// Event names (Evolution's dotted names, as sent in the envelope).
const (
	MessagesUpsert   = "messages.upsert"
	SendMessage      = "send.message"
	MessagesUpdate   = "messages.update"
	MessagesDelete   = "messages.delete"
	ConnectionUpdate = "connection.update"
	QRCodeUpdated    = "qrcode.updated"
	InstanceDelete   = "instance.delete"
	ContactsUpsert   = "contacts.upsert"
	ContactsUpdate   = "contacts.update"
	ChatsUpsert      = "chats.upsert"
	ChatsUpdate      = "chats.update"

	SessionOpened = "openai.session.opened"
	SessionPaused = "openai.session.paused"
	SessionClosed = "openai.session.closed"
	OpenAIError   = "openai.error"
)

// Subscriptions are the names a webhook's event list may hold: Evolution's
// full list, so existing clients' subscriptions are accepted, including
// events wagate does not emit (yet), and wagate's own OPENAI_* events.
var Subscriptions = []string{
	"APPLICATION_STARTUP", "QRCODE_UPDATED", "MESSAGES_SET", "MESSAGES_UPSERT", "MESSAGES_EDITED", "MESSAGES_UPDATE",
	"MESSAGES_DELETE", "SEND_MESSAGE", "SEND_MESSAGE_UPDATE", "CONTACTS_SET", "CONTACTS_UPSERT", "CONTACTS_UPDATE",
	"PRESENCE_UPDATE", "CHATS_SET", "CHATS_UPSERT", "CHATS_UPDATE", "CHATS_DELETE", "GROUPS_UPSERT", "GROUP_UPDATE",
	"GROUP_PARTICIPANTS_UPDATE", "CONNECTION_UPDATE", "LABELS_EDIT", "LABELS_ASSOCIATION", "CALL", "TYPEBOT_START",
	"TYPEBOT_CHANGE_STATUS", "REMOVE_INSTANCE", "LOGOUT_INSTANCE", "INSTANCE_CREATE", "INSTANCE_DELETE", "STATUS_INSTANCE",
	"OPENAI_SESSION_OPENED", "OPENAI_SESSION_PAUSED", "OPENAI_SESSION_CLOSED", "OPENAI_ERROR",
}

// SubscriptionName turns "messages.upsert" into "MESSAGES_UPSERT".
func SubscriptionName(event string) string {
	return strings.ToUpper(strings.ReplaceAll(event, ".", "_"))
}

// PathSuffix is what byEvents appends to the URL: "messages.upsert" → "messages-upsert".
func PathSuffix(event string) string {
	return strings.ReplaceAll(event, ".", "-")
}

// Wants reports whether a webhook subscribed to events receives event; an
// empty list means every event.
func Wants(events []string, event string) bool {
	if len(events) == 0 {
		return true
	}
	name := SubscriptionName(event)
	for _, e := range events {
		if e == name {
			return true
		}
	}
	return false
}
