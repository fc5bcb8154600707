package bots

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	openai "github.com/sashabaranov/go-openai"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/knowledge"
	"github.com/wagate/wagate/store"
)

const (
	maxToolRounds    = 5
	maxFunctionReply = 64 << 10
	modelAttempts    = 3
)

// answer asks the model for a reply to the turn and sends it.
func (c *chat) answer(ctx context.Context, b *bot, turn []*store.Message) error {
	start := time.Now()
	br, err := c.brainFor(ctx, b)
	var (
		reply string
		usage Usage
		turns []openai.ChatCompletionMessage
	)
	var g *grounding
	if err == nil {
		g, err = c.ground(ctx, br, turn)
	}
	if err == nil && g != nil && g.none {
		switch g.set.Fallback {
		case knowledge.FallbackHandoff:
			return c.handOff(ctx, b, turn)
		case knowledge.FallbackMessage:
			if msg := strings.TrimSpace(g.set.FallbackMessage); msg != "" {
				return c.reply(ctx, b, turn, msg, Usage{Latency: time.Since(start)}, nil, nil)
			}
		}
	}
	if err == nil && g != nil && g.system != "" {
		// The passages follow the chatbot's own prompt: its persona stays
		// in charge of tone, the passages of facts.
		br.system = append(append([]string{}, br.system...), g.system)
	}
	if err == nil {
		user := c.userMessage(ctx, turn)
		if b.BotType == Assistant {
			reply, usage, err = c.respond(ctx, b, br, user)
		} else {
			reply, usage, turns, err = c.complete(ctx, b, br, user)
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err() // shutting down: the turn stays pending
		}
		return c.fail(ctx, b, turn, err)
	}
	usage.Latency = time.Since(start)
	var sources json.RawMessage
	if g != nil {
		sources = g.sources
	}
	return c.reply(ctx, b, turn, reply, usage, turns, sources)
}

// reply stores the reply to turn with the history turns and the
// knowledge it used, then sends it.
func (c *chat) reply(ctx context.Context, b *bot, turn []*store.Message, reply string, usage Usage,
	turns []openai.ChatCompletionMessage, sources json.RawMessage) error {
	now := time.Now()
	parts := c.plan(b, SplitReply(c.format(reply), *b.eff.SplitMessages), turn, usage, now)
	calls, results := toolRecord(turns)
	for _, p := range parts {
		p.Sources, p.ToolCalls, p.ToolResults = sources, calls, results
	}
	// The whole reply is stored with the turn before its first part goes
	// out, even if the engine is stopping meanwhile: from here on the
	// answer is owed, and a restart sends what is left of it instead of
	// asking the model again.
	var k kept
	err := c.e.outbox.Tx(context.WithoutCancel(ctx), func(ctx context.Context) error {
		if err := c.fence(ctx); err != nil {
			return err
		}
		var err error
		if k, err = c.keep(ctx, parts); err != nil {
			return err
		}
		if len(turns) > 0 {
			hist := make([]*store.Turn, len(turns))
			for i, t := range turns {
				tokens := 0
				if i == len(turns)-1 {
					tokens = usage.CompletionTokens
				}
				hist[i] = turnOf(c.session.ID, t, tokens, now)
			}
			if err := c.e.store.AppendTurns(ctx, hist...); err != nil {
				return err
			}
		}
		// Only the session's activity changed since it was read: its
		// status is the API's and the operator's to change meanwhile.
		c.session.UpdatedAt = now
		if err := c.e.store.TouchSession(ctx, c.session); err != nil {
			return err
		}
		c.sessionDirty = false
		return c.mark(ctx, turn, store.MessageAnswered, "", b.ID)
	})
	if err != nil {
		return err
	}
	return c.sendKept(ctx, k)
}

// kept is what keep did with a reply's parts.
type kept struct {
	left      []*store.ReplyPart // stored, for deliver
	committed []func()           // to run once the recorded parts commit
}

