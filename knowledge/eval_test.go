package knowledge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
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

// evalQuestion is a question of the evaluation set and where its answer
// is: the document, and a passage the right chunk contains.
type evalQuestion struct {
	Question string `json:"question"`
	Source   string `json:"source"`
	Passage  string `json:"passage"`
}

// hybridRecallFloor is what hybrid retrieval must keep of recall@5 on the
// evaluation set; the figure measured is in BENCHMARKS.md. Embeddings are
// fakeai's, so the result is deterministic and a drop means chunking,
// full text or fusion got worse.
const hybridRecallFloor = 0.50

// evalK is the rank recall is counted at; MRR counts down to evalDepth.
const evalK, evalDepth = 5, 10

// TestRetrievalQuality ingests the manual pages of testdata/eval through
// the real ingestion (extraction, chunking, embeddings from the fake model
// server over HTTP) into SQLite, asks the evaluation questions and reports
// recall@5 and MRR for full text alone, vectors alone and hybrid. Run it
// with -v to see the table and hybrid's misses.
func TestRetrievalQuality(t *testing.T) {
	ctx := context.Background()
	var questions []evalQuestion
	raw, err := os.ReadFile("testdata/eval/questions.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &questions); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob("testdata/eval/docs/*.md")
	if err != nil || len(files) == 0 {
		t.Fatal("no documents", err)
	}

	ai := fakeai.NewTestServer(t, fakeai.Options{MaxRecorded: -1})
	st, cb := benchStore(t)
	cb.Settings[knowledge.KeyTopK] = evalDepth
	if err := st.CreateCreds(ctx, &store.Creds{ID: uuid.NewString(), OrganizationID: cb.OrganizationID, Name: "fake",
		APIKey: "sk-eval", BaseURL: ai.BaseURL(), IsDefault: true, CreatedAt: time.Now(), UpdatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	svc := knowledge.New(st, fetch.New(fetch.Config{}), knowledge.Config{
		NewClient: func(c *store.Creds) *openai.Client {
			cfg := openai.DefaultConfig(c.APIKey)
			cfg.BaseURL = c.BaseURL
			return openai.NewClientWithConfig(cfg)
		},
		Poll: 10 * time.Millisecond,
	}, slog.New(slog.DiscardHandler))

	sourceOf := map[string]string{} // file name → source id
	text := map[string]string{}     // file name → its words, normalized
	var sources []*store.KnowledgeSource
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		format, ok := knowledge.Detect(filepath.Base(f), data)
		if !ok {
			t.Fatalf("%s: not a known format", f)
		}
		name := filepath.Base(f)
		k := &store.KnowledgeSource{ID: uuid.NewString(), ChatbotID: cb.ID, OrganizationID: cb.OrganizationID,
			Type: store.SourceFile, Title: name, FileName: name, ContentType: string(format), Data: data,
			Size: int64(len(data)), Status: store.SourcePending, CreatedAt: time.Now(), UpdatedAt: time.Now()}
		sources = append(sources, k)
		sourceOf[name] = k.ID
		text[name] = normalize(string(data))
	}
	for _, q := range questions {
		if !strings.Contains(text[q.Source], normalize(q.Passage)) {
			t.Fatalf("question %q: %s does not contain %q", q.Question, q.Source, q.Passage)
		}
	}
	if err := st.CreateKnowledgeSources(ctx, store.KnowledgeLimits{}, sources); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	svc.Start(ctx)
	defer svc.Stop()
	chunks := 0
	for _, k := range sources {
		for {
			got, err := st.KnowledgeSource(ctx, cb.ID, k.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status == store.SourceFailed || got.Status == store.SourceReady && got.Note != "" {
				t.Fatalf("%s: %s %s%s", k.Title, got.Status, got.Error, got.Note)
			}
			if got.Status == store.SourceReady {
				chunks += got.Chunks
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	ingest := time.Since(start)

	type mode struct {
		name   string
		search func(q string) ([]knowledge.Result, error)
	}
	modes := []mode{
		{"full text", func(q string) ([]knowledge.Result, error) { return svc.RankWith(ctx, cb, q, nil) }},
		{"vector", func(q string) ([]knowledge.Result, error) {
			return svc.RankWith(ctx, cb, "", fakeai.Embed(q, knowledge.DefaultDimensions))
		}},
		{"hybrid", func(q string) ([]knowledge.Result, error) {
			res, err := svc.Search(ctx, cb, q, evalDepth)
			if err == nil && res.FullText {
				err = fmt.Errorf("searched full text only: %s", res.Reason)
			}
			if err != nil {
				return nil, err
			}
			return res.Results, nil
		}},
	}
	t.Logf("%d documents, %d chunks, %d questions (ingested in %v)", len(files), chunks, len(questions), ingest.Round(time.Millisecond))
	t.Logf("%-10s %9s %7s", "mode", "recall@5", "MRR@10")
	recall := map[string]float64{}
	for _, m := range modes {
		var hits, rr float64
		for _, q := range questions {
			res, err := m.search(q.Question)
			if err != nil {
				t.Fatalf("%s %q: %v", m.name, q.Question, err)
			}
			rank := 0
			for i, r := range res {
				if r.Chunk.SourceID == sourceOf[q.Source] && strings.Contains(normalize(r.Chunk.Content), normalize(q.Passage)) {
					rank = i + 1
					break
				}
			}
			if rank > 0 && rank <= evalK {
				hits++
			}
			if rank > 0 {
				rr += 1 / float64(rank)
			}
			if m.name == "hybrid" && (rank == 0 || rank > evalK) && testing.Verbose() {
				top := "nothing"
				if len(res) > 0 {
					top = fmt.Sprintf("%s chunk %d", res[0].Chunk.Title, res[0].Chunk.Position)
				}
				t.Logf("  hybrid miss (rank %d): %q → %s; first: %s", rank, q.Question, q.Source, top)
			}
		}
		n := float64(len(questions))
		recall[m.name] = hits / n
		t.Logf("%-10s %9.3f %7.3f", m.name, hits/n, rr/n)
	}
	if recall["hybrid"] < hybridRecallFloor {
		t.Errorf("hybrid recall@5 = %.3f, below the floor of %.2f", recall["hybrid"], hybridRecallFloor)
	}
}

// normalize is s lower-cased with its runs of space made one, so that a
// passage matches across the line breaks and indentation of its document.
func normalize(s string) string { return strings.ToLower(strings.Join(strings.Fields(s), " ")) }
