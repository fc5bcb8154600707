package knowledge_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	openai "github.com/sashabaranov/go-openai"

	"github.com/wagate/wagate/fakeai"
	"github.com/wagate/wagate/fetch"
	"github.com/wagate/wagate/knowledge"
	"github.com/wagate/wagate/store"
)

// benchStore is a SQLite store with one chatbot in the default
// organization.
func benchStore(b testing.TB) (*store.Store, *store.Chatbot) {
	b.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, store.Options{URL: "file:" + filepath.Join(b.TempDir(), "kb.db"), SecretKey: make([]byte, 32)},
		slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	org, err := st.DefaultOrganization(ctx)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	cb := &store.Chatbot{ID: uuid.NewString(), OrganizationID: org.ID, Name: "bench", Slug: "bench", Active: true,
		Settings: map[string]any{knowledge.KeyMinSimilarity: 0.0}, KeyHash: uuid.NewString(), KeyPrefix: "ob_live_x", CreatedAt: now, UpdatedAt: now}
	if err := st.CreateChatbot(ctx, cb); err != nil {
		b.Fatal(err)
	}
	return st, cb
}

// words is a vocabulary drawn with a Zipf law, as words of real text are.
type words struct {
	vocab []string
	zipf  *rand.Zipf
}

func newWords(r *rand.Rand, n int) *words {
	w := &words{zipf: rand.NewZipf(r, 1.1, 2, uint64(n-1))}
	for i := range n {
		w.vocab = append(w.vocab, fmt.Sprintf("w%dx%d", i, i*7919%1000))
	}
	return w
}

func (w *words) text(n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = w.vocab[w.zipf.Uint64()]
	}
	return strings.Join(parts, " ")
}

const benchDims = knowledge.DefaultDimensions

// BenchmarkQuery100k measures query-knowledge's retrieval on SQLite with
// 100,000 chunks of ~300 tokens in one chatbot: full-text and vector
// candidates, fusion and fetching the results' text; the query's
// embedding is computed beforehand (a provider call is excluded). It
// reports p50 and p99 per query, the index's build time and its memory.
func BenchmarkQuery100k(b *testing.B) {
	const nChunks, perSource = 100_000, 1_000
	ctx := context.Background()
	st, cb := benchStore(b)
	r := rand.New(rand.NewPCG(1, 2))
	w := newWords(r, 20_000)
	var samples []string
	for s := 0; s < nChunks/perSource; s++ {
		k := &store.KnowledgeSource{ID: uuid.NewString(), ChatbotID: cb.ID, OrganizationID: cb.OrganizationID,
			Type: store.SourceText, Title: fmt.Sprintf("Source %d", s), Status: store.SourcePending, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := st.CreateKnowledgeSources(ctx, store.KnowledgeLimits{}, []*store.KnowledgeSource{k}); err != nil {
			b.Fatal(err)
		}
		claimed, err := st.ClaimKnowledgeJob(ctx, time.Hour)
		if err != nil || claimed == nil {
			b.Fatal("claim", err)
		}
		chunks := make([]store.KnowledgeChunk, perSource)
		for i := range chunks {
			text := w.text(220)
			if i%97 == 0 {
				samples = append(samples, text)
			}
			chunks[i] = store.KnowledgeChunk{ID: uuid.NewString(), Position: i + 1, Content: text, Tokens: 300,
				Embedding: fakeai.Embed(text, benchDims)}
		}
		if err := st.CompleteKnowledgeSource(ctx, claimed, chunks, "", 0); err != nil {
			b.Fatal(err)
		}
	}
	svc := knowledge.New(st, fetch.New(fetch.Config{}), knowledge.Config{}, slog.New(slog.DiscardHandler))

	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	start := time.Now()
	ix, err := svc.IndexOf(ctx, cb.ID)
	if err != nil {
		b.Fatal(err)
	}
	build := time.Since(start)
	runtime.GC()
	runtime.ReadMemStats(&after)
	if ix.Len() != nChunks {
		b.Fatalf("index holds %d vectors", ix.Len())
	}

	type query struct {
		text string
		vec  []float32
	}
	var queries []query
	for i := range 200 {
		f := strings.Fields(samples[i%len(samples)])
		q := strings.Join(f[r.IntN(len(f)-8):][:6], " ")
		queries = append(queries, query{q, fakeai.Embed(q, benchDims)})
	}
	var lat []time.Duration
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		q := queries[i%len(queries)]
		t0 := time.Now()
		res, err := svc.RankWith(ctx, cb, q.text, q.vec)
		lat = append(lat, time.Since(t0))
		if err != nil || len(res) == 0 {
			b.Fatalf("query %q: %v %d results", q.text, err, len(res))
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(ix.Bytes())/(1<<20), "index-MiB")
	b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "heap-MiB")
	b.ReportMetric(build.Seconds(), "build-s")
}

// BenchmarkIngest measures ingestion of a 1 MB Markdown text source end to
// end through the background worker: chunking, embeddings over HTTP from
// the fake model server (no model latency), storing chunks, vectors and
// full text.
func BenchmarkIngest(b *testing.B) {
	ctx := context.Background()
	ai := fakeai.NewTestServer(b, fakeai.Options{MaxRecorded: -1})
	r := rand.New(rand.NewPCG(3, 4))
	w := newWords(r, 20_000)
	var doc strings.Builder
	for doc.Len() < 1<<20 {
		fmt.Fprintf(&doc, "## Section %d\n\n%s\n\n%s\n\n", doc.Len(), w.text(120), w.text(150))
	}
	body := doc.String()
	var chunks int
	b.ResetTimer()
	for b.Loop() {
		b.StopTimer()
		st, cb := benchStore(b)
		org := cb.OrganizationID
		if err := st.CreateCreds(ctx, &store.Creds{ID: uuid.NewString(), OrganizationID: org, Name: "fake", APIKey: "sk-bench",
			BaseURL: ai.BaseURL(), IsDefault: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
			b.Fatal(err)
		}
		svc := knowledge.New(st, fetch.New(fetch.Config{}), knowledge.Config{
			NewClient: func(c *store.Creds) *openai.Client {
				cfg := openai.DefaultConfig(c.APIKey)
				cfg.BaseURL = c.BaseURL
				return openai.NewClientWithConfig(cfg)
			},
			Poll: 10 * time.Millisecond,
		}, slog.New(slog.DiscardHandler))
		k := &store.KnowledgeSource{ID: uuid.NewString(), ChatbotID: cb.ID, OrganizationID: org, Type: store.SourceText,
			Title: "Big", Body: body, Size: int64(len(body)), Status: store.SourcePending, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		if err := st.CreateKnowledgeSources(ctx, store.KnowledgeLimits{}, []*store.KnowledgeSource{k}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		svc.Start(ctx)
		for {
			got, err := st.KnowledgeSource(ctx, cb.ID, k.ID)
			if err != nil {
				b.Fatal(err)
			}
			if got.Status == store.SourceReady {
				chunks = got.Chunks
				break
			}
			if got.Status == store.SourceFailed {
				b.Fatal(got.Error)
			}
			time.Sleep(2 * time.Millisecond)
		}
		b.StopTimer()
		svc.Stop()
		b.StartTimer()
	}
	perOp := b.Elapsed().Seconds() / float64(b.N)
	b.ReportMetric(float64(len(body))/(1<<20)/perOp, "MB/s")
	b.ReportMetric(float64(chunks)/perOp, "chunks/s")
}
