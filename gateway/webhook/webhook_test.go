package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// refSig computes the signature independently of sign.go, as the README
// tells receivers to: hex HMAC-SHA256(secret, "<t>.<body>").
func refSig(secret string, ts int64, body []byte) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(strconv.FormatInt(ts, 10) + "." + string(body)))
	return hex.EncodeToString(m.Sum(nil))
}

func TestSignFormat(t *testing.T) {
	at := time.Unix(1_700_000_000, 999_000_000) // sub-second part is dropped
	body := []byte(`{"event":"messages.upsert"}`)
	got := Sign("s3cret", at, body)

	if !regexp.MustCompile(`^t=\d+,v1=[0-9a-f]{64}$`).MatchString(got) {
		t.Fatalf("Sign = %q, want t=<unix>,v1=<64 hex>", got)
	}
	want := "t=1700000000,v1=" + refSig("s3cret", 1_700_000_000, body)
	if got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
	if Sign("other", at, body) == got {
		t.Error("the signature does not depend on the secret")
	}
	if Sign("s3cret", at.Add(time.Second), body) == got {
		t.Error("the signature does not depend on the time")
	}
}

func TestVerify(t *testing.T) {
	const secret = "whsec_test"
	now := time.Unix(1_700_000_000, 0)
	body := []byte(`{"event":"send.message","data":{"text":"hi"}}`)
	good := Sign(secret, now, body)
	goodSig := refSig(secret, now.Unix(), body)
	ts := strconv.FormatInt(now.Unix(), 10)
	tolerance := 5 * time.Minute

	tests := []struct {
		name    string
		secret  string
		header  string
		body    []byte
		now     time.Time
		wantErr string // "" means valid
	}{
		{name: "round trip", header: good},
		{name: "round trip, empty body", header: Sign(secret, now, nil), body: []byte{}},
		{name: "spaces after comma", header: "t=" + ts + ", v1=" + goodSig},
		{name: "fields in any order", header: "v1=" + goodSig + ",t=" + ts},
		{name: "unknown fields ignored", header: "t=" + ts + ",v0=abc,v1=" + goodSig},
		{name: "several v1, the good one last", header: "t=" + ts + ",v1=" + strings.Repeat("0", 64) + ",v1=" + goodSig},
		{name: "several v1, the good one first", header: "t=" + ts + ",v1=" + goodSig + ",v1=deadbeef"},
		{name: "several v1, none good", header: "t=" + ts + ",v1=" + strings.Repeat("0", 64) + ",v1=" + refSig("other", now.Unix(), body), wantErr: "mismatch"},
		{name: "sent within tolerance", header: good, now: now.Add(tolerance)},
		{name: "clock skew within tolerance", header: good, now: now.Add(-tolerance)},
		{name: "tampered body", header: good, body: []byte(`{"event":"send.message","data":{"text":"hI"}}`), wantErr: "mismatch"},
		{name: "body with extra byte", header: good, body: append(append([]byte{}, body...), '\n'), wantErr: "mismatch"},
		{name: "wrong secret", secret: "whsec_other", header: good, wantErr: "mismatch"},
		{name: "signature of another time", header: "t=" + strconv.FormatInt(now.Unix()+1, 10) + ",v1=" + goodSig, wantErr: "mismatch"},
		{name: "uppercase hex differs", header: "t=" + ts + ",v1=" + strings.ToUpper(goodSig), wantErr: "mismatch"},
		{name: "stale", header: good, now: now.Add(tolerance + time.Second), wantErr: "tolerance"},
		{name: "replayed a day later", header: good, now: now.Add(24 * time.Hour), wantErr: "tolerance"},
		{name: "from the future", header: good, now: now.Add(-tolerance - time.Second), wantErr: "tolerance"},
		{name: "empty header", header: "", wantErr: "malformed"},
		{name: "garbage", header: "garbage", wantErr: "malformed"},
		{name: "no timestamp", header: "v1=" + goodSig, wantErr: "malformed"},
		{name: "no signature", header: "t=" + ts, wantErr: "malformed"},
		{name: "timestamp not a number", header: "t=yesterday,v1=" + goodSig, wantErr: "malformed"},
		{name: "empty timestamp", header: "t=,v1=" + goodSig, wantErr: "malformed"},
		{name: "semicolons", header: "t=" + ts + ";v1=" + goodSig, wantErr: "malformed"},
		{name: "empty v1", header: "t=" + ts + ",v1=", wantErr: "mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sec := tt.secret
			if sec == "" {
				sec = secret
			}
			b := tt.body
			if b == nil {
				b = body
			}
			at := tt.now
			if at.IsZero() {
				at = now
			}
			err := Verify(sec, tt.header, b, tolerance, at)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("Verify(%q) = %v, want nil", tt.header, err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("Verify(%q) accepted, want an error about %q", tt.header, tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("Verify(%q) = %v, want an error about %q", tt.header, err, tt.wantErr)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		name      string
		base, max time.Duration
		attempt   int
		want      time.Duration // the un-jittered delay: results lie in [want/2, want]
	}{
		{"attempt 0", 2 * time.Second, 5 * time.Minute, 0, 2 * time.Second},
		{"attempt 1", 2 * time.Second, 5 * time.Minute, 1, 2 * time.Second},
		{"attempt 2", 2 * time.Second, 5 * time.Minute, 2, 4 * time.Second},
		{"attempt 3", 2 * time.Second, 5 * time.Minute, 3, 8 * time.Second},
		{"attempt 8", 2 * time.Second, 5 * time.Minute, 8, 256 * time.Second},
		{"attempt 9 capped", 2 * time.Second, 5 * time.Minute, 9, 5 * time.Minute},
		{"attempt 100 capped", 2 * time.Second, 5 * time.Minute, 100, 5 * time.Minute},
		{"attempt 1e9 capped", 2 * time.Second, 5 * time.Minute, 1_000_000_000, 5 * time.Minute},
		{"max int attempt capped", time.Millisecond, 24 * time.Hour, int(^uint(0) >> 1), 24 * time.Hour},
		{"base above max", time.Hour, time.Minute, 1, time.Minute},
		{"base equals max", time.Minute, time.Minute, 5, time.Minute},
		{"tiny base", time.Nanosecond, time.Second, 1, time.Nanosecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for range 500 {
				got := backoff(tt.base, tt.max, tt.attempt)
				if got < tt.want/2 || got > tt.want {
					t.Fatalf("backoff(%v, %v, %d) = %v, want within [%v, %v]", tt.base, tt.max, tt.attempt, got, tt.want/2, tt.want)
				}
				if got > tt.max {
					t.Fatalf("backoff = %v exceeds max %v", got, tt.max)
				}
				seen[got] = true
			}
			// Jitter: with a range of a second or more, 500 draws are never all equal.
			if tt.want >= time.Second && len(seen) < 2 {
				t.Errorf("backoff(%v, %v, %d) always returned the same value: no jitter", tt.base, tt.max, tt.attempt)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	tests := []struct {
		name string
		v    string
		want time.Duration
	}{
		{"empty", "", 0},
		{"seconds", "120", 120 * time.Second},
		{"one second", "1", time.Second},
		{"zero", "0", 0},
		{"negative", "-5", 0},
		{"garbage", "soon", 0},
		{"fraction", "1.5", 0},
		{"with unit", "10s", 0},
		{"not a date", "Mon, 99 Foo 2024 25:61:00 GMT", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := retryAfter(tt.v); got != tt.want {
				t.Errorf("retryAfter(%q) = %v, want %v", tt.v, got, tt.want)
			}
		})
	}

	t.Run("http date in the future", func(t *testing.T) {
		v := time.Now().Add(time.Hour).UTC().Format(http.TimeFormat)
		got := retryAfter(v)
		// The date has whole seconds; allow for that and a slow test machine.
		if got <= 58*time.Minute || got > time.Hour {
			t.Errorf("retryAfter(%q) = %v, want about an hour", v, got)
		}
	})
	t.Run("other http date formats", func(t *testing.T) {
		at := time.Now().Add(2 * time.Hour).UTC()
		for _, layout := range []string{time.RFC850, time.ANSIC} {
			v := at.Format(layout)
			if got := retryAfter(v); got <= 118*time.Minute || got > 2*time.Hour {
				t.Errorf("retryAfter(%q) = %v, want about two hours", v, got)
			}
		}
	})
	t.Run("http date in the past", func(t *testing.T) {
		// Not positive, so the caller falls back to its own backoff.
		v := time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)
		if got := retryAfter(v); got > 0 {
			t.Errorf("retryAfter(%q) = %v, want <= 0", v, got)
		}
	})
}

func TestRetryAfterHugeSeconds(t *testing.T) {
	// A longer Retry-After never means an earlier retry.
	day := retryAfter("86400")
	if day != 24*time.Hour {
		t.Fatalf("retryAfter(86400) = %v", day)
	}
	for _, v := range []string{"9223372037", "18446744074", "9999999999999", "99999999999999999"} {
		if got := retryAfter(v); got < day {
			t.Errorf("retryAfter(%q) = %v, less than for one day", v, got)
		}
	}
}

func TestSubscriptionName(t *testing.T) {
	tests := []struct{ event, want string }{
		{MessagesUpsert, "MESSAGES_UPSERT"},
		{SendMessage, "SEND_MESSAGE"},
		{ConnectionUpdate, "CONNECTION_UPDATE"},
		{QRCodeUpdated, "QRCODE_UPDATED"},
		{InstanceDelete, "INSTANCE_DELETE"},
		{"group-participants.update", "GROUP-PARTICIPANTS_UPDATE"},
		{"call", "CALL"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := SubscriptionName(tt.event); got != tt.want {
			t.Errorf("SubscriptionName(%q) = %q, want %q", tt.event, got, tt.want)
		}
	}
}

func TestEmittedEventsAreSubscribable(t *testing.T) {
	// A client can subscribe to every event wagate emits.
	for _, ev := range []string{MessagesUpsert, SendMessage, ConnectionUpdate, QRCodeUpdated, InstanceDelete} {
		if name := SubscriptionName(ev); !slices.Contains(Subscriptions, name) {
			t.Errorf("event %s maps to %s, which is not in Subscriptions", ev, name)
		}
	}
	seen := map[string]bool{}
	for _, s := range Subscriptions {
		if seen[s] {
			t.Errorf("%s listed twice in Subscriptions", s)
		}
		seen[s] = true
		if s != strings.ToUpper(s) || strings.ContainsAny(s, ".- ") {
			t.Errorf("subscription %q is not an upper snake name", s)
		}
	}
}

func TestPathSuffix(t *testing.T) {
	tests := []struct{ event, want string }{
		{MessagesUpsert, "messages-upsert"},
		{SendMessage, "send-message"},
		{ConnectionUpdate, "connection-update"},
		{QRCodeUpdated, "qrcode-updated"},
		{InstanceDelete, "instance-delete"},
		{"a.b.c", "a-b-c"},
		{"call", "call"},
	}
	for _, tt := range tests {
		if got := PathSuffix(tt.event); got != tt.want {
			t.Errorf("PathSuffix(%q) = %q, want %q", tt.event, got, tt.want)
		}
	}
}

func TestWants(t *testing.T) {
	tests := []struct {
		name   string
		events []string
		event  string
		want   bool
	}{
		{"nil list means all", nil, MessagesUpsert, true},
		{"empty list means all", []string{}, InstanceDelete, true},
		{"subscribed", []string{"MESSAGES_UPSERT"}, MessagesUpsert, true},
		{"subscribed among others", []string{"QRCODE_UPDATED", "SEND_MESSAGE", "CALL"}, SendMessage, true},
		{"not subscribed", []string{"MESSAGES_UPSERT"}, SendMessage, false},
		{"similar name", []string{"MESSAGES_UPSERT"}, "messages.update", false},
		{"prefix is not enough", []string{"MESSAGES"}, MessagesUpsert, false},
		{"dotted name in the list does not match", []string{"messages.upsert"}, MessagesUpsert, false},
		{"only unrelated events", []string{"CALL", "LABELS_EDIT"}, ConnectionUpdate, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Wants(tt.events, tt.event); got != tt.want {
				t.Errorf("Wants(%q, %q) = %v, want %v", tt.events, tt.event, got, tt.want)
			}
		})
	}
}

// BenchmarkSign signs a typical send.message delivery body.
func BenchmarkSign(b *testing.B) {
	body := []byte(`{"event":"send.message","instance":"shop","data":{"key":{"id":"3EB0C431C26A1916E2D7","remoteJid":"5511999990000@s.whatsapp.net","fromMe":true},"pushName":"","message":{"conversation":"Olá! Nossa loja abre de segunda a sexta, das 9h às 18h."},"messageType":"conversation","messageTimestamp":1700000000,"status":"SERVER_ACK","instanceId":"0b6b3f8e-8f5e-4b2a-9d59-2f1c1c8e9a10"},"destination":"https://example.com/hook","date_time":"2026-11-21T10:00:00.000Z","sender":"5511988887777","server_url":"https://wagate.example.com"}`)
	at := time.Unix(1_700_000_000, 0)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		Sign("whsec_0123456789abcdef0123456789abcdef", at, body)
	}
}

func TestHeaderProblem(t *testing.T) {
	tests := []struct {
		name, value string
		want        string // substring of the problem; "" for none
	}{
		{"Authorization", "Bearer abc", ""},
		{"X-Api-Key", "k\tv", ""}, // a tab is allowed inside a value
		{"X-Obs", "café", ""},     // obs-text: bytes over 0x7f are sent as they are
		{"X-Long", strings.Repeat("v", MaxHeaderValue), ""},
		{"X-Nul", "a\x00b", "control characters"},
		{"X-Del", "a\x7fb", "control characters"},
		{"X-Crlf", "a\r\nX-Injected: 1", "control characters"},
		{"X-Too-Long", strings.Repeat("v", MaxHeaderValue+1), "longer than 8192 bytes"},
		{"Bad Name", "v", "not a valid header name"},
		{"X-Ünicode", "v", "not a valid header name"},
		{"", "v", "not a valid header name"},
		{strings.Repeat("X", MaxHeaderName+1), "v", "not a valid header name"},
		{"X-Wagate-Signature", "v", "set by wagate"},
		{"Content-Length", "1", "set by wagate"},
		{"Connection", "close", "hop-by-hop"},
		{"Transfer-Encoding", "chunked", "hop-by-hop"},
		{"Te", "trailers", "hop-by-hop"},
	}
	for _, tt := range tests {
		got := HeaderProblem(tt.name, tt.value)
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("HeaderProblem(%.30q, %.30q) = %q, want %q", tt.name, tt.value, got, tt.want)
		}
	}
	if err := CheckHeaders(map[string]string{"X-A": strings.Repeat("a", 8000), "X-B": strings.Repeat("b", 8000), "X-C": strings.Repeat("c", 500)}); err == nil {
		t.Error("CheckHeaders accepted more than 16 KiB of headers")
	}
	if err := CheckHeaders(map[string]string{"x-lower": "fine", "X-Other": "too"}); err != nil {
		t.Errorf("CheckHeaders of valid headers: %v", err)
	}
}
