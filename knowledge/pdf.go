package knowledge

import (
	"bytes"
	"sort"
	"strings"

	"github.com/ledongthuc/pdf"
)

// extractPDF reads a PDF's text layer, page by page, row by row: rows
// farther apart than the usual line spacing start a new paragraph. A PDF
// made of scanned images has no text layer; it says so rather than
// producing an empty source.
func extractPDF(data []byte) (doc *Document, err error) {
	// The reader panics on some malformed files; that is the file's fault.
	defer func() {
		if r := recover(); r != nil {
			doc, err = nil, userErrorf("the PDF could not be read: it looks damaged (%v)", r)
		}
	}()
	r, err := pdf.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		if strings.Contains(err.Error(), "encrypt") || strings.Contains(err.Error(), "password") {
			return nil, userErrorf("the PDF is encrypted; upload it without a password")
		}
		return nil, userErrorf("the PDF could not be read: %v", err)
	}
	doc = &Document{}
	if t := r.Trailer().Key("Info").Key("Title"); t.Kind() == pdf.String {
		doc.Title = collapse(t.Text())
	}
	for i := 1; i <= r.NumPage(); i++ {
		p := r.Page(i)
		if p.V.IsNull() {
			continue
		}
		rows, err := p.GetTextByRow()
		if err != nil {
			return nil, userErrorf("page %d of the PDF could not be read: %v", i, err)
		}
		doc.Blocks = append(doc.Blocks, pdfParagraphs(rows)...)
	}
	if doc.Characters() == 0 {
		return nil, userErrorf("the PDF has no text layer; it looks scanned (run it through OCR first)")
	}
	return doc, nil
}

func pdfParagraphs(rows pdf.Rows) []Block {
	type line struct {
		y    int64
		text string
	}
	var lines []line
	for _, row := range rows {
		var b strings.Builder
		for _, t := range row.Content {
			b.WriteString(t.S)
		}
		if s := collapse(b.String()); s != "" {
			lines = append(lines, line{row.Position, s})
		}
	}
	if len(lines) == 0 {
		return nil
	}
	var gaps []int64
	for i := 1; i < len(lines); i++ {
		if g := lines[i-1].y - lines[i].y; g > 0 {
			gaps = append(gaps, g)
		}
	}
	sort.Slice(gaps, func(i, j int) bool { return gaps[i] < gaps[j] })
	usual := int64(0)
	if len(gaps) > 0 {
		usual = gaps[len(gaps)/2]
	}
	var blocks []Block
	para := []string{lines[0].text}
	for i := 1; i < len(lines); i++ {
		g := lines[i-1].y - lines[i].y
		if g <= 0 || float64(g) > 1.6*float64(usual) {
			blocks = append(blocks, Block{Kind: Paragraph, Text: strings.Join(para, " ")})
			para = para[:0]
		}
		para = append(para, lines[i].text)
	}
	blocks = append(blocks, Block{Kind: Paragraph, Text: strings.Join(para, " ")})
	return blocks
}
