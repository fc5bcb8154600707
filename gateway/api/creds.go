package api

import (
	"net/url"
	"strings"

	"github.com/wagate/wagate"
)

// CheckCredentials checks the fields of provider credentials as every
// route that stores them takes them, and returns the name trimmed and the
// base URL without its trailing slash.
func CheckCredentials(p *wagate.Problems, name, apiKey, baseURL string) (string, string) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		p.Add("name", "required")
	case len(name) > 255:
		p.Add("name", "longer than 255 characters")
	}
	switch {
	case apiKey == "":
		p.Add("apiKey", "required")
	case len(apiKey) > 4096 || strings.ContainsFunc(apiKey, func(r rune) bool { return r <= ' ' || r == 0x7f }):
		p.Add("apiKey", "must be at most 4096 characters without spaces")
	}
	if baseURL != "" {
		u, err := url.Parse(baseURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			p.Add("baseUrl", "must be an absolute http or https URL, e.g. https://api.openai.com/v1")
		}
	}
	return name, strings.TrimRight(baseURL, "/")
}
