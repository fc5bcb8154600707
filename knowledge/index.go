package knowledge

import (
	"context"
	"runtime"
	"sort"
	"sync"

	"github.com/wagate/wagate/store"
)

// Index is the vectors of one chatbot's chunks in one contiguous array,
// searched exhaustively: exact, with no training, and fast enough at the
// sizes a chatbot's knowledge base reaches (BENCHMARKS.md).
type Index struct {
	Version int64
	Dims    int
	seqs    []int64
	vecs    []float32 // len(seqs) × Dims
	row     map[int64]int32
}

// Hit is a chunk found by its vector, with its cosine similarity.
type Hit struct {
	Seq   int64
	Score float32
}

// Len is the number of vectors in the index.
func (ix *Index) Len() int { return len(ix.seqs) }

// Bytes is the memory the index holds, roughly.
func (ix *Index) Bytes() int { return 4*len(ix.vecs) + 8*len(ix.seqs) + 24*len(ix.row) }

// Add appends a vector; vectors of another length than the first are
// skipped (chunks embedded before the chatbot's dimensions changed).
func (ix *Index) Add(seq int64, v []float32) {
	if ix.Dims == 0 {
		ix.Dims = len(v)
	}
	if len(v) != ix.Dims || len(v) == 0 {
		return
	}
	if ix.row == nil {
		ix.row = make(map[int64]int32)
	}
	ix.row[seq] = int32(len(ix.seqs))
	ix.seqs = append(ix.seqs, seq)
	ix.vecs = append(ix.vecs, v...)
}

// Similarity is the cosine of q and chunk seq's vector; false when the
// chunk has none here.
func (ix *Index) Similarity(q []float32, seq int64) (float32, bool) {
	r, ok := ix.row[seq]
	if !ok || len(q) != ix.Dims {
		return 0, false
	}
	return dot(q, ix.vecs[int(r)*ix.Dims:int(r+1)*ix.Dims]), true
}

// Search returns the k chunks most similar to the unit vector q, best
// first. Large indexes are scanned in parallel slices, one per processor.
func (ix *Index) Search(q []float32, k int) []Hit {
	if len(q) != ix.Dims || k <= 0 || len(ix.seqs) == 0 {
		return nil
	}
	n := len(ix.seqs)
	workers := min(runtime.GOMAXPROCS(0), max(1, n/parallelFrom))
	if workers == 1 {
		return ix.scan(q, k, 0, n)
	}
	parts := make([][]Hit, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { parts[w] = ix.scan(q, k, w*n/workers, (w+1)*n/workers) })
	}
	wg.Wait()
	var all []Hit
	for _, p := range parts {
		all = append(all, p...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].Score > all[j].Score })
	return all[:min(k, len(all))]
}

// parallelFrom is the index size from which a search is split: below it
// starting goroutines costs more than it saves.
const parallelFrom = 20_000

// scan returns the k best of rows [from, to), best first.
func (ix *Index) scan(q []float32, k, from, to int) []Hit {
	// top is kept sorted best first; k is small, so insertion beats a heap.
	top := make([]Hit, 0, k+1)
	d := ix.Dims
	for i := from; i < to; i++ {
		s := dot(q, ix.vecs[i*d:(i+1)*d])
		if len(top) == k && s <= top[k-1].Score {
			continue
		}
		j := sort.Search(len(top), func(j int) bool { return top[j].Score < s })
		top = append(top, Hit{})
		copy(top[j+1:], top[j:])
		top[j] = Hit{Seq: ix.seqs[i], Score: s}
		if len(top) > k {
			top = top[:k]
		}
	}
	return top
}

// dot is unrolled by four: the compiler does not vectorise it, and the
// independent sums let the processor overlap the multiplications.
func dot(a, b []float32) float32 {
	b = b[:len(a)]
	var s0, s1, s2, s3 float32
	i := 0
	for ; i+4 <= len(a); i += 4 {
		s0 += a[i] * b[i]
		s1 += a[i+1] * b[i+1]
		s2 += a[i+2] * b[i+2]
		s3 += a[i+3] * b[i+3]
	}
	for ; i < len(a); i++ {
		s0 += a[i] * b[i]
	}
	return s0 + s1 + s2 + s3
}

// indexes keeps one Index per chatbot, rebuilt when the chatbot's
// knowledge version in the database has moved on, so that a change made
// by another replica is seen by the next query.
type indexes struct {
	st *store.Store
	mu sync.Mutex
	m  map[string]*indexEntry
}

type indexEntry struct {
	mu sync.Mutex // held while building
	ix *Index
}

func (x *indexes) get(ctx context.Context, chatbotID string) (*Index, error) {
	version, err := x.st.KnowledgeVersion(ctx, chatbotID)
	if err != nil {
		return nil, err
	}
	x.mu.Lock()
	if x.m == nil {
		x.m = make(map[string]*indexEntry)
	}
	e := x.m[chatbotID]
	if e == nil {
		e = &indexEntry{}
		x.m[chatbotID] = e
	}
	x.mu.Unlock()

	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ix != nil && e.ix.Version == version {
		return e.ix, nil
	}
	ix := &Index{Version: version}
	var buf []float32
	err = x.st.KnowledgeVectors(ctx, chatbotID, func(seq int64, b []byte) {
		buf = store.DecodeVector(buf[:0], b)
		ix.Add(seq, buf)
	})
	if err != nil {
		return nil, err
	}
	e.ix = ix
	return ix, nil
}

// drop forgets a chatbot's index (its chatbot was deleted).
func (x *indexes) drop(chatbotID string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	delete(x.m, chatbotID)
}
