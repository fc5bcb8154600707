package gateway_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wagate/wagate/config"
	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/store/storetest"
)

// kbEnv is a gateway with an organization whose default credentials go to
// the fake model server, and one chatbot.
type kbEnv struct {
	t    *testing.T
	s    *server
	ai   *fakeai.Server
	org  org
	id   string // the chatbot
	key  string // its key
	base string // its /api/external/chatbot/{id} path
}

func newKBEnv(t *testing.T, dir string, opts ...option) *kbEnv {
	t.Helper()
	s := startServer(t, dir, opts...)
	e := &kbEnv{t: t, s: s, ai: fakeai.NewTestServer(t, fakeai.Options{})}
	e.org = s.createOrg("Acme")
	s.apiMust(http.StatusCreated, "POST", "/api/v1/credentials", e.org.Key,
		map[string]any{"name": "fake", "apiKey": testProviderKey, "baseUrl": e.ai.BaseURL()})
	e.chatbot("Support")
	return e
}

// chatbot creates a chatbot and makes it the env's.
func (e *kbEnv) chatbot(name string) {
	e.t.Helper()
	m := e.s.apiMust(http.StatusOK, "POST", "/api/v1/chatbots", e.org.Key, map[string]any{"name": name}).json(e.t)
	e.id, e.key = m["chatbot"].(map[string]any)["id"].(string), m["apiKey"].(string)
	e.base = "/api/external/chatbot/" + e.id
}

// add posts a url, text or qa source and returns its id.
func (e *kbEnv) add(body map[string]any) string {
	e.t.Helper()
	r := e.s.apiMust(http.StatusAccepted, "POST", e.base+"/knowledge-base", e.key, body)
	return sourceIDs(e.t, r)[0]
}

func sourceIDs(t *testing.T, r response) []string {
	t.Helper()
	data, _ := r.json(t)["data"].([]any)
	var ids []string
	for _, d := range data {
		ids = append(ids, d.(map[string]any)["id"].(string))
	}
	if len(ids) == 0 {
		t.Fatalf("no sources in %s", r.Body)
	}
	return ids
}

type upload struct {
	name string
	data []byte
}

