package fakeai

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Endpoint names an API route in a Request.
type Endpoint string

// Endpoints the fake serves; requests to other paths are recorded with "".
const (
	EndpointModels         Endpoint = "models"
	EndpointChat           Endpoint = "chat.completions"
	EndpointResponses      Endpoint = "responses"
	EndpointTranscriptions Endpoint = "audio.transcriptions"
	EndpointEmbeddings     Endpoint = "embeddings"
)

// Statuses recorded for calls that got no HTTP answer.
const (
	// StatusClientClosed: the client went away (timeout, cancel) before the
	// answer was ready; nginx's 499.
	StatusClientClosed = 499
	// StatusDisconnected: a Disconnect outcome dropped the connection.
	StatusDisconnected = 444
)

// Request is one recorded HTTP request. Records are shared snapshots: treat
// the maps and slices in them as read-only.
type Request struct {
	Seq      int // 1-based arrival order since New (not reset by Reset)
	Received time.Time
	Method   string
	Path     string
	Endpoint Endpoint
	// APIKey is the bearer token exactly as sent, "" when missing.
	APIKey string
	Header http.Header
	// Raw is the body as received; Body is it decoded when it is JSON.
	Raw  []byte
	Body map[string]any

	// Model is the requested model (JSON "model" or the form field).
	Model string
	// UserText is what the default reply echoes: the last user turn's text
	// (text parts joined with "\n"), or the outputs of the tool calls that
	// end the conversation, joined with "\n".
	UserText string

	// Chat is the chat completion request decoded by go-openai's own types,
	// and Messages its messages, to compare with what a test sent.
	Chat     *openai.ChatCompletionRequest
	Messages []openai.ChatCompletionMessage
	// Responses is the Responses API request decoded by go-openai's types;
	// Body has the fields go-openai does not model (e.g. inline tools).
	Responses *openai.CreateResponseRequest

	// Form holds a transcription's fields other than the file.
	Form     url.Values
	FileName string
	FileSize int
	File     []byte

	// Filled in when the answer is sent.
	Status    int    // HTTP status; 0 while in flight, see StatusClientClosed/StatusDisconnected
	ReplyID   string // id of the chat completion or response returned
	Reply     string // reply text or transcript returned
	ToolCalls []ToolCall

	decodeErr error // the typed decoding failed; answered as 400
}

// publish records req and returns its sequence number.
func (s *Server) publish(req *Request) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.seq++
	req.Seq = s.seq
	if s.maxRec >= 0 {
		s.records = append(s.records, req)
		if s.maxRec > 0 && len(s.records) > s.maxRec {
			drop := len(s.records) - s.maxRec
			clear(s.records[:drop]) // release the dropped records now
			s.records = s.records[drop:]
		}
	}
	s.notifyLocked()
	return req.Seq
}

// update changes a published record under the lock readers use.
func (s *Server) update(req *Request, fn func(*Request)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fn(req)
	s.notifyLocked()
}

func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Requests returns every recorded request in arrival order, including those
// still in flight (Status 0).
func (s *Server) Requests() []Request {
	return s.filter(func(*Request) bool { return true })
}

// RequestsTo returns the recorded requests to one endpoint.
func (s *Server) RequestsTo(ep Endpoint) []Request {
	return s.filter(func(r *Request) bool { return r.Endpoint == ep })
}

func (s *Server) filter(keep func(*Request) bool) []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Request
	for _, r := range s.records {
		if keep(r) {
			out = append(out, *r)
		}
	}
	return out
}

// LastChat returns the latest chat completion request.
func (s *Server) LastChat() (Request, bool) { return s.last(EndpointChat) }

// LastResponses returns the latest Responses API request.
func (s *Server) LastResponses() (Request, bool) { return s.last(EndpointResponses) }

// LastTranscription returns the latest transcription request.
func (s *Server) LastTranscription() (Request, bool) { return s.last(EndpointTranscriptions) }

func (s *Server) last(ep Endpoint) (Request, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.records) - 1; i >= 0; i-- {
		if s.records[i].Endpoint == ep {
			return *s.records[i], true
		}
	}
	return Request{}, false
}

// Await waits until at least n requests to ep ("" for any endpoint) have been
// answered, and returns the answered ones. Engine tests use it because model
// calls happen asynchronously after the inbound request returned.
func (s *Server) Await(ctx context.Context, ep Endpoint, n int) ([]Request, error) {
	return s.await(ctx, ep, n, true)
}

// AwaitReceived is Await for requests received, answered or not: a test
// holding answers (Until) learns that the calls it holds have arrived.
func (s *Server) AwaitReceived(ctx context.Context, ep Endpoint, n int) ([]Request, error) {
	return s.await(ctx, ep, n, false)
}

func (s *Server) await(ctx context.Context, ep Endpoint, n int, answered bool) ([]Request, error) {
	for {
		s.mu.Lock()
		var done []Request
		for _, r := range s.records {
			if (r.Status != 0 || !answered) && (ep == "" || r.Endpoint == ep) {
				done = append(done, *r)
			}
		}
		changed := s.changed
		s.mu.Unlock()
		if len(done) >= n {
			return done, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return done, fmt.Errorf("fakeai: waiting for %d %q requests, %d so far: %w",
				n, ep, len(done), ctx.Err())
		}
	}
}

// Reset forgets recorded requests and scripted outcomes. Ids keep counting
// and stored responses stay valid, so previous_response_id chains survive.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.records, s.script, s.transcripts, s.embeddings = nil, nil, nil, nil
	s.notifyLocked()
}