// keep stores a reply's parts in the caller's transaction, which is
// fenced. When the channel sends a message by recording it (Recorder), the
// parts from the first on until one that waits for a typing delay are
// recorded as sent right there: they need no store of their own, and are
// out when the turn commits. The rest are stored for deliver.
func (c *chat) keep(ctx context.Context, parts []*store.ReplyPart) (kept, error) {
	var k kept
	// Parts still to deliver go out first.
	if r, ok := c.e.replier.(Recorder); ok && len(c.parts) == 0 {
		for len(parts) > 0 {
			committed, ok, err := r.Record(ctx, c.inst, c.outbound(parts[0]))
			if err != nil {
				return kept{}, err
			}
			if !ok {
				break
			}
			k.committed = append(k.committed, committed)
			parts = parts[1:]
		}
	}
	k.left = parts
	return k, c.e.store.InsertReplyParts(ctx, parts...)
}

// sendKept finishes what keep began once its transaction has committed.
func (c *chat) sendKept(ctx context.Context, k kept) error {
	for _, f := range k.committed {
		f()
	}
	c.parts = append(c.parts, k.left...)
	return c.deliver(ctx)
}

// toolRecord is what the tools did in a turn's history, kept with the
// reply: the calls the model made, and what each function answered. Both
// are nil when the turn called no tool.
func toolRecord(turns []openai.ChatCompletionMessage) (calls, results json.RawMessage) {
	type call struct {
		ID        string `json:"id"`
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	}
	type result struct {
		CallID string `json:"callId"`
		Name   string `json:"name"`
		Output string `json:"output"`
	}
	var cs []call
	var rs []result
	names := map[string]string{}
	for _, t := range turns {
		for _, tc := range t.ToolCalls {
			cs = append(cs, call{ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments})
			names[tc.ID] = tc.Function.Name
		}
		if t.Role == openai.ChatMessageRoleTool {
			rs = append(rs, result{CallID: t.ToolCallID, Name: names[t.ToolCallID], Output: t.Content})
		}
	}
	if len(cs) == 0 {
		return nil, nil
	}
	calls, _ = json.Marshal(cs)
	results, _ = json.Marshal(rs)
	return calls, results
}

// plan turns the texts of a reply to turn into the parts to send; the
// first carries the turn's usage.
func (c *chat) plan(b *bot, texts []string, turn []*store.Message, usage Usage, now time.Time) []*store.ReplyPart {
	parts := make([]*store.ReplyPart, len(texts))
	for i, text := range texts {
		p := &store.ReplyPart{
			InstanceID: c.inst.ID, ChatKey: c.jid, RemoteJID: c.replyTo, TurnSeq: turn[0].Seq, Text: text,
			Delay: TypingDelay(text, *b.eff.TimePerChar, *b.eff.DelayMessage), BotID: b.ID, SessionID: c.session.ID,
			CreatedAt: now,
		}
		if i == 0 {
			p.PromptTokens, p.CompletionTokens = usage.PromptTokens, usage.CompletionTokens
			p.LatencyMS = int(usage.Latency / time.Millisecond)
		}
		parts[i] = p
	}
	return parts
}

// deliver sends the chat's reply parts not sent yet, in order, each after
// its own typing delay and recorded as sent (which deletes it) before the
// next. Stopped midway, it leaves the rest stored for the next start.
func (c *chat) deliver(ctx context.Context) error {
	for len(c.parts) > 0 {
		p := c.parts[0]
		if p.Sending {
			// Left by a crash as it was leaving: it may have gone out, and
			// a part goes out at most once.
			c.log.Warn("bot reply part interrupted as it was sent; not sent again", "bot", p.BotID, "part", p.Seq)
			if err := c.e.store.DeleteReplyPart(ctx, c.inst.ID, p.Seq); err != nil {
				return err
			}
			c.parts = c.parts[1:]
			continue
		}
		out := c.outbound(p)
		out.BeforeSend = func(ctx context.Context) error { return c.e.store.SetReplyPartSending(ctx, c.inst.ID, p.Seq) }
		out.Recorded = func(ctx context.Context) error { return c.e.store.DeleteReplyPart(ctx, c.inst.ID, p.Seq) }
		if err := c.e.replier.Reply(ctx, c.inst, out); err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // shutting down: the rest goes out after the restart
			}
			if errors.Is(err, store.ErrNotOwner) {
				return err // the instance's new owner sends the rest
			}
			// Not retried: the channel refused it, and what was sent of
			// the reply stays sent.
			c.log.Warn("bot reply not delivered", "bot", p.BotID, "error", err)
			c.parts = nil
			return c.e.store.AbandonReply(ctx, c.inst.ID, c.jid, p.TurnSeq, "reply not delivered: "+wagate.ErrorMessages(err)[0])
		}
		c.parts = c.parts[1:]
	}
	return nil
}