func (e *kbEnv) upload(files ...upload) response {
	e.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, f := range files {
		part, _ := w.CreateFormFile("files", f.name)
		part.Write(f.data)
	}
	w.Close()
	req, _ := http.NewRequest("POST", e.s.URL+e.base+"/knowledge-base/files", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("x-api-key", e.org.Key)
	return e.s.do(req)
}

// sources returns the chatbot's sources by id.
func (e *kbEnv) sources() map[string]map[string]any {
	e.t.Helper()
	r := e.s.apiMust(http.StatusOK, "GET", e.base+"/knowledge-base", e.key, nil)
	out := map[string]map[string]any{}
	for _, d := range r.json(e.t)["data"].([]any) {
		m := d.(map[string]any)
		out[m["id"].(string)] = m
	}
	if r.object(e.t, "chatbot")["id"] != e.id {
		e.t.Fatalf("knowledge-base list without its chatbot: %s", r.Body)
	}
	return out
}

// settle waits until none of the sources is pending or processing.
func (e *kbEnv) settle() map[string]map[string]any {
	e.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		srcs := e.sources()
		busy := false
		for _, s := range srcs {
			if s["status"] == "pending" || s["status"] == "processing" {
				busy = true
			}
		}
		if !busy {
			return srcs
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("sources still busy: %v", srcs)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type kbResult struct {
	Content    string  `json:"content"`
	Similarity float64 `json:"similarity"`
	SourceID   string  `json:"sourceId"`
	ChunkID    string  `json:"chunkId"`
}

func (e *kbEnv) query(q string) ([]kbResult, map[string]any) {
	e.t.Helper()
	r := e.s.apiMust(http.StatusOK, "POST", e.base+"/query-knowledge", e.key, map[string]any{"query": q})
	var out struct {
		Results []kbResult `json:"results"`
	}
	if err := json.Unmarshal(r.Body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Results, r.json(e.t)
}

// makePDF writes a one-page PDF whose text layer holds paragraphs, each a
// few lines; no paragraphs makes a page without text, as a scan is.
func makePDF(paragraphs ...[]string) []byte {
	var content strings.Builder
	if len(paragraphs) > 0 {
		content.WriteString("BT /F1 11 Tf 72 760 Td 14 TL\n")
		for _, p := range paragraphs {
			for _, line := range p {
				fmt.Fprintf(&content, "(%s) Tj T*\n", strings.NewReplacer("(", `\(`, ")", `\)`).Replace(line))
			}
			content.WriteString("T*\n") // a blank line between paragraphs
		}
		content.WriteString("ET\n")
	} else {
		content.WriteString("q 100 0 0 100 72 600 cm Q\n")
	}
	objs := []string{
		"<< /Type /Catalog /Pages 2 0 R >>",
		"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>",
		fmt.Sprintf("<< /Length %d >>\nstream\n%sendstream", content.Len(), content.String()),
		"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
	}
	var b bytes.Buffer
	b.WriteString("%PDF-1.4\n")
	offsets := make([]int, len(objs))
	for i, o := range objs {
		offsets[i] = b.Len()
		fmt.Fprintf(&b, "%d 0 obj\n%s\nendobj\n", i+1, o)
	}
	xref := b.Len()
	fmt.Fprintf(&b, "xref\n0 %d\n0000000000 65535 f \n", len(objs)+1)
	for _, off := range offsets {
		fmt.Fprintf(&b, "%010d 00000 n \n", off)
	}
	fmt.Fprintf(&b, "trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n", len(objs)+1, xref)
	return b.Bytes()
}

// makeDOCX writes a minimal Word document: a heading, paragraphs and a
// table row.
func makeDOCX(t *testing.T, heading string, paragraphs []string, row []string) []byte {
	t.Helper()
	var body strings.Builder
	fmt.Fprintf(&body, `<w:p><w:pPr><w:pStyle w:val="Heading1"/></w:pPr><w:r><w:t>%s</w:t></w:r></w:p>`, heading)
	for _, p := range paragraphs {
		fmt.Fprintf(&body, `<w:p><w:r><w:t xml:space="preserve">%s</w:t></w:r></w:p>`, p)
	}
	body.WriteString(`<w:tbl><w:tr>`)
	for _, c := range row {
		fmt.Fprintf(&body, `<w:tc><w:p><w:r><w:t>%s</w:t></w:r></w:p></w:tc>`, c)
	}
	body.WriteString(`</w:tr></w:tbl>`)
	var buf bytes.Buffer
	z := zip.NewWriter(&buf)
	for name, content := range map[string]string{
		"[Content_Types].xml": `<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>`,
		"word/document.xml": `<?xml version="1.0" encoding="UTF-8"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>` +
			body.String() + `</w:body></w:document>`,
	} {
		w, err := z.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		w.Write([]byte(content))
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

const kbPage = `<!doctype html><html><head><title>Shipping policy | Acme</title></head><body>
<nav><a href="/">Home</a> <a href="/shop">Shop</a> <a href="/login">Login menu entry</a></nav>
<header><p>Acme header banner</p></header>
<main><article>
<h1>Shipping policy</h1>
<p>We ship every order within two business days from our warehouse in Rotterdam. Orders placed before noon leave the same day, and tracking numbers arrive by email.</p>
<h2>International delivery</h2>
<p>International parcels travel with a courier and take five to nine days. Customs duties are paid by the recipient on arrival, and the courier collects them at the door.</p>
<ul><li>Europe: five days</li><li>Americas: seven days</li><li>Asia: nine days</li></ul>
<p>Parcels that cannot be delivered return to the warehouse after three attempts, and we refund the goods but not the shipping.</p>
</article></main>
<footer><p>Copyright Acme Footerco. All rights reserved. Imprint and privacy.</p></footer>
</body></html>`

var chunkHeader = regexp.MustCompile(`^Title: [^\n]+\nChunk: [1-9][0-9]*\n\n`)

func TestKnowledgeSourceTypes(t *testing.T) {
	e := newKBEnv(t, "")
	mux := http.NewServeMux()
	mux.HandleFunc("/shipping", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, kbPage)
	})
	site := httptest.NewServer(mux)
	t.Cleanup(site.Close)

	text := e.add(map[string]any{"type": "text", "title": "Opening hours", "body": "# Opening hours\n\nThe shop opens at nine in the morning on weekdays and closes at six in the evening.\n\nOn Saturdays it opens at ten."})
	qa := e.add(map[string]any{"type": "qa", "question": "Do you accept returns?", "answer": "Yes, unused goods can be returned within thirty days for a full refund."})
	page := e.add(map[string]any{"type": "url", "url": site.URL + "/shipping"})
	missing := e.add(map[string]any{"type": "url", "url": site.URL + "/nowhere"})

	r := e.upload(
		upload{"warranty.pdf", makePDF([]string{"Every kettle carries a warranty of", "three years against defects."}, []string{"The warranty does not cover limescale damage."})},
		upload{"scan.pdf", makePDF()},
		upload{"manual.docx", makeDOCX(t, "Descaling the kettle", []string{"Fill the kettle with vinegar and water and boil it twice to descale it."}, []string{"Model K2", "Descale monthly"})},
		upload{"faq.md", []byte("# Payment\n\n- We accept credit cards\n- We accept bank transfers\n\n| Method | Fee |\n|---|---|\n| Card | none |\n")},
		upload{"notes.txt", []byte("Gift wrapping is free for orders above fifty euros.")},
		upload{"stores.csv", []byte("city,address\nAmsterdam,Damrak 1\nUtrecht,Oudegracht 5\n")},
		upload{"about.html", []byte("<html><body><h1>About us</h1><p>Acme was founded in 1999 by two engineers who loved tea kettles.</p></body></html>")},
	)
	if r.Status != http.StatusAccepted {
		t.Fatalf("upload: %d %s", r.Status, r.Body)
	}
	files := sourceIDs(t, r)
	if len(files) != 7 {
		t.Fatalf("upload made %d sources: %s", len(files), r.Body)
	}
	srcs := e.settle()

	wantTypes := map[string]string{files[0]: "application/pdf", files[2]: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
		files[3]: "text/markdown", files[4]: "text/plain", files[5]: "text/csv", files[6]: "text/html"}
	for id, typ := range wantTypes {
		if s := srcs[id]; s["status"] != "ready" || s["content_type"] != typ || s["chunks"].(float64) < 1 || s["characters"].(float64) < 10 {
			t.Errorf("file source %s = %v, want ready %s with chunks", id, s, typ)
		}
	}
	for _, id := range []string{text, qa, page} {
		if s := srcs[id]; s["status"] != "ready" || s["chunks"].(float64) < 1 || s["note"] != nil {
			t.Errorf("source %s = %v, want ready with vectors", id, s)
		}
	}
	if s := srcs[page]; !strings.HasPrefix(s["title"].(string), "Shipping policy") {
		t.Errorf("page title = %v, want the page's own", s["title"])
	}
	if s := srcs[files[1]]; s["status"] != "failed" || !strings.Contains(s["error"].(string), "no text layer") {
		t.Errorf("scanned PDF = %v", s)
	}
	if s := srcs[missing]; s["status"] != "failed" || s["error"] != "the page answered HTTP 404 Not Found" {
		t.Errorf("missing page = %v", s)
	}

	for _, c := range []struct{ query, source, contains string }{
		{"how long is the kettle warranty", files[0], "three years"},
		{"how do I descale with vinegar", files[2], "vinegar"},
		{"when does the shop open on saturday", text, "Saturdays"},
		{"can I return goods for a refund", qa, "Question: Do you accept returns?\nAnswer: Yes"},
		{"customs duties international parcels", page, "Customs duties"},
		{"bank transfers accepted", files[3], "bank transfers"},
		{"gift wrapping free", files[4], "Gift wrapping"},
		{"Utrecht address", files[5], "city: Utrecht | address: Oudegracht 5"},
		{"who founded Acme", files[6], "founded in 1999"},
	} {
		res, _ := e.query(c.query)
		if len(res) == 0 || res[0].SourceID != c.source || !strings.Contains(res[0].Content, c.contains) {
			t.Errorf("query %q: first result %+v, want source %s containing %q", c.query, res, c.source, c.contains)
			continue
		}
		if !strings.HasPrefix(res[0].Content, "Title: ") || !chunkHeader.MatchString(res[0].Content) || res[0].ChunkID == "" {
			t.Errorf("query %q: content %q lacks okchat's header", c.query, res[0].Content)
		}
		for i := 1; i < len(res); i++ {
			if res[i].Similarity > res[0].Similarity+1e-9 && res[i].SourceID == res[0].SourceID {
				t.Errorf("query %q: results out of order: %+v", c.query, res)
			}
		}
	}
	// The page's menus, header and footer were left out.
	for _, q := range []string{"Login menu entry", "Footerco rights reserved", "header banner"} {
		res, _ := e.query(q)
		for _, r := range res {
			if r.SourceID == page && (strings.Contains(r.Content, "Footerco") || strings.Contains(r.Content, "Login menu") || strings.Contains(r.Content, "banner")) {
				t.Errorf("page chunk keeps boilerplate: %q", r.Content)
			}
		}
	}

	// Files of other types are refused, named.
	r = e.upload(upload{"logo.png", pngBytes(t)})
	if ae := r.apiError(t); r.Status != http.StatusBadRequest || !strings.Contains(ae.Fields["files[0]"], "image/png") {
		t.Errorf("png upload = %d %s", r.Status, r.Body)
	}
	e.s.apiMust(http.StatusBadRequest, "POST", e.base+"/knowledge-base", e.key, map[string]any{"type": "text", "title": "x"})
	e.s.apiMust(http.StatusBadRequest, "POST", e.base+"/knowledge-base", e.key, map[string]any{"type": "url", "url": "ftp://example.com/x"})
	e.s.apiMust(http.StatusBadRequest, "POST", e.base+"/knowledge-base", e.key, map[string]any{"type": "pdf"})
}

// TestKnowledgeSSRF: with private fetches refused, as in production, a
// URL source on loopback — by address, by name or behind a redirect —
// fails with a reason the user can read.
func TestKnowledgeSSRF(t *testing.T) {
	e := newKBEnv(t, "", withConfig(func(c *config.Config) { c.AllowPrivateFetch = false }))
	inner := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/redirect" {
			http.Redirect(w, r, "http://127.0.0.1:1/admin", http.StatusFound)
			return
		}
		fmt.Fprint(w, "<html><body><p>internal secrets</p></body></html>")
	}))
	t.Cleanup(inner.Close)
	port := inner.URL[strings.LastIndex(inner.URL, ":")+1:]
	ids := []string{
		e.add(map[string]any{"type": "url", "url": inner.URL + "/"}),
		e.add(map[string]any{"type": "url", "url": "http://localhost:" + port + "/"}),
		e.add(map[string]any{"type": "url", "url": inner.URL + "/redirect"}),
	}
	srcs := e.settle()
	for _, id := range ids {
		if s := srcs[id]; s["status"] != "failed" || !strings.Contains(s["error"].(string), "is not public") {
			t.Errorf("private URL source = %v", s)
		}
	}
	if res, _ := e.query("internal secrets"); len(res) != 0 {
		t.Errorf("private page was indexed: %v", res)
	}
}

