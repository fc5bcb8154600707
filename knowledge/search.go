package knowledge

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"unicode"

	"github.com/wagate/wagate/store"
)

// Retrieval defaults of a chatbot that sets none.
const (
	DefaultTopK          = 5
	DefaultMinSimilarity = 0.2
	MaxTopK              = 50
	// rrfK damps the reciprocal rank fusion: the value of its paper,
	// which works across very different score scales.
	rrfK = 60
	// candidates is how many chunks each of full text and vectors
	// proposes for fusion.
	candidates = 50
	// rescored is how many of the quantised vector scan's best are
	// rescored with their exact vectors, to find the candidates among.
	rescored = 2 * candidates
)

// Result is a chunk found for a query. Similarity is the cosine of the
// query's and the chunk's vectors, or, searching by full text alone, the
// share of the query's words the chunk contains.
type Result struct {
	Chunk      *store.KnowledgeChunk
	Similarity float64
	Score      float64 // the fused rank score results are ordered by
}

// Content is the chunk as query-knowledge shows it and the model reads it.
func (r Result) Content() string {
	return fmt.Sprintf("Title: %s\nChunk: %d\n\n%s", r.Chunk.Title, r.Chunk.Position, r.Chunk.Content)
}

// SearchResult is what a search found, and whether it used vectors.
type SearchResult struct {
	Results  []Result
	FullText bool // no query vector: full text alone
	Reason   string
}

// Search finds the chatbot's chunks for query: the full-text and the
// vector candidates fused by reciprocal rank, at most limit (0: the
// chatbot's knowledgeTopK) with a similarity of at least the chatbot's
// knowledgeMinSimilarity, best first. Without an embedding model it
// searches the full text alone.
func (s *Service) Search(ctx context.Context, cb *store.Chatbot, query string, limit int) (*SearchResult, error) {
	set := SettingsOf(cb)
	if limit <= 0 {
		limit = set.TopK
	}
	limit = min(limit, MaxTopK)
	out := &SearchResult{}
	var (
		qvec []float32
		ix   *Index
	)
	emb, reason, err := s.Embedder(ctx, cb)
	if err != nil {
		return nil, err
	}
	if emb != nil {
		ix, err = s.indexes.get(ctx, cb.ID)
		if err != nil {
			return nil, err
		}
		if ix.Len() == 0 {
			reason = "no chunk has a vector yet"
		} else if vecs, err := emb.Embed(ctx, []string{query}); err != nil {
			reason = err.Error()
			s.log.Warn("knowledge query without vectors", "chatbot", cb.ID, "error", err)
		} else {
			qvec = vecs[0]
		}
	}
	if qvec == nil {
		out.FullText, out.Reason = true, reason
	}
	out.Results, err = s.rank(ctx, cb.ID, query, qvec, ix, set.MinSimilarity, limit)
	return out, err
}

// rank fuses the full-text candidates for query and, with a query vector,
// the vector candidates from ix.
func (s *Service) rank(ctx context.Context, chatbotID, query string, qvec []float32, ix *Index, minSim float64, limit int) ([]Result, error) {
	terms := Terms(query)
	// The vector scan runs while the database answers the full text.
	var hits []Hit
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		if qvec != nil {
			hits = ix.Search(qvec, rescored)
		}
	}()
	textSeqs, err := s.st.SearchKnowledgeText(ctx, chatbotID, terms, candidates)
	<-scanned
	if err != nil {
		return nil, err
	}
	score := map[int64]float64{}
	for rank, seq := range textSeqs {
		score[seq] += 1 / float64(rrfK+rank+1)
	}
	sim := map[int64]float64{}
	if qvec != nil {
		// The quantised scan's best are rescored with their exact vectors,
		// read with those of the full-text candidates.
		want := make([]int64, 0, len(hits)+len(textSeqs))
		for _, h := range hits {
			want = append(want, h.Seq)
		}
		want = append(want, textSeqs...)
		var buf []float32
		err := s.st.KnowledgeVectorsOf(ctx, chatbotID, want, func(seq int64, b []byte) {
			if buf = store.DecodeVector(buf[:0], b); len(buf) == len(qvec) {
				sim[seq] = float64(dot(qvec, buf))
			}
		})
		if err != nil {
			return nil, err
		}
		exact := hits[:0]
		for _, h := range hits {
			if v, ok := sim[h.Seq]; ok {
				exact = append(exact, Hit{Seq: h.Seq, Score: float32(v)})
			}
		}
		sort.Slice(exact, func(i, j int) bool {
			if exact[i].Score != exact[j].Score {
				return exact[i].Score > exact[j].Score
			}
			return exact[i].Seq < exact[j].Seq
		})
		for rank, h := range exact[:min(candidates, len(exact))] {
			score[h.Seq] += 1 / float64(rrfK+rank+1)
		}
	}
	seqs := make([]int64, 0, len(score))
	for seq := range score {
		seqs = append(seqs, seq)
	}
	chunks, err := s.st.KnowledgeChunks(ctx, chatbotID, seqs)
	if err != nil {
		return nil, err
	}
	var results []Result
	for _, c := range chunks {
		r := Result{Chunk: c, Score: score[c.Seq]}
		if qvec != nil {
			r.Similarity = sim[c.Seq]
		} else {
			r.Similarity = termShare(terms, c.Heading+" "+c.Content)
		}
		if r.Similarity >= minSim {
			results = append(results, r)
		}
	}
	sort.Slice(results, func(i, j int) bool {
		a, b := results[i], results[j]
		if a.Score != b.Score {
			return a.Score > b.Score
		}
		if a.Similarity != b.Similarity {
			return a.Similarity > b.Similarity
		}
		return a.Chunk.Seq < b.Chunk.Seq
	})
	if len(results) > limit {
		results = results[:limit]
	}
	return results, nil
}

// termShare is the share of terms that text contains as words.
func termShare(terms []string, text string) float64 {
	if len(terms) == 0 {
		return 0
	}
	words := map[string]bool{}
	for _, w := range Terms(text) {
		words[w] = true
	}
	n := 0
	for _, t := range terms {
		if words[t] {
			n++
		}
	}
	return float64(n) / float64(len(terms))
}

// Terms are the words of s worth searching for: lower-cased runs of
// letters and digits, without stop words and single characters, each once.
func Terms(s string) []string {
	seen := map[string]bool{}
	var out []string
	for _, w := range strings.FieldsFunc(strings.ToLower(s), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if len([]rune(w)) < 2 || stopWords[w] || seen[w] {
			continue
		}
		seen[w] = true
		out = append(out, w)
	}
	return out
}

// stopWords are English words too common to tell chunks apart; matching
// them would also make full-text search rank most of a large base.
var stopWords = func() map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(`a an and are as at be but by can do does for from had has have how i if in into is it its
		me my no not of on or our so than that the their them then there these they this to was we were what when where which
		who why will with you your yours about also any been being both did each few more most other same some such very
		would could should may might must shall up down out over under again once here all am just only own too`) {
		m[w] = true
	}
	return m
}()