// outbound is the message that sends p.
func (c *chat) outbound(p *store.ReplyPart) Outbound {
	return Outbound{
		ChatJID: p.RemoteJID, ChatKey: p.ChatKey, Text: p.Text, Delay: p.Delay, BotID: p.BotID, SessionID: p.SessionID,
		Usage: Usage{
			PromptTokens: p.PromptTokens, CompletionTokens: p.CompletionTokens,
			Latency: time.Duration(p.LatencyMS) * time.Millisecond,
		},
		Sources:   p.Sources,
		ToolCalls: p.ToolCalls, ToolResults: p.ToolResults,
	}
}

// fence returns store.ErrNotOwner when this process no longer owns the
// chat's instance (see Config.Fence).
func (c *chat) fence(ctx context.Context) error {
	if c.e.cfg.Fence == nil {
		return nil
	}
	return c.e.cfg.Fence(ctx, c.inst)
}

// fail tells the user the bot's unknownMessage (never the provider's
// error), reports openai.error and records the turn as failed.
func (c *chat) fail(ctx context.Context, b *bot, turn []*store.Message, cause error) error {
	status := providerStatus(cause)
	reason := wagate.ErrorMessages(cause)[0]
	c.log.Warn("bot could not answer", "bot", b.ID, "provider_status", status, "error", reason)
	c.visitorFailed(reason)
	var parts []*store.ReplyPart
	if msg := *b.eff.UnknownMessage; msg != "" {
		parts = c.plan(b, []string{msg}, turn, Usage{}, time.Now())
	}
	var k kept
	err := c.e.outbox.Tx(ctx, func(ctx context.Context) error {
		if err := c.fence(ctx); err != nil {
			return err
		}
		err := c.e.outbox.Emit(ctx, c.inst, EventError, map[string]any{
			"botId": b.ID, "sessionId": c.session.ID, "remoteJid": c.replyTo, "status": status, "error": reason,
		})
		if err != nil {
			return err
		}
		if c.sessionDirty {
			if err := c.e.store.TouchSession(ctx, c.session); err != nil {
				return err
			}
			c.sessionDirty = false
		}
		if k, err = c.keep(ctx, parts); err != nil {
			return err
		}
		return c.mark(ctx, turn, store.MessageFailed, reason, b.ID)
	})
	if err != nil {
		return err
	}
	return c.sendKept(ctx, k)
}

// userMessage is the turn as one user message, each inbound message its
// own part: text (with the sender's name in groups), images, and the
// text of documents.
func (c *chat) userMessage(ctx context.Context, turn []*store.Message) openai.ChatCompletionMessage {
	group := strings.HasSuffix(c.replyTo, "@g.us")
	var parts []openai.ChatMessagePart
	for _, m := range turn {
		text := m.Text
		if text == "" {
			text = describe(m)
		}
		if doc := c.channelDocument(ctx, m); doc != "" {
			if m.Text != "" {
				doc = m.Text + "\n\n" + doc
			}
			text = doc
		}
		if group {
			name := m.PushName
			if name == "" {
				name = strings.Split(m.Participant, "@")[0]
			}
			text = name + ": " + text
		}
		url := c.channelImage(ctx, m)
		if url == "" {
			url = imageURL(m)
		}
		if url != "" {
			parts = append(parts, openai.ChatMessagePart{Type: openai.ChatMessagePartTypeImageURL, ImageURL: &openai.ChatMessageImageURL{URL: url}})
			if m.Text == "" {
				continue
			}
		}
		parts = append(parts, openai.ChatMessagePart{Type: openai.ChatMessagePartTypeText, Text: text})
	}
	if len(parts) == 1 && parts[0].Type == openai.ChatMessagePartTypeText {
		return openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: parts[0].Text}
	}
	return openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, MultiContent: parts}
}

