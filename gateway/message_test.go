package gateway_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestInboundStoresAndReports(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	inst := s.createInstance("shop", rc.URL)
	rc.setSecret(inst.Secret)

	r := s.must(http.StatusOK, "POST", "/webhook/evolution", inst.Token, map[string]any{
		"numberId":      inst.Number,
		"key":           map[string]any{"id": "MSG-1", "remoteJid": "5511999@s.whatsapp.net", "fromMe": false},
		"pushName":      "Ana",
		"message":       map[string]any{"extendedTextMessage": map[string]any{"text": "hello"}},
		"profilePicUrl": "https://example.com/p.png", // Evolution senders add fields; they are ignored
	}).json(t)
	if r["status"] != "success" || r["messageId"] != "MSG-1" {
		t.Fatalf("inbound = %v", r)
	}
	d := rc.waitEvents(t, "messages.upsert", 1)[0]
	if d.VerifyErr != nil {
		t.Fatal(d.VerifyErr)
	}
	rec := d.record(t)
	key := rec["key"].(map[string]any)
	if key["id"] != "MSG-1" || key["remoteJid"] != "5511999@s.whatsapp.net" || key["fromMe"] != false ||
		rec["pushName"] != "Ana" || rec["messageType"] != "extendedTextMessage" || rec["instanceId"] != inst.ID {
		t.Fatalf("messages.upsert data = %v", rec)
	}
	if msg := rec["message"].(map[string]any); msg["extendedTextMessage"].(map[string]any)["text"] != "hello" {
		t.Fatalf("message = %v", msg)
	}

	// A missing key.id gets one; the global key may post for any instance.
	r = s.must(http.StatusOK, "POST", "/webhook/evolution", testAPIKey, map[string]any{
		"numberId": inst.Number, "key": map[string]any{"remoteJid": "x@custom"}, "message": map[string]any{"conversation": "hi"},
	}).json(t)
	if id, _ := r["messageId"].(string); id == "" {
		t.Fatalf("no generated id: %v", r)
	}
	rc.waitEvents(t, "messages.upsert", 2)
}

func TestInboundIsIdempotent(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	inst := s.createInstance("shop", rc.URL)
	rc.setSecret(inst.Secret)

	for range 3 {
		if r := s.inbound(inst, "SAME", "5511@s.whatsapp.net", "hi"); r.Status != http.StatusOK {
			t.Fatalf("status %d: %s", r.Status, r.Body)
		}
	}
	// The same id from another instance is another message.
	other := s.createInstance("other", "")
	s.must(http.StatusOK, "POST", "/webhook/set/other", other.Token, map[string]any{"webhook": map[string]any{"url": rc.URL, "events": []string{"MESSAGES_UPSERT"}}})
	s.inbound(other, "SAME", "5511@s.whatsapp.net", "hi")

	// Deliveries are in order per instance: once the sentinel sent after
	// the repeats has arrived, every event before it has too.
	s.must(http.StatusCreated, "POST", "/message/sendText/shop", inst.Token, map[string]any{"number": "5511", "text": "sentinel"})
	rc.waitEvents(t, "send.message", 1)
	var shop, others int
	for _, d := range rc.events("messages.upsert") {
		switch d.Envelope.Instance {
		case "shop":
			shop++
		case "other":
			others++
		}
	}
	if shop != 1 {
		t.Fatalf("shop got %d messages.upsert for one message id, want 1", shop)
	}
	eventually(t, func() bool {
		n := 0
		for _, d := range rc.events("messages.upsert") {
			if d.Envelope.Instance == "other" {
				n++
			}
		}
		return n == 1
	}, "the other instance's message")
}

