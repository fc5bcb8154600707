package gateway_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wagate/wagate/config"
)

// streamingModel is an OpenAI-compatible chat endpoint that streams a
// first token, notes when it wrote it (by the request's last user text),
// then holds the stream until release is closed.
type streamingModel struct {
	mu      sync.Mutex
	first   map[string]time.Time
	release chan struct{}
}

func (m *streamingModel) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Messages []struct {
			Role    string `json:"role"`
			Content string `json:"content"`
		} `json:"messages"`
	}
	_ = json.NewDecoder(r.Body).Decode(&req)
	id := req.Messages[len(req.Messages)-1].Content
	w.Header().Set("Content-Type", "text/event-stream")
	flush := w.(http.Flusher).Flush
	chunk := func(content string) {
		fmt.Fprintf(w, `data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"content":%q},"finish_reason":null}]}`+"\n\n", content)
		flush()
	}
	fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`+"\n\n")
	flush()
	m.mu.Lock()
	m.first[id] = time.Now()
	m.mu.Unlock()
	chunk("first ")
	select {
	case <-m.release:
	case <-r.Context().Done():
		return
	}
	chunk("and the rest")
	fmt.Fprint(w, `data: {"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}`+"\n\n")
	fmt.Fprint(w, "data: [DONE]\n\n")
	flush()
}

// TestWebchatMeasure measures the web chat's streaming, for BENCHMARKS.md
// (it asserts nothing about time):
//
//	WAGATE_MEASURE=1 go test ./gateway -run TestWebchatMeasure -v
func TestWebchatMeasure(t *testing.T) {
	if os.Getenv("WAGATE_MEASURE") == "" {
		t.Skip("set WAGATE_MEASURE=1 to measure web chat streaming")
	}
	model := &streamingModel{first: map[string]time.Time{}, release: make(chan struct{})}
	ai := httptest.NewServer(model)
	defer ai.Close()
	s := startServer(t, "", withConfig(func(c *config.Config) { c.MaxConcurrentModelCalls = 2000 }))
	credsID := s.orgCreds("streaming", chatbotProviderKey, ai.URL+"/v1")
	cb := s.createChatbot("Bench", testAPIKey)
	s.patchChatbot(cb.ID, map[string]any{"settings": map[string]any{"model": "m", "openaiCredsId": credsID}})
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 2000}}

	// open starts visitor id's turn and returns when its first delta is read.
	open := func(id string) (*http.Response, time.Time, error) {
		b, _ := json.Marshal(chatBody(id, id))
		req, _ := http.NewRequest("POST", s.URL+"/api/external/chatbot/"+cb.ID+"/chat?stream=true", bytes.NewReader(b))
		req.Header.Set("x-api-key", cb.Key)
		resp, err := client.Do(req)
		if err != nil {
			return nil, time.Time{}, err
		}
		rd := bufio.NewReader(resp.Body)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				resp.Body.Close()
				return nil, time.Time{}, err
			}
			if strings.HasPrefix(line, "event: delta") {
				return resp, time.Now(), nil
			}
		}
	}

	// 1. First token to first byte, one visitor at a time.
	const n = 300
	lat := make([]time.Duration, 0, n)
	for i := range n {
		id := fmt.Sprintf("lat-%d", i)
		resp, got, err := open(id)
		if err != nil {
			t.Fatal(err)
		}
		model.mu.Lock()
		lat = append(lat, got.Sub(model.first[id]))
		model.mu.Unlock()
		resp.Body.Close() // the visitor leaves; the answer is kept, cut short
	}
	slices.Sort(lat)
	t.Logf("first model token → first SSE delta at the client, %d turns: p50 %v, p99 %v, max %v",
		n, lat[n/2], lat[n*99/100], lat[n-1])

	// 2. 1,000 streams open at once, each waiting on its model stream.
	runtime.GC()
	before := memNow()
	const streams = 1000
	resps := make([]*http.Response, streams)
	var wg sync.WaitGroup
	errs := make(chan error, streams)
	start := time.Now()
	for i := range streams {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, _, err := open(fmt.Sprintf("open-%d", i))
			if err != nil {
				errs <- err
				return
			}
			resps[i] = resp
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("%d streams open (each past its first delta) in %v", streams, time.Since(start).Round(time.Millisecond))
	runtime.GC()
	during := memNow()
	close(model.release)
	for _, r := range resps {
		_, _ = bufio.NewReader(r.Body).ReadString(0) // to the done event and the end
		r.Body.Close()
	}
	client.CloseIdleConnections()
	time.Sleep(500 * time.Millisecond)
	runtime.GC()
	after := memNow()
	t.Logf("before: %s", before)
	t.Logf("during (%d open): %s", streams, during)
	t.Logf("after: %s", after)
}

type memSample struct {
	goroutines int
	heap, sys  uint64
}

func (m memSample) String() string {
	return fmt.Sprintf("%d goroutines, heap in use %.1f MiB, from the OS %.1f MiB", m.goroutines,
		float64(m.heap)/(1<<20), float64(m.sys)/(1<<20))
}

func memNow() memSample {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memSample{goroutines: runtime.NumGoroutine(), heap: ms.HeapInuse, sys: ms.Sys}
}
