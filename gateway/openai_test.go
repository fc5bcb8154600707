package gateway_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/wagate/wagate/fakeai"
)

const testProviderKey = "sk-proj-abcdefghijklmnop0123456789wxyz"

// evolutionBotExample is the body from Evolution's documentation that must
// be accepted exactly as it is.
const evolutionBotExample = `{"enabled":true,"openaiCredsId":"%s","botType":"chatCompletion","model":"gpt-4o","systemMessages":["You are a helpful assistant."],"assistantMessages":["Hello, how can I help you?"],"userMessages":["Hello!"],"maxTokens":300,"triggerType":"keyword","triggerOperator":"equals","triggerValue":"teste","expire":20,"keywordFinish":"#SAIR","delayMessage":1000,"unknownMessage":"Mensagem não reconhecida","listeningFromMe":false,"stopBotFromMe":false,"keepOpen":false,"debounceTime":10,"ignoreJids":[],"functionUrl":"https://example.com/fn","assistantId":""}`

// createCreds stores provider credentials for inst and returns their id.
func (s *server) createCreds(inst instance, name, key, baseURL string) string {
	s.t.Helper()
	body := map[string]any{"name": name, "apiKey": key}
	if baseURL != "" {
		body["baseUrl"] = baseURL
	}
	return s.must(http.StatusCreated, "POST", "/openai/creds/"+inst.Name, inst.Token, body).json(s.t)["id"].(string)
}

// createBot creates a bot from body (JSON text or a value) and returns it.
func (s *server) createBot(inst instance, body any) map[string]any {
	s.t.Helper()
	return s.must(http.StatusCreated, "POST", "/openai/create/"+inst.Name, inst.Token, body).json(s.t)
}

func simpleBot(credsID string, edit func(map[string]any)) map[string]any {
	b := map[string]any{"enabled": true, "openaiCredsId": credsID, "botType": "chatCompletion", "model": "gpt-4o", "triggerType": "all"}
	if edit != nil {
		edit(b)
	}
	return b
}

func hasMessage(t *testing.T, r response, want string) {
	t.Helper()
	msgs := r.messages(t)
	if !slices.ContainsFunc(msgs, func(m string) bool { return strings.Contains(m, want) }) {
		t.Fatalf("messages %q lack %q", msgs, want)
	}
}

func TestOpenAICreds(t *testing.T) {
	s := startServer(t, "")
	a := s.createInstance("alpha", "")
	b := s.createInstance("beta", "")

	r := s.must(http.StatusCreated, "POST", "/openai/creds/alpha", a.Token, map[string]any{"name": "main", "apiKey": testProviderKey}).json(t)
	if r["apiKey"] != "sk-…wxyz" || r["baseUrl"] != "https://api.openai.com/v1" || r["name"] != "main" || r["id"] == "" || r["createdAt"] == nil {
		t.Fatalf("creds = %v", r)
	}
	id := r["id"].(string)
	// The same key may serve another instance, and another name here.
	s.createCreds(b, "main", testProviderKey, "")
	local := s.createCreds(a, "local", "ollama-key-0123456789", "http://127.0.0.1:11434/v1/")
	s.must(http.StatusConflict, "POST", "/openai/creds/alpha", a.Token, map[string]any{"name": "main", "apiKey": "sk-other-0123456789"})

	list := s.must(http.StatusOK, "GET", "/openai/creds/alpha", a.Token, nil)
	if strings.Contains(string(list.Body), testProviderKey) || strings.Contains(string(list.Body), "ollama-key") {
		t.Fatalf("list leaks a key: %s", list.Body)
	}
	var creds []map[string]any
	json.Unmarshal(list.Body, &creds)
	byName := map[string]map[string]any{}
	for _, c := range creds {
		byName[c["name"].(string)] = c
	}
	if len(creds) != 2 || byName["local"]["baseUrl"] != "http://127.0.0.1:11434/v1" || byName["local"]["apiKey"] != "…6789" {
		t.Fatalf("creds list = %v", creds)
	}

	for _, tt := range []struct {
		body any
		want string
	}{
		{map[string]any{"apiKey": "k"}, "name: required"},
		{map[string]any{"name": "x"}, "apiKey: required"},
		{map[string]any{"name": "x", "apiKey": "a b"}, "apiKey: must be"},
		{map[string]any{"name": "x", "apiKey": "k", "baseUrl": "api.openai.com"}, "baseUrl: must be an absolute"},
		{map[string]any{"name": "x", "apiKey": "k", "instanceName": "beta"}, "instanceName: unknown field"},
	} {
		hasMessage(t, s.must(http.StatusBadRequest, "POST", "/openai/creds/alpha", a.Token, tt.body), tt.want)
	}

	// In use by a bot and the settings: 409 naming both.
	bot := s.createBot(a, simpleBot(id, nil))
	s.must(http.StatusOK, "POST", "/openai/settings/alpha", a.Token, map[string]any{"openaiCredsId": id})
	r409 := s.must(http.StatusConflict, "DELETE", "/openai/creds/"+id+"/alpha", a.Token, nil)
	hasMessage(t, r409, "bot "+bot["id"].(string))
	hasMessage(t, r409, "the settings of instance alpha")
	// Another instance's credentials are not found through this one.
	s.must(http.StatusNotFound, "DELETE", "/openai/creds/"+id+"/beta", b.Token, nil)
	s.must(http.StatusOK, "DELETE", "/openai/creds/"+local+"/alpha", a.Token, nil)
	s.must(http.StatusNotFound, "DELETE", "/openai/creds/"+local+"/alpha", a.Token, nil)

	if strings.Contains(s.logs.String(), testProviderKey) || strings.Contains(s.logs.String(), "ollama-key") {
		t.Fatal("a provider key is in the logs")
	}
}