// TestKnowledgeResumesAfterRestart stops the gateway while a source is
// being embedded, and finds it ready after the next start; a job left
// processing by a crashed worker (its lease run out) is taken up too.
func TestKnowledgeResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	lease := withConfig(func(c *config.Config) { c.KnowledgeLease = 300 * time.Millisecond })
	e := newKBEnv(t, dir, lease)
	e.ai.EnqueueEmbeddings(fakeai.Delay(30 * time.Second))
	id := e.add(map[string]any{"type": "text", "title": "Parking", "body": "Customers park for free behind the store."})
	deadline := time.Now().Add(10 * time.Second)
	for len(e.ai.RequestsTo(fakeai.EndpointEmbeddings)) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the job never called the embedding model")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if s := e.sources()[id]; s["status"] != "processing" {
		t.Fatalf("source mid-job = %v", s)
	}
	if err := e.s.stop(); err != nil {
		t.Fatal(err)
	}

	// A crashed worker: the row says processing, under a lease that ran out.
	db := storetest.RawDB(t, e.s.dbURL)
	crashed := "crashed-source"
	if _, err := db.Exec(`INSERT INTO knowledge_sources (id, chatbot_id, organization_id, type, title, body, size, status,
		attempts, lease_until, claim, created_at, updated_at) VALUES ($1, $2, $3, 'text', 'Pets', 'Dogs on a leash are welcome in the store.',
		40, 'processing', 1, 1, 'dead-worker', 1, 1)`, crashed, e.id, e.org.ID); err != nil {
		t.Fatal(err)
	}

	s2 := startServer(t, dir, lease)
	e.s = s2
	srcs := e.settle()
	for _, id := range []string{id, crashed} {
		if s := srcs[id]; s["status"] != "ready" || s["chunks"] != float64(1) {
			t.Errorf("source after restart = %v", s)
		}
	}
	if res, _ := e.query("where do customers park"); len(res) == 0 || res[0].SourceID != id {
		t.Errorf("query after restart = %v", res)
	}
}