func TestInboundValidation(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	other := s.createInstance("other", "")
	s.must(http.StatusCreated, "POST", "/instance/create", testAPIKey, map[string]any{"instanceName": "wa", "integration": "WHATSAPP", "number": "5599"})

	valid := func(edit func(m map[string]any)) map[string]any {
		m := map[string]any{
			"numberId": inst.Number,
			"key":      map[string]any{"id": "A", "remoteJid": "5511@s.whatsapp.net"},
			"message":  map[string]any{"conversation": "hi"},
		}
		edit(m)
		return m
	}
	tests := []struct {
		name   string
		key    string
		body   any
		status int
		want   string
	}{
		{"no key", "", valid(func(map[string]any) {}), 401, "apikey"},
		{"malformed", inst.Token, `{"numberId":`, 400, "body: malformed JSON"},
		{"wrong type", inst.Token, valid(func(m map[string]any) { m["key"] = "x" }), 400, "key: must be an object"},
		{"missing numberId", inst.Token, valid(func(m map[string]any) { delete(m, "numberId") }), 400, "numberId: required"},
		{"missing key", inst.Token, valid(func(m map[string]any) { delete(m, "key") }), 400, "key: required"},
		{"missing remoteJid", inst.Token, valid(func(m map[string]any) { m["key"] = map[string]any{"id": "A"} }), 400, "key.remoteJid: required"},
		{"missing message", inst.Token, valid(func(m map[string]any) { delete(m, "message") }), 400, "message: required"},
		{"message not object", inst.Token, valid(func(m map[string]any) { m["message"] = "hi" }), 400, "message: must be an object"},
		{"empty message", inst.Token, valid(func(m map[string]any) { m["message"] = map[string]any{} }), 400, "message: must hold a message"},
		{"conversation not string", inst.Token, valid(func(m map[string]any) { m["message"] = map[string]any{"conversation": 1} }), 400, "message.conversation: must be a string"},
		{"empty conversation", inst.Token, valid(func(m map[string]any) { m["message"] = map[string]any{"conversation": " "} }), 400, "message.conversation: must not be empty"},
		{"extended without text", inst.Token, valid(func(m map[string]any) { m["message"] = map[string]any{"extendedTextMessage": map[string]any{}} }), 400, "message.extendedTextMessage.text: required"},
		{"long id", inst.Token, valid(func(m map[string]any) { m["key"] = map[string]any{"id": strings.Repeat("a", 300), "remoteJid": "x"} }), 400, "key.id: longer than 256"},
		{"unknown numberId", testAPIKey, valid(func(m map[string]any) { m["numberId"] = "nobody" }), 404, "numberId"},
		{"other instance's numberId", other.Token, valid(func(map[string]any) {}), 403, "numberId: does not belong"},
		{"whatsapp instance", testAPIKey, valid(func(m map[string]any) { m["numberId"] = "5599" }), 422, "numberId: belongs to a WHATSAPP instance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := s.call("POST", "/webhook/evolution", tt.key, tt.body)
			if r.Status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.Status, tt.status, r.Body)
			}
			if msgs := r.messages(t); !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, tt.want) }) {
				t.Fatalf("messages %q lack %q", msgs, tt.want)
			}
		})
	}
	// Media with a caption is accepted; its kind is the message type.
	r := s.must(http.StatusOK, "POST", "/webhook/evolution", inst.Token, valid(func(m map[string]any) {
		m["message"] = map[string]any{"imageMessage": map[string]any{"caption": "look", "url": "https://example.com/a.jpg"}}
	}))
	if r.json(t)["status"] != "success" {
		t.Fatalf("image: %s", r.Body)
	}
}

func TestSendText(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	inst := s.createInstance("shop", rc.URL)
	rc.setSecret(inst.Secret)

	tests := []struct {
		number, jid string
	}{
		{"5511999990000", "5511999990000@s.whatsapp.net"},
		{"+55 (11) 99999-0000", "5511999990000@s.whatsapp.net"},
		{"abc@custom", "abc@custom"}, // the suffix is kept, unlike Evolution
		{"123-456@g.us", "123-456@g.us"},
		{"99887766@lid", "99887766@lid"},
	}
	for i, tt := range tests {
		before := time.Now().Unix()
		rec := s.must(http.StatusCreated, "POST", "/message/sendText/shop", inst.Token, map[string]any{"number": tt.number, "text": "hello"}).json(t)
		key := rec["key"].(map[string]any)
		if key["remoteJid"] != tt.jid || key["fromMe"] != true || key["id"] == "" {
			t.Fatalf("%s: key = %v", tt.number, key)
		}
		if rec["status"] != "SERVER_ACK" || rec["messageType"] != "conversation" || rec["message"].(map[string]any)["conversation"] != "hello" {
			t.Fatalf("%s: record = %v", tt.number, rec)
		}
		if ts := int64(rec["messageTimestamp"].(float64)); ts < before {
			t.Fatalf("messageTimestamp %d before the request", ts)
		}
		got := rc.waitEvents(t, "send.message", i+1)[i]
		if got.VerifyErr != nil {
			t.Fatal(got.VerifyErr)
		}
		if data := got.record(t); data["key"].(map[string]any)["id"] != key["id"] {
			t.Fatalf("send.message data = %v, want the sent record %v", data, rec)
		}
	}

	// Quoting and delay.
	rec := s.must(http.StatusCreated, "POST", "/message/sendText/shop", inst.Token, map[string]any{
		"number": "5511", "text": "re", "delay": 50, "quoted": map[string]any{"key": map[string]any{"id": "Q1"}},
	}).json(t)
	ext := rec["message"].(map[string]any)["extendedTextMessage"].(map[string]any)
	if rec["messageType"] != "extendedTextMessage" || ext["text"] != "re" || ext["contextInfo"].(map[string]any)["stanzaId"] != "Q1" {
		t.Fatalf("quoted record = %v", rec)
	}

	bad := []struct {
		body any
		want string
	}{
		{map[string]any{"text": "x"}, "number: required"},
		{map[string]any{"number": "55ab", "text": "x"}, "number: must be a phone number"},
		{map[string]any{"number": "@x", "text": "x"}, "number: not a valid JID"},
		{map[string]any{"number": "5511"}, "text: required"},
		{map[string]any{"number": "5511", "text": strings.Repeat("a", 65537)}, "text: longer than 65536"},
		{map[string]any{"number": "5511", "text": "x", "delay": -1}, "delay: must be from 0"},
		{map[string]any{"number": "5511", "text": "x", "delay": "soon"}, "delay: must be an integer"},
		{map[string]any{"number": "5511", "text": "x", "quoted": map[string]any{}}, "quoted.key.id: required"},
		{map[string]any{"number": "5511", "text": "x", "extra": 1}, "extra: unknown field"},
	}
	for _, b := range bad {
		r := s.must(http.StatusBadRequest, "POST", "/message/sendText/shop", inst.Token, b.body)
		if msgs := r.messages(t); !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, b.want) }) {
			t.Fatalf("%v: messages %q lack %q", b.body, msgs, b.want)
		}
	}
}
