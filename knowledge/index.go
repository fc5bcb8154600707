package knowledge

import (
	"context"
	"math"
	"runtime"
	"sort"
	"sync"

	"github.com/wagate/wagate/store"
)

// Index is the vectors of one chatbot's chunks in one contiguous array,
// searched exhaustively: exact, with no training, and fast enough at the
// sizes a chatbot's knowledge base reaches (BENCHMARKS.md).
//
// Vectors are held quantised, one int8 a dimension with a scale per
// vector (a quarter of float32's memory, and a quarter of the bytes a
// scan reads); the query keeps up to 16 bits. The scores a search returns
// are estimates within ~1e-3 of the cosine: callers that need the exact
// order rescore the best few from the float32 vectors in the database
// (Service.rank).
type Index struct {
	Version int64
	Dims    int
	seqs    []int64
	codes   []int8    // len(seqs) × Dims
	scales  []float32 // per vector: component i is scales[r] × codes[r×Dims+i]
}

// Hit is a chunk found by its vector, with its cosine similarity.
type Hit struct {
	Seq   int64
	Score float32
}

// Len is the number of vectors in the index.
func (ix *Index) Len() int { return len(ix.seqs) }

// Bytes is the memory the index holds, roughly.
func (ix *Index) Bytes() int { return len(ix.codes) + 4*len(ix.scales) + 8*len(ix.seqs) }

// Add appends a vector; vectors of another length than the first are
// skipped (chunks embedded before the chatbot's dimensions changed).
func (ix *Index) Add(seq int64, v []float32) {
	if ix.Dims == 0 {
		ix.Dims = len(v)
	}
	if len(v) != ix.Dims || len(v) == 0 {
		return
	}
	ix.seqs = append(ix.seqs, seq)
	n := len(ix.codes)
	ix.codes = append(ix.codes, make([]int8, len(v))...)
	ix.scales = append(ix.scales, quantise(ix.codes[n:], v, 127))
}

// quantise rounds v to whole multiples of the scale it returns, at most
// limit of them in absolute value, into dst.
func quantise[T int8 | int16](dst []T, v []float32, limit float32) float32 {
	var m float32
	for _, x := range v {
		m = max(m, x, -x)
	}
	if m == 0 {
		clear(dst)
		return 0
	}
	scale := m / limit
	for i, x := range v {
		dst[i] = T(int32(math.Round(float64(x / scale))))
	}
	return scale
}

// Search returns the k chunks most similar to the unit vector q, best
// first, with estimated scores. Large indexes are scanned in parallel
// slices, one per processor.
func (ix *Index) Search(q []float32, k int) []Hit {
	if len(q) != ix.Dims || k <= 0 || len(ix.seqs) == 0 {
		return nil
	}
	// The query's range keeps the int32 sums from overflowing at any
	// dimensions: |q·c| ≤ dims × limit × 127.
	qc := make([]int16, len(q))
	qs := quantise(qc, q, float32(min(32767, math.MaxInt32/(127*len(q)))))
	n := len(ix.seqs)
	workers := min(runtime.GOMAXPROCS(0), max(1, n/parallelFrom))
	if workers == 1 {
		return ix.scan(qc, qs, k, 0, n)
	}
	parts := make([][]Hit, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { parts[w] = ix.scan(qc, qs, k, w*n/workers, (w+1)*n/workers) })
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

// scan returns the k best of rows [from, to), best first, for the query
// quantised to qc with scale qs.
func (ix *Index) scan(qc []int16, qs float32, k, from, to int) []Hit {
	// top is kept sorted best first; k is small, so insertion beats a heap.
	top := make([]Hit, 0, k+1)
	d := ix.Dims
	for i := from; i < to; i++ {
		s := qs * ix.scales[i] * float32(dotI8(qc, ix.codes[i*d:(i+1)*d]))
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

// dotI8Go is dotI8 without assembly, unrolled by four.
func dotI8Go(q []int16, c []int8) int32 {
	c = c[:len(q)]
	var s0, s1, s2, s3 int32
	i := 0
	for ; i+4 <= len(q); i += 4 {
		s0 += int32(q[i]) * int32(c[i])
		s1 += int32(q[i+1]) * int32(c[i+1])
		s2 += int32(q[i+2]) * int32(c[i+2])
		s3 += int32(q[i+3]) * int32(c[i+3])
	}
	for ; i < len(q); i++ {
		s0 += int32(q[i]) * int32(c[i])
	}
	return s0 + s1 + s2 + s3
}

// dot is the dot product of two float32 vectors, unrolled by four.
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
