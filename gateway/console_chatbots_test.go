package gateway_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// htmlAnswer is a console page's answer.
type htmlAnswer struct {
	Status   int
	Location string
	Body     string
	Cookies  []*http.Cookie
}

// postHTML posts values to a console page in the session (the CSRF token in
// the form, as a plain HTML form sends it, unless withCSRF is false).
func (se *session) postHTML(path string, values url.Values, withCSRF bool) htmlAnswer {
	se.s.t.Helper()
	v := url.Values{}
	for k, vs := range values {
		v[k] = vs
	}
	if withCSRF {
		v.Set("csrf", se.CSRF)
	}
	req, _ := http.NewRequest("POST", se.s.URL+path, strings.NewReader(v.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return se.sendHTML(req)
}

func (se *session) getHTML(path string) htmlAnswer {
	se.s.t.Helper()
	req, _ := http.NewRequest("GET", se.s.URL+path, nil)
	return se.sendHTML(req)
}

func (se *session) sendHTML(req *http.Request) htmlAnswer {
	se.s.t.Helper()
	req.AddCookie(&http.Cookie{Name: se.Cookie.Name, Value: se.Cookie.Value})
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		se.s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return htmlAnswer{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Body: string(b), Cookies: resp.Cookies()}
}

// TestConsoleChatbotPagesHTTP: the forms work without JavaScript and give
// the API's problems by the API's field names; the key is shown once; the
// delete confirmation is a page and a form; an agent is kept out, another
// organization's chatbot is not found, and a post without the CSRF token
// is refused.
func TestConsoleChatbotPagesHTTP(t *testing.T) {
	s := startServer(t, "")
	o := s.createOrg("Shop")
	s.createConsoleUser(o.ID, "owner@example.com", "owner")
	s.createConsoleUser(o.ID, "agent@example.com", "agent")
	owner := s.signInAPI("owner@example.com", testPassword)

	// Every problem at once, each by its field, as the API names it.
	long := strings.Repeat("n", 256)
	bad := owner.postHTML("/console/chatbots", url.Values{
		"name": {long}, "active": {"true"}, "settings.knowledgeFallback": {"shrug"},
		"settings.knowledgeTopK": {"many"}, "settings.snippet.secondaryColor": {"green"},
		"settings.allowedOrigins": {"https://shop.example.com\nnot an origin"},
	}, true)
	if bad.Status != http.StatusBadRequest {
		t.Fatalf("bad form: %d %.500s", bad.Status, bad.Body)
	}
	for id, problem := range map[string]string{
		"f-name-error":                            "longer than 255 characters",
		"f-settings-knowledgeFallback-error":      "must be answer, message or handoff",
		"f-settings-knowledgeTopK-error":          "must be an integer",
		"f-settings-snippet-secondaryColor-error": "must be a colour as #RRGGBB",
	} {
		if !strings.Contains(bad.Body, `id="`+id+`">`+problem) {
			t.Errorf("no %q by its field %s", problem, id)
		}
	}
	if !strings.Contains(bad.Body, "settings.allowedOrigins[1]: must be an origin") {
		t.Errorf("the origins' problem is not in the summary")
	}
	// The API says the same of the same body.
	r := s.call("POST", "/api/external/chatbots", o.Key, map[string]any{"name": long, "settings": map[string]any{"knowledgeFallback": "shrug"}})
	if ae := r.apiError(t); ae.Fields["name"] != "longer than 255 characters" || ae.Fields["settings.knowledgeFallback"] != "must be answer, message or handoff" {
		t.Errorf("API problems = %v", ae.Fields)
	}

	created := owner.postHTML("/console/chatbots", url.Values{"name": {"Helper"}, "active": {"true"},
		"settings.knowledgeFallback": {"handoff"}, "settings.knowledgeTopK": {"3"}, "settings.prompt": {"You sell tea."}}, true)
	if created.Status != http.StatusCreated || !strings.Contains(created.Body, "ob_live_") {
		t.Fatalf("create: %d %.500s", created.Status, created.Body)
	}
	list := s.apiMust(http.StatusOK, "GET", "/api/external/chatbots", o.Key, nil).json(t)["chatbots"].([]any)
	if len(list) != 1 {
		t.Fatalf("chatbots = %v", list)
	}
	cb := list[0].(map[string]any)
	id := cb["id"].(string)
	set := cb["settings"].(map[string]any)
	if set["knowledgeFallback"] != "handoff" || set["knowledgeTopK"] != 3.0 || set["prompt"] != "You sell tea." || cb["slug"] != "helper" || cb["active"] != true {
		t.Errorf("created = %v", cb)
	}
	key := created.Body[strings.Index(created.Body, "ob_live_"):]
	key = key[:strings.IndexByte(key, '"')]
	s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+id+"/knowledge-base", key, nil)
	// The edit page shows the prefix only.
	edit := owner.getHTML("/console/chatbots/" + id)
	if edit.Status != http.StatusOK || strings.Contains(edit.Body, key) || !strings.Contains(edit.Body, key[:14]) {
		t.Errorf("edit page: %d, key shown: %v", edit.Status, strings.Contains(edit.Body, key))
	}
	// Editing: an emptied setting is removed, so its default applies again.
	saved := owner.postHTML("/console/chatbots/"+id, url.Values{"name": {"Helper"}, "active": {"true"}, "settings.prompt": {"You sell tea."}}, true)
	if saved.Status != http.StatusSeeOther || saved.Location != "/console/chatbots/"+id {
		t.Fatalf("save: %d %q %.300s", saved.Status, saved.Location, saved.Body)
	}
	set = s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+id, o.Key, nil).json(t)["chatbot"].(map[string]any)["settings"].(map[string]any)
	if _, ok := set["knowledgeFallback"]; ok || set["prompt"] != "You sell tea." {
		t.Errorf("after emptying the fallback, settings = %v", set)
	}

	// A rotated key is shown once and replaces the old one.
	rot := owner.postHTML("/console/chatbots/"+id+"/key", nil, true)
	if rot.Status != http.StatusOK || !strings.Contains(rot.Body, "ob_live_") {
		t.Fatalf("rotate: %d", rot.Status)
	}
	if r := s.call("GET", "/api/external/chatbot/"+id+"/knowledge-base", key, nil); r.Status != http.StatusUnauthorized {
		t.Errorf("the old key after rotation: %d", r.Status)
	}

	// An agent is kept out of every chatbot page.
	agent := s.signInAPI("agent@example.com", testPassword)
	for _, p := range []string{"/console/chatbots", "/console/chatbots/" + id, "/console/chatbots/" + id + "/knowledge", "/console/chatbots/new"} {
		if got := agent.getHTML(p); got.Status != http.StatusForbidden {
			t.Errorf("agent GET %s: %d", p, got.Status)
		}
	}
	if got := agent.postHTML("/console/chatbots/"+id+"/delete", nil, true); got.Status != http.StatusForbidden {
		t.Errorf("agent delete: %d", got.Status)
	}
	// Another organization's chatbot is not found.
	other := s.createOrg("Other")
	theirs := s.apiMust(http.StatusOK, "POST", "/api/v1/chatbots", other.Key, map[string]any{"name": "Theirs"}).json(t)["chatbot"].(map[string]any)["id"].(string)
	for _, p := range []string{"/console/chatbots/" + theirs, "/console/chatbots/" + theirs + "/knowledge", "/console/chatbots/" + theirs + "/preview"} {
		if got := owner.getHTML(p); got.Status != http.StatusNotFound {
			t.Errorf("owner GET %s of another organization: %d", p, got.Status)
		}
	}
	if got := owner.postHTML("/console/chatbots/"+theirs+"/delete", nil, true); got.Status != http.StatusNotFound {
		t.Errorf("deleting another organization's chatbot: %d", got.Status)
	}
	s.apiMust(http.StatusOK, "GET", "/api/v1/chatbots/"+theirs, other.Key, nil)

	// Without the CSRF token nothing changes.
	if got := owner.postHTML("/console/chatbots/"+id+"/delete", nil, false); got.Status != http.StatusForbidden {
		t.Errorf("delete without CSRF: %d", got.Status)
	}
	if got := owner.postHTML("/console/chatbots/"+id+"/knowledge", url.Values{"type": {"text"}, "title": {"T"}, "body": {"B"}}, false); got.Status != http.StatusForbidden {
		t.Errorf("adding knowledge without CSRF: %d", got.Status)
	}

	// Knowledge forms: the API's problems by field.
	kb := owner.postHTML("/console/chatbots/"+id+"/knowledge", url.Values{"type": {"qa"}, "question": {"Open on Sunday?"}, "answer": {" "}}, true)
	if kb.Status != http.StatusBadRequest || !strings.Contains(kb.Body, `id="kb-answer-error">required`) || !strings.Contains(kb.Body, `value="Open on Sunday?"`) {
		t.Errorf("bad Q&A: %d %.300s", kb.Status, kb.Body)
	}
	kb = owner.postHTML("/console/chatbots/"+id+"/knowledge", url.Values{"type": {"url"}, "url": {"ftp://x"}, "title": {""}}, true)
	if kb.Status != http.StatusBadRequest || !strings.Contains(kb.Body, `id="kb-url-error">must be an absolute http or https URL`) {
		t.Errorf("bad URL: %d", kb.Status)
	}
	added := owner.postHTML("/console/chatbots/"+id+"/knowledge", url.Values{"type": {"qa"}, "question": {"Open on Sunday?"}, "answer": {"No, closed on Sundays."}}, true)
	if added.Status != http.StatusSeeOther {
		t.Fatalf("add Q&A: %d", added.Status)
	}
	srcs := s.apiMust(http.StatusOK, "GET", "/api/external/chatbot/"+id+"/knowledge-base", o.Key, nil).json(t)["data"].([]any)
	if len(srcs) != 1 || srcs[0].(map[string]any)["question"] != "Open on Sunday?" {
		t.Fatalf("sources = %v", srcs)
	}
	srcID := srcs[0].(map[string]any)["id"].(string)
	if got := owner.postHTML("/console/chatbots/"+id+"/knowledge/"+srcID+"/delete", nil, true); got.Status != http.StatusSeeOther {
		t.Errorf("delete source: %d", got.Status)
	}

	// Deleting asks first, on a page of its own, then the form deletes.
	confirm := owner.getHTML("/console/chatbots/" + id + "/delete")
	if confirm.Status != http.StatusOK || !strings.Contains(confirm.Body, `action="/console/chatbots/`+id+`/delete"`) {
		t.Fatalf("confirmation: %d", confirm.Status)
	}
	if got := owner.postHTML("/console/chatbots/"+id+"/delete", nil, true); got.Status != http.StatusSeeOther || got.Location != "/console/chatbots" {
		t.Fatalf("delete: %d %q", got.Status, got.Location)
	}
	if r := s.call("GET", "/api/external/chatbot/"+id, o.Key, nil); r.Status != http.StatusNotFound {
		t.Errorf("after delete: %d", r.Status)
	}
}

