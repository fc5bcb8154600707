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

// maxStoredResponses bounds the memory of previous_response_id checks in long
// benchmark runs; the oldest responses are forgotten first, as OpenAI
// eventually forgets them too.
const maxStoredResponses = 100_000

// responseStore remembers issued response ids and the function calls each
// returned, so previous_response_id and function_call_output are checked the
// way OpenAI checks them. Guarded by Server.mu.
type responseStore struct {
	max   int
	order []string
	calls map[string][]string
}

func newResponseStore(limit int) *responseStore {
	return &responseStore{max: limit, calls: make(map[string][]string)}
}

func (st *responseStore) add(id string, callIDs []string) {
	st.calls[id] = callIDs
	st.order = append(st.order, id)
	if len(st.order) > st.max {
		delete(st.calls, st.order[0])
		st.order[0] = ""
		st.order = st.order[1:]
	}
}

func (st *responseStore) get(id string) ([]string, bool) {
	c, ok := st.calls[id]
	return c, ok
}

func prepareResponses(req *Request) {
	var cr openai.CreateResponseRequest
	if err := json.Unmarshal(req.Raw, &cr); err != nil {
		req.decodeErr = err
		return
	}
	req.Responses = &cr
	req.Model = cr.Model
	req.UserText = responsesUserText(req.Body["input"])
}

// inputItems returns the items of an array input; nil for a string input.
func inputItems(input any) []map[string]any {
	arr, _ := input.([]any)
	items := make([]map[string]any, 0, len(arr))
	for _, it := range arr {
		if m, ok := it.(map[string]any); ok {
			items = append(items, m)
		}
	}
	return items
}

func itemType(it map[string]any) string {
	t, _ := it["type"].(string)
	if t == "" && it["role"] != nil {
		return "message" // the type may be left out of message items
	}
	return t
}

// responsesUserText mirrors chatUserText: trailing function outputs, else the
// last user message.
func responsesUserText(input any) string {
	if s, ok := input.(string); ok {
		return s
	}
	items := inputItems(input)
	i := len(items)
	for i > 0 && itemType(items[i-1]) == "function_call_output" {
		i--
	}
	if i < len(items) {
		var outs []string
		for _, it := range items[i:] {
			outs = append(outs, anyText(it["output"]))
		}
		return strings.Join(outs, "\n")
	}
	for j := len(items) - 1; j >= 0; j-- {
		if itemType(items[j]) == "message" && items[j]["role"] == "user" {
			return contentText(items[j]["content"])
		}
	}
	return ""
}

// contentText joins the text parts of a message's content.
func contentText(c any) string {
	switch v := c.(type) {
	case string:
		return v
	case []any:
		var parts []string
		for _, p := range v {
			if m, ok := p.(map[string]any); ok {
				if t, ok := m["text"].(string); ok {
					parts = append(parts, t)
				}
			}
		}
		return strings.Join(parts, "\n")
	}
	return ""
}

