package fakeai_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/wagate/wagate/fakeai"
)

const testKey = "sk-test-0123456789abcdef"

func client(s *fakeai.Server, key string) *openai.Client {
	cfg := openai.DefaultConfig(key)
	cfg.BaseURL = s.BaseURL()
	return openai.NewClientWithConfig(cfg)
}

func userMsg(text string) openai.ChatCompletionMessage {
	return openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: text}
}

// raw sends a request without go-openai, for headers and shapes the client
// hides. An empty key sends no Authorization header.
func raw(t *testing.T, s *fakeai.Server, method, path, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method,
		strings.TrimSuffix(s.BaseURL(), "/v1")+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func apiError(t *testing.T, err error) *openai.APIError {
	t.Helper()
	var apiErr *openai.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("want *openai.APIError, got %T: %v", err, err)
	}
	return apiErr
}

func TestListModels(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	c := client(s, testKey)

	list, err := c.ListModels(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range list.Models {
		ids = append(ids, m.ID)
		if m.Object != "model" || m.OwnedBy == "" || m.CreatedAt == 0 {
			t.Errorf("model %+v lacks OpenAI's fields", m)
		}
	}
	for _, want := range []string{"gpt-4o", "gpt-4o-mini", "gpt-4o-mini-transcribe", "whisper-1"} {
		if !slices.Contains(ids, want) {
			t.Errorf("models %v lack %s", ids, want)
		}
	}

	m, err := c.GetModel(t.Context(), "whisper-1")
	if err != nil || m.ID != "whisper-1" {
		t.Fatalf("GetModel = %+v, %v", m, err)
	}
	_, err = c.GetModel(t.Context(), "gpt-0")
	if e := apiError(t, err); e.HTTPStatusCode != 404 || e.Code != "model_not_found" {
		t.Fatalf("unknown model: %+v", e)
	}

	_, body := raw(t, s, "GET", "/v1/models", testKey, "")
	var shape struct {
		Object string           `json:"object"`
		Data   []map[string]any `json:"data"`
	}
	if err := json.Unmarshal(body, &shape); err != nil || shape.Object != "list" || len(shape.Data) == 0 {
		t.Fatalf("list shape: %s", body)
	}
}

func TestChatEcho(t *testing.T) {
	tests := []struct {
		name      string
		opts      fakeai.Options
		messages  []openai.ChatCompletionMessage
		want      string
		wantUsage openai.Usage
	}{
		{
			name:      "string content",
			messages:  []openai.ChatCompletionMessage{userMsg("hi")},
			want:      "echo: hi",
			wantUsage: openai.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3},
		},
		{
			name: "last user message after history",
			messages: []openai.ChatCompletionMessage{
				{Role: openai.ChatMessageRoleSystem, Content: "You are terse."},
				userMsg("first question"),
				{Role: openai.ChatMessageRoleAssistant, Content: "first answer"},
				userMsg("second"),
			},
			want: "echo: second",
			// 14+14+12+6 = 46 chars -> 12 tokens; "echo: second" 12 chars -> 3.
			wantUsage: openai.Usage{PromptTokens: 12, CompletionTokens: 3, TotalTokens: 15},
		},
		{
			name: "text parts joined",
			messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, MultiContent: []openai.ChatMessagePart{
				{Type: openai.ChatMessagePartTypeText, Text: "one"},
				{Type: openai.ChatMessagePartTypeImageURL, ImageURL: &openai.ChatMessageImageURL{URL: "https://example.com/a.png"}},
				{Type: openai.ChatMessagePartTypeText, Text: "two"},
			}}},
			want:      "echo: one\ntwo",
			wantUsage: openai.Usage{PromptTokens: 2, CompletionTokens: 4, TotalTokens: 6},
		},
		{
			name:      "custom prefix",
			opts:      fakeai.Options{Prefix: "bot> "},
			messages:  []openai.ChatCompletionMessage{userMsg("ola")},
			want:      "bot> ola",
			wantUsage: openai.Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := fakeai.NewTestServer(t, tt.opts)
			resp, err := client(s, testKey).CreateChatCompletion(t.Context(), openai.ChatCompletionRequest{
				Model: openai.GPT4o, Messages: tt.messages,
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Choices[0].Message.Content; got != tt.want {
				t.Errorf("reply = %q, want %q", got, tt.want)
			}
			if resp.Choices[0].FinishReason != openai.FinishReasonStop {
				t.Errorf("finish_reason = %q", resp.Choices[0].FinishReason)
			}
			if resp.Usage.PromptTokens != tt.wantUsage.PromptTokens ||
				resp.Usage.CompletionTokens != tt.wantUsage.CompletionTokens ||
				resp.Usage.TotalTokens != tt.wantUsage.TotalTokens {
				t.Errorf("usage = %+v, want %+v", resp.Usage, tt.wantUsage)
			}
			if resp.Object != "chat.completion" || resp.ID == "" || resp.Model != openai.GPT4o {
				t.Errorf("envelope = %+v", resp)
			}
		})
	}
}