// imageURL returns an image message's URL, or its inline data as a data
// URL, when the channel gave either.
func imageURL(m *store.Message) string {
	if m.MessageType != "imageMessage" || encryptedMedia(m.Content) {
		return "" // WhatsApp's media URL names an encrypted file
	}
	var content struct {
		Image struct {
			URL      string `json:"url"`
			Base64   string `json:"base64"`
			Mimetype string `json:"mimetype"`
		} `json:"imageMessage"`
		MediaURL string `json:"mediaUrl"`
	}
	if json.Unmarshal(m.Content, &content) != nil {
		return ""
	}
	switch {
	case content.Image.Base64 != "":
		mime := content.Image.Mimetype
		if mime == "" {
			mime = "image/jpeg"
		}
		return "data:" + mime + ";base64," + content.Image.Base64
	case strings.HasPrefix(content.Image.URL, "https://") || strings.HasPrefix(content.Image.URL, "http://"):
		return content.Image.URL
	case content.MediaURL != "":
		return content.MediaURL
	}
	return ""
}

// complete answers with the chat completions API: system prompts, the
// seeded examples, the history within its token budget, then the turn; up
// to maxToolRounds rounds of tool calls. It returns the reply, the usage and
// the new history turns.
func (c *chat) complete(ctx context.Context, b *bot, br *brain, user openai.ChatCompletionMessage) (string, Usage, []openai.ChatCompletionMessage, error) {
	var msgs []openai.ChatCompletionMessage
	for _, s := range br.system {
		msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleSystem, Content: s})
	}
	for i := range max(len(b.Prompts.User), len(b.Prompts.Assistant)) {
		if i < len(b.Prompts.User) {
			msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleUser, Content: b.Prompts.User[i]})
		}
		if i < len(b.Prompts.Assistant) {
			msgs = append(msgs, openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: b.Prompts.Assistant[i]})
		}
	}
	history, err := c.recentTurns(ctx)
	if err != nil {
		return "", Usage{}, nil, err
	}
	started := false
	for _, t := range history {
		var m openai.ChatCompletionMessage
		if json.Unmarshal(t.Message, &m) != nil {
			continue
		}
		// The budget may cut through a tool exchange; start at a user turn.
		if started = started || m.Role == openai.ChatMessageRoleUser; started {
			msgs = append(msgs, m)
		}
	}
	turns := []openai.ChatCompletionMessage{user}
	msgs = append(msgs, user)
	var tools []openai.Tool
	if len(br.tools) > 0 {
		if err := json.Unmarshal(br.tools, &tools); err != nil {
			return "", Usage{}, nil, fmt.Errorf("bot %s tools: %w", b.ID, err)
		}
	}
	req := openai.ChatCompletionRequest{Model: br.model, Tools: tools}
	if b.MaxTokens != nil {
		req.MaxCompletionTokens = *b.MaxTokens
	}
	client := c.e.clients.For(br.creds)
	var usage Usage
	for round := 0; ; round++ {
		req.Messages = msgs
		resp, err := c.completion(ctx, client, req)
		if err != nil {
			return "", usage, nil, err
		}
		usage.PromptTokens += resp.Usage.PromptTokens
		usage.CompletionTokens += resp.Usage.CompletionTokens
		if len(resp.Choices) == 0 {
			return "", usage, nil, &wagate.Error{Code: wagate.EUPSTREAM, Messages: []string{"provider: answered without a choice"}}
		}
		msg := resp.Choices[0].Message
		if len(msg.ToolCalls) == 0 || round == maxToolRounds {
			if strings.TrimSpace(msg.Content) == "" {
				return "", usage, nil, &wagate.Error{Code: wagate.EUPSTREAM, Messages: []string{"provider: answered with no text"}}
			}
			answer := openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: msg.Content}
			return msg.Content, usage, append(turns, answer), nil
		}
		call := openai.ChatCompletionMessage{Role: openai.ChatMessageRoleAssistant, Content: msg.Content, ToolCalls: msg.ToolCalls}
		msgs, turns = append(msgs, call), append(turns, call)
		for _, tc := range msg.ToolCalls {
			out := openai.ChatCompletionMessage{
				Role: openai.ChatMessageRoleTool, ToolCallID: tc.ID,
				Content: c.callFunction(ctx, b, br, tc.Function.Name, tc.Function.Arguments, tc.ID),
			}
			msgs, turns = append(msgs, out), append(turns, out)
		}
	}
}

