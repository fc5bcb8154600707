package fakeai

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Outcome is one scripted answer to a model call. Build it with Echo, Reply,
// CallTool, CallTools, Fail, RateLimited, Delay or Disconnect and refine it
// with After, Until, WithRetryAfter, WithRateLimit, WithHeader, WithError
// and When. The zero value is Echo().
type Outcome struct {
	kind   outcomeKind
	text   string
	calls  []ToolCall
	err    apiError
	delay  time.Duration
	hold   <-chan struct{}    // nil: answer without waiting for it
	header http.Header        // added to the answer, errors included
	pace   time.Duration      // between the chunks of a streamed answer
	match  func(Request) bool // nil: any call
}

type outcomeKind int

const (
	kindEcho outcomeKind = iota
	kindReply
	kindToolCalls
	kindError
	kindDisconnect
)

// ToolCall is a function call the fake model makes. An empty ID is filled
// with a fresh "call_N".
type ToolCall struct {
	ID        string
	Name      string
	Arguments string // JSON text, passed through verbatim
}

// Echo answers like the unscripted default; useful with After or When.
func Echo() Outcome { return Outcome{} }

// Reply answers with text. For transcriptions text is the transcript.
func Reply(text string) Outcome { return Outcome{kind: kindReply, text: text} }

// CallTool makes the model call one function: chat completions finish with
// "tool_calls", the Responses API returns a function_call output item.
func CallTool(name, arguments string) Outcome {
	return CallTools(ToolCall{Name: name, Arguments: arguments})
}

// CallTools makes the model call several functions in one turn.
func CallTools(calls ...ToolCall) Outcome {
	return Outcome{kind: kindToolCalls, calls: slices.Clone(calls)}
}

// Fail answers with an HTTP error in OpenAI's shape; the error type follows
// the status (429 "requests", 5xx "server_error", else invalid_request_error).
func Fail(status int, message string) Outcome {
	return Outcome{kind: kindError, err: apiError{Status: status, Message: message}}
}

// RateLimited answers 429 rate_limit_exceeded with a Retry-After header
// (whole seconds, rounded up) and retry-after-ms.
func RateLimited(retryAfter time.Duration) Outcome {
	return Fail(http.StatusTooManyRequests, "Rate limit reached for requests").
		WithError("requests", "rate_limit_exceeded").
		WithRetryAfter(retryAfter)
}

// Delay waits d, then echoes. The wait ends early when the client gives up,
// and the call is then recorded with StatusClientClosed.
func Delay(d time.Duration) Outcome { return Echo().After(d) }

// Disconnect closes the connection without answering.
func Disconnect() Outcome { return Outcome{kind: kindDisconnect} }

// Paced streams the answer (when the client asks for a stream) one chunk
// every d, as a model writes, so a test can act in the middle of it.
func (o Outcome) Paced(d time.Duration) Outcome {
	o.pace = d
	return o
}

// After delays the outcome by d (added to the server's latency).
func (o Outcome) After(d time.Duration) Outcome {
	o.delay = d
	return o
}

// Until holds the outcome until release is closed (after any delay), so a
// test can keep a call in flight for exactly as long as it needs. The hold
// ends early when the client gives up, as Delay's does.
func (o Outcome) Until(release <-chan struct{}) Outcome {
	o.hold = release
	return o
}

// WithHeader adds a response header to the outcome, errors included.
func (o Outcome) WithHeader(key, value string) Outcome {
	h := o.header.Clone()
	if h == nil {
		h = http.Header{}
	}
	h.Add(key, value)
	o.header = h
	return o
}

// WithRateLimit adds OpenAI's rate-limit headers to the outcome: what
// remains of the requests and tokens limits, and when each is back to full
// (x-ratelimit-reset-*, written as OpenAI does: "1s", "6m0s", "20ms").
func (o Outcome) WithRateLimit(remainingRequests, remainingTokens int, resetRequests, resetTokens time.Duration) Outcome {
	return o.WithHeader("X-Ratelimit-Limit-Requests", strconv.Itoa(max(remainingRequests, 1)*2)).
		WithHeader("X-Ratelimit-Remaining-Requests", strconv.Itoa(remainingRequests)).
		WithHeader("X-Ratelimit-Reset-Requests", resetRequests.String()).
		WithHeader("X-Ratelimit-Limit-Tokens", strconv.Itoa(max(remainingTokens, 1)*2)).
		WithHeader("X-Ratelimit-Remaining-Tokens", strconv.Itoa(remainingTokens)).
		WithHeader("X-Ratelimit-Reset-Tokens", resetTokens.String())
}

