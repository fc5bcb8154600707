package console

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/gateway/okchat"
	"github.com/wagate/wagate/store"
)

// knowledgePage is the data of a chatbot's knowledge page.
type knowledgePage struct {
	Chatbot *store.Chatbot
	Sources sourceList
	Failed  string            // the type of the add form that failed: url, text, qa or file
	Values  map[string]string // what that form held
	Query   string
	Answer  *queryView
}

// V is the value the failed form held for name.
func (p knowledgePage) V(typ, name string) string {
	if p.Failed != typ {
		return ""
	}
	return p.Values[name]
}

// sourceList is the sources of a chatbot, as the live region shows them.
type sourceList struct {
	ChatbotID string
	Items     []*store.KnowledgeSource
}

// Busy reports whether a source is still being read, so the list keeps
// asking for its statuses.
func (l sourceList) Busy() bool {
	for _, k := range l.Items {
		if k.Status == store.SourcePending || k.Status == store.SourceProcessing {
			return true
		}
	}
	return false
}

type queryView struct {
	*okchat.QueryAnswer
	Titles map[string]string // source id → title
}

// Source is the title of the source of result i.
func (q *queryView) Source(id string) string {
	if t, ok := q.Titles[id]; ok {
		return t
	}
	return id
}

func (cs *Console) sourceList(c echo.Context, cb *store.Chatbot) (sourceList, error) {
	ks, err := cs.st.KnowledgeSources(c.Request().Context(), cb.ID)
	return sourceList{ChatbotID: cb.ID, Items: ks}, err
}

func (cs *Console) knowledgeView(c echo.Context, cb *store.Chatbot) (*knowledgePage, error) {
	l, err := cs.sourceList(c, cb)
	if err != nil {
		return nil, err
	}
	return &knowledgePage{Chatbot: cb, Sources: l, Values: map[string]string{}}, nil
}

func (cs *Console) knowledgePage(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	p, err := cs.knowledgeView(c, cb)
	if err != nil {
		return err
	}
	return cs.render(c, http.StatusOK, "knowledge", p)
}

// knowledgeSources answers the live region's polling with the list alone.
func (cs *Console) knowledgeSources(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	p, err := cs.knowledgeView(c, cb)
	if err != nil {
		return err
	}
	return cs.renderPartial(c, http.StatusOK, "knowledge", "sources", p)
}

func (cs *Console) knowledgeBack(c echo.Context, cb *store.Chatbot, msg string) error {
	cs.flash(c, msg)
	return c.Redirect(http.StatusSeeOther, chatbotsPath+"/"+cb.ID+"/knowledge")
}

// knowledgeAdd adds a url, text or qa source: the form's fields are the
// API body's.
func (cs *Console) knowledgeAdd(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	values := map[string]string{}
	opt := func(name string) *string {
		if _, ok := c.Request().PostForm[name]; !ok {
			return nil
		}
		v := c.FormValue(name)
		values[name] = v
		return &v
	}
	if err := c.Request().ParseForm(); err != nil {
		return err
	}
	b := okchat.SourceBody{Type: opt("type"), URL: opt("url"), Title: opt("title"), Body: opt("body"),
		Question: opt("question"), Answer: opt("answer")}
	if b.Type != nil && *b.Type == store.SourceURL && b.Title != nil && strings.TrimSpace(*b.Title) == "" {
		b.Title = nil // an empty title is the URL's
	}
	if _, err = cs.chatbots.AddSource(c.Request().Context(), cb, &b); err == nil {
		return cs.knowledgeBack(c, cb, "The source is added; it is being read.")
	}
	if status := formStatus(err); status != 0 {
		p, perr := cs.knowledgeView(c, cb)
		if perr != nil {
			return perr
		}
		p.Failed, p.Values = values["type"], values
		return cs.renderForm(c, status, "knowledge", p, err)
	}
	return err
}

func (cs *Console) knowledgeFiles(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	srcs, err := cs.chatbots.AddFiles(c, cb)
	if err == nil {
		return cs.knowledgeBack(c, cb, strconv.Itoa(len(srcs))+" file(s) added; they are being read.")
	}
	if status := formStatus(err); status != 0 {
		p, perr := cs.knowledgeView(c, cb)
		if perr != nil {
			return perr
		}
		p.Failed = store.SourceFile
		return cs.renderForm(c, status, "knowledge", p, err)
	}
	return err
}

// sourcePage is the data of the page that edits a knowledge source.
type sourcePage struct {
	Chatbot *store.Chatbot
	Source  *store.KnowledgeSource
	Values  map[string]string // what the form holds
}