// respond answers an assistant bot with the Responses API: the bot's stored
// prompt, continuing the session's conversation by previous_response_id.
func (c *chat) respond(ctx context.Context, b *bot, br *brain, user openai.ChatCompletionMessage) (string, Usage, error) {
	var content []any
	if user.MultiContent == nil {
		content = append(content, openai.ResponseInputText{Type: "input_text", Text: user.Content})
	}
	for _, p := range user.MultiContent {
		if p.Type == openai.ChatMessagePartTypeImageURL {
			content = append(content, openai.ResponseInputImage{Type: "input_image", ImageURL: p.ImageURL.URL})
		} else {
			content = append(content, openai.ResponseInputText{Type: "input_text", Text: p.Text})
		}
	}
	req := openai.CreateResponseRequest{
		Prompt:             &openai.ResponsePrompt{ID: b.AssistantID},
		Model:              br.model,
		Input:              []any{openai.ResponseInputMessage{Type: "message", Role: "user", Content: content}},
		PreviousResponseID: c.session.PreviousResponseID,
	}
	if b.MaxTokens != nil {
		req.MaxOutputTokens = *b.MaxTokens
	}
	client := c.e.clients.For(br.creds)
	var usage Usage
	for round := 0; ; round++ {
		var resp openai.CreateResponseResponse
		err := c.e.call(ctx, func(ctx context.Context) error {
			var err error
			resp, err = client.CreateResponse(ctx, req)
			return err
		})
		if err != nil {
			return "", usage, err
		}
		if resp.Usage != nil {
			usage.PromptTokens += resp.Usage.InputTokens
			usage.CompletionTokens += resp.Usage.OutputTokens
		}
		// The conversation continues from here, whatever happens next.
		c.session.PreviousResponseID = resp.ID
		var outputs []any
		for _, item := range resp.Output {
			raw, _ := json.Marshal(item)
			var it openai.ResponseOutputItem
			if json.Unmarshal(raw, &it) == nil && it.Type == "function_call" && round < maxToolRounds {
				outputs = append(outputs, openai.ResponseFunctionCallOutput{
					Type: "function_call_output", CallID: it.CallID,
					Output: c.callFunction(ctx, b, br, it.Name, it.Arguments, it.CallID),
				})
			}
		}
		if len(outputs) == 0 {
			text := resp.GetOutputText()
			if strings.TrimSpace(text) == "" {
				return "", usage, &wagate.Error{Code: wagate.EUPSTREAM, Messages: []string{"provider: answered with no text"}}
			}
			return text, usage, nil
		}
		req.Input, req.PreviousResponseID = outputs, resp.ID
	}
}

// callFunction posts a tool call to the brain's functionUrl (the bot's, or
// its chatbot's), signed like webhooks, and returns the response body as
// the tool's output. A failing function gets an error output, so the model
// can tell the user.
func (c *chat) callFunction(ctx context.Context, b *bot, br *brain, name, args, callID string) string {
	failed := func(why string) string {
		c.log.Warn("bot function failed", "bot", b.ID, "function", name, "error", why)
		out, _ := json.Marshal(map[string]string{"error": why})
		return string(out)
	}
	if br.functionURL == "" {
		return failed("no functionUrl is configured")
	}
	call := map[string]string{
		"name": name, "arguments": args, "callId": callID, "instance": c.inst.Name,
		"remoteJid": c.replyTo, "pushName": c.session.PushName, "sessionId": c.session.ID,
	}
	if br.toolsOf != nil {
		call["chatbotId"] = br.toolsOf.ID
	}
	body, _ := json.Marshal(call)
	ctx, cancel := context.WithTimeout(ctx, c.e.cfg.FunctionTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, br.functionURL, bytes.NewReader(body))
	if err != nil {
		return failed("invalid functionUrl")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "wagate/"+wagate.Version)
	if c.e.sign != nil {
		if sig := c.e.sign(ctx, c.inst, br.toolsOf, body); sig != "" {
			req.Header.Set("X-Wagate-Signature", sig)
		}
	}
	resp, err := c.e.clients.HTTP.Do(req)
	if err != nil {
		return failed("function unreachable or too slow")
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxFunctionReply+1))
	switch {
	case err != nil:
		return failed("function response unreadable")
	case len(out) > maxFunctionReply:
		return failed("function response larger than 64 KiB")
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return failed("function answered HTTP " + strconv.Itoa(resp.StatusCode))
	case !utf8.Valid(out):
		return failed("function response is not text")
	}
	return string(out)
}