// WithRetryAfter adds a Retry-After header to an error outcome.
func (o Outcome) WithRetryAfter(d time.Duration) Outcome {
	o.err.RetryAfter = d
	return o
}

// WithError sets the error type and code of an error outcome, e.g.
// ("insufficient_quota", "insufficient_quota").
func (o Outcome) WithError(errType, code string) Outcome {
	o.err.Type, o.err.Code = errType, code
	return o
}

// When restricts the outcome to calls for which match returns true. A call
// takes the first queued outcome that is unrestricted or whose matcher
// accepts it, so restricted outcomes let concurrent conversations be scripted
// independently. match runs under the server's lock: it must not call the
// Server.
func (o Outcome) When(match func(Request) bool) Outcome {
	o.match = match
	return o
}

// MatchKey matches calls made with the API key.
func MatchKey(key string) func(Request) bool {
	return func(r Request) bool { return r.APIKey == key }
}

// MatchModel matches calls for the model.
func MatchModel(model string) func(Request) bool {
	return func(r Request) bool { return r.Model == model }
}

// MatchText matches calls whose UserText contains substr.
func MatchText(substr string) func(Request) bool {
	return func(r Request) bool { return strings.Contains(r.UserText, substr) }
}

// Enqueue appends outcomes for the next chat completion and Responses API
// calls, consumed in order. With the queue empty the default echo applies.
func (s *Server) Enqueue(outcomes ...Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script = append(s.script, outcomes...)
}

// EnqueueTranscription appends outcomes for the next transcription calls:
// Reply sets the transcript; Fail, Delay and Disconnect work as for chat.
func (s *Server) EnqueueTranscription(outcomes ...Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.transcripts = append(s.transcripts, outcomes...)
}

// EnqueueEmbeddings appends outcomes for the next embeddings calls: Fail,
// Delay and Disconnect work as for chat; Echo (and Reply) answer vectors.
func (s *Server) EnqueueEmbeddings(outcomes ...Outcome) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.embeddings = append(s.embeddings, outcomes...)
}

// Pending reports how many scripted model-call outcomes are still queued, so
// a test can check that its script was used up.
func (s *Server) Pending() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.script)
}

// take removes and returns the outcome for req from q: the first one whose
// matcher accepts it, unrestricted ones included.
func (s *Server) take(q *[]Outcome, req *Request) Outcome {
	s.mu.Lock()
	defer s.mu.Unlock()
	snapshot := *req
	for i, o := range *q {
		if o.match == nil || o.match(snapshot) {
			*q = slices.Delete(*q, i, i+1)
			return o
		}
	}
	return Echo()
}

// toolCalls fills in missing call ids.
func (s *Server) toolCalls(o Outcome) []ToolCall {
	calls := slices.Clone(o.calls)
	for i := range calls {
		if calls[i].ID == "" {
			calls[i].ID = s.nextID("call_")
		}
	}
	return calls
}

// answer takes the next outcome for req from q and waits out its latency.
// Errors and disconnections are answered here; ok says whether the caller
// should write the reply.
func (s *Server) answer(w http.ResponseWriter, r *http.Request, q *[]Outcome, req *Request) (out Outcome, ok bool) {
	if !s.limited(w, req) {
		return out, false
	}
	out = s.take(q, req)
	if !s.wait(r.Context(), out.delay) {
		return out, false
	}
	if out.hold != nil {
		select {
		case <-out.hold:
		case <-r.Context().Done():
			return out, false
		}
	}
	for k, v := range out.header {
		w.Header()[k] = append(w.Header()[k], v...)
	}
	switch out.kind {
	case kindError:
		writeError(w, out.err)
		return out, false
	case kindDisconnect:
		disconnect(w)
		return out, false
	}
	return out, true
}
