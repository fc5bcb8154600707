package fakeai_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	openai "github.com/sashabaranov/go-openai"

	"github.com/wagate/wagate/fakeai"
)

// Example scripts a tool call, a rate limit and a fixed reply, then reads what
// the client sent. In a test, use fakeai.NewTestServer(t, opts) instead of
// New and Start.
func Example() {
	s := fakeai.New(fakeai.Options{})
	base, err := s.Start("127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer s.Close()

	cfg := openai.DefaultConfig("sk-example-key-1234")
	cfg.BaseURL = base
	c := openai.NewClientWithConfig(cfg)
	ctx := context.Background()
	ask := func(text string) (openai.ChatCompletionResponse, error) {
		return c.CreateChatCompletion(ctx, openai.ChatCompletionRequest{
			Model:               openai.GPT4o,
			Messages:            []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: text}},
			MaxCompletionTokens: 300,
		})
	}

	s.Enqueue(
		fakeai.CallTool("order_status", `{"order":"42"}`),
		fakeai.RateLimited(time.Second),
		fakeai.Reply("Your order has shipped."),
	)
	resp, _ := ask("where is order 42?")
	call := resp.Choices[0].Message.ToolCalls[0]
	fmt.Println(resp.Choices[0].FinishReason, call.Function.Name, call.Function.Arguments)

	_, err = ask("again")
	var apiErr *openai.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.HTTPStatusCode, apiErr.Code)
	}

	resp, _ = ask("and now?")
	fmt.Println(resp.Choices[0].Message.Content)

	resp, _ = ask("hi") // the script is used up: default echo
	fmt.Println(resp.Choices[0].Message.Content)

	last, _ := s.LastChat()
	fmt.Println(last.APIKey, last.Chat.MaxCompletionTokens, last.Messages[0].Content, last.Status)
	fmt.Println(len(s.RequestsTo(fakeai.EndpointChat)), "chat calls recorded")

	// Output:
	// tool_calls order_status {"order":"42"}
	// 429 rate_limit_exceeded
	// Your order has shipped.
	// echo: hi
	// sk-example-key-1234 300 hi 200
	// 4 chat calls recorded
}
