package fakeai

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	openai "github.com/sashabaranov/go-openai"
)

func prepareChat(req *Request) {
	var cr openai.ChatCompletionRequest
	if err := json.Unmarshal(req.Raw, &cr); err != nil {
		req.decodeErr = err
		return
	}
	req.Chat = &cr
	req.Model = cr.Model
	req.Messages = cr.Messages
	req.UserText = chatUserText(cr.Messages)
}

// messageText is the text of a message, its text parts joined by newlines.
func messageText(m openai.ChatCompletionMessage) string {
	if m.Content != "" || len(m.MultiContent) == 0 {
		return m.Content
	}
	var parts []string
	for _, p := range m.MultiContent {
		if p.Type == openai.ChatMessagePartTypeText {
			parts = append(parts, p.Text)
		}
	}
	return strings.Join(parts, "\n")
}

// chatUserText is what the echo answers: tool results when the conversation
// ends with them (so a test can see the function output reach the model's
// final answer), else the last user message.
func chatUserText(msgs []openai.ChatCompletionMessage) string {
	i := len(msgs)
	for i > 0 && isToolRole(msgs[i-1].Role) {
		i--
	}
	if i < len(msgs) {
		var outs []string
		for _, m := range msgs[i:] {
			outs = append(outs, messageText(m))
		}
		return strings.Join(outs, "\n")
	}
	for j := len(msgs) - 1; j >= 0; j-- {
		if msgs[j].Role == openai.ChatMessageRoleUser {
			return messageText(msgs[j])
		}
	}
	return ""
}

func isToolRole(role string) bool {
	return role == openai.ChatMessageRoleTool || role == openai.ChatMessageRoleFunction
}

func chatPromptChars(msgs []openai.ChatCompletionMessage) int {
	n := 0
	for _, m := range msgs {
		n += utf8.RuneCountInString(messageText(m))
		for _, c := range m.ToolCalls {
			n += utf8.RuneCountInString(c.Function.Name) + utf8.RuneCountInString(c.Function.Arguments)
		}
	}
	return n
}

func replyChars(text string, calls []ToolCall) int {
	n := utf8.RuneCountInString(text)
	for _, c := range calls {
		n += utf8.RuneCountInString(c.Name) + utf8.RuneCountInString(c.Arguments)
	}
	return n
}

func badJSON(err error) apiError {
	return apiError{Status: http.StatusBadRequest, Message: fmt.Sprintf(
		"We could not parse the JSON body of your request. (HINT: The OpenAI API expects "+
			"a JSON payload matching the endpoint's schema.) Details: %v", err)}
}

func missingParam(name string) apiError {
	return apiError{Status: http.StatusBadRequest, Param: name, Code: "missing_required_parameter",
		Message: fmt.Sprintf("Missing required parameter: '%s'.", name)}
}

var chatRoles = map[string]bool{
	"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true,
}

// isReasoningModel covers the families that reject max_tokens, the mistake
// the engine must not make (issue 4, rule 7).
func isReasoningModel(model string) bool {
	for _, p := range []string{"o1", "o3", "o4", "gpt-5"} {
		if strings.HasPrefix(model, p) {
			return true
		}
	}
	return false
}

// validateChat rejects what OpenAI rejects and a gateway could plausibly
// send: especially tool messages orphaned by history trimming.
func (s *Server) validateChat(req *Request) (apiError, bool) {
	cr := req.Chat
	if cr.Model == "" {
		return apiError{Status: http.StatusBadRequest, Message: "you must provide a model parameter"}, false
	}
	if _, ok := req.Body["messages"]; !ok {
		return missingParam("messages"), false
	}
	if len(cr.Messages) == 0 {
		return apiError{Status: http.StatusBadRequest, Param: "messages", Code: "empty_array",
			Message: "Invalid 'messages': empty array. Expected an array with minimum length 1, " +
				"but got an empty array instead."}, false
	}
	var pending []string // tool_call ids of the last assistant message still unanswered
	var pendingAt int
	for i, m := range cr.Messages {
		param := fmt.Sprintf("messages.[%d].role", i)
		if !chatRoles[m.Role] {
			return apiError{Status: http.StatusBadRequest, Param: param, Code: "invalid_value",
				Message: fmt.Sprintf("Invalid value: '%s'. Supported values are: 'system', 'assistant', "+
					"'user', 'function', 'tool', and 'developer'.", m.Role)}, false
		}
		if m.Role == openai.ChatMessageRoleTool {
			at := indexOf(pending, m.ToolCallID)
			if at < 0 {
				return apiError{Status: http.StatusBadRequest, Param: param,
					Message: "Invalid parameter: messages with role 'tool' must be a response to a " +
						"preceeding message with 'tool_calls'."}, false
			}
			pending = append(pending[:at], pending[at+1:]...)
			continue
		}
		if len(pending) > 0 {
			return unansweredCalls(pendingAt, pending), false
		}
		if m.Role == openai.ChatMessageRoleAssistant {
			for _, c := range m.ToolCalls {
				pending = append(pending, c.ID)
			}
			pendingAt = i
		}
	}
	if len(pending) > 0 {
		return unansweredCalls(pendingAt, pending), false
	}
	if cr.MaxTokens > 0 && isReasoningModel(cr.Model) {
		return apiError{Status: http.StatusBadRequest, Param: "max_tokens", Code: "unsupported_parameter",
			Message: "Unsupported parameter: 'max_tokens' is not supported with this model. " +
				"Use 'max_completion_tokens' instead."}, false
	}
	return s.checkModel(cr.Model)
}

