package bots

import (
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// MaxMessageLen is the longest text WhatsApp shows as one message.
const MaxMessageLen = 4096

// MaxReplyParts bounds the messages one reply is sent as: a chat is busy
// until its reply is out, and a customer reads a long answer in a few
// messages, not in hundreds. The last part carries what is left, cut.
const MaxReplyParts = 10

var (
	codeBlock  = regexp.MustCompile("(?s)```.*?```")
	heading    = regexp.MustCompile(`(?m)^#{1,6}[ \t]+(.+?)[ \t#]*$`)
	bullet     = regexp.MustCompile(`(?m)^([ \t]*)[*+][ \t]+`)
	image      = regexp.MustCompile(`!\[([^\]]*)\]\(([^)\s]+)\)`)
	link       = regexp.MustCompile(`\[([^\]]+)\]\(([^)\s]+)\)`)
	boldStars  = regexp.MustCompile(`\*\*(\S(?:.*?\S)?)\*\*`)
	boldUnders = regexp.MustCompile(`__(\S(?:.*?\S)?)__`)
	italicStar = regexp.MustCompile(`(^|[^*\w])\*(\S(?:[^*\n]*?\S)?)\*([^*\w]|$)`)
	strike     = regexp.MustCompile(`~~(\S(?:.*?\S)?)~~`)
	blankLines = regexp.MustCompile(`\n{3,}`)
	// citations are the source markers some models leave in answers.
	citations = regexp.MustCompile(`【[^】]*】`)
)

// boldMark stands for WhatsApp's bold asterisk while italics are converted,
// so the two do not mix.
const boldMark = "\x00"

// ToWhatsApp converts a model's Markdown to WhatsApp formatting: **b** and
// __b__ → *b*, *i* → _i_, ~~s~~ → ~s~, headings → bold lines, [text](url)
// → text (url), bullets → "- ". Code blocks are left alone.
func ToWhatsApp(md string) string {
	if !strings.ContainsAny(md, "#*+[_~`【") && !strings.Contains(md, "\n\n\n") {
		// No pattern below can match: skip a dozen regexp passes, the
		// bulk of formatting a plain reply.
		return strings.TrimSpace(md)
	}
	var blocks []string
	md = codeBlock.ReplaceAllStringFunc(md, func(b string) string {
		blocks = append(blocks, b)
		return "\x01" + string(rune(0xE000+len(blocks)-1)) + "\x01"
	})
	md = citations.ReplaceAllString(md, "")
	md = heading.ReplaceAllString(md, boldMark+"$1"+boldMark)
	md = bullet.ReplaceAllString(md, "$1- ")
	md = image.ReplaceAllStringFunc(md, func(m string) string { return linkText(image.FindStringSubmatch(m)) })
	md = link.ReplaceAllStringFunc(md, func(m string) string { return linkText(link.FindStringSubmatch(m)) })
	md = boldStars.ReplaceAllString(md, boldMark+"$1"+boldMark)
	md = boldUnders.ReplaceAllString(md, boldMark+"$1"+boldMark)
	for range 2 { // adjacent italics share a delimiter; a second pass catches them
		md = italicStar.ReplaceAllString(md, "${1}_${2}_${3}")
	}
	md = strike.ReplaceAllString(md, "~$1~")
	md = strings.ReplaceAll(md, boldMark, "*")
	md = blankLines.ReplaceAllString(md, "\n\n")
	for i, b := range blocks {
		md = strings.Replace(md, "\x01"+string(rune(0xE000+i))+"\x01", b, 1)
	}
	return strings.TrimSpace(md)
}

func linkText(m []string) string {
	text, url := strings.TrimSpace(m[1]), m[2]
	if text == "" || text == url {
		return url
	}
	return text + " (" + url + ")"
}

// SplitReply cuts a reply into the messages to send: each paragraph on its
// own when paragraphs is set, and any part longer than MaxMessageLen at the
// last line break, sentence end or space before the limit; at most
// MaxReplyParts of them, the last holding the rest of the reply, cut to
// MaxMessageLen.
func SplitReply(text string, paragraphs bool) []string {
	var parts []string
	if paragraphs {
		for _, p := range strings.Split(text, "\n\n") {
			if p = strings.TrimSpace(p); p != "" {
				parts = append(parts, p)
			}
		}
	} else if t := strings.TrimSpace(text); t != "" {
		parts = []string{t}
	}
	var out []string
	for _, p := range parts {
		for utf8.RuneCountInString(p) > MaxMessageLen {
			cut := cutPoint(p)
			out = append(out, strings.TrimSpace(p[:cut]))
			p = strings.TrimSpace(p[cut:])
		}
		if p != "" {
			out = append(out, p)
		}
	}
	if len(out) > MaxReplyParts {
		rest := strings.Join(out[MaxReplyParts-1:], "\n\n")
		out = append(out[:MaxReplyParts-1], cut(rest, MaxMessageLen))
	}
	return out
}

// cut shortens text to at most limit characters, marking the cut with an
// ellipsis.
func cut(text string, limit int) string {
	if utf8.RuneCountInString(text) <= limit {
		return text
	}
	return strings.TrimSpace(string([]rune(text)[:limit-1])) + "…"
}

// CutInbound shortens an inbound message's text to at most limit
// characters and says so at its end, for the bot and for whoever reads
// the conversation; it reports whether it cut. A customer's text is what
// the model reads and often echoes: a megabyte pasted in a chat would
// otherwise become a reply of hundreds of messages.
func CutInbound(text string, limit int) (string, bool) {
	n := utf8.RuneCountInString(text)
	if limit <= 0 || n <= limit {
		return text, false
	}
	return strings.TrimSpace(string([]rune(text)[:limit])) +
		fmt.Sprintf("\n\n[message cut: %d characters received, the first %d kept]", n, limit), true
}

// cutPoint returns the byte offset where p, longer than MaxMessageLen
// characters, is best cut.
func cutPoint(p string) int {
	limit := 0
	for range MaxMessageLen {
		_, size := utf8.DecodeRuneInString(p[limit:])
		limit += size
	}
	head := p[:limit]
	for _, sep := range []string{"\n\n", "\n", ". ", "! ", "? ", " "} {
		if i := strings.LastIndex(head, sep); i > limit/2 {
			return i + len(sep)
		}
	}
	return limit
}

// TypingDelay is how long "composing" shows before a part: len×timePerChar
// clamped to [1 s, 20 s], or delayMessage when timePerChar is 0.
func TypingDelay(part string, timePerChar, delayMessage int) time.Duration {
	if timePerChar > 0 {
		d := time.Duration(utf8.RuneCountInString(part)*timePerChar) * time.Millisecond
		return min(max(d, time.Second), 20*time.Second)
	}
	return time.Duration(delayMessage) * time.Millisecond
}