// TestConsoleKnowledgeSourceEdit: a text or Q&A source is edited on a page
// of its own (a plain form, the API's problems by field), and is read
// again: the chatbot then finds what it says now. A file has no such page
// (it is uploaded again); an agent, a post without the CSRF token and
// another chatbot's source get nowhere.
func TestConsoleKnowledgeSourceEdit(t *testing.T) {
	e := newKBEnv(t, "")
	e.s.createConsoleUser(e.org.ID, "owner@example.com", "owner")
	e.s.createConsoleUser(e.org.ID, "agent@example.com", "agent")
	owner := e.s.signInAPI("owner@example.com", testPassword)
	text := e.add(map[string]any{"type": "text", "title": "Hours", "body": "The shop opens at nine."})
	qa := e.add(map[string]any{"type": "qa", "question": "Open on Sunday?", "answer": "No."})
	site := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		days := map[string]string{"/old": "five", "/new": "two"}[r.URL.Path]
		fmt.Fprintf(w, "<html><head><title>Delivery</title></head><body><h1>Delivery</h1><p>Parcels take %s days to arrive, door to door, anywhere in the country.</p></body></html>", days)
	}))
	t.Cleanup(site.Close)
	web := e.add(map[string]any{"type": "url", "url": site.URL + "/old"})
	if r := e.upload(upload{"notes.txt", []byte("Parking is behind the shop.")}); r.Status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	var file string
	for id, src := range e.settle() {
		if src["type"] == "file" {
			file = id
		}
	}
	kbPath := "/console/chatbots/" + e.id + "/knowledge"

	list := owner.getHTML(kbPath)
	if !strings.Contains(list.Body, `href="`+kbPath+"/"+text+`" aria-label="Edit Hours"`) ||
		!strings.Contains(list.Body, `aria-label="Edit Open on Sunday?"`) || strings.Contains(list.Body, `aria-label="Edit notes.txt"`) {
		t.Errorf("the list's edit links: %s", list.Body)
	}
	page := owner.getHTML(kbPath + "/" + text)
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `value="Hours"`) ||
		!strings.Contains(page.Body, `>The shop opens at nine.</textarea>`) {
		t.Fatalf("edit page: %d %s", page.Status, page.Body)
	}

	// A problem comes back on the form, by its field, with what was typed.
	bad := owner.postHTML(kbPath+"/"+text, url.Values{"title": {"Opening hours"}, "body": {" "}}, true)
	if bad.Status != http.StatusBadRequest || !strings.Contains(bad.Body, `id="body-error">required`) ||
		!strings.Contains(bad.Body, `value="Opening hours"`) {
		t.Errorf("empty body: %d %s", bad.Status, bad.Body)
	}
	if got := owner.postHTML(kbPath+"/"+text, url.Values{"title": {"T"}, "body": {"B"}}, false); got.Status != http.StatusForbidden {
		t.Errorf("edit without CSRF: %d", got.Status)
	}
	if src := e.sources()[text]; src["title"] != "Hours" || src["body"] != "The shop opens at nine." {
		t.Fatalf("a refused edit changed the source: %v", src)
	}

	saved := owner.postHTML(kbPath+"/"+text, url.Values{"title": {"Opening hours"}, "body": {"The shop opens at eight sharp."}}, true)
	if saved.Status != http.StatusSeeOther || saved.Location != kbPath {
		t.Fatalf("save: %d %q %s", saved.Status, saved.Location, saved.Body)
	}
	if got := owner.postHTML(kbPath+"/"+qa, url.Values{"question": {"Open on Sundays?"}, "answer": {"Yes, from ten."}}, true); got.Status != http.StatusSeeOther {
		t.Fatalf("save Q&A: %d %s", got.Status, got.Body)
	}
	if got := owner.getHTML(kbPath + "/" + web); !strings.Contains(got.Body, `value="`+site.URL+`/old"`) || !strings.Contains(got.Body, "Save and fetch again") {
		t.Errorf("a web page's edit page: %d %s", got.Status, got.Body)
	}
	if got := owner.postHTML(kbPath+"/"+web, url.Values{"url": {"ftp://x"}, "title": {""}}, true); got.Status != http.StatusBadRequest ||
		!strings.Contains(got.Body, `id="url-error">must be an absolute http or https URL`) {
		t.Errorf("a bad URL: %d %s", got.Status, got.Body)
	}
	if got := owner.postHTML(kbPath+"/"+web, url.Values{"url": {site.URL + "/new"}, "title": {""}}, true); got.Status != http.StatusSeeOther {
		t.Fatalf("save the web page: %d %s", got.Status, got.Body)
	}
	srcs := e.settle()
	if src := srcs[web]; src["url"] != site.URL+"/new" || src["status"] != "ready" {
		t.Errorf("web page after the edit: %v", src)
	}
	if results, _ := e.query("How many days does a parcel take?"); len(results) == 0 || !strings.Contains(results[0].Content, "two days") {
		t.Errorf("the chatbot finds %v, not the page fetched again", results)
	}
	if src := srcs[text]; src["title"] != "Opening hours" || src["body"] != "The shop opens at eight sharp." || src["status"] != "ready" {
		t.Errorf("text source after the edit: %v", src)
	}
	if src := srcs[qa]; src["question"] != "Open on Sundays?" || src["answer"] != "Yes, from ten." || src["status"] != "ready" {
		t.Errorf("Q&A source after the edit: %v", src)
	}
	results, _ := e.query("When does the shop open?")
	found := false
	for _, r := range results {
		if r.SourceID == text {
			found = true
			if !strings.Contains(r.Content, "eight sharp") || strings.Contains(r.Content, "nine") {
				t.Errorf("the chatbot finds %q, not the edited text", r.Content)
			}
		}
	}
	if !found {
		t.Errorf("the edited source is not found: %v", results)
	}

	// A file is replaced, not edited; agents and other chatbots get nowhere.
	if got := owner.getHTML(kbPath + "/" + file); got.Status != http.StatusNotFound || !strings.Contains(got.Body, "upload the new version") {
		t.Errorf("a file's edit page: %d %s", got.Status, got.Body)
	}
	if got := owner.postHTML(kbPath+"/"+file, url.Values{"title": {"x"}}, true); got.Status != http.StatusNotFound {
		t.Errorf("editing a file: %d", got.Status)
	}
	agent := e.s.signInAPI("agent@example.com", testPassword)
	if got := agent.getHTML(kbPath + "/" + text); got.Status != http.StatusForbidden {
		t.Errorf("agent: %d", got.Status)
	}
	own := e.id
	e.chatbot("Sales")
	if got := owner.getHTML("/console/chatbots/" + e.id + "/knowledge/" + text); got.Status != http.StatusNotFound {
		t.Errorf("another chatbot's source: %d", got.Status)
	}
	if got := owner.postHTML("/console/chatbots/"+e.id+"/knowledge/"+text, url.Values{"title": {"x"}, "body": {"y"}}, true); got.Status != http.StatusNotFound {
		t.Errorf("editing another chatbot's source: %d", got.Status)
	}
	other := e.s.createOrg("Other")
	e.s.createConsoleUser(other.ID, "them@example.com", "owner")
	them := e.s.signInAPI("them@example.com", testPassword)
	if got := them.getHTML("/console/chatbots/" + own + "/knowledge/" + text); got.Status != http.StatusNotFound {
		t.Errorf("another organization: %d", got.Status)
	}
}
