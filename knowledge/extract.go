// Package knowledge is a chatbot's knowledge base: extraction of text from
// files and web pages, chunking along the document's structure,
// embeddings, the in-memory vector index and hybrid retrieval, and the
// background ingestion of sources. It knows nothing about HTTP.
package knowledge

import (
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strings"
	"unicode/utf8"
)

// Kind is the structural role of a block of a document.
type Kind int

// Block kinds.
const (
	Paragraph Kind = iota
	Heading
	ListItem
	TableRow
)

// Block is one structural unit of a document: a heading (Level 1–6), a
// paragraph, a list item or a table row (cells joined with " | ").
type Block struct {
	Kind  Kind
	Level int
	Text  string
}

// Document is the text of a source, as blocks in reading order.
type Document struct {
	Title  string
	Blocks []Block
}

// Characters is the number of characters of the document's text.
func (d *Document) Characters() int {
	n := 0
	for _, b := range d.Blocks {
		n += utf8.RuneCountInString(b.Text)
	}
	return n
}

// Format names the file formats understood.
type Format string

// File formats.
const (
	FormatPDF      Format = "application/pdf"
	FormatDOCX     Format = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
	FormatHTML     Format = "text/html"
	FormatMarkdown Format = "text/markdown"
	FormatText     Format = "text/plain"
	FormatCSV      Format = "text/csv"
)

// UserError is an extraction failure worded for the user who gave the
// source, e.g. a scanned PDF.
type UserError struct{ Reason string }

func (e *UserError) Error() string { return e.Reason }

func userErrorf(format string, args ...any) error { return &UserError{fmt.Sprintf(format, args...)} }

// Detect tells a file's format from its bytes; the file name only decides
// between the text formats, which bytes alone cannot tell apart. ok is
// false for anything else.
func Detect(name string, data []byte) (Format, bool) {
	sniffed := http.DetectContentType(data)
	switch {
	case bytes.HasPrefix(data, []byte("%PDF-")):
		return FormatPDF, true
	case bytes.HasPrefix(data, []byte("PK\x03\x04")):
		if isDOCX(data) {
			return FormatDOCX, true
		}
		return "", false
	case strings.HasPrefix(sniffed, "text/html"), strings.HasPrefix(sniffed, "text/xml") && bytes.Contains(bytes.ToLower(data[:min(len(data), 2048)]), []byte("<html")):
		return FormatHTML, true
	case !strings.HasPrefix(sniffed, "text/plain") || !utf8.Valid(data):
		return "", false
	}
	switch strings.ToLower(path.Ext(name)) {
	case ".md", ".markdown", ".mdown":
		return FormatMarkdown, true
	case ".csv":
		return FormatCSV, true
	case ".html", ".htm":
		return FormatHTML, true
	}
	return FormatText, true
}

// Extract returns the text of data in format f. pageURL, for HTML, lets
// relative links resolve; it may be empty.
func Extract(f Format, data []byte, pageURL string) (*Document, error) {
	var (
		doc *Document
		err error
	)
	switch f {
	case FormatPDF:
		doc, err = extractPDF(data)
	case FormatDOCX:
		doc, err = extractDOCX(data)
	case FormatHTML:
		doc, err = extractHTML(data, pageURL)
	case FormatMarkdown:
		doc = ParseMarkdown(string(data))
	case FormatCSV:
		doc, err = extractCSV(data)
	case FormatText:
		doc = ParseText(string(data))
	default:
		return nil, userErrorf("unsupported file type %s", f)
	}
	if err != nil {
		return nil, err
	}
	if doc.Characters() == 0 {
		return nil, userErrorf("the file has no text")
	}
	return doc, nil
}

// ParseText splits plain text into paragraphs at blank lines.
func ParseText(s string) *Document {
	doc := &Document{}
	for _, p := range splitParagraphs(s) {
		doc.Blocks = append(doc.Blocks, Block{Kind: Paragraph, Text: p})
	}
	return doc
}

