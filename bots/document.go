package bots

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/wagate/wagate/knowledge"
	"github.com/wagate/wagate/store"
)

// A customer's document reaches the model as its text, read by the
// knowledge base's extractor. Both ends are bounded: the bytes read (a
// larger file is named, not read) and the characters shown, since the text
// travels in every request of the turn and a model's context is finite.
const (
	maxDocumentBytes = 8 << 20
	maxDocumentChars = 12000
)

// channelDocument returns a document message's text for the model,
// headed by its name, or "" when the document cannot be read (too large,
// not fetched, scanned or of a kind the extractor does not know): the
// model then reads "[document: name]".
func (c *chat) channelDocument(ctx context.Context, m *store.Message) string {
	if c.e.media == nil || m.MessageType != "documentMessage" {
		return ""
	}
	data, name, err := c.e.media(ctx, c.inst, m)
	if err == nil && len(data) > maxDocumentBytes {
		err = fmt.Errorf("%d bytes, over %d", len(data), maxDocumentBytes)
	}
	if err != nil {
		c.log.Warn("document for the model not fetched", "message", m.ID, "error", err)
		return ""
	}
	if n := documentName(m.Content); n != "" {
		name = n
	}
	f, ok := knowledge.Detect(name, data)
	if !ok {
		c.log.Info("document for the model is of an unknown kind", "message", m.ID, "name", name)
		return ""
	}
	doc, err := knowledge.Extract(f, data, "")
	if err != nil {
		c.log.Info("document for the model has no readable text", "message", m.ID, "name", name, "error", err)
		return ""
	}
	return "[document: " + name + "]\n" + documentText(doc, maxDocumentChars)
}

// documentText is doc's text, a block a line, cut at limit characters with
// a note saying so.
func documentText(doc *knowledge.Document, limit int) string {
	var b strings.Builder
	for _, bl := range doc.Blocks {
		switch bl.Kind {
		case knowledge.Heading:
			b.WriteString(strings.Repeat("#", max(bl.Level, 1)) + " ")
		case knowledge.ListItem:
			b.WriteString("- ")
		}
		b.WriteString(bl.Text)
		b.WriteByte('\n')
	}
	s := strings.TrimRight(b.String(), "\n")
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	total := utf8.RuneCountInString(s)
	cut := 0
	for i := range s {
		if cut == limit {
			s = s[:i]
			break
		}
		cut++
	}
	return s + fmt.Sprintf("\n[the document goes on: only its first %d of %d characters are shown]", limit, total)
}

// documentName is the file name a document message gives, or "".
func documentName(content json.RawMessage) string {
	var c struct {
		Document struct {
			FileName string `json:"fileName"`
		} `json:"documentMessage"`
	}
	_ = json.Unmarshal(content, &c)
	return c.Document.FileName
}
