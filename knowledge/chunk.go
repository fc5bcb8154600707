package knowledge

import (
	"strings"
	"unicode/utf8"
)

// ChunkOptions size chunks, in estimated tokens.
type ChunkOptions struct {
	Target  int // a chunk is closed once it reaches this size
	Max     int // and never grows past this one (a longer block is split)
	Overlap int // context repeated from the end of the previous chunk of a section
}

// DefaultChunkOptions are ~300–500-token chunks with some overlap: small
// enough that several fit a model's context with room for the
// conversation, large enough to keep a passage's sense.
var DefaultChunkOptions = ChunkOptions{Target: 350, Max: 500, Overlap: 60}

// Piece is one chunk of a document: its 1-based position, the headings it
// sits under ("Install > Requirements") and its text.
type Piece struct {
	Position int
	Heading  string
	Text     string
	Tokens   int
}

// EstimateTokens estimates the tokens of s for OpenAI's tokenizers: about
// four characters of English text each, never less than the words.
func EstimateTokens(s string) int {
	n := (utf8.RuneCountInString(s) + 3) / 4
	if w := len(strings.Fields(s)); w > n {
		n = w
	}
	return n
}

// Chunk cuts doc into pieces along its structure: a new section at every
// heading (small subsections are kept with their neighbours), blocks
// (paragraphs, list items, table rows) packed whole, a block longer than
// o.Max split at sentences and then words, and the last blocks of a
// piece repeated at the start of the next one of the same section.
func Chunk(doc *Document, o ChunkOptions) []Piece {
	if o.Target <= 0 {
		o = DefaultChunkOptions
	}
	var (
		out      []Piece
		headings [7]string
		heading  string // path of the current section
		cur      []string
		curTok   int
	)
	emit := func(keepOverlap bool) {
		if len(cur) == 0 {
			return
		}
		text := strings.Join(cur, "\n")
		out = append(out, Piece{Position: len(out) + 1, Heading: heading, Text: text, Tokens: EstimateTokens(text)})
		var keep []string
		if keepOverlap && o.Overlap > 0 {
			tok := 0
			for i := len(cur) - 1; i >= 0; i-- {
				t := EstimateTokens(cur[i])
				if tok+t > o.Overlap {
					break
				}
				keep = append([]string{cur[i]}, keep...)
				tok += t
			}
			curTok = tok
		} else {
			curTok = 0
		}
		cur = keep
	}
	add := func(line string) {
		t := EstimateTokens(line)
		if curTok+t > o.Max && len(cur) > 0 {
			emit(true)
			if curTok+t > o.Max { // the overlap leaves no room
				cur, curTok = nil, 0
			}
		}
		cur = append(cur, line)
		curTok += t
		if curTok >= o.Target {
			emit(true)
		}
	}
	for _, b := range doc.Blocks {
		if b.Kind == Heading {
			level := min(max(b.Level, 1), 6)
			// A major heading, or a minor one after enough text, starts a
			// new piece; tiny subsections stay with what precedes them.
			if level <= 2 || curTok >= o.Target/2 {
				emit(false)
				cur, curTok = nil, 0
			}
			headings[level] = b.Text
			for l := level + 1; l < len(headings); l++ {
				headings[l] = ""
			}
			var path []string
			for _, h := range headings[1:] {
				if h != "" {
					path = append(path, h)
				}
			}
			if len(cur) == 0 {
				heading = strings.Join(path, " > ")
			}
			add(b.Text)
			continue
		}
		line := b.Text
		if b.Kind == ListItem {
			line = "- " + line
		}
		if EstimateTokens(line) <= o.Max {
			add(line)
			continue
		}
		for _, part := range splitLong(line, o.Max) {
			add(part)
		}
	}
	emit(false)
	return out
}

// splitLong cuts s into parts of at most max tokens, at sentence ends when
// it can and between words when it must.
func splitLong(s string, max int) []string {
	var parts []string
	var cur strings.Builder
	for _, sent := range sentences(s) {
		if EstimateTokens(sent) > max {
			words := strings.Fields(sent)
			for _, w := range words {
				if EstimateTokens(cur.String()+" "+w) > max && cur.Len() > 0 {
					parts = append(parts, strings.TrimSpace(cur.String()))
					cur.Reset()
				}
				cur.WriteString(" " + w)
			}
			continue
		}
		if EstimateTokens(cur.String()+" "+sent) > max && cur.Len() > 0 {
			parts = append(parts, strings.TrimSpace(cur.String()))
			cur.Reset()
		}
		cur.WriteString(" " + sent)
	}
	if t := strings.TrimSpace(cur.String()); t != "" {
		parts = append(parts, t)
	}
	return parts
}

func sentences(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s)-1; i++ {
		if (s[i] == '.' || s[i] == '!' || s[i] == '?') && s[i+1] == ' ' {
			out = append(out, s[start:i+1])
			start = i + 2
		}
	}
	if start < len(s) {
		out = append(out, s[start:])
	}
	return out
}
