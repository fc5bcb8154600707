package okchat

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/api"
	"github.com/wagate/wagate/knowledge"
	"github.com/wagate/wagate/store"
)

// MaxKnowledgeFiles is how many files one upload may carry.
const MaxKnowledgeFiles = 20

// Lengths of what a text or Q&A source may hold.
const (
	maxTitle    = 512
	maxTextBody = 2 << 20
	maxQuestion = 4096
	maxAnswer   = 64 << 10
	maxURL      = 2048
)

// SetKnowledge gives the handlers the knowledge base and the largest file
// an upload may carry.
func (h *Handlers) SetKnowledge(kb *knowledge.Service, maxFileBytes int64) {
	h.kb, h.maxFileBytes = kb, maxFileBytes
}

// sourceView is a knowledge source as the API shows it.
func sourceView(k *store.KnowledgeSource) map[string]any {
	v := map[string]any{
		"id": k.ID, "type": k.Type, "title": k.Title, "status": k.Status, "error": nullIfEmpty(k.Error),
		"note": nullIfEmpty(k.Note), "chunks": k.Chunks, "characters": k.Characters, "size": k.Size,
		"created_at": k.CreatedAt.Format(time.RFC3339Nano), "updated_at": k.UpdatedAt.Format(time.RFC3339Nano),
	}
	switch k.Type {
	case store.SourceURL:
		v["url"] = k.URL
	case store.SourceFile:
		v["file_name"], v["content_type"] = k.FileName, k.ContentType
	case store.SourceText:
		v["body"] = k.Body
	case store.SourceQA:
		v["question"], v["answer"] = k.Title, k.Body
	}
	return v
}

func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func sourceViews(ks []*store.KnowledgeSource) []map[string]any {
	out := make([]map[string]any, len(ks))
	for i, k := range ks {
		out[i] = sourceView(k)
	}
	return out
}

// ListKnowledge is GET /api/external/chatbot/{chatbotId}/knowledge-base:
// okchat's {"chatbot"} with the sources under "data".
func (h *Handlers) ListKnowledge(c echo.Context) error {
	cb := api.ChatbotOf(c)
	ks, err := h.store.KnowledgeSources(c.Request().Context(), cb.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"chatbot": h.View(cb), "data": sourceViews(ks)})
}

// SourceBody is the JSON body of a url, text or qa source, and of an edit.
type SourceBody struct {
	Type     *string `json:"type"`
	URL      *string `json:"url"`
	Title    *string `json:"title"`
	Body     *string `json:"body"`
	Question *string `json:"question"`
	Answer   *string `json:"answer"`
}

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// checkText adds a problem when s (required) is empty or longer than max.
func checkText(p *wagate.Problems, field, s string, max int) {
	switch {
	case strings.TrimSpace(s) == "":
		p.Add(field, "required")
	case utf8.RuneCountInString(s) > max:
		p.Add(field, fmt.Sprintf("longer than %d characters", max))
	case !utf8.ValidString(s) || strings.ContainsRune(s, 0):
		p.Add(field, "must be UTF-8 text without NUL characters")
	}
}

func checkSourceURL(p *wagate.Problems, raw string) {
	u, err := url.Parse(raw)
	switch {
	case strings.TrimSpace(raw) == "":
		p.Add("url", "required")
	case len(raw) > maxURL:
		p.Add("url", fmt.Sprintf("longer than %d characters", maxURL))
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "":
		p.Add("url", "must be an absolute http or https URL")
	}
}

// apply sets k's content from b, checking it, for a new source (typ set)
// or an edit of k.
func applySource(k *store.KnowledgeSource, b *SourceBody, p *wagate.Problems) {
	switch k.Type {
	case store.SourceURL:
		if b.URL != nil || k.URL == "" {
			checkSourceURL(p, str(b.URL))
			k.URL = strings.TrimSpace(str(b.URL))
		}
		if b.Title != nil {
			checkText(p, "title", *b.Title, maxTitle)
			k.Title = collapseSpace(*b.Title)
		} else if k.Title == "" || k.Title == k.URL {
			k.Title = k.URL
		}
		k.Size = int64(len(k.URL))
	case store.SourceText:
		if b.Title != nil || k.Title == "" {
			checkText(p, "title", str(b.Title), maxTitle)
			k.Title = collapseSpace(str(b.Title))
		}
		if b.Body != nil || k.Body == "" {
			checkText(p, "body", str(b.Body), maxTextBody)
			k.Body = str(b.Body)
		}
		k.Size = int64(len(k.Body))
	case store.SourceQA:
		if b.Question != nil || k.Title == "" {
			checkText(p, "question", str(b.Question), maxQuestion)
			k.Title = collapseSpace(str(b.Question))
		}
		if b.Answer != nil || k.Body == "" {
			checkText(p, "answer", str(b.Answer), maxAnswer)
			k.Body = str(b.Answer)
		}
		k.Size = int64(len(k.Title) + len(k.Body))
	}
}

