package knowledge_test

import (
	"archive/zip"
	"bytes"
	"strings"
	"testing"

	"github.com/wagate/wagate/knowledge"
)

func TestDetect(t *testing.T) {
	var docx bytes.Buffer
	z := zip.NewWriter(&docx)
	w, _ := z.Create("word/document.xml")
	w.Write([]byte(`<w:document/>`))
	z.Close()
	var other bytes.Buffer
	z = zip.NewWriter(&other)
	w, _ = z.Create("content.xml")
	w.Write([]byte(`<x/>`))
	z.Close()
	tests := []struct {
		name string
		data []byte
		want knowledge.Format
		ok   bool
	}{
		{"a.pdf", []byte("%PDF-1.7\n..."), knowledge.FormatPDF, true},
		{"renamed.txt", []byte("%PDF-1.4\n"), knowledge.FormatPDF, true},
		{"a.docx", docx.Bytes(), knowledge.FormatDOCX, true},
		{"a.odt", other.Bytes(), "", false},
		{"page", []byte("<!DOCTYPE html><html><body>x</body></html>"), knowledge.FormatHTML, true},
		{"notes.md", []byte("# Title\n\ntext"), knowledge.FormatMarkdown, true},
		{"data.csv", []byte("a,b\n1,2\n"), knowledge.FormatCSV, true},
		{"readme", []byte("plain words"), knowledge.FormatText, true},
		{"logo.png", []byte("\x89PNG\r\n\x1a\n\x00\x00"), "", false},
		{"latin1.txt", []byte("caf\xe9 cr\xe8me"), "", false},
	}
	for _, tc := range tests {
		got, ok := knowledge.Detect(tc.name, tc.data)
		if got != tc.want || ok != tc.ok {
			t.Errorf("Detect(%q) = %q %v, want %q %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseMarkdown(t *testing.T) {
	doc := knowledge.ParseMarkdown("Guide\n=====\n\nIntro line one\nline two.\n\n## Steps\n\n1. First step\n- Second step\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n```\ncode here\n```\n#hashtag is text\n")
	want := []knowledge.Block{
		{Kind: knowledge.Heading, Level: 1, Text: "Guide"},
		{Kind: knowledge.Paragraph, Text: "Intro line one line two."},
		{Kind: knowledge.Heading, Level: 2, Text: "Steps"},
		{Kind: knowledge.ListItem, Text: "First step"},
		{Kind: knowledge.ListItem, Text: "Second step"},
		{Kind: knowledge.TableRow, Text: "a | b"},
		{Kind: knowledge.TableRow, Text: "1 | 2"},
		{Kind: knowledge.Paragraph, Text: "code here"},
		{Kind: knowledge.Paragraph, Text: "#hashtag is text"},
	}
	if len(doc.Blocks) != len(want) {
		t.Fatalf("blocks = %+v", doc.Blocks)
	}
	for i := range want {
		if doc.Blocks[i] != want[i] {
			t.Errorf("block %d = %+v, want %+v", i, doc.Blocks[i], want[i])
		}
	}
	if doc.Title != "Guide" {
		t.Errorf("title = %q", doc.Title)
	}
}

func TestChunk(t *testing.T) {
	para := func(n int, word string) string { return strings.TrimSpace(strings.Repeat(word+" ", n)) }
	tests := []struct {
		name      string
		doc       knowledge.Document
		wantMin   int
		wantMax   int
		heading   string // of the last piece
		maxTokens int
	}{
		{"small sections stay together", knowledge.Document{Blocks: []knowledge.Block{
			{Kind: knowledge.Heading, Level: 1, Text: "Shop"}, {Kind: knowledge.Paragraph, Text: "Opens at nine."},
			{Kind: knowledge.Heading, Level: 3, Text: "Saturday"}, {Kind: knowledge.Paragraph, Text: "Opens at ten."},
		}}, 1, 1, "Shop", 500},
		{"major headings split", knowledge.Document{Blocks: []knowledge.Block{
			{Kind: knowledge.Heading, Level: 1, Text: "A"}, {Kind: knowledge.Paragraph, Text: "alpha"},
			{Kind: knowledge.Heading, Level: 2, Text: "B"}, {Kind: knowledge.Paragraph, Text: "beta"},
		}}, 2, 2, "A > B", 500},
		{"long text splits within the maximum", knowledge.Document{Blocks: []knowledge.Block{
			{Kind: knowledge.Heading, Level: 1, Text: "Long"},
			{Kind: knowledge.Paragraph, Text: para(300, "word.")}, {Kind: knowledge.Paragraph, Text: para(300, "more.")},
			{Kind: knowledge.Paragraph, Text: para(2000, "huge")},
		}}, 4, 12, "Long", 500},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := knowledge.Chunk(&tc.doc, knowledge.DefaultChunkOptions)
			if len(got) < tc.wantMin || len(got) > tc.wantMax {
				t.Fatalf("%d pieces: %+v", len(got), got)
			}
			for i, p := range got {
				if p.Position != i+1 || p.Tokens > tc.maxTokens || p.Text == "" {
					t.Errorf("piece %d: position %d, %d tokens", i, p.Position, p.Tokens)
				}
			}
			if last := got[len(got)-1]; last.Heading != tc.heading {
				t.Errorf("last heading = %q, want %q", last.Heading, tc.heading)
			}
		})
	}
}

func TestExtractCSVNamesColumns(t *testing.T) {
	doc, err := knowledge.Extract(knowledge.FormatCSV, []byte("product,price\nKettle,30\n,\nMug,\"5\"\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(doc.Blocks) != 2 || doc.Blocks[0].Text != "product: Kettle | price: 30" || doc.Blocks[1].Text != "product: Mug | price: 5" {
		t.Errorf("blocks = %+v", doc.Blocks)
	}
}

func TestExtractHTMLFallsBackWithoutArticle(t *testing.T) {
	doc, err := knowledge.Extract(knowledge.FormatHTML, []byte(`<html><head><title>T</title></head><body><nav>Menu</nav><table><tr><th>Day</th><td>Mon</td></tr></table><footer>Foot</footer></body></html>`), "")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, b := range doc.Blocks {
		all = append(all, b.Text)
	}
	if got := strings.Join(all, "/"); strings.Contains(got, "Menu") || strings.Contains(got, "Foot") || !strings.Contains(got, "Day | Mon") {
		t.Errorf("blocks = %q", got)
	}
}

func TestTerms(t *testing.T) {
	got := strings.Join(knowledge.Terms("What are the OPENING hours, café? a b 24h the hours"), ",")
	if got != "opening,hours,café,24h" {
		t.Errorf("terms = %q", got)
	}
}

func TestIndexSearch(t *testing.T) {
	var ix knowledge.Index
	ix.Add(1, []float32{1, 0, 0})
	ix.Add(2, knowledge.Normalize([]float32{1, 1, 0}))
	ix.Add(3, []float32{0, 0, 1})
	ix.Add(4, []float32{1, 0}) // other dimensions: skipped
	hits := ix.Search([]float32{1, 0, 0}, 2)
	if ix.Len() != 3 || len(hits) != 2 || hits[0].Seq != 1 || hits[1].Seq != 2 || hits[0].Score < 0.999 {
		t.Errorf("hits = %+v", hits)
	}
}