// sourceOf returns the chatbot's source of the path that can be edited: a
// file cannot be (it is replaced by uploading it again).
func (cs *Console) sourceOf(c echo.Context) (*store.Chatbot, *store.KnowledgeSource, error) {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return nil, nil, err
	}
	k, err := cs.st.KnowledgeSource(c.Request().Context(), cb.ID, c.Param("source"))
	if err != nil {
		return nil, nil, err
	}
	if k.Type == store.SourceFile {
		return nil, nil, wagate.Errorf(wagate.ENOTFOUND, "a %s source cannot be edited: delete it and upload the new version", k.Type)
	}
	return cb, k, nil
}

// sourcePage shows the form that edits a url, text or Q&A source.
func (cs *Console) sourcePage(c echo.Context) error {
	cb, k, err := cs.sourceOf(c)
	if err != nil {
		return err
	}
	v := map[string]string{}
	switch k.Type {
	case store.SourceURL:
		v["url"], v["title"] = k.URL, k.Title
		if k.Title == k.URL {
			v["title"] = "" // the URL's own
		}
	case store.SourceText:
		v["title"], v["body"] = k.Title, k.Body
	case store.SourceQA:
		v["question"], v["answer"] = k.Title, k.Body
	}
	return cs.render(c, http.StatusOK, "knowledge_source", &sourcePage{Chatbot: cb, Source: k, Values: v})
}

// sourceSave saves the edit form and has the source read again (a page
// fetched again).
func (cs *Console) sourceSave(c echo.Context) error {
	cb, k, err := cs.sourceOf(c)
	if err != nil {
		return err
	}
	if err := c.Request().ParseForm(); err != nil {
		return err
	}
	v := map[string]string{}
	field := func(name string) *string {
		s := c.FormValue(name)
		v[name] = s
		return &s
	}
	var b okchat.SourceBody
	switch k.Type {
	case store.SourceURL:
		b.URL, b.Title = field("url"), field("title")
		if strings.TrimSpace(*b.Title) == "" {
			b.Title = nil // an empty title is the URL's
		}
	case store.SourceText:
		b.Title, b.Body = field("title"), field("body")
	case store.SourceQA:
		b.Question, b.Answer = field("question"), field("answer")
	}
	if _, err := cs.chatbots.UpdateSource(c.Request().Context(), cb, k.ID, &b); err != nil {
		if formStatus(err) == 0 {
			return err
		}
		return cs.renderForm(c, formStatus(err), "knowledge_source", &sourcePage{Chatbot: cb, Source: k, Values: v}, err)
	}
	return cs.knowledgeBack(c, cb, "The source is saved; it is being read again.")
}

func (cs *Console) knowledgeDelete(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	if err := cs.chatbots.DeleteSource(c.Request().Context(), cb, c.Param("source")); err != nil {
		return err
	}
	return cs.knowledgeBack(c, cb, "The source is deleted.")
}

// knowledgeQuery shows what query-knowledge finds: the results alone for
// htmx, the whole page without JavaScript.
func (cs *Console) knowledgeQuery(c echo.Context) error {
	cb, err := cs.chatbotOf(c)
	if err != nil {
		return err
	}
	p, err := cs.knowledgeView(c, cb)
	if err != nil {
		return err
	}
	p.Query = c.FormValue("query")
	var limit *float64
	if s := strings.TrimSpace(c.FormValue("limit")); s != "" {
		n, perr := strconv.ParseFloat(s, 64)
		if perr != nil {
			n = -1 // out of range: the check names the field
		}
		limit = &n
	}
	ans, err := cs.chatbots.Query(c.Request().Context(), cb, p.Query, limit)
	status := http.StatusOK
	if err != nil {
		if status = formStatus(err); status == 0 {
			return err
		}
	} else {
		q := &queryView{QueryAnswer: ans, Titles: map[string]string{}}
		for _, k := range p.Sources.Items {
			q.Titles[k.ID] = k.Title
		}
		p.Answer = q
	}
	if isHTMX(c) {
		// htmx swaps only 2xx answers by default; a problem is a result too.
		return cs.renderPartialForm(c, "knowledge", "results", p, err)
	}
	if err != nil {
		return cs.renderForm(c, status, "knowledge", p, err)
	}
	return cs.render(c, status, "knowledge", p)
}

// renderPartialForm writes block of page name with data and err's problems.
func (cs *Console) renderPartialForm(c echo.Context, name, block string, data any, err error) error {
	t, ok := cs.pages[name]
	if !ok {
		return echo.ErrNotFound
	}
	v := view{Page: data}
	if err != nil {
		v.Errors = toFormErrors(err)
	}
	var b strings.Builder
	if err := t.ExecuteTemplate(&b, block, v); err != nil {
		return err
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTML(http.StatusOK, b.String())
}
