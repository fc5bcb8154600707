package knowledge

import (
	"bytes"
	"net/url"
	"strings"

	readability "codeberg.org/readeck/go-readability/v2"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// extractHTML keeps a page's main content (readability's article: no
// menus, footers or sidebars) and reads its structure: headings,
// paragraphs, list items, table rows. A page readability finds no article
// in falls back to its body without navigation, header, footer and aside.
func extractHTML(data []byte, pageURL string) (*Document, error) {
	u, _ := url.Parse(pageURL)
	if u == nil || u.Scheme == "" {
		u = &url.URL{Scheme: "https", Host: "example.invalid", Path: "/"}
	}
	doc := &Document{}
	parser := readability.NewParser()
	article, err := parser.Parse(bytes.NewReader(data), u)
	root := article.Node
	if err == nil && root != nil {
		doc.Title = collapse(article.Title())
	} else {
		n, perr := html.Parse(bytes.NewReader(data))
		if perr != nil {
			return nil, userErrorf("the HTML could not be read: %v", perr)
		}
		root = n
		doc.Title = findTitle(n)
	}
	w := htmlWalker{doc: doc}
	w.walk(root)
	w.flush()
	if len(doc.Blocks) == 0 {
		return nil, userErrorf("the page has no readable text")
	}
	return doc, nil
}

type htmlWalker struct {
	doc   *Document
	loose strings.Builder // text outside any block element
}

func (w *htmlWalker) flush() {
	if s := collapse(w.loose.String()); s != "" {
		w.doc.Blocks = append(w.doc.Blocks, Block{Kind: Paragraph, Text: s})
	}
	w.loose.Reset()
}

func (w *htmlWalker) add(b Block) {
	w.flush()
	if b.Text != "" {
		w.doc.Blocks = append(w.doc.Blocks, b)
	}
}

func (w *htmlWalker) walk(n *html.Node) {
	switch n.Type {
	case html.TextNode:
		w.loose.WriteString(n.Data)
		w.loose.WriteString(" ")
		return
	case html.ElementNode:
	default:
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			w.walk(c)
		}
		return
	}
	switch n.DataAtom {
	case atom.Script, atom.Style, atom.Noscript, atom.Nav, atom.Footer, atom.Header, atom.Aside, atom.Form, atom.Template, atom.Svg:
		return
	case atom.Title:
		return
	case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
		w.add(Block{Kind: Heading, Level: int(n.Data[1] - '0'), Text: collapse(innerText(n, false))})
		return
	case atom.P, atom.Pre, atom.Blockquote, atom.Dt, atom.Dd, atom.Figcaption:
		w.add(Block{Kind: Paragraph, Text: collapse(innerText(n, false))})
		return
	case atom.Li:
		w.add(Block{Kind: ListItem, Text: collapse(innerText(n, true))})
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.DataAtom == atom.Ul || c.DataAtom == atom.Ol {
				w.walk(c)
			}
		}
		return
	case atom.Tr:
		var cells []string
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.DataAtom == atom.Td || c.DataAtom == atom.Th {
				if s := collapse(innerText(c, false)); s != "" {
					cells = append(cells, s)
				}
			}
		}
		w.add(Block{Kind: TableRow, Text: strings.Join(cells, " | ")})
		return
	case atom.Br:
		w.loose.WriteString(" ")
		return
	case atom.Div, atom.Section, atom.Article, atom.Main, atom.Body, atom.Table, atom.Ul, atom.Ol, atom.Dl:
		w.flush()
		defer w.flush()
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c)
	}
}

// innerText is the text under n; skipLists leaves out nested lists (a list
// item's sub-items are items of their own).
func innerText(n *html.Node, skipLists bool) string {
	var b strings.Builder
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		switch {
		case n.Type == html.TextNode:
			b.WriteString(n.Data)
		case n.Type == html.ElementNode && (n.DataAtom == atom.Script || n.DataAtom == atom.Style):
			return
		case n.Type == html.ElementNode && skipLists && (n.DataAtom == atom.Ul || n.DataAtom == atom.Ol):
			return
		case n.Type == html.ElementNode && n.DataAtom == atom.Br:
			b.WriteString(" ")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c)
		}
		if n.Type == html.ElementNode {
			b.WriteString(" ")
		}
	}
	rec(n)
	return b.String()
}

func findTitle(n *html.Node) string {
	if n.Type == html.ElementNode && n.DataAtom == atom.Title {
		return collapse(innerText(n, false))
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if t := findTitle(c); t != "" {
			return t
		}
	}
	return ""
}
