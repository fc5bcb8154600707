package knowledge

import (
	"archive/zip"
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strconv"
	"strings"
)

// maxDOCXXML bounds the decompressed document part, against zip bombs.
const maxDOCXXML = 64 << 20

func isDOCX(data []byte) bool {
	z, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return false
	}
	for _, f := range z.File {
		if f.Name == "word/document.xml" {
			return true
		}
	}
	return false
}

// extractDOCX reads word/document.xml: paragraphs with their heading and
// list styles, and tables row by row.
func extractDOCX(data []byte) (*Document, error) {
	z, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, userErrorf("the DOCX file could not be read: it is not a valid zip archive")
	}
	doc := &Document{}
	var body io.ReadCloser
	for _, f := range z.File {
		switch f.Name {
		case "word/document.xml":
			if body, err = f.Open(); err != nil {
				return nil, userErrorf("the DOCX file could not be read: %v", err)
			}
		case "docProps/core.xml":
			if rc, err := f.Open(); err == nil {
				doc.Title = docxTitle(io.LimitReader(rc, 1<<20))
				rc.Close()
			}
		}
	}
	if body == nil {
		return nil, userErrorf("the DOCX file has no document part")
	}
	defer body.Close()
	if err := docxBlocks(doc, io.LimitReader(body, maxDOCXXML)); err != nil {
		return nil, userErrorf("the DOCX file could not be read: %v", err)
	}
	return doc, nil
}

func docxTitle(r io.Reader) string {
	var core struct {
		Title string `xml:"title"`
	}
	_ = xml.NewDecoder(r).Decode(&core)
	return collapse(core.Title)
}

func docxBlocks(doc *Document, r io.Reader) error {
	dec := xml.NewDecoder(r)
	var (
		text      strings.Builder
		style     string
		list      bool
		tableRows int // depth of open table rows
		cells     []string
	)
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		switch t := tok.(type) {
		case xml.StartElement:
			switch t.Name.Local {
			case "p":
				text.Reset()
				style, list = "", false
			case "pStyle":
				style = attr(t, "val")
			case "numPr":
				list = true
			case "t":
				var s string
				if err := dec.DecodeElement(&s, &t); err != nil {
					return err
				}
				text.WriteString(s)
			case "tab":
				text.WriteString(" ")
			case "br", "cr":
				text.WriteString(" ")
			case "tr":
				tableRows++
				cells = cells[:0]
			}
		case xml.EndElement:
			switch t.Name.Local {
			case "p":
				s := collapse(text.String())
				if s == "" {
					continue
				}
				if tableRows > 0 {
					cells = append(cells, s)
					continue
				}
				doc.Blocks = append(doc.Blocks, docxBlock(style, list, s))
			case "tr":
				tableRows--
				if len(cells) > 0 {
					doc.Blocks = append(doc.Blocks, Block{Kind: TableRow, Text: strings.Join(cells, " | ")})
				}
				cells = cells[:0]
			}
		}
	}
}

func docxBlock(style string, list bool, s string) Block {
	lower := strings.ToLower(style)
	switch {
	case lower == "title":
		return Block{Kind: Heading, Level: 1, Text: s}
	case strings.HasPrefix(lower, "heading"):
		level, err := strconv.Atoi(strings.TrimPrefix(lower, "heading"))
		if err != nil || level < 1 || level > 6 {
			level = 2
		}
		return Block{Kind: Heading, Level: level, Text: s}
	case list || strings.Contains(lower, "list"):
		return Block{Kind: ListItem, Text: s}
	}
	return Block{Kind: Paragraph, Text: s}
}

func attr(e xml.StartElement, local string) string {
	for _, a := range e.Attr {
		if a.Name.Local == local {
			return a.Value
		}
	}
	return ""
}