func TestOpenAIBotFromEvolutionExample(t *testing.T) {
	s := startServer(t, "")
	a := s.createInstance("alpha", "")
	creds := s.createCreds(a, "main", testProviderKey, "")

	bot := s.createBot(a, fmt.Sprintf(evolutionBotExample, creds))
	want := map[string]any{
		"enabled": true, "openaiCredsId": creds, "botType": "chatCompletion", "model": "gpt-4o", "maxTokens": 300.0,
		"triggerType": "keyword", "triggerOperator": "equals", "triggerValue": "teste", "expire": 20.0,
		"keywordFinish": "#SAIR", "delayMessage": 1000.0, "unknownMessage": "Mensagem não reconhecida",
		"listeningFromMe": false, "stopBotFromMe": false, "keepOpen": false, "debounceTime": 10.0,
		"functionUrl": "https://example.com/fn", "assistantId": "", "priority": 0.0,
		// ours, left out: null inherits the settings
		"groupMode": nil, "pauseMinutes": nil, "speechToText": nil, "splitMessages": nil, "timePerChar": nil,
	}
	for k, v := range want {
		if got, ok := bot[k]; !ok || fmt.Sprint(got) != fmt.Sprint(v) {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if fmt.Sprint(bot["systemMessages"]) != "[You are a helpful assistant.]" || fmt.Sprint(bot["userMessages"]) != "[Hello!]" ||
		fmt.Sprint(bot["assistantMessages"]) != "[Hello, how can I help you?]" {
		t.Errorf("prompts = %v %v %v", bot["systemMessages"], bot["assistantMessages"], bot["userMessages"])
	}
	got := s.must(http.StatusOK, "GET", "/openai/fetch/"+bot["id"].(string)+"/alpha", a.Token, nil).json(t)
	if got["model"] != "gpt-4o" || got["effective"] == nil {
		t.Fatalf("fetch = %v", got)
	}
	list := s.must(http.StatusOK, "GET", "/openai/find/alpha", a.Token, nil)
	var bots []map[string]any
	json.Unmarshal(list.Body, &bots)
	if len(bots) != 1 || bots[0]["id"] != bot["id"] {
		t.Fatalf("find = %s", list.Body)
	}
}

func TestOpenAIBotValidation(t *testing.T) {
	s := startServer(t, "")
	a := s.createInstance("alpha", "")
	b := s.createInstance("beta", "")
	creds := s.createCreds(a, "main", testProviderKey, "")
	otherCreds := s.createCreds(b, "main", testProviderKey, "")

	tests := []struct {
		name string
		edit func(map[string]any)
		want string
	}{
		{"unknown field", func(m map[string]any) { m["temperature"] = 0.2 }, "temperature: unknown field"},
		{"instanceName in body", func(m map[string]any) { m["instanceName"] = "beta" }, "instanceName: unknown field"},
		{"missing botType", func(m map[string]any) { delete(m, "botType") }, "botType: required"},
		{"bad botType", func(m map[string]any) { m["botType"] = "completion" }, "botType: must be"},
		{"missing triggerType", func(m map[string]any) { delete(m, "triggerType") }, "triggerType: required"},
		{"bad triggerType", func(m map[string]any) { m["triggerType"] = "sometimes" }, "triggerType: must be one of"},
		{"chat without model", func(m map[string]any) { delete(m, "model") }, "model: required for chatCompletion"},
		{"assistant without id", func(m map[string]any) { m["botType"] = "assistant" }, "assistantId: required"},
		{"retired assistant", func(m map[string]any) { m["botType"], m["assistantId"] = "assistant", "asst_abc123" }, "retired the Assistants API on 2026-08-26"},
		{"assistant not a prompt", func(m map[string]any) { m["botType"], m["assistantId"] = "assistant", "abc" }, "assistantId: must be a stored prompt id"},
		{"keyword without operator", func(m map[string]any) { m["triggerType"], m["triggerValue"] = "keyword", "hi" }, "triggerOperator: required"},
		{"keyword bad operator", func(m map[string]any) {
			m["triggerType"], m["triggerOperator"], m["triggerValue"] = "keyword", "like", "hi"
		}, "triggerOperator: must be one of"},
		{"keyword without value", func(m map[string]any) { m["triggerType"], m["triggerOperator"] = "keyword", "equals" }, "triggerValue: required"},
		{"bad regex", func(m map[string]any) {
			m["triggerType"], m["triggerOperator"], m["triggerValue"] = "keyword", "regex", "(a+"
		}, "triggerValue: invalid regular expression"},
		{"backtracking regex", func(m map[string]any) {
			m["triggerType"], m["triggerOperator"], m["triggerValue"] = "keyword", "regex", `(a)\1`
		}, "triggerValue: invalid regular expression"},
		{"regex too complex", func(m map[string]any) {
			m["triggerType"], m["triggerOperator"], m["triggerValue"] = "keyword", "regex", `(.*){1000}z`
		}, "triggerValue: pattern too complex"},
		{"advanced without value", func(m map[string]any) { m["triggerType"] = "advanced" }, "triggerValue: required for advanced"},
		{"advanced bad token", func(m map[string]any) { m["triggerType"], m["triggerValue"] = "advanced", "contains" }, "must be operator:value"},
		{"advanced bad operator", func(m map[string]any) { m["triggerType"], m["triggerValue"] = "advanced", "has:x" }, `unknown operator "has"`},
		{"negative expire", func(m map[string]any) { m["expire"] = -1 }, "expire: must be from 0 to 525600"},
		{"huge expire", func(m map[string]any) { m["expire"] = 525601 }, "expire: must be from 0 to 525600"},
		{"debounce too long", func(m map[string]any) { m["debounceTime"] = 301 }, "debounceTime: must be from 0 to 300"},
		{"negative delay", func(m map[string]any) { m["delayMessage"] = -5 }, "delayMessage: must be from 0"},
		{"negative timePerChar", func(m map[string]any) { m["timePerChar"] = -1 }, "timePerChar: must be from 0"},
		{"negative pause", func(m map[string]any) { m["pauseMinutes"] = -1 }, "pauseMinutes: must be from 0"},
		{"maxTokens too big", func(m map[string]any) { m["maxTokens"] = 1000001 }, "maxTokens: must be from 0 to 1000000"},
		{"maxTokens negative", func(m map[string]any) { m["maxTokens"] = -1 }, "maxTokens: must be from 0"},
		{"maxTokens not a number", func(m map[string]any) { m["maxTokens"] = "300" }, "maxTokens: must be an integer"},
		{"bad groupMode", func(m map[string]any) { m["groupMode"] = "some" }, "groupMode: must be one of off, mention, all"},
		{"relative functionUrl", func(m map[string]any) { m["functionUrl"] = "/fn" }, "functionUrl: must be an absolute"},
		{"ftp functionUrl", func(m map[string]any) { m["functionUrl"] = "ftp://example.com/fn" }, "functionUrl: must be an absolute"},
		{"tools without functionUrl", func(m map[string]any) {
			m["tools"] = []any{map[string]any{"type": "function", "function": map[string]any{"name": "lookup"}}}
		}, "functionUrl: required when tools are defined"},
		{"tools bad name", func(m map[string]any) {
			m["functionUrl"], m["tools"] = "https://example.com/fn", []any{map[string]any{"name": "look up"}}
		}, "tools[0].name: required"},
		{"tools bad type", func(m map[string]any) {
			m["functionUrl"], m["tools"] = "https://example.com/fn", []any{map[string]any{"type": "code_interpreter"}}
		}, `tools[0].type: must be "function"`},
		{"too many tools", func(m map[string]any) {
			list := make([]any, 129)
			for i := range list {
				list[i] = map[string]any{"name": fmt.Sprintf("tool_%d", i)}
			}
			m["functionUrl"], m["tools"] = "https://example.com/fn", list
		}, "tools: more than 128 tools"},
		{"tools not array", func(m map[string]any) { m["tools"] = map[string]any{} }, "tools: must be an array"},
		{"tools for assistant", func(m map[string]any) {
			m["botType"], m["assistantId"], m["functionUrl"] = "assistant", "pmpt_123", "https://example.com/fn"
			m["tools"] = []any{map[string]any{"name": "lookup"}}
		}, "tools: only for chatCompletion"},
		{"bad ignoreJid", func(m map[string]any) { m["ignoreJids"] = []string{""} }, "ignoreJids[0]: must be a JID"},
		{"priority out of range", func(m map[string]any) { m["priority"] = 2000000 }, "priority: must be from"},
		{"unknown creds", func(m map[string]any) { m["openaiCredsId"] = "nope" }, "openaiCredsId: no credentials with this id in this instance"},
		{"another instance's creds", func(m map[string]any) { m["openaiCredsId"] = otherCreds }, "openaiCredsId: no credentials with this id in this instance"},
		{"no creds and no default", func(m map[string]any) { delete(m, "openaiCredsId") }, "openaiCredsId: required: the instance settings name no default credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hasMessage(t, s.must(http.StatusBadRequest, "POST", "/openai/create/alpha", a.Token, simpleBot(creds, tt.edit)), tt.want)
		})
	}

	// What is accepted: an assistant bot on a stored prompt, advanced and
	// regex triggers, tools in both forms, a bot using the settings' credentials.
	s.createBot(a, simpleBot(creds, func(m map[string]any) { m["botType"], m["assistantId"], m["model"] = "assistant", "pmpt_abc", "" }))
	s.createBot(a, simpleBot(creds, func(m map[string]any) {
		m["triggerType"], m["triggerValue"] = "advanced", "contains:pedido,status startswith:oi startswith:ola"
	}))
	s.createBot(a, simpleBot(creds, func(m map[string]any) {
		m["triggerType"], m["triggerOperator"], m["triggerValue"] = "keyword", "regex", `(?i)^order #\d+$`
	}))
	tools := s.createBot(a, simpleBot(creds, func(m map[string]any) {
		m["functionUrl"] = "https://example.com/fn"
		m["tools"] = []any{
			map[string]any{"type": "function", "function": map[string]any{"name": "lookup", "parameters": map[string]any{"type": "object"}}},
			map[string]any{"name": "cancel_order", "description": "Cancel an order"},
		}
	}))
	if ts := tools["tools"].([]any); len(ts) != 2 || ts[1].(map[string]any)["type"] != "function" {
		t.Fatalf("tools = %v", tools["tools"])
	}
	most := make([]any, 128) // OpenAI's limit, accepted
	for i := range most {
		most[i] = map[string]any{"name": fmt.Sprintf("tool_%d", i)}
	}
	s.createBot(a, simpleBot(creds, func(m map[string]any) { m["functionUrl"], m["tools"] = "https://example.com/fn", most }))
	s.must(http.StatusOK, "POST", "/openai/settings/alpha", a.Token, map[string]any{"openaiCredsId": creds})
	inherits := s.createBot(a, simpleBot("", func(m map[string]any) { delete(m, "openaiCredsId") }))
	if inherits["openaiCredsId"] != nil {
		t.Fatalf("openaiCredsId copied from the settings: %v", inherits["openaiCredsId"])
	}
	// Not copied from Evolution: two "all" bots with the same model and maxTokens.
	s.createBot(a, simpleBot(creds, nil))
	s.createBot(a, simpleBot(creds, nil))
}

func TestOpenAIBotPutAndPatch(t *testing.T) {
	s := startServer(t, "")
	a := s.createInstance("alpha", "")
	creds := s.createCreds(a, "main", testProviderKey, "")
	bot := s.createBot(a, fmt.Sprintf(evolutionBotExample, creds))
	path := "/openai/update/" + bot["id"].(string) + "/alpha"

	// PATCH merges only what it sends; null resets a field to inherit.
	patched := s.must(http.StatusOK, "PATCH", path, a.Token, map[string]any{"model": "gpt-4o-mini", "expire": nil, "priority": 5}).json(t)
	if patched["model"] != "gpt-4o-mini" || patched["expire"] != nil || patched["priority"] != 5.0 ||
		patched["triggerValue"] != "teste" || patched["keywordFinish"] != "#SAIR" || patched["maxTokens"] != 300.0 {
		t.Fatalf("after PATCH: %v", patched)
	}
	if patched["createdAt"] != bot["createdAt"] {
		t.Fatal("PATCH changed createdAt")
	}
	hasMessage(t, s.must(http.StatusBadRequest, "PATCH", path, a.Token, map[string]any{"debounceTime": 1000}), "debounceTime")
	hasMessage(t, s.must(http.StatusBadRequest, "PATCH", path, a.Token, map[string]any{"colour": "red"}), "colour: unknown field")

	// PUT replaces: what it leaves out is gone (or inherits).
	put := s.must(http.StatusOK, "PUT", path, a.Token, simpleBot(creds, func(m map[string]any) { m["description"] = "replaced" })).json(t)
	if put["description"] != "replaced" || put["triggerType"] != "all" || put["triggerValue"] != "" || put["keywordFinish"] != nil ||
		put["maxTokens"] != nil || put["priority"] != 0.0 || fmt.Sprint(put["systemMessages"]) != "[]" {
		t.Fatalf("after PUT: %v", put)
	}
	fetched := s.must(http.StatusOK, "GET", "/openai/fetch/"+bot["id"].(string)+"/alpha", a.Token, nil).json(t)
	if fetched["description"] != "replaced" {
		t.Fatalf("PUT not stored: %v", fetched)
	}
	hasMessage(t, s.must(http.StatusBadRequest, "PUT", path, a.Token, map[string]any{"model": "x"}), "botType: required")
	// Evolution clients send back what they fetched, read-only fields included.
	fetched["description"] = "round trip"
	if r := s.must(http.StatusOK, "PUT", path, a.Token, fetched).json(t); r["description"] != "round trip" || r["createdAt"] != bot["createdAt"] {
		t.Fatalf("PUT of a fetched bot = %v", r)
	}
	// Read-only fields are accepted as fetched, and refused when they differ.
	for field, value := range map[string]any{
		"id": "another-id", "instanceId": "another-instance", "createdAt": "2020-01-01T00:00:00Z",
		"updatedAt": "2020-01-01T00:00:00Z", "effective": map[string]any{"expire": 1},
	} {
		edited := maps.Clone(fetched)
		edited[field] = value
		hasMessage(t, s.must(http.StatusBadRequest, "PUT", path, a.Token, edited), field+": read-only")
		hasMessage(t, s.must(http.StatusBadRequest, "PATCH", path, a.Token, map[string]any{field: value}), field+": read-only")
		hasMessage(t, s.must(http.StatusBadRequest, "POST", "/openai/create/alpha", a.Token, simpleBot(creds, func(m map[string]any) { m[field] = value })), field+": read-only")
	}
	fetched = s.must(http.StatusOK, "GET", "/openai/fetch/"+bot["id"].(string)+"/alpha", a.Token, nil).json(t)
	if r := s.must(http.StatusOK, "PATCH", path, a.Token, map[string]any{"id": fetched["id"], "createdAt": fetched["createdAt"],
		"updatedAt": fetched["updatedAt"], "effective": fetched["effective"], "description": "patched as fetched"}).json(t); r["description"] != "patched as fetched" {
		t.Fatalf("PATCH with unchanged read-only fields = %v", r)
	}
	// null is not a bot, nor a patch.
	for _, method := range []string{"PUT", "PATCH"} {
		hasMessage(t, s.must(http.StatusBadRequest, method, path, a.Token, "null"), "body: null")
	}
	if r := s.must(http.StatusOK, "GET", "/openai/fetch/"+bot["id"].(string)+"/alpha", a.Token, nil).json(t); r["description"] != "patched as fetched" {
		t.Fatalf("after refused updates = %v", r)
	}
	s.must(http.StatusNotFound, "PUT", "/openai/update/nope/alpha", a.Token, simpleBot(creds, nil))
	s.must(http.StatusNotFound, "PATCH", "/openai/update/nope/alpha", a.Token, map[string]any{})

	s.must(http.StatusOK, "DELETE", "/openai/delete/"+bot["id"].(string)+"/alpha", a.Token, nil)
	s.must(http.StatusNotFound, "GET", "/openai/fetch/"+bot["id"].(string)+"/alpha", a.Token, nil)
	s.must(http.StatusNotFound, "DELETE", "/openai/delete/"+bot["id"].(string)+"/alpha", a.Token, nil)
}

func TestOpenAISettingsAndInheritance(t *testing.T) {
	s := startServer(t, "")
	a := s.createInstance("alpha", "")

	// Never saved: the defaults, without credentials.
	def := s.must(http.StatusOK, "GET", "/openai/fetchSettings/alpha", a.Token, nil).json(t)
	if def["openaiCredsId"] != nil || def["expire"] != 300.0 || def["stopBotFromMe"] != true || def["listeningFromMe"] != false ||
		def["groupMode"] != "mention" || def["fallback"] != nil || fmt.Sprint(def["ignoreJids"]) != "[]" {
		t.Fatalf("default settings = %v", def)
	}
	// Settings can be saved without credentials, and the ignore list works
	// before anything was saved.
	if r := s.must(http.StatusOK, "POST", "/openai/ignoreJid/alpha", a.Token, map[string]any{"remoteJid": "@g.us", "action": "add"}).json(t); fmt.Sprint(r["ignoreJids"]) != "[@g.us]" {
		t.Fatalf("ignoreJid add = %v", r)
	}
	s.must(http.StatusOK, "POST", "/openai/ignoreJid/alpha", a.Token, map[string]any{"remoteJid": "5511@s.whatsapp.net", "action": "add"})
	s.must(http.StatusOK, "POST", "/openai/ignoreJid/alpha", a.Token, map[string]any{"remoteJid": "5511@s.whatsapp.net", "action": "add"})
	if r := s.must(http.StatusOK, "POST", "/openai/ignoreJid/alpha", a.Token, map[string]any{"remoteJid": "@g.us", "action": "remove"}).json(t); fmt.Sprint(r["ignoreJids"]) != "[5511@s.whatsapp.net]" {
		t.Fatalf("ignoreJid remove = %v", r)
	}
	hasMessage(t, s.must(http.StatusBadRequest, "POST", "/openai/ignoreJid/alpha", a.Token, map[string]any{"remoteJid": "x", "action": "toggle"}), "action:")
	hasMessage(t, s.must(http.StatusBadRequest, "POST", "/openai/ignoreJid/alpha", a.Token, map[string]any{"action": "add"}), "remoteJid")

	creds := s.createCreds(a, "main", testProviderKey, "")
	bot := s.createBot(a, simpleBot(creds, func(m map[string]any) { m["keepOpen"] = true; m["ignoreJids"] = []string{"@lid"} }))
	fallback := s.createBot(a, simpleBot(creds, func(m map[string]any) { m["triggerType"] = "none" }))
	effective := func() map[string]any {
		return s.must(http.StatusOK, "GET", "/openai/fetch/"+bot["id"].(string)+"/alpha", a.Token, nil).json(t)["effective"].(map[string]any)
	}
	if e := effective(); e["expire"] != 300.0 || e["keepOpen"] != true || e["openaiCredsId"] != creds ||
		fmt.Sprint(e["ignoreJids"]) != "[5511@s.whatsapp.net @lid]" {
		t.Fatalf("effective before = %v", e)
	}

	saved := s.must(http.StatusOK, "POST", "/openai/settings/alpha", a.Token, map[string]any{
		"expire": 45, "keepOpen": false, "debounceTime": 3, "fallbackId": fallback["id"], "openaiCredsId": creds,
		"transcriptionErrorMessage": "Please type.", "ignoreJids": []string{"@g.us"},
	}).json(t)
	if saved["openaiIdFallback"] != fallback["id"] || saved["fallbackId"] != fallback["id"] || saved["expire"] != 45.0 ||
		saved["delayMessage"] != 1000.0 || saved["transcriptionErrorMessage"] != "Please type." {
		t.Fatalf("saved settings = %v", saved)
	}
	// A null body is not settings: refused, and nothing is reset.
	hasMessage(t, s.must(http.StatusBadRequest, "POST", "/openai/settings/alpha", a.Token, "null"), "body: null")
	if kept := s.must(http.StatusOK, "GET", "/openai/fetchSettings/alpha", a.Token, nil).json(t); kept["openaiCredsId"] != creds || kept["fallbackId"] != fallback["id"] {
		t.Fatalf("settings after a null body = %v", kept)
	}
	// The bot was not copied at creation: the change applies now; the bot's
	// own keepOpen still wins.
	if e := effective(); e["expire"] != 45.0 || e["debounceTime"] != 3.0 || e["keepOpen"] != true || fmt.Sprint(e["ignoreJids"]) != "[@g.us @lid]" {
		t.Fatalf("effective after = %v", e)
	}
	fetched := s.must(http.StatusOK, "GET", "/openai/fetchSettings/alpha", a.Token, nil).json(t)
	if fb, _ := fetched["fallback"].(map[string]any); fb == nil || fb["id"] != fallback["id"] {
		t.Fatalf("fetchSettings fallback = %v", fetched["fallback"])
	}

	for _, tt := range []struct {
		body any
		want string
	}{
		{map[string]any{"openaiIdFallback": "nope"}, "openaiIdFallback: no bot"},
		{map[string]any{"openaiIdFallback": fallback["id"], "fallbackId": bot["id"]}, "fallbackId: differs"},
		{map[string]any{"openaiCredsId": "nope"}, "openaiCredsId: no credentials"},
		{map[string]any{"expire": -1}, "expire: must be"},
		{map[string]any{"groupMode": "loud"}, "groupMode: must be"},
		{map[string]any{"unknown": 1}, "unknown: unknown field"},
	} {
		hasMessage(t, s.must(http.StatusBadRequest, "POST", "/openai/settings/alpha", a.Token, tt.body), tt.want)
	}

	// Settings cannot drop the default credentials while a bot relies on them.
	s.createBot(a, simpleBot("", func(m map[string]any) { delete(m, "openaiCredsId") }))
	hasMessage(t, s.must(http.StatusConflict, "POST", "/openai/settings/alpha", a.Token, map[string]any{"expire": 10}), "openaiCredsId: required: bot ")
	hasMessage(t, s.must(http.StatusBadRequest, "POST", "/openai/ignoreJid/alpha", a.Token, map[string]any{"remoteJid": " ", "action": "add"}), "remoteJid: must be a JID")

	// Deleting the fallback bot clears it from the settings.
	s.must(http.StatusOK, "DELETE", "/openai/delete/"+fallback["id"].(string)+"/alpha", a.Token, nil)
	if r := s.must(http.StatusOK, "GET", "/openai/fetchSettings/alpha", a.Token, nil).json(t); r["fallbackId"] != nil || r["fallback"] != nil {
		t.Fatalf("fallback after deleting its bot = %v", r)
	}
}

func TestOpenAISessions(t *testing.T) {
	s := startServer(t, "")
	rc := newReceiver(t)
	a := s.createInstance("alpha", rc.URL)
	rc.setSecret(a.Secret)
	b := s.createInstance("beta", "")
	creds := s.createCreds(a, "main", testProviderKey, "")
	bot := s.createBot(a, simpleBot(creds, nil))
	keeper := s.createBot(a, simpleBot(creds, func(m map[string]any) { m["keepOpen"] = true }))
	botID, keeperID := bot["id"].(string), keeper["id"].(string)
	bCreds := s.createCreds(b, "main", testProviderKey, "")
	bBot := s.createBot(b, simpleBot(bCreds, nil))
	change := func(inst instance, want int, body map[string]any) map[string]any {
		t.Helper()
		return s.must(want, "POST", "/openai/changeStatus/"+inst.Name, inst.Token, body).json(t)
	}
	const jid = "5511@s.whatsapp.net"

	// Without a session, only "opened" with a bot starts one.
	change(a, http.StatusNotFound, map[string]any{"remoteJid": jid, "status": "paused"})
	change(a, http.StatusNotFound, map[string]any{"remoteJid": jid, "status": "opened"})
	opened := change(a, http.StatusOK, map[string]any{"remoteJid": jid, "status": "opened", "botId": botID})["session"].(map[string]any)
	if opened["status"] != "opened" || opened["botId"] != botID {
		t.Fatalf("opened = %v", opened)
	}
	// One live session per chat.
	change(a, http.StatusConflict, map[string]any{"remoteJid": jid, "status": "opened", "botId": keeperID})
	// The same chat in another instance is another conversation.
	change(b, http.StatusOK, map[string]any{"remoteJid": jid, "status": "opened", "botId": bBot["id"]})
	// Another instance's bot is not found through this one.
	hasMessage(t, s.must(http.StatusBadRequest, "POST", "/openai/changeStatus/alpha", a.Token, map[string]any{"remoteJid": "x@s.whatsapp.net", "status": "opened", "botId": bBot["id"]}), "botId: no bot")

	if st := change(a, http.StatusOK, map[string]any{"remoteJid": jid, "status": "paused"})["session"].(map[string]any); st["status"] != "paused" {
		t.Fatalf("paused = %v", st)
	}
	// Asking again for the current status changes and reports nothing; a
	// bare number names the same chat as its JID.
	change(a, http.StatusOK, map[string]any{"remoteJid": "5511", "status": "paused"})
	change(a, http.StatusOK, map[string]any{"remoteJid": jid, "status": "opened"})
	// keepOpen false: closing deletes the session.
	change(a, http.StatusOK, map[string]any{"remoteJid": jid, "status": "closed"})
	sessions := func(inst instance, botID, query string) []map[string]any {
		var body struct {
			Data []map[string]any `json:"data"`
		}
		json.Unmarshal(s.must(http.StatusOK, "GET", "/openai/fetchSessions/"+botID+"/"+inst.Name+query, inst.Token, nil).Body, &body)
		return body.Data
	}
	if got := sessions(a, botID, ""); len(got) != 0 {
		t.Fatalf("sessions after close without keepOpen = %v", got)
	}
	// keepOpen true: the closed session stays, and the chat is not blocked.
	change(a, http.StatusOK, map[string]any{"remoteJid": jid, "status": "opened", "botId": keeperID})
	change(a, http.StatusOK, map[string]any{"remoteJid": jid, "status": "closed"})
	change(a, http.StatusOK, map[string]any{"remoteJid": jid, "status": "opened", "botId": keeperID})
	kept := sessions(a, keeperID, "")
	if len(kept) != 2 || kept[0]["status"] != "opened" || kept[1]["status"] != "closed" || kept[1]["closeReason"] != "api" {
		t.Fatalf("keeper sessions = %v", kept)
	}
	if got := sessions(a, keeperID, "?status=closed"); len(got) != 1 {
		t.Fatalf("closed filter = %v", got)
	}
	if got := sessions(a, keeperID, "?remoteJid=other@s.whatsapp.net"); len(got) != 0 {
		t.Fatalf("remoteJid filter = %v", got)
	}
	page := s.must(http.StatusOK, "GET", "/openai/fetchSessions/"+keeperID+"/alpha?limit=1", a.Token, nil).json(t)
	next, _ := page["nextCursor"].(string)
	if next == "" {
		t.Fatalf("no next cursor: %v", page)
	}
	page2 := s.must(http.StatusOK, "GET", "/openai/fetchSessions/"+keeperID+"/alpha?limit=1&cursor="+next, a.Token, nil).json(t)
	if d := page2["data"].([]any); len(d) != 1 || d[0].(map[string]any)["status"] != "closed" || page2["nextCursor"] != nil {
		t.Fatalf("page 2 = %v", page2)
	}
	s.must(http.StatusBadRequest, "GET", "/openai/fetchSessions/"+keeperID+"/alpha?cursor=zzz", a.Token, nil)
	s.must(http.StatusBadRequest, "GET", "/openai/fetchSessions/"+keeperID+"/alpha?status=open", a.Token, nil)
	s.must(http.StatusNotFound, "GET", "/openai/fetchSessions/"+bBot["id"].(string)+"/alpha", a.Token, nil)

	// delete removes the chat's sessions here, and nowhere else.
	if r := change(a, http.StatusOK, map[string]any{"remoteJid": jid, "status": "delete"}); r["deleted"] != 2.0 {
		t.Fatalf("delete = %v", r)
	}
	if got := sessions(b, bBot["id"].(string), ""); len(got) != 1 || got[0]["status"] != "opened" {
		t.Fatalf("beta's session after alpha's delete = %v", got)
	}
	hasMessage(t, s.must(http.StatusBadRequest, "POST", "/openai/changeStatus/alpha", a.Token, map[string]any{"remoteJid": jid, "status": "open"}), "status: must be")

	// Every change was reported, in order.
	names := func() []string {
		var out []string
		for _, d := range rc.deliveries() {
			if strings.HasPrefix(d.Envelope.Event, "openai.session.") {
				out = append(out, strings.TrimPrefix(d.Envelope.Event, "openai.session."))
			}
		}
		return out
	}
	want := []string{"opened", "paused", "opened", "closed", "opened", "closed", "opened", "closed"}
	eventually(t, func() bool { return len(names()) >= len(want) }, "session events")
	if got := names(); !slices.Equal(got, want) {
		t.Fatalf("session events = %v, want %v", got, want)
	}

	// Deleting a bot deletes its sessions, and reports the live one closed.
	change(a, http.StatusOK, map[string]any{"remoteJid": jid, "status": "opened", "botId": botID})
	s.must(http.StatusOK, "DELETE", "/openai/delete/"+botID+"/alpha", a.Token, nil)
	change(a, http.StatusNotFound, map[string]any{"remoteJid": jid, "status": "paused"})
	want = append(want, "opened", "closed")
	eventually(t, func() bool { return len(names()) >= len(want) }, "the bot deletion's close event")
	if got := names(); !slices.Equal(got, want) {
		t.Fatalf("session events = %v, want %v", got, want)
	}
}

// TestOpenAIIsolation tries every /openai route of instance alpha with
// beta's token, and alpha's ids through beta's routes.
func TestOpenAIIsolation(t *testing.T) {
	s := startServer(t, "")
	a := s.createInstance("alpha", "")
	b := s.createInstance("beta", "")
	creds := s.createCreds(a, "main", testProviderKey, "")
	bot := s.createBot(a, simpleBot(creds, nil))
	botID := bot["id"].(string)
	s.must(http.StatusOK, "POST", "/openai/changeStatus/alpha", a.Token, map[string]any{"remoteJid": "x@s.whatsapp.net", "status": "opened", "botId": botID})

	routes := []struct {
		method, path string
		body         any
	}{
		{"POST", "/openai/creds/alpha", map[string]any{"name": "n", "apiKey": "k"}},
		{"GET", "/openai/creds/alpha", nil},
		{"DELETE", "/openai/creds/" + creds + "/alpha", nil},
		{"POST", "/openai/create/alpha", simpleBot(creds, nil)},
		{"GET", "/openai/find/alpha", nil},
		{"GET", "/openai/fetch/" + botID + "/alpha", nil},
		{"PUT", "/openai/update/" + botID + "/alpha", simpleBot(creds, nil)},
		{"PATCH", "/openai/update/" + botID + "/alpha", map[string]any{"model": "x"}},
		{"DELETE", "/openai/delete/" + botID + "/alpha", nil},
		{"POST", "/openai/settings/alpha", map[string]any{}},
		{"GET", "/openai/fetchSettings/alpha", nil},
		{"POST", "/openai/changeStatus/alpha", map[string]any{"remoteJid": "x@s.whatsapp.net", "status": "delete"}},
		{"GET", "/openai/fetchSessions/" + botID + "/alpha", nil},
		{"POST", "/openai/ignoreJid/alpha", map[string]any{"remoteJid": "x", "action": "add"}},
		{"GET", "/openai/getModels/alpha", nil},
	}
	for _, rt := range routes {
		// beta's token on alpha's routes, also with ?instanceName=beta.
		for _, suffix := range []string{"", "?instanceName=beta"} {
			if r := s.call(rt.method, rt.path+suffix, b.Token, rt.body); r.Status != http.StatusForbidden {
				t.Errorf("%s %s%s with beta's token: %d, want 403: %s", rt.method, rt.path, suffix, r.Status, r.Body)
			}
			if r := s.call(rt.method, rt.path+suffix, "", rt.body); r.Status != http.StatusUnauthorized {
				t.Errorf("%s %s%s without a key: %d, want 401", rt.method, rt.path, suffix, r.Status)
			}
		}
	}
	// alpha's ids through beta's own routes are not found.
	for _, rt := range []struct {
		method, path string
		body         any
		want         int
	}{
		{"GET", "/openai/fetch/" + botID + "/beta", nil, 404},
		{"PUT", "/openai/update/" + botID + "/beta", simpleBot("", nil), 404},
		{"PATCH", "/openai/update/" + botID + "/beta", map[string]any{}, 404},
		{"DELETE", "/openai/delete/" + botID + "/beta", nil, 404},
		{"GET", "/openai/fetchSessions/" + botID + "/beta", nil, 404},
		{"DELETE", "/openai/creds/" + creds + "/beta", nil, 404},
		{"GET", "/openai/getModels/beta?openaiCredsId=" + creds, nil, 400},
		{"POST", "/openai/settings/beta", map[string]any{"openaiCredsId": creds}, 400},
		{"POST", "/openai/settings/beta", map[string]any{"fallbackId": botID}, 400},
		{"POST", "/openai/changeStatus/beta", map[string]any{"remoteJid": "x@s.whatsapp.net", "status": "paused", "botId": botID}, 400},
	} {
		if r := s.call(rt.method, rt.path, b.Token, rt.body); r.Status != rt.want {
			t.Errorf("%s %s with beta's token: %d, want %d: %s", rt.method, rt.path, r.Status, rt.want, r.Body)
		}
	}
	// alpha's things are intact, and beta sees none of them.
	s.must(http.StatusOK, "GET", "/openai/fetch/"+botID+"/alpha", a.Token, nil)
	if r := s.must(http.StatusOK, "GET", "/openai/find/beta", b.Token, nil); strings.TrimSpace(string(r.Body)) != "[]" {
		t.Fatalf("beta's bots = %s", r.Body)
	}
	if r := s.must(http.StatusOK, "GET", "/openai/creds/beta", b.Token, nil); strings.TrimSpace(string(r.Body)) != "[]" {
		t.Fatalf("beta's creds = %s", r.Body)
	}
	if strings.Contains(s.logs.String(), testProviderKey) {
		t.Fatal("a provider key is in the logs")
	}
}

func TestOpenAIGetModels(t *testing.T) {
	s := startServer(t, "")
	ai := fakeai.NewTestServer(t, fakeai.Options{RejectKeys: []string{"sk-revoked-0123456789"}})
	a := s.createInstance("alpha", "")
	good := s.createCreds(a, "fake", testProviderKey, ai.BaseURL())
	revoked := s.createCreds(a, "revoked", "sk-revoked-0123456789", ai.BaseURL())
	down := s.createCreds(a, "down", testProviderKey, "http://127.0.0.1:1/v1")

	// Without credentials named and none in the settings.
	hasMessage(t, s.must(http.StatusBadRequest, "GET", "/openai/getModels/alpha", a.Token, nil), "openaiCredsId: required")

	r := s.must(http.StatusOK, "GET", "/openai/getModels/alpha?openaiCredsId="+good, a.Token, nil)
	var models []map[string]any
	if err := json.Unmarshal(r.Body, &models); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(models, func(m map[string]any) bool { return m["id"] == "gpt-4o" }) {
		t.Fatalf("models = %s", r.Body)
	}
	rec := ai.Requests()
	if len(rec) != 1 || rec[0].APIKey != testProviderKey || rec[0].Path != "/v1/models" {
		t.Fatalf("provider saw %+v", rec)
	}

	// The settings' default credentials are used when none are named.
	s.must(http.StatusOK, "POST", "/openai/settings/alpha", a.Token, map[string]any{"openaiCredsId": good})
	s.must(http.StatusOK, "GET", "/openai/getModels/alpha", a.Token, nil)

	// Provider failures are 502 naming the provider's status, never the key.
	bad := s.must(http.StatusBadGateway, "GET", "/openai/getModels/alpha?openaiCredsId="+revoked, a.Token, nil)
	hasMessage(t, bad, "provider: answered HTTP 401")
	hasMessage(t, s.must(http.StatusBadGateway, "GET", "/openai/getModels/alpha?openaiCredsId="+down, a.Token, nil), "provider: unreachable")
	for _, k := range []string{"sk-revoked", testProviderKey} {
		if strings.Contains(string(bad.Body), k) || strings.Contains(s.logs.String(), k) {
			t.Fatalf("%q leaked", k)
		}
	}
}