func collapseSpace(s string) string { return strings.Join(strings.Fields(s), " ") }

// AddKnowledge is POST /api/external/chatbot/{chatbotId}/knowledge-base
// with {"type":"url","url"}, {"type":"text","title","body"} or
// {"type":"qa","question","answer"}: 202 with the source, pending.
func (h *Handlers) AddKnowledge(c echo.Context) error {
	var b SourceBody
	if err := api.Decode(c, &b, true); err != nil {
		return err
	}
	k, err := h.AddSource(c.Request().Context(), api.ChatbotOf(c), &b)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"data": []map[string]any{sourceView(k)}})
}

// AddSource checks b and queues it as a new url, text or qa source of cb.
func (h *Handlers) AddSource(ctx context.Context, cb *store.Chatbot, b *SourceBody) (*store.KnowledgeSource, error) {
	now := stamp()
	k := &store.KnowledgeSource{ID: uuid.NewString(), ChatbotID: cb.ID, OrganizationID: cb.OrganizationID,
		Type: str(b.Type), Status: store.SourcePending, CreatedAt: now, UpdatedAt: now}
	var p wagate.Problems
	switch k.Type {
	case store.SourceURL, store.SourceText, store.SourceQA:
		applySource(k, b, &p)
	case store.SourceFile:
		p.Add("type", "files are uploaded to POST /api/external/chatbot/{chatbotId}/knowledge-base/files")
	case "":
		p.Add("type", "required: url, text or qa")
	default:
		p.Add("type", "must be url, text or qa")
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if err := h.store.CreateKnowledgeSources(ctx, h.kb.Limits(), []*store.KnowledgeSource{k}); err != nil {
		return nil, err
	}
	h.kb.Kick()
	return k, nil
}

// AddKnowledgeFiles is POST
// /api/external/chatbot/{chatbotId}/knowledge-base/files with one or more
// files in the multipart field files: PDF, DOCX, HTML, Markdown, text or
// CSV, told by their bytes. 202 with the sources, pending.
func (h *Handlers) AddKnowledgeFiles(c echo.Context) error {
	srcs, err := h.AddFiles(c, api.ChatbotOf(c))
	if err != nil {
		return err
	}
	views := make([]map[string]any, len(srcs))
	for i, k := range srcs {
		views[i] = sourceView(k)
	}
	return c.JSON(http.StatusAccepted, map[string]any{"data": views})
}

// AddFiles reads the files of c's multipart field files and queues them
// as sources of cb; a problem of a file is reported as files[i].
func (h *Handlers) AddFiles(c echo.Context, cb *store.Chatbot) ([]*store.KnowledgeSource, error) {
	if !strings.HasPrefix(c.Request().Header.Get(echo.HeaderContentType), echo.MIMEMultipartForm) {
		return nil, wagate.Invalid("body", "must be multipart/form-data with the files in the field files")
	}
	form, err := c.MultipartForm()
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return nil, api.TooLarge(mbe.Limit)
	case err != nil:
		return nil, wagate.Invalid("body", "malformed multipart form")
	}
	defer form.RemoveAll()
	var files []*multipart.FileHeader
	for _, fh := range form.File["files"] {
		// A browser's form with no file chosen sends one empty part.
		if fh.Filename != "" || fh.Size > 0 {
			files = append(files, fh)
		}
	}
	switch {
	case len(files) == 0:
		return nil, wagate.Invalid("files", "required: one or more files")
	case len(files) > MaxKnowledgeFiles:
		return nil, wagate.Invalid("files", fmt.Sprintf("at most %d files per upload", MaxKnowledgeFiles))
	}
	now := stamp()
	var (
		p    wagate.Problems
		srcs []*store.KnowledgeSource
	)
	for i, fh := range files {
		field := fmt.Sprintf("files[%d]", i)
		data, err := h.readKnowledgeFile(fh)
		if err != nil {
			p.Add(field, err.Error())
			continue
		}
		name := filepath.Base(strings.ReplaceAll(fh.Filename, `\`, "/"))
		format, ok := knowledge.Detect(name, data)
		if !ok {
			p.Add(field, fmt.Sprintf("%s is %s; the knowledge base reads PDF, DOCX, HTML, Markdown, plain text and CSV",
				name, http.DetectContentType(data)))
			continue
		}
		title := name
		if title == "" || title == "." {
			title = "Untitled " + string(format)
		}
		srcs = append(srcs, &store.KnowledgeSource{ID: uuid.NewString(), ChatbotID: cb.ID, OrganizationID: cb.OrganizationID,
			Type: store.SourceFile, Title: title, FileName: name, ContentType: string(format), Data: data,
			Size: int64(len(data)), Status: store.SourcePending, CreatedAt: now, UpdatedAt: now})
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	if err := h.store.CreateKnowledgeSources(c.Request().Context(), h.kb.Limits(), srcs); err != nil {
		return nil, err
	}
	h.kb.Kick()
	return srcs, nil
}

func (h *Handlers) readKnowledgeFile(fh *multipart.FileHeader) ([]byte, error) {
	limit := fmt.Sprintf("larger than %d bytes (WAGATE_KNOWLEDGE_MAX_FILE_BYTES)", h.maxFileBytes)
	if fh.Size > h.maxFileBytes {
		return nil, errors.New(limit)
	}
	f, err := fh.Open()
	if err != nil {
		return nil, errors.New("could not be read")
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, h.maxFileBytes+1))
	switch {
	case err != nil:
		return nil, errors.New("could not be read")
	case int64(len(data)) > h.maxFileBytes:
		return nil, errors.New(limit)
	case len(data) == 0:
		return nil, errors.New("empty")
	}
	return data, nil
}

func sourceID(c echo.Context) (string, error) {
	id := c.QueryParam("id")
	if id == "" {
		return "", wagate.Invalid("id", "required: the knowledge source's id, as ?id=")
	}
	return id, nil
}

// UpdateKnowledge is PATCH
// /api/external/chatbot/{chatbotId}/knowledge-base?id=: edits a text or
// Q&A source, or changes or re-fetches a URL source (an empty body
// re-fetches it), and queues it again; 202 with the source. A file is
// replaced by deleting it and uploading the new one.
func (h *Handlers) UpdateKnowledge(c echo.Context) error {
	id, err := sourceID(c)
	if err != nil {
		return err
	}
	var b SourceBody
	raw, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return wagate.Invalid("body", "could not be read")
	}
	if strings.TrimSpace(string(raw)) != "" {
		c.Request().Body = io.NopCloser(strings.NewReader(string(raw)))
		if err := api.Decode(c, &b, true); err != nil {
			return err
		}
	}
	k, err := h.UpdateSource(c.Request().Context(), api.ChatbotOf(c), id, &b)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, map[string]any{"data": []map[string]any{sourceView(k)}})
}

// UpdateSource edits cb's text or Q&A source id, or changes or re-fetches
// its URL source (a body without fields re-fetches it), with b, and queues
// it to be read again.
func (h *Handlers) UpdateSource(ctx context.Context, cb *store.Chatbot, id string, b *SourceBody) (*store.KnowledgeSource, error) {
	k, err := h.store.KnowledgeSource(ctx, cb.ID, id)
	if err != nil {
		return nil, err
	}
	var p wagate.Problems
	if b.Type != nil && *b.Type != k.Type {
		p.Add("type", "cannot change; delete the source and add a new one")
	}
	switch k.Type {
	case store.SourceFile:
		return nil, wagate.Invalid("id", "a file cannot be edited; delete it and upload the new version")
	case store.SourceURL:
		if b.Body != nil || b.Question != nil || b.Answer != nil {
			p.Add("body", "a url source takes url and title only")
		}
	case store.SourceText:
		if b.URL != nil || b.Question != nil || b.Answer != nil {
			p.Add("body", "a text source takes title and body only")
		}
	case store.SourceQA:
		if b.URL != nil || b.Title != nil || b.Body != nil {
			p.Add("body", "a qa source takes question and answer only")
		}
	}
	applySource(k, b, &p)
	if err := p.Err(); err != nil {
		return nil, err
	}
	k.Status, k.Error, k.Note, k.Chunks, k.Characters, k.UpdatedAt = store.SourcePending, "", "", 0, 0, stamp()
	if err := h.store.RestartKnowledgeSource(ctx, k); err != nil {
		return nil, err
	}
	h.kb.Kick()
	return k, nil
}

// DeleteKnowledge is DELETE
// /api/external/chatbot/{chatbotId}/knowledge-base?id=: the source goes
// with its chunks, vectors and full-text rows. okchat answers with the
// chatbot.
func (h *Handlers) DeleteKnowledge(c echo.Context) error {
	id, err := sourceID(c)
	if err != nil {
		return err
	}
	cb := api.ChatbotOf(c)
	if err := h.DeleteSource(c.Request().Context(), cb, id); err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"chatbot": h.View(cb)})
}

// DeleteSource deletes cb's source id with its chunks, vectors and
// full-text rows.
func (h *Handlers) DeleteSource(ctx context.Context, cb *store.Chatbot, id string) error {
	return h.store.DeleteKnowledgeSource(ctx, cb.ID, id)
}

// QueryKnowledge is POST /api/external/chatbot/{chatbotId}/query-knowledge
// {"query","limit"?}: retrieval only, best first.
func (h *Handlers) QueryKnowledge(c echo.Context) error {
	var b struct {
		Query *string  `json:"query"`
		Limit *float64 `json:"limit"`
	}
	if err := api.Decode(c, &b, true); err != nil {
		return err
	}
	ans, err := h.Query(c.Request().Context(), api.ChatbotOf(c), str(b.Query), b.Limit)
	if err != nil {
		return err
	}
	results := make([]map[string]any, len(ans.Results))
	for i, r := range ans.Results {
		results[i] = map[string]any{"content": r.Content, "similarity": r.Similarity,
			"sourceId": r.SourceID, "chunkId": r.ChunkID, "title": r.Title, "chunk": r.Chunk}
	}
	out := map[string]any{"results": results, "mode": ans.Mode}
	if ans.Note != "" {
		out["note"] = ans.Note
	}
	return c.JSON(http.StatusOK, out)
}

// QueryResult is a chunk a knowledge query found.
type QueryResult struct {
	Content    string
	Similarity float64 // rounded to 4 decimals
	SourceID   string
	ChunkID    string
	Title      string
	Chunk      int // its position in its source
}

// QueryAnswer is what a knowledge query found, best first; Mode is hybrid
// or fulltext, and Note says why when only full text was searched.
type QueryAnswer struct {
	Results []QueryResult
	Mode    string
	Note    string
}

// Query checks query and limit (nil: the chatbot's own) and searches cb's
// knowledge base as a turn of a conversation would.
func (h *Handlers) Query(ctx context.Context, cb *store.Chatbot, query string, limit *float64) (*QueryAnswer, error) {
	var p wagate.Problems
	checkText(&p, "query", query, 4096)
	n := 0
	if limit != nil {
		checkInteger(&p, "limit", *limit, 1, knowledge.MaxTopK)
		n = int(*limit)
	}
	if err := p.Err(); err != nil {
		return nil, err
	}
	res, err := h.kb.Search(ctx, cb, query, n)
	if err != nil {
		return nil, err
	}
	ans := &QueryAnswer{Mode: "hybrid", Results: make([]QueryResult, len(res.Results))}
	for i, r := range res.Results {
		ans.Results[i] = QueryResult{Content: r.Content(), Similarity: round4(r.Similarity),
			SourceID: r.Chunk.SourceID, ChunkID: r.Chunk.ID, Title: r.Chunk.Title, Chunk: r.Chunk.Position}
	}
	if res.FullText {
		ans.Mode, ans.Note = "fulltext", "searched by full text only: "+res.Reason
	}
	return ans, nil
}

func round4(f float64) float64 { return float64(int64(f*10000+0.5*sign(f))) / 10000 }

func sign(f float64) float64 {
	if f < 0 {
		return -1
	}
	return 1
}
