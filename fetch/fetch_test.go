package fetch_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/fetch"
)

func TestSpecial(t *testing.T) {
	for _, tt := range []struct {
		ip      string
		special bool
	}{
		{"127.0.0.1", true}, {"127.8.9.10", true}, {"::1", true}, {"10.1.2.3", true}, {"172.16.0.1", true},
		{"192.168.1.1", true}, {"169.254.169.254", true}, {"fe80::1", true}, {"fc00::1", true}, {"0.0.0.0", true},
		{"::", true}, {"100.64.0.1", true}, {"224.0.0.1", true}, {"255.255.255.255", true}, {"::ffff:10.0.0.1", true},
		{"::ffff:127.0.0.1", true}, {"64:ff9b::a00:1", true}, {"2002:a00:1::", true}, {"198.18.0.1", true},
		{"8.8.8.8", false}, {"93.184.216.34", false}, {"2606:4700::1111", false}, {"::ffff:8.8.8.8", false},
	} {
		if got := fetch.Special(netip.MustParseAddr(tt.ip)); got != tt.special {
			t.Errorf("Special(%s) = %v, want %v", tt.ip, got, tt.special)
		}
	}
}

func TestGet(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			w.Write([]byte("<html><body>hello</body></html>"))
		case "/missing":
			http.NotFound(w, r)
		case "/to-ftp":
			http.Redirect(w, r, "ftp://example.com/x", http.StatusFound)
		case "/to-denied":
			// 127.0.0.2 is loopback too; the test's Deny stands it in for
			// a private address the redirect leads to.
			http.Redirect(w, r, strings.Replace(srvURL(r), "127.0.0.1", "127.0.0.2", 1)+"/page", http.StatusFound)
		case "/loop":
			http.Redirect(w, r, "/loop", http.StatusFound)
		case "/big":
			w.Write(make([]byte, 2048))
		}
	}))
	defer srv.Close()
	ctx := context.Background()

	// By default loopback is refused, by name and by address.
	strict := fetch.New(fetch.Config{})
	for _, u := range []string{srv.URL + "/page", strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/page"} {
		_, err := strict.Get(ctx, "url", u, 1<<20)
		if wagate.ErrorCode(err) != wagate.EINVALID || !strings.Contains(wagate.ErrorMessages(err)[0], "not public") {
			t.Errorf("Get(%s) = %v, want a refusal", u, err)
		}
	}

	open := fetch.New(fetch.Config{AllowPrivate: true, Deny: func(ip netip.Addr) bool { return ip == netip.MustParseAddr("127.0.0.2") }})
	resp, err := open.Get(ctx, "url", srv.URL+"/page", 1<<20)
	if err != nil || string(resp.Body) != "<html><body>hello</body></html>" || !strings.HasPrefix(resp.Sniffed, "text/html") {
		t.Fatalf("Get(page) = %+v, %v", resp, err)
	}
	for _, tt := range []struct {
		path, want string
		code       wagate.Code
	}{
		{"/missing", "HTTP 404", wagate.EUPSTREAM},
		{"/to-ftp", "only http and https", wagate.EINVALID},
		{"/to-denied", "not public", wagate.EINVALID},
		{"/loop", "redirects", wagate.EINVALID},
		{"/big", "larger than 1024 bytes", wagate.ETOOLARGE},
	} {
		_, err := open.Get(ctx, "url", srv.URL+tt.path, 1024)
		if wagate.ErrorCode(err) != tt.code || !strings.Contains(strings.Join(wagate.ErrorMessages(err), " "), tt.want) {
			t.Errorf("Get(%s) = %v (%s), want %s with %q", tt.path, err, wagate.ErrorCode(err), tt.code, tt.want)
		}
	}
	for _, u := range []string{"file:///etc/passwd", "gopher://x", "not a url", "http://"} {
		if _, err := open.Get(ctx, "url", u, 1024); wagate.ErrorCode(err) != wagate.EINVALID {
			t.Errorf("Get(%q) = %v, want EINVALID", u, err)
		}
	}
}

func srvURL(r *http.Request) string { return "http://" + r.Host }