// call runs one model request with the per-call timeout, retrying rate
// limits, server errors and timeouts with exponential backoff and jitter
// (Retry-After honoured). The credential's client bounds and paces the
// request itself (Limits), so waiting for a slot counts in the timeout.
func (e *Engine) call(ctx context.Context, do func(ctx context.Context) error) error {
	var err error
	for attempt := 1; ; attempt++ {
		hint := &retryHint{}
		actx, cancel := context.WithTimeout(withRetryHint(ctx, hint), e.cfg.ModelTimeout)
		start := time.Now()
		err = do(actx)
		cancel()
		if e.cfg.OnModelCall != nil && ctx.Err() == nil {
			e.cfg.OnModelCall(time.Since(start), providerStatus(err), err)
		}
		if err == nil || ctx.Err() != nil || attempt == modelAttempts || !retryable(err) {
			break
		}
		wait := hint.after
		if wait <= 0 {
			d := e.cfg.RetryBase << (attempt - 1)
			wait = d/2 + rand.N(d/2+1)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	if err != nil && ctx.Err() == nil {
		return ProviderError(err)
	}
	return err
}

func retryable(err error) bool {
	switch s := providerStatus(err); {
	case s == 0:
		return errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, context.Canceled)
	default:
		return s == http.StatusTooManyRequests || s == http.StatusRequestTimeout || s >= 500
	}
}

// providerStatus is the provider's HTTP status in err, 0 if it gave none.
func providerStatus(err error) int {
	var (
		apiErr *openai.APIError
		reqErr *openai.RequestError
	)
	switch {
	case errors.As(err, &apiErr):
		return apiErr.HTTPStatusCode
	case errors.As(err, &reqErr):
		return reqErr.HTTPStatusCode
	}
	return 0
}

// transcribe turns an audio message into text with the credentials'
// provider, language auto-detected.
func (e *Engine) transcribe(ctx context.Context, inst *store.Instance, m *store.Message, creds *store.Creds) (string, error) {
	if e.media == nil {
		return "", wagate.Errorf(wagate.EUNPROCESSABLE, "speech-to-text: media cannot be fetched")
	}
	data, name, err := e.media(ctx, inst, m)
	if err != nil {
		return "", err
	}
	var text string
	err = e.call(ctx, func(ctx context.Context) error {
		resp, err := e.clients.For(creds).CreateTranscription(ctx, openai.AudioRequest{
			Model: e.cfg.TranscribeModel, FilePath: name, Reader: bytes.NewReader(data), Format: openai.AudioResponseFormatJSON,
		})
		text = resp.Text
		return err
	})
	if err != nil {
		return "", err
	}
	if text = strings.TrimSpace(text); text == "" {
		return "", wagate.Errorf(wagate.EUPSTREAM, "speech-to-text: empty transcript")
	}
	return text, nil
}

// turnOf is a history row for msg.
func turnOf(sessionID string, msg openai.ChatCompletionMessage, tokens int, now time.Time) *store.Turn {
	raw, _ := json.Marshal(msg)
	if tokens == 0 {
		tokens = len(raw)/4 + 1 // estimate; the provider reports usage per call, not per message
	}
	return &store.Turn{SessionID: sessionID, Role: msg.Role, Message: raw, Tokens: tokens, CreatedAt: now}
}

// DecodeBase64Media decodes inline media, with or without a data URL prefix.
func DecodeBase64Media(s string) ([]byte, error) {
	if _, data, ok := strings.Cut(s, ";base64,"); ok {
		s = data
	}
	return base64.StdEncoding.DecodeString(s)
}