func indexOf(ids []string, id string) int {
	for i, v := range ids {
		if v == id {
			return i
		}
	}
	return -1
}

func unansweredCalls(at int, ids []string) apiError {
	return apiError{Status: http.StatusBadRequest, Param: fmt.Sprintf("messages.[%d].role", at),
		Message: "An assistant message with 'tool_calls' must be followed by tool messages responding " +
			"to each 'tool_call_id'. The following tool_call_ids did not have response messages: " +
			strings.Join(ids, ", ")}
}

// Wire types, written out instead of reusing go-openai's so that nulls and
// empty fields look like OpenAI's and not like go-openai's omitempty choices.
type (
	chatCompletion struct {
		ID                string       `json:"id"`
		Object            string       `json:"object"`
		Created           int64        `json:"created"`
		Model             string       `json:"model"`
		Choices           []chatChoice `json:"choices"`
		Usage             chatUsage    `json:"usage"`
		ServiceTier       string       `json:"service_tier"`
		SystemFingerprint string       `json:"system_fingerprint"`
	}
	chatChoice struct {
		Index        int         `json:"index"`
		Message      chatMessage `json:"message"`
		Logprobs     any         `json:"logprobs"`
		FinishReason string      `json:"finish_reason"`
	}
	chatMessage struct {
		Role        string         `json:"role"`
		Content     *string        `json:"content"`
		Refusal     *string        `json:"refusal"`
		ToolCalls   []chatToolCall `json:"tool_calls,omitempty"`
		Annotations []any          `json:"annotations"`
	}
	chatToolCall struct {
		Index    *int         `json:"index,omitempty"`
		ID       string       `json:"id,omitempty"`
		Type     string       `json:"type,omitempty"`
		Function chatFunction `json:"function"`
	}
	chatFunction struct {
		Name      string `json:"name,omitempty"`
		Arguments string `json:"arguments"`
	}
	chatUsage struct {
		PromptTokens            int            `json:"prompt_tokens"`
		CompletionTokens        int            `json:"completion_tokens"`
		TotalTokens             int            `json:"total_tokens"`
		PromptTokensDetails     map[string]int `json:"prompt_tokens_details"`
		CompletionTokensDetails map[string]int `json:"completion_tokens_details"`
	}
	chatChunk struct {
		ID                string        `json:"id"`
		Object            string        `json:"object"`
		Created           int64         `json:"created"`
		Model             string        `json:"model"`
		ServiceTier       string        `json:"service_tier"`
		SystemFingerprint string        `json:"system_fingerprint"`
		Choices           []chunkChoice `json:"choices"`
		Usage             any           `json:"usage,omitempty"` // null on every chunk but the last when usage is asked for
	}
	chunkChoice struct {
		Index        int        `json:"index"`
		Delta        chunkDelta `json:"delta"`
		Logprobs     any        `json:"logprobs"`
		FinishReason *string    `json:"finish_reason"`
	}
	chunkDelta struct {
		Role      string         `json:"role,omitempty"`
		Content   *string        `json:"content,omitempty"`
		ToolCalls []chatToolCall `json:"tool_calls,omitempty"`
	}
)

const fingerprint = "fp_fakeai"

func newChatUsage(prompt, completion int) chatUsage {
	return chatUsage{
		PromptTokens: prompt, CompletionTokens: completion, TotalTokens: prompt + completion,
		PromptTokensDetails: map[string]int{"cached_tokens": 0, "audio_tokens": 0},
		CompletionTokensDetails: map[string]int{
			"reasoning_tokens": 0, "audio_tokens": 0,
			"accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
		},
	}
}