func splitParagraphs(s string) []string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	var out []string
	for _, p := range strings.Split(s, "\n\n") {
		if p = collapse(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// collapse joins the lines of s and squeezes runs of white space.
func collapse(s string) string { return strings.Join(strings.Fields(s), " ") }

// extractCSV makes each row a table row that names its columns, so that a
// row read alone, in a chunk far from the header, still says what its
// values are.
func extractCSV(data []byte) (*Document, error) {
	r := csv.NewReader(bytes.NewReader(data))
	r.FieldsPerRecord = -1
	r.LazyQuotes = true
	header, err := r.Read()
	if err != nil {
		return nil, userErrorf("the CSV file could not be read: %v", err)
	}
	doc := &Document{}
	for line := 2; ; line++ {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, userErrorf("the CSV file could not be read at line %d: %v", line, err)
		}
		cells := make([]string, 0, len(rec))
		for i, v := range rec {
			if v = collapse(v); v == "" {
				continue
			}
			if i < len(header) && collapse(header[i]) != "" {
				v = collapse(header[i]) + ": " + v
			}
			cells = append(cells, v)
		}
		if len(cells) > 0 {
			doc.Blocks = append(doc.Blocks, Block{Kind: TableRow, Text: strings.Join(cells, " | ")})
		}
	}
	if len(doc.Blocks) == 0 && len(header) > 0 {
		doc.Blocks = append(doc.Blocks, Block{Kind: TableRow, Text: strings.Join(header, " | ")})
	}
	return doc, nil
}

// ParseMarkdown reads the structure of Markdown: ATX headings, list items,
// table rows (separator rows dropped), fenced code and paragraphs.
func ParseMarkdown(s string) *Document {
	doc := &Document{}
	var para []string
	flush := func() {
		if t := collapse(strings.Join(para, " ")); t != "" {
			doc.Blocks = append(doc.Blocks, Block{Kind: Paragraph, Text: t})
		}
		para = para[:0]
	}
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		trim := strings.TrimSpace(line)
		switch {
		case trim == "":
			flush()
		case strings.HasPrefix(trim, "```") || strings.HasPrefix(trim, "~~~"):
			flush()
			fence := trim[:3]
			var code []string
			for i++; i < len(lines) && !strings.HasPrefix(strings.TrimSpace(lines[i]), fence); i++ {
				code = append(code, lines[i])
			}
			if t := strings.TrimSpace(strings.Join(code, "\n")); t != "" {
				doc.Blocks = append(doc.Blocks, Block{Kind: Paragraph, Text: t})
			}
		case strings.HasPrefix(trim, "#"):
			level := len(trim) - len(strings.TrimLeft(trim, "#"))
			text := strings.TrimSpace(strings.Trim(strings.TrimSpace(trim[level:]), "#"))
			if level > 6 || (len(trim) > level && trim[level] != ' ') {
				para = append(para, trim)
				continue
			}
			flush()
			if text != "" {
				doc.Blocks = append(doc.Blocks, Block{Kind: Heading, Level: level, Text: text})
			}
		case isListItem(trim):
			flush()
			doc.Blocks = append(doc.Blocks, Block{Kind: ListItem, Text: collapse(listText(trim))})
		case strings.HasPrefix(trim, "|"):
			flush()
			if strings.Trim(trim, "|-: ") == "" {
				continue // the separator under a table's header
			}
			cells := strings.Split(strings.Trim(trim, "|"), "|")
			for j := range cells {
				cells[j] = collapse(cells[j])
			}
			doc.Blocks = append(doc.Blocks, Block{Kind: TableRow, Text: strings.Join(cells, " | ")})
		case i+1 < len(lines) && len(para) == 0 && isSetextUnderline(lines[i+1]):
			level := 1
			if strings.HasPrefix(strings.TrimSpace(lines[i+1]), "-") {
				level = 2
			}
			doc.Blocks = append(doc.Blocks, Block{Kind: Heading, Level: level, Text: collapse(trim)})
			i++
		default:
			para = append(para, trim)
		}
	}
	flush()
	for _, b := range doc.Blocks {
		if b.Kind == Heading && b.Level == 1 {
			doc.Title = b.Text
			break
		}
	}
	return doc
}

func isSetextUnderline(l string) bool {
	t := strings.TrimSpace(l)
	return len(t) >= 3 && (strings.Trim(t, "=") == "" || strings.Trim(t, "-") == "")
}

func isListItem(t string) bool {
	if len(t) >= 2 && (t[0] == '-' || t[0] == '*' || t[0] == '+') && t[1] == ' ' {
		return true
	}
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	return i > 0 && i < len(t)-1 && (t[i] == '.' || t[i] == ')') && t[i+1] == ' '
}

func listText(t string) string {
	if t[0] == '-' || t[0] == '*' || t[0] == '+' {
		return t[2:]
	}
	i := strings.IndexAny(t, ".)")
	return t[i+2:]
}