// anyText renders a function output, which may be a string or structured.
func anyText(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	if v == nil {
		return ""
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func responsesInputChars(instructions string, input any) int {
	n := utf8.RuneCountInString(instructions)
	if s, ok := input.(string); ok {
		return n + utf8.RuneCountInString(s)
	}
	for _, it := range inputItems(input) {
		n += utf8.RuneCountInString(contentText(it["content"]))
		n += utf8.RuneCountInString(anyText(it["output"]))
		n += utf8.RuneCountInString(anyText(it["arguments"]))
	}
	return n
}

var inputRoles = map[string]bool{"user": true, "assistant": true, "system": true, "developer": true}

// validateResponses checks the request like OpenAI: a model or prompt, a
// known previous_response_id, and function outputs that answer exactly the
// calls awaiting them.
func (s *Server) validateResponses(req *Request) (apiError, bool) {
	cr := req.Responses
	if cr.Model == "" && cr.Prompt == nil {
		return missingParam("model"), false
	}
	if cr.Prompt != nil && cr.Prompt.ID == "" {
		return missingParam("prompt.id"), false
	}
	input, hasInput := req.Body["input"]
	if _, isStr := input.(string); hasInput && input != nil && !isStr {
		if _, isArr := input.([]any); !isArr {
			return apiError{Status: http.StatusBadRequest, Param: "input", Code: "invalid_type",
				Message: "Invalid type for 'input': expected one of a string or array of input items."}, false
		}
	}
	known := map[string]bool{}
	var awaiting []string
	if id := cr.PreviousResponseID; id != "" {
		s.mu.Lock()
		calls, ok := s.stored.get(id)
		s.mu.Unlock()
		if !ok {
			return apiError{Status: http.StatusBadRequest, Param: "previous_response_id",
				Code:    "previous_response_not_found",
				Message: fmt.Sprintf("Previous response with id '%s' not found.", id)}, false
		}
		awaiting = calls
		for _, c := range calls {
			known[c] = true
		}
	}
	items := inputItems(input)
	for _, it := range items {
		if itemType(it) == "function_call" {
			if c, ok := it["call_id"].(string); ok {
				known[c] = true
			}
		}
	}
	answered := map[string]bool{}
	for i, it := range items {
		switch itemType(it) {
		case "message":
			role, _ := it["role"].(string)
			if !inputRoles[role] {
				return apiError{Status: http.StatusBadRequest, Param: fmt.Sprintf("input[%d].role", i),
					Code: "invalid_value", Message: fmt.Sprintf("Invalid value: '%s'. Supported values are: "+
						"'assistant', 'system', 'developer', and 'user'.", role)}, false
			}
		case "function_call_output":
			c, _ := it["call_id"].(string)
			if c == "" {
				return missingParam(fmt.Sprintf("input[%d].call_id", i)), false
			}
			if !known[c] {
				return apiError{Status: http.StatusBadRequest, Param: "input", Message: fmt.Sprintf(
					"No tool call found for function call output with call_id %s.", c)}, false
			}
			answered[c] = true
		}
	}
	for _, c := range awaiting {
		if !answered[c] {
			return apiError{Status: http.StatusBadRequest, Param: "input",
				Message: fmt.Sprintf("No tool output found for function call %s.", c)}, false
		}
	}
	if cr.Model != "" {
		return s.checkModel(cr.Model)
	}
	return apiError{}, true
}

type responseUsage struct {
	InputTokens         int            `json:"input_tokens"`
	InputTokensDetails  map[string]int `json:"input_tokens_details"`
	OutputTokens        int            `json:"output_tokens"`
	OutputTokensDetails map[string]int `json:"output_tokens_details"`
	TotalTokens         int            `json:"total_tokens"`
}

// responseObject is the Responses API's response resource.
type responseObject struct {
	ID                 string         `json:"id"`
	Object             string         `json:"object"`
	CreatedAt          int64          `json:"created_at"`
	Status             string         `json:"status"`
	Error              any            `json:"error"`
	IncompleteDetails  any            `json:"incomplete_details"`
	Instructions       any            `json:"instructions"`
	MaxOutputTokens    any            `json:"max_output_tokens"`
	Model              string         `json:"model"`
	Output             []any          `json:"output"`
	ParallelToolCalls  bool           `json:"parallel_tool_calls"`
	PreviousResponseID any            `json:"previous_response_id"`
	Prompt             any            `json:"prompt"`
	Reasoning          map[string]any `json:"reasoning"`
	Store              bool           `json:"store"`
	Temperature        float64        `json:"temperature"`
	Text               any            `json:"text"`
	ToolChoice         any            `json:"tool_choice"`
	Tools              any            `json:"tools"`
	TopP               float64        `json:"top_p"`
	Truncation         string         `json:"truncation"`
	Usage              *responseUsage `json:"usage"`
	User               any            `json:"user"`
	Metadata           any            `json:"metadata"`
}

// orDefault echoes a request field into the response, as OpenAI does.
func orDefault(body map[string]any, key string, def any) any {
	if v, ok := body[key]; ok && v != nil {
		return v
	}
	return def
}

func (s *Server) serveResponses(w http.ResponseWriter, r *http.Request, req *Request) {
	if req.decodeErr != nil {
		writeError(w, badJSON(req.decodeErr))
		return
	}
	if e, ok := s.validateResponses(req); !ok {
		writeError(w, e)
		return
	}
	out, ok := s.answer(w, r, &s.script, req)
	if !ok {
		return
	}
	cr := req.Responses
	text, calls := out.text, []ToolCall(nil)
	switch out.kind {
	case kindEcho:
		text = s.prefix + req.UserText
	case kindToolCalls:
		text, calls = "", s.toolCalls(out)
	}

	var output []any
	var callIDs []string
	if len(calls) > 0 {
		for _, c := range calls {
			output = append(output, map[string]any{
				"type": "function_call", "id": s.nextID("fc_"), "call_id": c.ID,
				"name": c.Name, "arguments": c.Arguments, "status": "completed",
			})
			callIDs = append(callIDs, c.ID)
		}
	} else {
		output = append(output, map[string]any{
			"type": "message", "id": s.nextID("msg_"), "status": "completed", "role": "assistant",
			"content": []any{map[string]any{
				"type": "output_text", "text": text, "annotations": []any{}, "logprobs": []any{},
			}},
		})
	}
	id := s.nextID("resp_")
	store := cr.Store == nil || *cr.Store
	if store {
		s.mu.Lock()
		s.stored.add(id, callIDs)
		s.mu.Unlock()
	}
	s.update(req, func(q *Request) { q.ReplyID, q.Reply, q.ToolCalls = id, text, calls })

	in := tokens(responsesInputChars(cr.Instructions, req.Body["input"]))
	outTok := tokens(replyChars(text, calls))
	model := cr.Model
	if model == "" {
		model = "gpt-4o" // a stored prompt names its model; ours all use this one
	}
	resp := responseObject{
		ID: id, Object: "response", CreatedAt: time.Now().Unix(), Status: "completed",
		Instructions:       orDefault(req.Body, "instructions", nil),
		MaxOutputTokens:    orDefault(req.Body, "max_output_tokens", nil),
		Model:              model,
		Output:             output,
		ParallelToolCalls:  true,
		PreviousResponseID: orDefault(req.Body, "previous_response_id", nil),
		Prompt:             orDefault(req.Body, "prompt", nil),
		Reasoning:          map[string]any{"effort": nil, "summary": nil},
		Store:              store,
		Temperature:        1,
		Text:               orDefault(req.Body, "text", map[string]any{"format": map[string]any{"type": "text"}}),
		ToolChoice:         orDefault(req.Body, "tool_choice", "auto"),
		Tools:              orDefault(req.Body, "tools", []any{}),
		TopP:               1,
		Truncation:         "disabled",
		Usage: &responseUsage{
			InputTokens: in, OutputTokens: outTok, TotalTokens: in + outTok,
			InputTokensDetails:  map[string]int{"cached_tokens": 0},
			OutputTokensDetails: map[string]int{"reasoning_tokens": 0},
		},
		User:     orDefault(req.Body, "user", nil),
		Metadata: orDefault(req.Body, "metadata", map[string]any{}),
	}
	if cr.Stream {
		streamResponse(w, r, resp)
		return
	}
	writeJSON(w, http.StatusOK, resp)
}

// streamResponse replays a finished response as the Responses API's typed
// server-sent events, in the order OpenAI sends them.
func streamResponse(w http.ResponseWriter, r *http.Request, resp responseObject) {
	w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	seq := 0
	send := func(ev map[string]any) bool {
		if r.Context().Err() != nil {
			return false
		}
		ev["sequence_number"] = seq
		seq++
		b, err := json.Marshal(ev)
		if err != nil {
			panic(fmt.Errorf("fakeai: encoding event: %w", err))
		}
		if _, err := fmt.Fprintf(w, "event: %s\ndata: %s\n\n", ev["type"], b); err != nil {
			return false
		}
		_ = rc.Flush()
		return true
	}

	pending := resp
	pending.Status, pending.Output, pending.Usage = "in_progress", []any{}, nil
	events := []map[string]any{
		{"type": "response.created", "response": pending},
		{"type": "response.in_progress", "response": pending},
	}
	for i, raw := range resp.Output {
		item := raw.(map[string]any)
		itemID := item["id"]
		started := map[string]any{}
		for k, v := range item {
			started[k] = v
		}
		started["status"] = "in_progress"
		switch item["type"] {
		case "function_call":
			started["arguments"] = ""
			args := item["arguments"]
			events = append(events,
				map[string]any{"type": "response.output_item.added", "output_index": i, "item": started},
				map[string]any{"type": "response.function_call_arguments.delta", "item_id": itemID, "output_index": i, "delta": args},
				map[string]any{"type": "response.function_call_arguments.done", "item_id": itemID, "output_index": i, "arguments": args},
			)
		case "message":
			started["content"] = []any{}
			part := item["content"].([]any)[0].(map[string]any)
			text := part["text"].(string)
			emptyPart := map[string]any{"type": "output_text", "text": "", "annotations": []any{}, "logprobs": []any{}}
			events = append(events,
				map[string]any{"type": "response.output_item.added", "output_index": i, "item": started},
				map[string]any{"type": "response.content_part.added", "item_id": itemID, "output_index": i, "content_index": 0, "part": emptyPart},
			)
			for _, piece := range strings.SplitAfter(text, " ") {
				if piece != "" {
					events = append(events, map[string]any{"type": "response.output_text.delta", "item_id": itemID,
						"output_index": i, "content_index": 0, "delta": piece, "logprobs": []any{}})
				}
			}
			events = append(events,
				map[string]any{"type": "response.output_text.done", "item_id": itemID, "output_index": i, "content_index": 0, "text": text, "logprobs": []any{}},
				map[string]any{"type": "response.content_part.done", "item_id": itemID, "output_index": i, "content_index": 0, "part": part},
			)
		}
		events = append(events, map[string]any{"type": "response.output_item.done", "output_index": i, "item": item})
	}
	events = append(events, map[string]any{"type": "response.completed", "response": resp})
	for _, ev := range events {
		if !send(ev) {
			return
		}
	}
}