func TestChatStream(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	c := client(s, testKey)

	t.Run("text with usage", func(t *testing.T) {
		stream, err := c.CreateChatCompletionStream(t.Context(), openai.ChatCompletionRequest{
			Model:         openai.GPT4oMini,
			Messages:      []openai.ChatCompletionMessage{userMsg("hello there, general")},
			StreamOptions: &openai.StreamOptions{IncludeUsage: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		var text strings.Builder
		var finish openai.FinishReason
		var usage *openai.Usage
		chunks := 0
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			chunks++
			if chunk.Usage != nil {
				usage = chunk.Usage
				if len(chunk.Choices) != 0 {
					t.Errorf("usage chunk has choices: %+v", chunk.Choices)
				}
			}
			for _, ch := range chunk.Choices {
				text.WriteString(ch.Delta.Content)
				if ch.FinishReason != "" {
					finish = ch.FinishReason
				}
			}
		}
		if got := text.String(); got != "echo: hello there, general" {
			t.Errorf("streamed %q", got)
		}
		if chunks < 4 {
			t.Errorf("only %d chunks: not really streamed", chunks)
		}
		if finish != openai.FinishReasonStop {
			t.Errorf("finish = %q", finish)
		}
		if usage == nil || usage.TotalTokens != usage.PromptTokens+usage.CompletionTokens || usage.CompletionTokens != 7 {
			t.Errorf("usage = %+v", usage)
		}
	})

	t.Run("tool call", func(t *testing.T) {
		s.Enqueue(fakeai.CallTool("lookup", `{"q":"x"}`))
		stream, err := c.CreateChatCompletionStream(t.Context(), openai.ChatCompletionRequest{
			Model: openai.GPT4o, Messages: []openai.ChatCompletionMessage{userMsg("find x")},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer stream.Close()
		var name, args, id string
		var finish openai.FinishReason
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, ch := range chunk.Choices {
				for _, tc := range ch.Delta.ToolCalls {
					if tc.Index == nil || *tc.Index != 0 {
						t.Errorf("tool call chunk without index 0: %+v", tc)
					}
					id += tc.ID
					name += tc.Function.Name
					args += tc.Function.Arguments
				}
				if ch.FinishReason != "" {
					finish = ch.FinishReason
				}
			}
		}
		if name != "lookup" || args != `{"q":"x"}` || !strings.HasPrefix(id, "call_") || finish != openai.FinishReasonToolCalls {
			t.Errorf("got call %q(%s) id %q finish %q", name, args, id, finish)
		}
	})

	t.Run("sse framing", func(t *testing.T) {
		resp, body := raw(t, s, "POST", "/v1/chat/completions", testKey,
			`{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"a b"}]}`)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/event-stream") {
			t.Errorf("content type %q", ct)
		}
		if !strings.HasSuffix(string(body), "data: [DONE]\n\n") || strings.Contains(string(body), `"usage"`) {
			t.Errorf("body:\n%s", body)
		}
	})
}

func TestScriptedOutcomes(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	c := client(s, testKey)
	req := openai.ChatCompletionRequest{Model: openai.GPT4o, Messages: []openai.ChatCompletionMessage{userMsg("hi")}}

	tests := []struct {
		name  string
		out   fakeai.Outcome
		check func(t *testing.T, resp openai.ChatCompletionResponse, err error)
	}{
		{
			name: "fixed reply",
			out:  fakeai.Reply("Olá! Como posso ajudar?"),
			check: func(t *testing.T, resp openai.ChatCompletionResponse, err error) {
				if err != nil || resp.Choices[0].Message.Content != "Olá! Como posso ajudar?" {
					t.Fatalf("got %+v, %v", resp, err)
				}
			},
		},
		{
			name: "tool call",
			out:  fakeai.CallTool("get_weather", `{"city":"Recife"}`),
			check: func(t *testing.T, resp openai.ChatCompletionResponse, err error) {
				if err != nil {
					t.Fatal(err)
				}
				ch := resp.Choices[0]
				if ch.FinishReason != openai.FinishReasonToolCalls || len(ch.Message.ToolCalls) != 1 {
					t.Fatalf("choice = %+v", ch)
				}
				tc := ch.Message.ToolCalls[0]
				if tc.Type != openai.ToolTypeFunction || tc.Function.Name != "get_weather" ||
					tc.Function.Arguments != `{"city":"Recife"}` || !strings.HasPrefix(tc.ID, "call_") {
					t.Errorf("tool call = %+v", tc)
				}
				if ch.Message.Content != "" {
					t.Errorf("content = %q beside a tool call", ch.Message.Content)
				}
			},
		},
		{
			name: "429 with Retry-After",
			out:  fakeai.RateLimited(time.Second),
			check: func(t *testing.T, _ openai.ChatCompletionResponse, err error) {
				e := apiError(t, err)
				if e.HTTPStatusCode != 429 || e.Code != "rate_limit_exceeded" || e.Type != "requests" {
					t.Errorf("error = %+v", e)
				}
			},
		},
		{
			name: "500",
			out:  fakeai.Fail(500, "The server had an error while processing your request."),
			check: func(t *testing.T, _ openai.ChatCompletionResponse, err error) {
				e := apiError(t, err)
				if e.HTTPStatusCode != 500 || e.Type != "server_error" {
					t.Errorf("error = %+v", e)
				}
			},
		},
		{
			name: "quota error type",
			out:  fakeai.Fail(429, "You exceeded your current quota.").WithError("insufficient_quota", "insufficient_quota"),
			check: func(t *testing.T, _ openai.ChatCompletionResponse, err error) {
				e := apiError(t, err)
				if e.HTTPStatusCode != 429 || e.Code != "insufficient_quota" || e.Type != "insufficient_quota" {
					t.Errorf("error = %+v", e)
				}
			},
		},
		{
			name: "delay then echo",
			out:  fakeai.Delay(30 * time.Millisecond),
			check: func(t *testing.T, resp openai.ChatCompletionResponse, err error) {
				if err != nil || resp.Choices[0].Message.Content != "echo: hi" {
					t.Fatalf("got %+v, %v", resp, err)
				}
			},
		},
		{
			name: "disconnect",
			out:  fakeai.Disconnect(),
			check: func(t *testing.T, _ openai.ChatCompletionResponse, err error) {
				var apiErr *openai.APIError
				if err == nil || errors.As(err, &apiErr) {
					t.Fatalf("want a transport error, got %v", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s.Enqueue(tt.out)
			resp, err := c.CreateChatCompletion(t.Context(), req)
			tt.check(t, resp, err)
			if s.Pending() != 0 {
				t.Errorf("outcome not consumed")
			}
		})
	}

	// The queue is consumed in order, then the default echo applies.
	s.Enqueue(fakeai.Reply("one"), fakeai.Reply("two"))
	for _, want := range []string{"one", "two", "echo: hi"} {
		resp, err := c.CreateChatCompletion(t.Context(), req)
		if err != nil || resp.Choices[0].Message.Content != want {
			t.Fatalf("got %+v, %v; want %q", resp, err, want)
		}
	}

	// Statuses land in the record, disconnects included.
	var statuses []int
	for _, r := range s.RequestsTo(fakeai.EndpointChat) {
		statuses = append(statuses, r.Status)
	}
	want := []int{200, 200, 429, 500, 429, 200, fakeai.StatusDisconnected, 200, 200, 200}
	if !slices.Equal(statuses, want) {
		t.Errorf("statuses = %v, want %v", statuses, want)
	}
}

func TestRetryAfterHeader(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	s.Enqueue(fakeai.RateLimited(1500 * time.Millisecond))
	resp, body := raw(t, s, "POST", "/v1/chat/completions", testKey,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "2" || resp.Header.Get("Retry-After-Ms") != "1500" {
		t.Fatalf("status %d headers %v", resp.StatusCode, resp.Header)
	}
	var shape map[string]map[string]any
	if err := json.Unmarshal(body, &shape); err != nil {
		t.Fatal(err)
	}
	if e := shape["error"]; e["code"] != "rate_limit_exceeded" || e["message"] == "" {
		t.Errorf("body %s", body)
	}
}

func TestRateLimitHeaders(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	s.Enqueue(fakeai.Reply("ok").WithRateLimit(3, 1200, 20*time.Millisecond, 6*time.Minute))
	resp, _ := raw(t, s, "POST", "/v1/chat/completions", testKey,
		`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`)
	want := map[string]string{
		"X-Ratelimit-Remaining-Requests": "3", "X-Ratelimit-Reset-Requests": "20ms",
		"X-Ratelimit-Remaining-Tokens": "1200", "X-Ratelimit-Reset-Tokens": "6m0s",
	}
	for k, v := range want {
		if got := resp.Header.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if resp.StatusCode != 200 {
		t.Errorf("status %d", resp.StatusCode)
	}
}

func TestRequestsPerMinute(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{RequestsPerMinute: 2})
	s.Enqueue(fakeai.Reply("a"), fakeai.Reply("b"), fakeai.Reply("c"))
	body := `{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`
	for i, want := range []struct {
		status    int
		remaining string
	}{{200, "1"}, {200, "0"}, {429, "0"}} {
		resp, _ := raw(t, s, "POST", "/v1/chat/completions", testKey, body)
		h := resp.Header
		if resp.StatusCode != want.status || h.Get("X-Ratelimit-Remaining-Requests") != want.remaining ||
			h.Get("X-Ratelimit-Limit-Requests") != "2" {
			t.Fatalf("call %d: status %d, headers %v", i+1, resp.StatusCode, h)
		}
		if d, err := time.ParseDuration(h.Get("X-Ratelimit-Reset-Requests")); err != nil || d <= 0 || d > time.Minute {
			t.Errorf("call %d: reset %q", i+1, h.Get("X-Ratelimit-Reset-Requests"))
		}
		if want.status == 429 && (h.Get("Retry-After") == "" || h.Get("Retry-After-Ms") == "") {
			t.Errorf("429 without Retry-After: %v", h)
		}
	}
	// The refused call did not use the scripted outcome; another key has a
	// budget of its own.
	if s.Pending() != 1 {
		t.Errorf("%d scripted outcomes left, want the one the refused call did not take", s.Pending())
	}
	if resp, _ := raw(t, s, "POST", "/v1/chat/completions", "sk-other-key-0123456789", body); resp.StatusCode != 200 {
		t.Errorf("another key: status %d", resp.StatusCode)
	}
}

func TestUntilHoldsTheAnswer(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	release := make(chan struct{})
	s.Enqueue(fakeai.Reply("late").Until(release))
	got := make(chan string, 1)
	go func() {
		resp, err := client(s, testKey).CreateChatCompletion(t.Context(), openai.ChatCompletionRequest{
			Model: openai.GPT4o, Messages: []openai.ChatCompletionMessage{userMsg("hi")}})
		if err != nil {
			got <- err.Error()
			return
		}
		got <- resp.Choices[0].Message.Content
	}()
	held, err := s.AwaitReceived(t.Context(), fakeai.EndpointChat, 1)
	if err != nil {
		t.Fatal(err)
	}
	if held[0].Status != 0 {
		t.Fatalf("held call answered with %d", held[0].Status)
	}
	select {
	case r := <-got:
		t.Fatalf("answered %q while held", r)
	default:
	}
	close(release)
	if r := <-got; r != "late" {
		t.Fatalf("answer %q", r)
	}
}

func TestAuth(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{RejectKeys: []string{"sk-revoked-1234567890"}})
	chat := openai.ChatCompletionRequest{Model: openai.GPT4o, Messages: []openai.ChatCompletionMessage{userMsg("hi")}}

	_, err := client(s, "sk-revoked-1234567890").CreateChatCompletion(t.Context(), chat)
	e := apiError(t, err)
	if e.HTTPStatusCode != 401 || e.Code != "invalid_api_key" || e.Type != "invalid_request_error" {
		t.Fatalf("rejected key: %+v", e)
	}
	if strings.Contains(e.Message, "sk-revoked-1234567890") {
		t.Errorf("error message leaks the key: %q", e.Message)
	}

	s.RejectKey(testKey)
	if _, err := client(s, testKey).ListModels(t.Context()); apiError(t, err).HTTPStatusCode != 401 {
		t.Fatalf("RejectKey had no effect: %v", err)
	}
	s.AcceptKey(testKey)
	if _, err := client(s, testKey).ListModels(t.Context()); err != nil {
		t.Fatalf("AcceptKey: %v", err)
	}

	for _, auth := range []string{"", "Basic abc", "Bearer "} {
		req, _ := http.NewRequestWithContext(t.Context(), "GET", s.BaseURL()+"/models", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct {
			Error struct {
				Message string  `json:"message"`
				Type    string  `json:"type"`
				Param   *string `json:"param"`
				Code    string  `json:"code"`
			} `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != 401 || body.Error.Code != "invalid_api_key" ||
			body.Error.Type != "invalid_request_error" || body.Error.Param != nil || body.Error.Message == "" {
			t.Errorf("auth %q: %d %+v", auth, resp.StatusCode, body)
		}
	}
}

func TestValidation(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{StrictModels: true})
	tests := []struct {
		name, method, path, body string
		status                   int
		code                     any // nil for JSON null
	}{
		{"missing model", "POST", "/v1/chat/completions", `{"messages":[{"role":"user","content":"hi"}]}`, 400, nil},
		{"missing messages", "POST", "/v1/chat/completions", `{"model":"gpt-4o"}`, 400, "missing_required_parameter"},
		{"empty messages", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[]}`, 400, "empty_array"},
		{"bad role", "POST", "/v1/chat/completions", `{"model":"gpt-4o","messages":[{"role":"robot","content":"hi"}]}`, 400, "invalid_value"},
		{"invalid json", "POST", "/v1/chat/completions", `{"model":`, 400, nil},
		{"unknown model", "POST", "/v1/chat/completions", `{"model":"gpt-0","messages":[{"role":"user","content":"hi"}]}`, 404, "model_not_found"},
		{"max_tokens on reasoning model", "POST", "/v1/chat/completions",
			`{"model":"o4-mini","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}`, 400, "unsupported_parameter"},
		{"orphan tool message", "POST", "/v1/chat/completions",
			`{"model":"gpt-4o","messages":[{"role":"tool","tool_call_id":"call_9","content":"42"},{"role":"user","content":"hi"}]}`, 400, nil},
		{"unanswered tool call", "POST", "/v1/chat/completions",
			`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"},{"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"user","content":"and?"}]}`, 400, nil},
		{"answered tool call", "POST", "/v1/chat/completions",
			`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},{"role":"tool","tool_call_id":"call_1","content":"42"}]}`, 200, nil},
		{"wrong method", "GET", "/v1/chat/completions", "", 405, nil},
		{"wrong method on models", "POST", "/v1/models", `{}`, 405, nil},
		{"unknown path", "POST", "/v1/images/generations", `{}`, 404, nil},
		{"responses without model or prompt", "POST", "/v1/responses", `{"input":"hi"}`, 400, "missing_required_parameter"},
		{"responses with bad input", "POST", "/v1/responses", `{"model":"gpt-4o","input":42}`, 400, "invalid_type"},
		{"transcription not multipart", "POST", "/v1/audio/transcriptions", `{"model":"whisper-1"}`, 400, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := raw(t, s, tt.method, tt.path, testKey, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.status, body)
			}
			if tt.status == 200 {
				return
			}
			var shape struct {
				Error map[string]any `json:"error"`
			}
			if err := json.Unmarshal(body, &shape); err != nil {
				t.Fatalf("not OpenAI's error shape: %s", body)
			}
			for _, k := range []string{"message", "type", "param", "code"} {
				if _, ok := shape.Error[k]; !ok {
					t.Errorf("error lacks %q: %s", k, body)
				}
			}
			if shape.Error["code"] != tt.code {
				t.Errorf("code = %v, want %v: %s", shape.Error["code"], tt.code, body)
			}
			if tt.status == 405 && resp.Header.Get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
		})
	}
	if s.Pending() != 0 {
		t.Fatal("unexpected script")
	}
}

func TestTranscription(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	c := client(s, testKey)
	audio := []byte("OggS fake opus payload")

	resp, err := c.CreateTranscription(t.Context(), openai.AudioRequest{
		Model: openai.GPT4oMiniTranscribe, FilePath: "voice.ogg", Reader: bytes.NewReader(audio),
	})
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("transcript of %d bytes", len(audio)); resp.Text != want {
		t.Errorf("json transcript = %q, want %q", resp.Text, want)
	}
	rec, ok := s.LastTranscription()
	if !ok || rec.FileName != "voice.ogg" || rec.FileSize != len(audio) || !bytes.Equal(rec.File, audio) ||
		rec.Model != openai.GPT4oMiniTranscribe || rec.Form.Get("model") != openai.GPT4oMiniTranscribe || rec.APIKey != testKey {
		t.Errorf("record = %+v", rec)
	}

	s.EnqueueTranscription(fakeai.Reply("quero falar com um atendente"))
	resp, err = c.CreateTranscription(t.Context(), openai.AudioRequest{
		Model: openai.Whisper1, FilePath: "a.mp3", Reader: bytes.NewReader(audio), Format: openai.AudioResponseFormatText,
		Language: "pt",
	})
	if err != nil || resp.Text != "quero falar com um atendente" {
		t.Fatalf("text transcript = %q, %v", resp.Text, err)
	}
	if rec, _ := s.LastTranscription(); rec.Form.Get("response_format") != "text" || rec.Form.Get("language") != "pt" {
		t.Errorf("form = %v", rec.Form)
	}

	// Transcription scripts are separate from chat scripts.
	s.Enqueue(fakeai.Reply("chat only"))
	s.EnqueueTranscription(fakeai.Fail(500, "boom"))
	_, err = c.CreateTranscription(t.Context(), openai.AudioRequest{Model: openai.Whisper1, FilePath: "a.mp3", Reader: bytes.NewReader(audio)})
	if apiError(t, err).HTTPStatusCode != 500 || s.Pending() != 1 {
		t.Fatalf("scripted failure: %v, pending %d", err, s.Pending())
	}
	s.Reset()

	t.Run("validation", func(t *testing.T) {
		tests := []struct {
			name string
			req  openai.AudioRequest
			code any
		}{
			{"missing model", openai.AudioRequest{FilePath: "a.ogg", Reader: bytes.NewReader(audio)}, "missing_required_parameter"},
			{"empty file", openai.AudioRequest{Model: openai.Whisper1, FilePath: "a.ogg", Reader: bytes.NewReader(nil)}, "audio_too_short"},
			{"srt on gpt-4o model", openai.AudioRequest{Model: openai.GPT4oMiniTranscribe, FilePath: "a.ogg",
				Reader: bytes.NewReader(audio), Format: openai.AudioResponseFormatSRT}, "unsupported_value"},
		}
		for _, tt := range tests {
			_, err := c.CreateTranscription(t.Context(), tt.req)
			if e := apiError(t, err); e.HTTPStatusCode != 400 || e.Code != tt.code {
				t.Errorf("%s: %+v", tt.name, e)
			}
		}
	})
}

func TestResponses(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	c := client(s, testKey)
	prompt := &openai.ResponsePrompt{ID: "pmpt_abc123", Version: "2"}

	first, err := c.CreateResponse(t.Context(), openai.CreateResponseRequest{Prompt: prompt, Input: "oi"})
	if err != nil {
		t.Fatal(err)
	}
	if first.GetOutputText() != "echo: oi" || first.Object != "response" || first.Status != openai.ResponseStatusCompleted ||
		!strings.HasPrefix(first.ID, "resp_") || first.Usage == nil || first.Usage.TotalTokens != first.Usage.InputTokens+first.Usage.OutputTokens {
		t.Fatalf("first = %+v", first)
	}

	// A function call, answered in the next turn through previous_response_id.
	s.Enqueue(fakeai.CallTool("order_status", `{"order":"42"}`))
	second, err := c.CreateResponse(t.Context(), openai.CreateResponseRequest{
		Prompt: prompt, PreviousResponseID: first.ID,
		Input: []any{openai.ResponseInputMessage{Role: "user", Content: []any{
			openai.ResponseInputText{Type: "input_text", Text: "where is"},
			openai.ResponseInputText{Type: "input_text", Text: "my order?"},
		}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	item := second.Output[0].(map[string]any)
	callID, _ := item["call_id"].(string)
	if item["type"] != "function_call" || item["name"] != "order_status" || item["arguments"] != `{"order":"42"}` ||
		!strings.HasPrefix(callID, "call_") || item["status"] != "completed" {
		t.Fatalf("function call item = %v", item)
	}
	if rec, _ := s.LastResponses(); rec.UserText != "where is\nmy order?" || rec.Responses.PreviousResponseID != first.ID ||
		rec.Responses.Prompt.ID != "pmpt_abc123" || rec.ReplyID != second.ID {
		t.Errorf("record = %+v", rec)
	}

	// Forgetting the function output is an error, as at OpenAI.
	_, err = c.CreateResponse(t.Context(), openai.CreateResponseRequest{Prompt: prompt, PreviousResponseID: second.ID, Input: "hm"})
	if e := apiError(t, err); e.HTTPStatusCode != 400 || !strings.Contains(e.Message, callID) {
		t.Fatalf("missing tool output: %+v", e)
	}

	third, err := c.CreateResponse(t.Context(), openai.CreateResponseRequest{
		Prompt: prompt, PreviousResponseID: second.ID,
		Input: []any{openai.ResponseFunctionCallOutput{Type: "function_call_output", CallID: callID, Output: `{"status":"shipped"}`}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := third.GetOutputText(); got != `echo: {"status":"shipped"}` {
		t.Errorf("after function output: %q", got)
	}
	rec, _ := s.LastResponses()
	if rec.Body["previous_response_id"] != second.ID {
		t.Errorf("recorded body %v", rec.Body)
	}

	tests := []struct {
		name  string
		req   openai.CreateResponseRequest
		param string
	}{
		{"unknown previous response", openai.CreateResponseRequest{Model: "gpt-4o", Input: "x", PreviousResponseID: "resp_nope"}, "previous_response_id"},
		{"output for unknown call", openai.CreateResponseRequest{Model: "gpt-4o", Input: []any{
			openai.ResponseFunctionCallOutput{Type: "function_call_output", CallID: "call_nope", Output: "x"}}}, "input"},
	}
	for _, tt := range tests {
		_, err := c.CreateResponse(t.Context(), tt.req)
		if e := apiError(t, err); e.HTTPStatusCode != 400 || e.Param == nil || *e.Param != tt.param {
			t.Errorf("%s: %+v", tt.name, e)
		}
	}

	// A response stored with store:false cannot be continued.
	noStore := false
	r, err := c.CreateResponse(t.Context(), openai.CreateResponseRequest{Model: "gpt-4o", Input: "x", Store: &noStore})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateResponse(t.Context(), openai.CreateResponseRequest{Model: "gpt-4o", Input: "y", PreviousResponseID: r.ID}); err == nil {
		t.Error("continued an unstored response")
	}
}

func TestResponsesStream(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	c := client(s, testKey)
	for _, tc := range []struct {
		name   string
		script []fakeai.Outcome
		want   string
		final  string
	}{
		{name: "text", want: "echo: stream me please", final: "message"},
		{name: "function call", script: []fakeai.Outcome{fakeai.CallTool("f", `{"a":1}`)}, want: `{"a":1}`, final: "function_call"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.Enqueue(tc.script...)
			stream, err := c.CreateResponseStream(t.Context(), openai.CreateResponseRequest{Model: "gpt-4o", Input: "stream me please"})
			if err != nil {
				t.Fatal(err)
			}
			defer stream.Close()
			var deltas strings.Builder
			var completed *openai.CreateResponseResponse
			for {
				ev, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				switch ev.Type {
				case openai.ResponseStreamEventOutputTextDelta, openai.ResponseStreamEventFunctionArgumentsDelta:
					deltas.WriteString(ev.Delta)
				case openai.ResponseStreamEventCompleted:
					completed = ev.Response
				}
			}
			if deltas.String() != tc.want || completed == nil || completed.Status != openai.ResponseStatusCompleted {
				t.Fatalf("deltas %q completed %+v", deltas.String(), completed)
			}
			if typ := completed.Output[0].(map[string]any)["type"]; typ != tc.final {
				t.Errorf("output type %v", typ)
			}
		})
	}
}

// TestRecording checks that a test can assert exactly what was sent.
func TestRecording(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	msgs := []openai.ChatCompletionMessage{
		{Role: openai.ChatMessageRoleSystem, Content: "You are a helpful assistant."},
		userMsg("Hello!"),
		{Role: openai.ChatMessageRoleAssistant, Content: "Hello, how can I help you?"},
		{Role: openai.ChatMessageRoleUser, MultiContent: []openai.ChatMessagePart{
			{Type: openai.ChatMessagePartTypeText, Text: "msg one"},
			{Type: openai.ChatMessagePartTypeText, Text: "msg two"},
		}},
	}
	tools := []openai.Tool{{Type: openai.ToolTypeFunction, Function: &openai.FunctionDefinition{
		Name: "lookup", Parameters: json.RawMessage(`{"type":"object","properties":{}}`),
	}}}
	_, err := client(s, "sk-bot-key-abcdefgh").CreateChatCompletion(t.Context(), openai.ChatCompletionRequest{
		Model: openai.GPT4o, Messages: msgs, MaxCompletionTokens: 300, Tools: tools,
	})
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := s.LastChat()
	if !ok {
		t.Fatal("no chat recorded")
	}
	if !reflect.DeepEqual(rec.Messages, msgs) {
		t.Errorf("messages\n got %+v\nwant %+v", rec.Messages, msgs)
	}
	if rec.Chat.MaxCompletionTokens != 300 || rec.Body["max_completion_tokens"] != 300.0 {
		t.Errorf("max_completion_tokens: typed %d, body %v", rec.Chat.MaxCompletionTokens, rec.Body["max_completion_tokens"])
	}
	if _, sent := rec.Body["max_tokens"]; sent {
		t.Error("max_tokens sent")
	}
	if len(rec.Chat.Tools) != 1 || rec.Chat.Tools[0].Function.Name != "lookup" {
		t.Errorf("tools = %+v", rec.Chat.Tools)
	}
	if rec.APIKey != "sk-bot-key-abcdefgh" || rec.Method != "POST" || rec.Path != "/v1/chat/completions" ||
		rec.Endpoint != fakeai.EndpointChat || rec.Status != 200 || rec.Model != "gpt-4o" ||
		rec.UserText != "msg one\nmsg two" || rec.Reply != "echo: msg one\nmsg two" || !json.Valid(rec.Raw) {
		t.Errorf("record = %+v", rec)
	}

	// A client that gives up is recorded as such, and its outcome is spent.
	s.Enqueue(fakeai.Reply("too late").After(time.Minute))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := client(s, testKey).CreateChatCompletion(ctx, openai.ChatCompletionRequest{
		Model: openai.GPT4o, Messages: []openai.ChatCompletionMessage{userMsg("hi")},
	}); err == nil {
		t.Fatal("no timeout")
	}
	done, err := s.Await(t.Context(), fakeai.EndpointChat, 2)
	if err != nil {
		t.Fatal(err)
	}
	if got := done[1].Status; got != fakeai.StatusClientClosed || s.Pending() != 0 {
		t.Errorf("cancelled call status %d, pending %d", got, s.Pending())
	}

	s.Reset()
	if len(s.Requests()) != 0 {
		t.Error("Reset kept records")
	}
	if _, ok := s.LastChat(); ok {
		t.Error("LastChat after Reset")
	}
}

func TestLatency(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{Latency: 40 * time.Millisecond})
	start := time.Now()
	if _, err := client(s, testKey).CreateChatCompletion(t.Context(), openai.ChatCompletionRequest{
		Model: openai.GPT4o, Messages: []openai.ChatCompletionMessage{userMsg("hi")},
	}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 40*time.Millisecond {
		t.Errorf("answered after %v, before the latency", d)
	}
	// Listing models is not a model call: no latency even if set.
	s.SetLatency(time.Hour)
	if _, err := client(s, testKey).ListModels(t.Context()); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrent runs many conversations at once, each scripted by its own
// key, as the engine tests will; run with -race.
func TestConcurrent(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	const n = 40
	for i := range n {
		key := fmt.Sprintf("sk-tenant-%03d-xxxxxxxx", i)
		if i%2 == 0 {
			s.Enqueue(fakeai.Reply("scripted " + key).When(fakeai.MatchKey(key)).After(time.Millisecond))
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			key := fmt.Sprintf("sk-tenant-%03d-xxxxxxxx", i)
			text := fmt.Sprintf("message %d", i)
			resp, err := client(s, key).CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
				Model: openai.GPT4oMini, Messages: []openai.ChatCompletionMessage{userMsg(text)},
			})
			if err != nil {
				errs <- err
				return
			}
			want := "echo: " + text
			if i%2 == 0 {
				want = "scripted " + key
			}
			if got := resp.Choices[0].Message.Content; got != want {
				errs <- fmt.Errorf("tenant %d got %q, want %q", i, got, want)
			}
			_ = s.Requests() // readers race with writers
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	done, err := s.Await(t.Context(), fakeai.EndpointChat, n)
	if err != nil || len(done) != n || s.Pending() != 0 {
		t.Fatalf("await: %d done, pending %d, %v", len(done), s.Pending(), err)
	}
	seqs := map[int]bool{}
	for _, r := range done {
		seqs[r.Seq] = true
	}
	if len(seqs) != n {
		t.Errorf("sequence numbers not unique: %v", seqs)
	}
}

func TestMaxRecorded(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{MaxRecorded: 2})
	c := client(s, testKey)
	for range 3 {
		if _, err := c.ListModels(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	reqs := s.Requests()
	if len(reqs) != 2 || reqs[0].Seq != 2 || reqs[1].Seq != 3 {
		t.Errorf("kept %+v", reqs)
	}
}

func TestAwaitTimeout(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if _, err := s.Await(ctx, fakeai.EndpointChat, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
}

// TestEmbeddings: the real client gets one unit vector per input, in the
// dimensions asked, and texts that share words are nearer than texts that
// share none.
func TestEmbeddings(t *testing.T) {
	s := fakeai.NewTestServer(t, fakeai.Options{})
	cfg := openai.DefaultConfig("sk-test")
	cfg.BaseURL = s.BaseURL()
	resp, err := openai.NewClientWithConfig(cfg).CreateEmbeddings(context.Background(), openai.EmbeddingRequest{
		Input: []string{"kettle warranty three years", "the warranty of the kettle", "opening hours on saturday"},
		Model: openai.SmallEmbedding3, Dimensions: 256,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Data) != 3 || len(resp.Data[0].Embedding) != 256 {
		t.Fatalf("got %d embeddings of %d dimensions", len(resp.Data), len(resp.Data[0].Embedding))
	}
	cos := func(a, b []float32) (s float32) {
		for i := range a {
			s += a[i] * b[i]
		}
		return s
	}
	near, far := cos(resp.Data[0].Embedding, resp.Data[1].Embedding), cos(resp.Data[0].Embedding, resp.Data[2].Embedding)
	if self := cos(resp.Data[0].Embedding, resp.Data[0].Embedding); self < 0.999 || self > 1.001 {
		t.Errorf("not a unit vector: %v", self)
	}
	if near <= far || near < 0.5 {
		t.Errorf("similar texts %.3f, unrelated %.3f", near, far)
	}
	if got := s.RequestsTo(fakeai.EndpointEmbeddings); len(got) != 1 || got[0].Model != "text-embedding-3-small" {
		t.Errorf("recorded %+v", got)
	}
}