// count returns the rows of table that belong to chatbot (FTS rows: all).
func count(t *testing.T, s *server, query string, args ...any) int {
	t.Helper()
	var n int
	if err := storetest.RawDB(t, s.dbURL).QueryRow(query, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func ftsRows(t *testing.T, s *server) int {
	if storetest.SuiteBackend() == storetest.SQLite {
		// The FTS index itself (not its content table): a deleted chunk
		// must be gone from it too.
		return count(t, s, "SELECT count(*) FROM knowledge_fts WHERE knowledge_fts MATCH 'kettle OR descale OR hours OR opens'")
	}
	return count(t, s, "SELECT count(*) FROM knowledge_chunks WHERE tsv @@ to_tsquery('simple', 'kettle | descale | hours | opens')")
}

func TestKnowledgeEditDeleteCascade(t *testing.T) {
	e := newKBEnv(t, "")
	text := e.add(map[string]any{"type": "text", "title": "Hours", "body": "The shop opens at nine."})
	qa := e.add(map[string]any{"type": "qa", "question": "Kettle colours?", "answer": "The kettle comes in red and blue."})
	e.settle()

	// An edit replaces the content: the old text is no longer found.
	r := e.s.apiMust(http.StatusAccepted, "PATCH", e.base+"/knowledge-base?id="+text, e.key, map[string]any{"body": "The shop opens at eight sharp."})
	if sourceIDs(t, r)[0] != text {
		t.Errorf("patch answered %s", r.Body)
	}
	e.s.apiMust(http.StatusBadRequest, "PATCH", e.base+"/knowledge-base?id="+text, e.key, map[string]any{"question": "x"})
	e.s.apiMust(http.StatusNotFound, "PATCH", e.base+"/knowledge-base?id=nope", e.key, map[string]any{"body": "x"})
	srcs := e.settle()
	if srcs[text]["body"] != "The shop opens at eight sharp." || srcs[text]["status"] != "ready" {
		t.Errorf("edited source = %v", srcs[text])
	}
	if res, _ := e.query("opens eight"); len(res) == 0 || !strings.Contains(res[0].Content, "eight sharp") {
		t.Errorf("edited content not found: %v", res)
	}
	if res, _ := e.query("nine"); len(res) != 0 {
		t.Errorf("old content still found: %v", res)
	}

	// Deleting a source removes its chunks, vectors and full-text rows.
	before := ftsRows(t, e.s)
	d := e.s.apiMust(http.StatusOK, "DELETE", e.base+"/knowledge-base?id="+qa, e.key, nil)
	if d.object(t, "chatbot")["id"] != e.id {
		t.Errorf("delete answered %s", d.Body)
	}
	e.s.apiMust(http.StatusNotFound, "DELETE", e.base+"/knowledge-base?id="+qa, e.key, nil)
	if n := count(t, e.s, "SELECT count(*) FROM knowledge_chunks WHERE source_id = $1", qa); n != 0 {
		t.Errorf("%d chunks left of a deleted source", n)
	}
	if after := ftsRows(t, e.s); after != before-1 {
		t.Errorf("full-text rows %d -> %d after deleting one chunk", before, after)
	}
	if res, _ := e.query("kettle colours red blue"); len(res) != 0 {
		t.Errorf("deleted source found: %v", res)
	}

	// Deleting the chatbot cascades to everything of its knowledge base.
	e.s.apiMust(http.StatusOK, "DELETE", e.base, e.org.Key, nil)
	for _, q := range []string{"knowledge_sources", "knowledge_chunks", "knowledge_versions"} {
		if n := count(t, e.s, "SELECT count(*) FROM "+q+" WHERE chatbot_id = $1", e.id); n != 0 {
			t.Errorf("%d rows of %s left after the chatbot's deletion", n, q)
		}
	}
	if n := ftsRows(t, e.s); n != 0 {
		t.Errorf("%d full-text rows left after the chatbot's deletion", n)
	}
}

func TestKnowledgeIsolationAndLimits(t *testing.T) {
	e := newKBEnv(t, "", withConfig(func(c *config.Config) { c.KnowledgeMaxSources = 2 }))
	src := e.add(map[string]any{"type": "text", "title": "Secret recipe", "body": "Alpha secret recipe uses cardamom."})
	ownID, ownKey := e.id, e.key
	e.chatbot("Other")
	otherKey := e.key
	other := e.s.createOrg("Bravo")

	routes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/api/external/chatbot/" + ownID + "/knowledge-base", nil},
		{"POST", "/api/external/chatbot/" + ownID + "/knowledge-base", map[string]any{"type": "text", "title": "x", "body": "y"}},
		{"PATCH", "/api/external/chatbot/" + ownID + "/knowledge-base?id=" + src, map[string]any{"body": "y"}},
		{"DELETE", "/api/external/chatbot/" + ownID + "/knowledge-base?id=" + src, nil},
		{"POST", "/api/external/chatbot/" + ownID + "/query-knowledge", map[string]any{"query": "recipe"}},
		{"POST", "/api/external/chatbot/" + ownID + "/knowledge-base/files", "{}"},
	}
	for _, who := range []struct {
		name, key string
		want      int
	}{
		{"another organization's key", other.Key, http.StatusNotFound},
		{"another chatbot's key", otherKey, http.StatusForbidden},
		{"no key", "", http.StatusUnauthorized},
	} {
		for _, r := range routes {
			got := e.s.apiCall(r.method, r.path, who.key, r.body)
			if got.Status != who.want || strings.Contains(string(got.Body), "cardamom") {
				t.Errorf("%s: %s %s = %d, want %d: %s", who.name, r.method, r.path, got.Status, who.want, got.Body)
			}
		}
	}
	// A source id of another chatbot is not found through this one.
	e.s.apiMust(http.StatusNotFound, "DELETE", e.base+"/knowledge-base?id="+src, otherKey, nil)
	// The chatbot's own key works on every route.
	e.s.apiMust(http.StatusOK, "POST", "/api/external/chatbot/"+ownID+"/query-knowledge", ownKey, map[string]any{"query": "recipe"})

	// The organization's source limit counts all its chatbots.
	e.add(map[string]any{"type": "qa", "question": "q", "answer": "a"})
	ae := e.s.apiMust(http.StatusConflict, "POST", e.base+"/knowledge-base", e.key, map[string]any{"type": "qa", "question": "q2", "answer": "a2"}).apiError(t)
	if !strings.Contains(ae.Message, "the limit is 2") {
		t.Errorf("limit error = %+v", ae)
	}
}

// TestKnowledgeFullTextOnly: a chatbot without credentials for an
// embedding model has a knowledge base searched by full text, and says so.
func TestKnowledgeFullTextOnly(t *testing.T) {
	s := startServer(t, "")
	o := s.createOrg("NoCreds")
	m := s.apiMust(http.StatusOK, "POST", "/api/v1/chatbots", o.Key, map[string]any{"name": "Plain"}).json(t)
	e := &kbEnv{t: t, s: s, org: o, id: m["chatbot"].(map[string]any)["id"].(string), key: m["apiKey"].(string)}
	e.base = "/api/external/chatbot/" + e.id
	id := e.add(map[string]any{"type": "text", "title": "Delivery", "body": "Deliveries arrive on Tuesdays and Fridays."})
	e.add(map[string]any{"type": "text", "title": "Hours", "body": "Open from nine to five."})
	srcs := e.settle()
	if s := srcs[id]; s["status"] != "ready" || !strings.Contains(fmt.Sprint(s["note"]), "searchable by full text only") {
		t.Errorf("source without embeddings = %v", s)
	}
	res, body := e.query("when do deliveries arrive")
	if len(res) == 0 || res[0].SourceID != id || body["mode"] != "fulltext" {
		t.Errorf("full-text query = %v", body)
	}
}

// waitReady waits until the chatbot's knowledge sources are all settled.
func waitKnowledge(t *testing.T, s *server, chatbotID, key string) {
	t.Helper()
	(&kbEnv{t: t, s: s, id: chatbotID, key: key, base: "/api/external/chatbot/" + chatbotID}).settle()
}

// TestKnowledgeGroundedReply: a bot answering as a chatbot sends the model
// the chunks that answer the turn, with their titles, and its stored reply
// lists them as sources; with nothing relevant, the chatbot's fallback
// applies.
func TestKnowledgeGroundedReply(t *testing.T) {
	e, cb, _ := newChatbotEnv(t)
	base := "/api/external/chatbot/" + cb.ID
	hours := sourceIDs(t, e.s.apiMust(http.StatusAccepted, "POST", base+"/knowledge-base", testAPIKey, map[string]any{
		"type": "text", "title": "Opening hours", "body": "On Saturdays the shop opens at ten and closes at four."}))[0]
	e.s.apiMust(http.StatusAccepted, "POST", base+"/knowledge-base", testAPIKey, map[string]any{
		"type": "qa", "question": "Do you deliver abroad?", "answer": "We deliver to every country in Europe."})
	waitKnowledge(t, e.s, cb.ID, testAPIKey)

	chat := "5511@s.whatsapp.net"
	e.say("m1", chat, "When does the shop open on Saturdays?", nil)
	e.replies(1)
	req, _ := e.ai.LastChat()
	var grounding string
	for _, m := range req.Messages {
		if m.Role == "system" && strings.Contains(m.Content, "knowledge base passages") {
			grounding = m.Content
		}
	}
	if !strings.Contains(grounding, "Title: Opening hours\nChunk: 1\n\n") || !strings.Contains(grounding, "opens at ten") ||
		!strings.Contains(grounding, "do not have that information") {
		t.Fatalf("model request lacks the knowledge: %+v", req.Messages)
	}
	if systemPrompt(t, req) == grounding || !strings.Contains(systemPrompt(t, req), "You are Olivia") {
		t.Errorf("the chatbot's own prompt should come first: %+v", req.Messages)
	}

	var msgs struct {
		Data []struct {
			Direction string `json:"direction"`
			Sources   []struct {
				ChunkID, SourceID, Title string
				Similarity               float64
			} `json:"sources"`
		} `json:"data"`
	}
	json.Unmarshal(e.s.must(http.StatusOK, "GET", "/conversations/shop/"+chat+"/messages", e.inst.Token, nil).Body, &msgs)
	var found bool
	for _, m := range msgs.Data {
		if m.Direction == "out" && len(m.Sources) > 0 {
			found = true
			if s := m.Sources[0]; s.SourceID != hours || s.Title != "Opening hours" || s.ChunkID == "" || s.Similarity <= 0 {
				t.Errorf("reply sources = %+v", m.Sources)
			}
		}
	}
	if !found {
		t.Fatalf("the bot's reply records no sources: %+v", msgs)
	}
	// okchat's messages route shows them too.
	convs := e.s.apiMust(http.StatusOK, "GET", base+"/conversations", cb.Key, nil).json(t)["data"].([]any)
	sid := convs[0].(map[string]any)["id"].(string)
	okMsgs := e.s.apiMust(http.StatusOK, "GET", base+"/conversations/"+sid+"/messages", cb.Key, nil)
	if !strings.Contains(string(okMsgs.Body), `"sources":[{"chunkId"`) {
		t.Errorf("okchat messages lack sources: %s", okMsgs.Body)
	}

	// Nothing relevant, fixed message: the model is not asked.
	e.s.patchChatbot(cb.ID, map[string]any{"settings": map[string]any{
		"knowledgeFallback": "message", "knowledgeFallbackMessage": "I can only answer questions about our shop."}})
	calls := len(e.ai.RequestsTo(fakeai.EndpointChat))
	e.say("m2", chat, "Explain quantum chromodynamics", nil)
	if got := e.replies(2)[1]; got != "I can only answer questions about our shop." {
		t.Errorf("fallback reply = %q", got)
	}
	if n := len(e.ai.RequestsTo(fakeai.EndpointChat)); n != calls {
		t.Errorf("the model was asked despite the fixed fallback")
	}

	// Nothing relevant, handoff: the session pauses for a human.
	e.s.patchChatbot(cb.ID, map[string]any{"settings": map[string]any{"knowledgeFallback": "handoff"}})
	e.say("m3", chat, "Explain quantum chromodynamics again", nil)
	if state, reason := e.waitState(chat, "m3"); state != "ignored" || !strings.Contains(reason, "human") {
		t.Errorf("m3: %s (%s)", state, reason)
	}
	eventually(t, func() bool {
		ev := e.sessionEvents()
		return len(ev) > 0 && ev[len(ev)-1] == "paused:handoff: no knowledge"
	}, "the handoff event")
}
