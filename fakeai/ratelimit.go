package fakeai

import (
	"net/http"
	"strconv"
	"time"
)

// requestLimit is a provider's requests-per-minute limit, per API key, as
// OpenAI applies it: a bucket of RequestsPerMinute requests that refills
// continuously. Every model call answers with the x-ratelimit-*-requests
// headers; a call finding the bucket empty gets 429 with Retry-After.
type requestLimit struct {
	rpm     float64
	buckets map[string]*bucket // guarded by Server.mu
}

type bucket struct {
	left float64
	at   time.Time
}

// admit takes one request of key's budget at now. It returns the headers
// to answer with and, when the budget is spent, how long until one request
// is available again.
func (l *requestLimit) admit(key string, now time.Time) (h http.Header, wait time.Duration) {
	perSec := l.rpm / 60
	b := l.buckets[key]
	if b == nil {
		b = &bucket{left: l.rpm, at: now}
		l.buckets[key] = b
	}
	b.left = min(l.rpm, b.left+now.Sub(b.at).Seconds()*perSec)
	b.at = now
	if b.left >= 1 {
		b.left--
	} else {
		wait = time.Duration((1 - b.left) / perSec * float64(time.Second))
	}
	full := time.Duration((l.rpm - b.left) / perSec * float64(time.Second)).Round(time.Millisecond)
	h = http.Header{}
	h.Set("X-Ratelimit-Limit-Requests", strconv.Itoa(int(l.rpm)))
	h.Set("X-Ratelimit-Remaining-Requests", strconv.Itoa(int(b.left)))
	h.Set("X-Ratelimit-Reset-Requests", full.String())
	return h, wait
}

// limited applies Options.RequestsPerMinute to req: it adds the rate-limit
// headers to the answer and, with the budget spent, answers 429 itself
// (ok false).
func (s *Server) limited(w http.ResponseWriter, req *Request) (ok bool) {
	if s.limit == nil {
		return true
	}
	s.mu.Lock()
	h, wait := s.limit.admit(req.APIKey, time.Now())
	s.mu.Unlock()
	for k, v := range h {
		w.Header()[k] = v
	}
	if wait > 0 {
		writeError(w, apiError{Status: http.StatusTooManyRequests, Message: "Rate limit reached for requests",
			Type: "requests", Code: "rate_limit_exceeded", RetryAfter: wait})
		return false
	}
	return true
}
