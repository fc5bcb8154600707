package gateway

import (
	"bytes"
	"context"
	"net/url"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/net/html"

	"github.com/wagate/wagate/gateway/channel"
)

// Bounds of a link preview: it is a courtesy, so a slow or large page
// costs the send little and a failed preview never fails it.
const (
	previewTimeout    = 5 * time.Second
	maxPreviewPage    = 512 << 10 // the head of a page is near its start
	maxPreviewImage   = 128 << 10 // a thumbnail, sent inside the message
	maxPreviewTextLen = 300       // characters of title or description
)

var urlPattern = regexp.MustCompile(`https?://[^\s<>"']+`)

// firstURL returns the first http(s) URL in text, without the punctuation
// that ends a sentence around it.
func firstURL(text string) string {
	u := urlPattern.FindString(text)
	return strings.TrimRight(u, ".,;:!?)]}*_~")
}

// linkPreview fetches the page of the first URL in text, through the
// gateway's fetcher (public addresses only), and reads its title,
// description and image; nil when there is no URL or no page worth
// showing. It logs why a preview failed and never returns an error.
func (g *Gateway) linkPreview(ctx context.Context, text string) *channel.LinkPreview {
	raw := firstURL(text)
	if raw == "" {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, previewTimeout)
	defer cancel()
	resp, err := g.fetch.Get(ctx, "linkPreview", raw, maxPreviewPage)
	if err != nil && !strings.Contains(err.Error(), "larger than") {
		g.log.Debug("link preview: page not fetched", "url", raw, "error", err)
		return nil
	}
	if err != nil || !strings.HasPrefix(resp.Sniffed, "text/html") {
		return nil // a page over the bound, or a file: no preview
	}
	p := parsePreview(resp.Body)
	if p.Title == "" && p.Description == "" {
		return nil
	}
	p.URL, p.MatchedText = resp.URL, raw
	if p.ImageURL != "" {
		if img, err := url.Parse(p.ImageURL); err == nil {
			if base, err := url.Parse(resp.URL); err == nil {
				p.ImageURL = base.ResolveReference(img).String()
			}
		}
		if ir, err := g.fetch.Get(ctx, "linkPreview", p.ImageURL, maxPreviewImage); err == nil && ir.Sniffed == "image/jpeg" {
			p.Thumbnail = ir.Body // WhatsApp shows JPEG thumbnails only
		}
	}
	return &p
}

// parsePreview reads a page's Open Graph title, description and image,
// falling back to <title> and the description meta tag.
func parsePreview(page []byte) channel.LinkPreview {
	var p channel.LinkPreview
	var title string
	z := html.NewTokenizer(bytes.NewReader(page))
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			if p.Title == "" {
				p.Title = title
			}
			p.Title, p.Description = clip(p.Title), clip(p.Description)
			return p
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch string(name) {
			case "title":
				if z.Next() == html.TextToken && title == "" {
					title = strings.TrimSpace(html.UnescapeString(string(z.Text())))
				}
			case "meta":
				var key, content string
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					switch string(k) {
					case "property", "name":
						key = strings.ToLower(string(v))
					case "content":
						content = strings.TrimSpace(string(v))
					}
				}
				switch {
				case key == "og:title" && p.Title == "":
					p.Title = content
				case (key == "og:description" || key == "description") && p.Description == "":
					p.Description = content
				case key == "og:image" && p.ImageURL == "":
					p.ImageURL = content
				}
			case "body":
				if p.Title == "" {
					p.Title = title
				}
				p.Title, p.Description = clip(p.Title), clip(p.Description)
				return p // the head is over
			}
		}
	}
}

func clip(s string) string {
	if utf8.RuneCountInString(s) <= maxPreviewTextLen {
		return s
	}
	return string([]rune(s)[:maxPreviewTextLen-1]) + "…"
}
