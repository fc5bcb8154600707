package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// bare is the reference pipeline: the same hops as the gateway's path for
// one message (an inbound HTTP POST answered at once, one chat completion
// with the same client library to the same fake model, one HTTP webhook
// POST of the reply) and nothing else: no storage, no per-chat order, no
// engine. Its throughput on this machine is the limit the gateway is
// measured against.
type bare struct {
	ai      *openai.Client
	hookURL string
	hook    *http.Client
	calls   chan struct{}
	wg      sync.WaitGroup
	srv     *http.Server
	url     string
}

// bareInbound is the part of the EVOLUTION payload the pipeline reads; it
// decodes the same body the gateway does.
type bareInbound struct {
	NumberID string `json:"numberId"`
	Key      struct {
		ID        string `json:"id"`
		RemoteJID string `json:"remoteJid"`
		FromMe    bool   `json:"fromMe"`
	} `json:"key"`
	PushName string `json:"pushName"`
	Message  struct {
		Conversation string `json:"conversation"`
	} `json:"message"`
}

func startBare(aiURL, hookURL string, modelCalls int) (*bare, error) {
	cfg := openai.DefaultConfig("sk-loadgen-0000")
	cfg.BaseURL = aiURL
	b := &bare{
		ai:      openai.NewClientWithConfig(cfg),
		hookURL: hookURL,
		hook:    &http.Client{Timeout: 10 * time.Second},
		calls:   make(chan struct{}, modelCalls),
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bare pipeline: %w", err)
	}
	b.url = "http://" + ln.Addr().String()
	b.srv = &http.Server{Handler: b, ReadHeaderTimeout: 10 * time.Second}
	go b.srv.Serve(ln)
	return b, nil
}

func (b *bare) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in bareInbound
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Key.RemoteJID == "" {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	b.wg.Add(1)
	go b.answer(in)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]string{"status": "success", "messageId": in.Key.ID})
}

func (b *bare) answer(in bareInbound) {
	defer b.wg.Done()
	b.calls <- struct{}{}
	resp, err := b.ai.CreateChatCompletion(context.Background(), openai.ChatCompletionRequest{
		Model:    "gpt-4o",
		Messages: []openai.ChatCompletionMessage{{Role: openai.ChatMessageRoleUser, Content: in.Message.Conversation}},
	})
	<-b.calls
	if err != nil || len(resp.Choices) == 0 {
		slog.Warn("bare pipeline: model call failed", "error", err)
		return
	}
	body, _ := json.Marshal(map[string]any{
		"event": "send.message", "instance": "bare",
		"data": map[string]any{
			"key":     map[string]any{"id": strings.ToUpper(strconv.FormatInt(time.Now().UnixNano(), 36)), "remoteJid": in.Key.RemoteJID, "fromMe": true},
			"message": map[string]string{"conversation": resp.Choices[0].Message.Content},
		},
		"date_time": time.Now().UTC().Format(time.RFC3339Nano),
	})
	hr, err := b.hook.Post(b.hookURL, "application/json", bytes.NewReader(body))
	if err != nil {
		slog.Warn("bare pipeline: webhook failed", "error", err)
		return
	}
	hr.Body.Close()
}

func (b *bare) close() {
	b.srv.Close()
	b.wg.Wait()
}

// runBare runs the workload through the reference pipeline.
func runBare(ctx context.Context, aiURL string, w workload, modelCalls int, log *slog.Logger) (*result, error) {
	rc, err := startReceiver()
	if err != nil {
		return nil, err
	}
	defer rc.close()
	b, err := startBare(aiURL, rc.url, modelCalls)
	if err != nil {
		return nil, err
	}
	defer b.close()
	client := newGatewayClient(b.url, "-", "", w.senders)
	inst := &loadInstance{name: "bare", number: "num-bare", token: "-"}
	tr := newTracker(w.messages)
	rc.tr.Store(tr)
	sendTime := drive(ctx, w, tr, func(ctx context.Context, i int) error {
		return client.call(ctx, "POST", "/webhook/evolution", inst.token, map[string]any{
			"numberId": inst.number,
			"key":      map[string]any{"id": "LG" + strconv.Itoa(i), "remoteJid": chatOf(i, w.conversations), "fromMe": false},
			"pushName": "Load",
			"message":  map[string]any{"conversation": messageText(i)},
		}, nil, http.StatusOK)
	})
	return tr.result(sendTime), nil
}
