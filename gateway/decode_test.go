package gateway_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
)

// Type errors are named by the JSON path the client sent, every one of a
// body at once, on every route family (each of these bodies decodes into a
// struct with embedded structs).
func TestTypeErrorsNameJSONPaths(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	o := s.createOrg("Acme")
	for _, tt := range []struct {
		name, method, path, key string
		body                    string
		want                    []string
	}{
		{"bot", "POST", "/openai/create/shop", inst.Token,
			`{"botType":"chatCompletion","maxTokens":"100","delayMessage":"0","expire":"x","triggerType":5,"ignoreJids":[1]}`,
			[]string{"delayMessage: must be an integer", "expire: must be an integer", "ignoreJids[0]: must be a string",
				"maxTokens: must be an integer", "triggerType: must be a string"}},
		{"settings", "POST", "/openai/settings/shop", inst.Token, `{"expire":"1","keepOpen":"no"}`,
			[]string{"expire: must be an integer", "keepOpen: must be a boolean"}},
		{"instance", "POST", "/instance/create", testAPIKey, `{"instanceName":5,"rejectCall":"yes","bogus":1}`,
			[]string{"bogus: unknown field", "instanceName: must be a string", "rejectCall: must be a boolean"}},
		{"sendText", "POST", "/message/sendText/shop", inst.Token, `{"number":5511,"text":true,"quoted":{"key":{"id":5}}}`,
			[]string{"number: must be a string", "quoted.key.id: must be a string", "text: must be a string"}},
		{"webhook", "POST", "/webhook/set/shop", inst.Token, `{"webhook":{"url":1,"events":"x","headers":{"a":2}}}`,
			[]string{"webhook.events: must be an array", "webhook.headers.a: must be a string", "webhook.url: must be a string"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := s.call(tt.method, tt.path, tt.key, tt.body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			got := r.messages(t)
			for _, w := range tt.want {
				if !slices.Contains(got, w) {
					t.Errorf("messages %q lack %q", got, w)
				}
			}
		})
	}
	// /api routes name them in fields.
	e := s.apiMust(http.StatusBadRequest, "POST", "/api/v1/credentials", o.Key, `{"name":1,"apiKey":2,"default":"yes"}`).apiError(t)
	for _, f := range []string{"name", "apiKey", "default"} {
		if e.Fields[f] == "" {
			t.Errorf("credentials: no problem for %s: %+v", f, e)
		}
	}
}

// Every problem of a body comes in one answer, those that need the
// database included.
func TestProblemsComeAtOnce(t *testing.T) {
	s := startServer(t, "")
	inst := s.createInstance("shop", "")
	for _, tt := range []struct {
		name, path, body string
		want             []string
	}{
		{"empty bot", "/openai/create/shop", `{}`, []string{"botType: required", "triggerType: required", "model: required",
			"openaiCredsId: required"}},
		{"bad references", "/openai/create/shop", `{"botType":"chatCompletion","triggerType":"all","openaiCredsId":"nope","chatbotId":"nope","ignoreJids":["<string>"]}`,
			[]string{"chatbotId: no chatbot", "openaiCredsId: no credentials", "ignoreJids[0]: must be a JID"}},
		{"settings", "/openai/settings/shop", `{"ignoreJids":["<string>","@g.us","5511@s.whatsapp.net"],"expire":-1}`,
			[]string{"ignoreJids[0]: must be a JID"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := s.call("POST", tt.path, inst.Token, tt.body)
			if r.Status != http.StatusBadRequest {
				t.Fatalf("status %d: %s", r.Status, r.Body)
			}
			msgs := r.messages(t)
			for _, w := range tt.want {
				if !slices.ContainsFunc(msgs, func(m string) bool { return strings.HasPrefix(m, w) }) {
					t.Errorf("messages %q lack %q", msgs, w)
				}
			}
			for _, m := range msgs {
				if strings.HasPrefix(m, "ignoreJids[1]") || strings.HasPrefix(m, "ignoreJids[2]") {
					t.Errorf("a valid entry is refused: %q", m)
				}
			}
		})
	}
}
