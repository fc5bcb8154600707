package bots

import (
	"context"
	"errors"
	"io"
	"strings"

	openai "github.com/sashabaranov/go-openai"

	"github.com/wagate/wagate"
	"github.com/wagate/wagate/store"
)

// Visitors is what a channel whose people wait, connected, for the answer
// (the web chat) offers the engine: the model call streams into the
// waiting visitor's Sink instead of arriving whole. The engine still
// decides, stores and delivers the answer as for any channel.
type Visitors interface {
	// Sink returns the sink of the visitor waiting for the answer in the
	// instance's chat, or nil when nobody waits (the turn is then answered
	// without streaming, e.g. after a restart).
	Sink(instanceID, chatKey string) Sink
}

// Sink receives one turn's answer as the model produces it. Its methods
// must not block: the model's stream is read in the engine's goroutine.
type Sink interface {
	// Context is done when the visitor went away: the model call stops, and
	// what it had produced is kept as the answer, cut short.
	Context() context.Context
	// Delta is the next piece of the answer's text.
	Delta(text string)
	// Reset voids the text streamed so far: the call is being retried, or
	// the model went on to call tools.
	Reset()
	// Cut says the answer that follows is what the model produced before
	// the visitor went away.
	Cut()
	// Failed says that no answer will come, and why.
	Failed(reason string)
}

// sink is the visitor waiting for this chat's answer, or nil.
func (c *chat) sink() Sink {
	if c.e.cfg.Visitors == nil {
		return nil
	}
	return c.e.cfg.Visitors.Sink(c.inst.ID, c.jid)
}

// format prepares a reply's text for the chat's channel: WhatsApp's own
// markup everywhere but the web chat, whose page renders Markdown.
func (c *chat) format(reply string) string {
	if c.inst.Integration == store.IntegrationWebchat {
		return reply
	}
	return ToWhatsApp(reply)
}

// visitorFailed tells a waiting visitor that the turn failed.
func (c *chat) visitorFailed(reason string) {
	if s := c.sink(); s != nil {
		s.Failed(reason)
	}
}

// errVisitorLeft ends a turn whose visitor went away before the model had
// produced any text.
var errVisitorLeft = wagate.Errorf(wagate.EUNPROCESSABLE, "visitor: left before the answer began")

// completion makes one chat completion request: streamed into the waiting
// visitor's sink when there is one, whole otherwise.
func (c *chat) completion(ctx context.Context, client *openai.Client, req openai.ChatCompletionRequest) (openai.ChatCompletionResponse, error) {
	var resp openai.ChatCompletionResponse
	sink := c.sink()
	if sink == nil {
		err := c.e.call(ctx, func(ctx context.Context) error {
			var err error
			resp, err = client.CreateChatCompletion(ctx, req)
			return err
		})
		return resp, err
	}
	// The visitor leaving cancels the call, not the engine.
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(sink.Context(), cancel)()
	req.Stream = true
	req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	err := c.e.call(sctx, func(ctx context.Context) error {
		if c.streamed {
			sink.Reset() // an earlier attempt or tool round streamed text
		}
		var err error
		resp, err = c.stream(ctx, client, req, sink)
		return err
	})
	if err != nil && sink.Context().Err() != nil && ctx.Err() == nil {
		if len(resp.Choices) > 0 && len(resp.Choices[0].Message.ToolCalls) == 0 &&
			strings.TrimSpace(resp.Choices[0].Message.Content) != "" {
			sink.Cut()
			return resp, nil
		}
		return resp, errVisitorLeft
	}
	return resp, err
}

// stream reads one streamed completion, passing its text to sink, and
// returns it assembled as a whole response: on an error, what had arrived.
func (c *chat) stream(ctx context.Context, client *openai.Client, req openai.ChatCompletionRequest, sink Sink) (openai.ChatCompletionResponse, error) {
	var (
		content strings.Builder
		calls   []openai.ToolCall
		resp    openai.ChatCompletionResponse
		err     error
	)
	st, err := client.CreateChatCompletionStream(ctx, req)
	if err != nil {
		return resp, err
	}
	defer st.Close()
	for {
		var chunk openai.ChatCompletionStreamResponse
		chunk, err = st.Recv()
		if err != nil {
			break
		}
		resp.ID, resp.Model = chunk.ID, chunk.Model
		if chunk.Usage != nil {
			resp.Usage = *chunk.Usage
		}
		for _, ch := range chunk.Choices {
			if ch.Index != 0 {
				continue
			}
			if d := ch.Delta.Content; d != "" {
				content.WriteString(d)
				sink.Delta(d)
				c.streamed = true
			}
			for _, tc := range ch.Delta.ToolCalls {
				i := 0
				if tc.Index != nil {
					i = *tc.Index
				}
				for len(calls) <= i {
					calls = append(calls, openai.ToolCall{Type: openai.ToolTypeFunction})
				}
				if tc.ID != "" {
					calls[i].ID = tc.ID
				}
				calls[i].Function.Name += tc.Function.Name
				calls[i].Function.Arguments += tc.Function.Arguments
			}
		}
	}
	resp.Choices = []openai.ChatCompletionChoice{{Message: openai.ChatCompletionMessage{
		Role: openai.ChatMessageRoleAssistant, Content: content.String(), ToolCalls: calls,
	}}}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return resp, err
}