func (s *Server) serveChat(w http.ResponseWriter, r *http.Request, req *Request) {
	if req.decodeErr != nil {
		writeError(w, badJSON(req.decodeErr))
		return
	}
	if e, ok := s.validateChat(req); !ok {
		writeError(w, e)
		return
	}
	out, ok := s.answer(w, r, &s.script, req)
	if !ok {
		return
	}
	text, calls := out.text, []ToolCall(nil)
	switch out.kind {
	case kindEcho:
		text = s.prefix + req.UserText
	case kindToolCalls:
		text, calls = "", s.toolCalls(out)
	}
	id := s.nextID("chatcmpl-")
	usage := newChatUsage(tokens(chatPromptChars(req.Messages)), tokens(replyChars(text, calls)))
	s.update(req, func(q *Request) { q.ReplyID, q.Reply, q.ToolCalls = id, text, calls })

	if req.Chat.Stream {
		includeUsage := req.Chat.StreamOptions != nil && req.Chat.StreamOptions.IncludeUsage
		streamChat(w, r, req.Chat.Model, id, text, calls, usage, includeUsage, out.pace)
		return
	}
	msg := chatMessage{Role: openai.ChatMessageRoleAssistant, Annotations: []any{}}
	finish := "stop"
	if len(calls) > 0 {
		finish = "tool_calls"
		msg.ToolCalls = wireToolCalls(calls, false)
	} else {
		msg.Content = &text
	}
	writeJSON(w, http.StatusOK, chatCompletion{
		ID: id, Object: "chat.completion", Created: time.Now().Unix(), Model: req.Chat.Model,
		Choices:     []chatChoice{{Index: 0, Message: msg, FinishReason: finish}},
		Usage:       usage,
		ServiceTier: "default", SystemFingerprint: fingerprint,
	})
}

// wireToolCalls converts scripted calls; stream chunks carry an index and the
// arguments separately, like OpenAI's.
func wireToolCalls(calls []ToolCall, stream bool) []chatToolCall {
	out := make([]chatToolCall, len(calls))
	for i, c := range calls {
		out[i] = chatToolCall{ID: c.ID, Type: "function", Function: chatFunction{Name: c.Name, Arguments: c.Arguments}}
		if stream {
			out[i].Index = &i
			out[i].Function.Arguments = ""
		}
	}
	return out
}

// streamChat writes the answer as OpenAI's server-sent events: a role chunk,
// content (or tool call) chunks, a finish chunk, the optional usage chunk and
// [DONE].
func streamChat(w http.ResponseWriter, r *http.Request, model, id, text string,
	calls []ToolCall, usage chatUsage, includeUsage bool, pace time.Duration,
) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	created := time.Now().Unix()
	chunk := func(delta chunkDelta, finish *string) chatChunk {
		c := chatChunk{
			ID: id, Object: "chat.completion.chunk", Created: created, Model: model,
			ServiceTier: "default", SystemFingerprint: fingerprint,
			Choices: []chunkChoice{{Index: 0, Delta: delta, FinishReason: finish}},
		}
		if includeUsage {
			c.Usage = json.RawMessage("null")
		}
		return c
	}
	send := func(v any) bool {
		if r.Context().Err() != nil {
			return false
		}
		b, err := json.Marshal(v)
		if err != nil {
			panic(fmt.Errorf("fakeai: encoding chunk: %w", err))
		}
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		_ = rc.Flush()
		return true
	}

	empty := ""
	var chunks []chatChunk
	if len(calls) > 0 {
		chunks = append(chunks, chunk(chunkDelta{Role: "assistant", ToolCalls: wireToolCalls(calls, true)}, nil))
		for i, c := range calls {
			chunks = append(chunks, chunk(chunkDelta{ToolCalls: []chatToolCall{
				{Index: &i, Function: chatFunction{Arguments: c.Arguments}},
			}}, nil))
		}
	} else {
		chunks = append(chunks, chunk(chunkDelta{Role: "assistant", Content: &empty}, nil))
		for _, piece := range strings.SplitAfter(text, " ") {
			if piece == "" {
				continue
			}
			chunks = append(chunks, chunk(chunkDelta{Content: &piece}, nil))
		}
	}
	finish := "stop"
	if len(calls) > 0 {
		finish = "tool_calls"
	}
	chunks = append(chunks, chunk(chunkDelta{}, &finish))
	for i, c := range chunks {
		if pace > 0 && i > 0 {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(pace):
			}
		}
		if !send(c) {
			return
		}
	}
	if includeUsage {
		final := chunk(chunkDelta{}, nil)
		final.Choices, final.Usage = []chunkChoice{}, usage
		if !send(final) {
			return
		}
	}
	if r.Context().Err() == nil {
		_, _ = fmt.Fprint(w, "data: [DONE]\n\n")
		_ = rc.Flush()
	}
}
