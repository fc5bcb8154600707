package bots

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestToWhatsApp(t *testing.T) {
	tests := []struct{ in, want string }{
		{"**bold** and __bold__", "*bold* and *bold*"},
		{"*italic* text", "_italic_ text"},
		{"~~gone~~", "~gone~"},
		{"# Title\nbody", "*Title*\nbody"},
		{"### Sub heading ###", "*Sub heading*"},
		{"see [the docs](https://x.dev/a) now", "see the docs (https://x.dev/a) now"},
		{"[https://x.dev](https://x.dev)", "https://x.dev"},
		{"![a cat](https://x.dev/c.png)", "a cat (https://x.dev/c.png)"},
		{"* one\n* two\n  + nested", "- one\n- two\n  - nested"},
		{"2 * 3 * 4 = 24", "2 * 3 * 4 = 24"},
		{"snake_case_name stays", "snake_case_name stays"},
		{"```\n**not bold**\n```", "```\n**not bold**\n```"},
		{"answer【4:0†source】.", "answer."},
		{"a\n\n\n\nb", "a\n\nb"},
	}
	for _, tt := range tests {
		if got := ToWhatsApp(tt.in); got != tt.want {
			t.Errorf("ToWhatsApp(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSplitReply(t *testing.T) {
	if got := SplitReply("one\n\n\ntwo\n\n  \n\nthree", true); strings.Join(got, "|") != "one|two|three" {
		t.Errorf("paragraphs = %q", got)
	}
	if got := SplitReply("one\n\ntwo", false); len(got) != 1 {
		t.Errorf("unsplit = %q", got)
	}
	if got := SplitReply("   ", false); len(got) != 0 {
		t.Errorf("blank = %q", got)
	}
	long := strings.Repeat("Sentence number one is here. ", 400) // ~11,600 characters
	parts := SplitReply(long, false)
	if len(parts) < 3 {
		t.Fatalf("%d parts", len(parts))
	}
	for _, p := range parts {
		if n := utf8.RuneCountInString(p); n > MaxMessageLen {
			t.Fatalf("part of %d characters", n)
		}
		if !strings.HasSuffix(p, ".") {
			t.Errorf("part not cut at a sentence end: …%q", p[len(p)-20:])
		}
	}
	if strings.Join(parts, " ") != strings.TrimSpace(long) {
		t.Error("splitting lost or changed text")
	}
	// Without any boundary, multi-byte text is cut at the limit, on a rune.
	dense := strings.Repeat("é", MaxMessageLen+10)
	if parts := SplitReply(dense, false); len(parts) != 2 || utf8.RuneCountInString(parts[0]) != MaxMessageLen || !utf8.ValidString(parts[1]) {
		t.Errorf("dense split = %d parts", len(parts))
	}
}

func TestSplitReplyCapsParts(t *testing.T) {
	para := func(n int) string {
		var ps []string
		for i := range n {
			ps = append(ps, fmt.Sprintf("paragraph %d", i+1))
		}
		return strings.Join(ps, "\n\n")
	}
	tests := []struct {
		name     string
		text     string
		split    bool
		parts    int
		lastHead string // how the last part begins
		lastTail string // and ends
	}{
		{"at the bound", para(MaxReplyParts), true, MaxReplyParts, "paragraph 10", "paragraph 10"},
		{"over: the rest merged into the last", para(12), true, MaxReplyParts, "paragraph 10", "paragraph 10\n\nparagraph 11\n\nparagraph 12"},
		{"long text: the last cut", strings.Repeat("word ", 20*MaxMessageLen/5), false, MaxReplyParts, "word", "word…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SplitReply(tt.text, tt.split)
			if len(got) != tt.parts {
				t.Fatalf("%d parts, want %d", len(got), tt.parts)
			}
			last := got[len(got)-1]
			if !strings.HasPrefix(last, tt.lastHead) || !strings.HasSuffix(last, tt.lastTail) {
				t.Errorf("last part = %q…%q", last[:min(len(last), 20)], last[max(0, len(last)-40):])
			}
			for _, p := range got {
				if n := utf8.RuneCountInString(p); n > MaxMessageLen {
					t.Errorf("part of %d characters", n)
				}
			}
		})
	}
}

func TestCutInbound(t *testing.T) {
	tests := []struct {
		text  string
		limit int
		want  string
		cut   bool
	}{
		{"hello", 5, "hello", false},
		{"hello", 0, "hello", false}, // no limit
		{"hello world", 5, "hello\n\n[message cut: 11 characters received, the first 5 kept]", true},
		{"ééééé", 2, "éé\n\n[message cut: 5 characters received, the first 2 kept]", true}, // characters, not bytes
	}
	for _, tt := range tests {
		got, cut := CutInbound(tt.text, tt.limit)
		if got != tt.want || cut != tt.cut {
			t.Errorf("CutInbound(%q, %d) = %q, %v; want %q, %v", tt.text, tt.limit, got, cut, tt.want, tt.cut)
		}
	}
}

func TestTypingDelay(t *testing.T) {
	tests := []struct {
		part               string
		timePerChar, delay int
		want               time.Duration
	}{
		{"hi", 50, 0, time.Second},                           // clamped up
		{strings.Repeat("a", 100), 50, 0, 5 * time.Second},   // 100 × 50 ms
		{strings.Repeat("a", 1000), 50, 0, 20 * time.Second}, // clamped down
		{"hi", 0, 1500, 1500 * time.Millisecond},             // delayMessage
		{"hi", 0, 0, 0},                                      // no delay
	}
	for _, tt := range tests {
		if got := TypingDelay(tt.part, tt.timePerChar, tt.delay); got != tt.want {
			t.Errorf("TypingDelay(%d chars, %d, %d) = %v, want %v", len(tt.part), tt.timePerChar, tt.delay, got, tt.want)
		}
	}
}

func FuzzToWhatsApp(f *testing.F) {
	f.Add("**a** *b* ~~c~~ [d](e) # f\n```g```")
	f.Fuzz(func(t *testing.T, s string) {
		out := ToWhatsApp(s)
		if utf8.ValidString(s) && !utf8.ValidString(out) {
			t.Fatalf("invalid UTF-8 from %q", s)
		}
		for _, p := range SplitReply(out, true) {
			if utf8.RuneCountInString(p) > MaxMessageLen {
				t.Fatal("part over the limit")
			}
		}
	})
}
