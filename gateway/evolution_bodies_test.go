package gateway_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestEvolutionBodiesAreAccepted posts to each Evolution route wagate
// serves a body with every field Evolution's schema (src/validate and the
// event schemas) defines for it: a client written for Evolution is never
// told a field is unknown. The routes may still refuse a value (an
// EVOLUTION instance has no WhatsApp to mark messages read on), never a
// field name.
func TestEvolutionBodiesAreAccepted(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	key := map[string]any{"id": "3EB0", "remoteJid": "5511911111111@s.whatsapp.net", "fromMe": true}
	quoted := map[string]any{"key": map[string]any{"id": "3EB0", "remoteJid": "5511911111111@s.whatsapp.net", "fromMe": false}, "message": map[string]any{"conversation": "hi"}}
	common := func(body map[string]any) map[string]any {
		body["number"] = "5511911111111"
		body["delay"] = 0
		body["quoted"] = quoted
		body["everyOne"] = false
		body["mentioned"] = []string{"5511922222222"}
		return body
	}
	png := "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
	cases := []struct {
		method, route string
		body          map[string]any
	}{
		{"POST", "/message/sendText", common(map[string]any{"text": "hi", "linkPreview": false})},
		{"POST", "/message/sendMedia", common(map[string]any{"mediatype": "image", "mimetype": "image/png", "media": png, "fileName": "a.png", "caption": "c"})},
		{"POST", "/message/sendWhatsAppAudio", common(map[string]any{"audio": "T2dnUw=="})},
		{"POST", "/message/sendSticker", common(map[string]any{"sticker": png})},
		{"POST", "/message/sendLocation", common(map[string]any{"latitude": -23.5, "longitude": -46.6, "name": "Shop", "address": "Av. Paulista"})},
		{"POST", "/message/sendContact", common(map[string]any{"contact": []map[string]any{{
			"fullName": "Bia", "wuid": "5511922222222", "phoneNumber": "5511922222222", "organization": "Shop", "email": "b@example.com", "url": "https://example.com"}}})},
		{"POST", "/message/sendReaction", map[string]any{"key": key, "reaction": "👍"}},
		{"POST", "/message/sendPoll", common(map[string]any{"name": "Which?", "selectableCount": 1, "values": []string{"a", "b"}})},
		{"POST", "/message/sendList", common(map[string]any{"title": "Menu", "description": "d", "footerText": "f", "buttonText": "Open",
			"sections": []map[string]any{{"title": "S", "rows": []map[string]any{{"title": "r", "description": "d", "rowId": "1"}}}}})},
		{"POST", "/message/sendButtons", common(map[string]any{"thumbnailUrl": "https://example.com/t.png", "title": "T", "description": "d", "footer": "f",
			"buttons": []map[string]any{{"type": "reply", "displayText": "Yes", "id": "y", "url": "https://example.com", "phoneNumber": "5511",
				"currency": "BRL", "name": "n", "keyType": "random", "key": "k"}}})},
		{"POST", "/message/sendStatus", map[string]any{"type": "text", "content": "hi", "caption": "c", "backgroundColor": "#000000", "font": 1,
			"statusJidList": []string{"5511911111111"}, "allContacts": false}},
		{"POST", "/chat/whatsappNumbers", map[string]any{"numbers": []string{"5511911111111"}}},
		{"POST", "/chat/markMessageAsRead", map[string]any{"readMessages": []map[string]any{key}}},
		{"POST", "/chat/archiveChat", map[string]any{"chat": "5511911111111@s.whatsapp.net", "lastMessage": map[string]any{"key": key}, "archive": true}},
		{"POST", "/chat/markChatUnread", map[string]any{"chat": "5511911111111@s.whatsapp.net", "lastMessage": map[string]any{"key": key}}},
		{"DELETE", "/chat/deleteMessageForEveryone", map[string]any{"id": "3EB0", "fromMe": true, "remoteJid": "5511911111111@s.whatsapp.net", "participant": "5511922222222@s.whatsapp.net"}},
		{"POST", "/chat/fetchProfilePictureUrl", map[string]any{"number": "5511911111111", "picture": "https://example.com/p.jpg"}},
		{"POST", "/chat/updateMessage", map[string]any{"number": "5511911111111", "text": "edited", "key": key}},
		{"POST", "/chat/sendPresence", map[string]any{"number": "5511911111111", "delay": 0, "presence": "paused"}},
		{"POST", "/chat/updateBlockStatus", map[string]any{"number": "5511911111111", "status": "block"}},
		{"POST", "/chat/findContacts", map[string]any{"where": map[string]any{"_id": "x", "id": "x", "remoteJid": "5511911111111@s.whatsapp.net", "pushName": "Ana"}}},
		{"POST", "/chat/findMessages", map[string]any{"where": map[string]any{"key": key, "message": map[string]any{}}, "limit": 10}},
		{"POST", "/chat/findStatusMessage", map[string]any{"where": map[string]any{"_id": "x", "remoteJid": "5511911111111@s.whatsapp.net", "id": "3EB0",
			"fromMe": true, "participant": "5511922222222@s.whatsapp.net", "status": "READ"}, "limit": 10}},
		{"POST", "/chat/getBase64FromMediaMessage", map[string]any{"message": map[string]any{"key": key}, "convertToMp4": false}},
		{"POST", "/settings/set", map[string]any{"rejectCall": false, "msgCall": "", "groupsIgnore": false, "alwaysOnline": false,
			"readMessages": false, "readStatus": false, "syncFullHistory": false, "wavoipToken": ""}},
		{"POST", "/webhook/set", map[string]any{"webhook": map[string]any{"enabled": false, "url": "https://example.com/hook",
			"headers": map[string]any{"authorization": "Bearer x"}, "byEvents": false, "base64": false, "events": []string{"MESSAGES_UPSERT"}}}},
		{"POST", "/instance/setPresence", map[string]any{"presence": "available"}},
	}
	for _, c := range cases {
		t.Run(c.route, func(t *testing.T) {
			r := s.call(c.method, c.route+"/"+inst.Name, inst.Token, c.body)
			if strings.Contains(string(r.Body), "unknown field") {
				t.Errorf("%s %s: %d %s", c.method, c.route, r.Status, r.Body)
			}
		})
	}
	t.Run("/instance/create", func(t *testing.T) {
		events := []string{"MESSAGES_UPSERT"}
		r := s.call("POST", "/instance/create", testAPIKey, map[string]any{
			"instanceName": "every-field", "token": "", "number": "5511933333333", "businessId": "", "qrcode": false, "integration": "EVOLUTION",
			"rejectCall": false, "msgCall": "", "groupsIgnore": false, "alwaysOnline": false, "readMessages": false, "readStatus": false,
			"syncFullHistory": false, "wavoipToken": "",
			"proxyHost": "", "proxyPort": "", "proxyProtocol": "", "proxyUsername": "", "proxyPassword": "",
			"webhookUrl": "https://example.com/hook", "webhookByEvents": false, "webhookEvents": events,
			"rabbitmqEnabled": false, "rabbitmqEvents": []string{}, "natsEnabled": false, "natsEvents": []string{}, "sqsEnabled": false, "sqsEvents": []string{},
			"chatwootAccountId": "", "chatwootToken": "", "chatwootUrl": "", "chatwootSignMsg": false, "chatwootReopenConversation": false,
			"chatwootConversationPending": false, "chatwootImportContacts": false, "chatwootNameInbox": "", "chatwootMergeBrazilContacts": false,
			"chatwootImportMessages": false, "chatwootDaysLimitImportMessages": 0,
		})
		if r.Status != http.StatusCreated {
			t.Fatalf("POST /instance/create: %d %s", r.Status, r.Body)
		}
		// The flat webhook fields set the webhook, as Evolution's do.
		hook := s.must(http.StatusOK, "GET", "/webhook/find/every-field", testAPIKey, nil).json(t)
		if hook["url"] != "https://example.com/hook" || hook["enabled"] != true {
			t.Errorf("webhook from webhookUrl = %v", hook)
		}
	})
	t.Run("unknown fields are still refused", func(t *testing.T) {
		r := s.call("POST", "/message/sendText/"+inst.Name, inst.Token, map[string]any{"number": "5511911111111", "text": "hi", "colour": "red"})
		if r.Status != http.StatusBadRequest || !strings.Contains(string(r.Body), "colour: unknown field") {
			t.Fatalf("unknown field: %d %s", r.Status, r.Body)
		}
	})
}
