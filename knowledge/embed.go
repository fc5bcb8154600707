package knowledge

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Embedding defaults of a chatbot that sets none.
const (
	DefaultEmbeddingModel = "text-embedding-3-small"
	// DefaultDimensions shortens text-embedding-3 vectors (which keep most
	// of their quality when cut, by design) to a third: the index is three
	// times smaller and searched three times faster (BENCHMARKS.md).
	DefaultDimensions = 512
)

// embedBatch is how many texts go in one embeddings request: well under
// the API's 2,048 inputs and 300,000 tokens per request for ~500-token
// chunks.
const embedBatch = 96

// Embedder turns texts into unit vectors with one credential's client.
type Embedder struct {
	Client     *openai.Client
	Model      string
	Dimensions int           // 0 leaves the model's own
	RetryBase  time.Duration // first delay between attempts; 0 means 500 ms
}

// EmbedError is a failed embeddings call, worded for the user: the
// provider's HTTP status, never its message (which may quote the key).
type EmbedError struct {
	Status int // 0 when the provider was not reached or timed out
	Err    error
}

func (e *EmbedError) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("the embedding model %s", httpStatus(e.Status))
	}
	if errors.Is(e.Err, context.DeadlineExceeded) {
		return "the embedding model did not answer in time"
	}
	return "the embedding model could not be reached"
}

func (e *EmbedError) Unwrap() error { return e.Err }

func httpStatus(code int) string {
	return fmt.Sprintf("answered HTTP %d %s", code, http.StatusText(code))
}

// Embed returns one unit vector per text, in order, in batches; each batch
// is tried up to three times after rate limits, server errors and
// timeouts.
func (e *Embedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, 0, len(texts))
	for start := 0; start < len(texts); start += embedBatch {
		batch := texts[start:min(start+embedBatch, len(texts))]
		vecs, err := e.embedBatch(ctx, batch)
		if err != nil {
			return nil, err
		}
		out = append(out, vecs...)
	}
	return out, nil
}

func (e *Embedder) embedBatch(ctx context.Context, batch []string) ([][]float32, error) {
	base := e.RetryBase
	if base <= 0 {
		base = 500 * time.Millisecond
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return nil, ctx.Err()
			case <-time.After(base << (attempt - 1)):
			}
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		resp, err := e.Client.CreateEmbeddings(cctx, openai.EmbeddingRequest{
			Input: batch, Model: openai.EmbeddingModel(e.Model), Dimensions: e.Dimensions,
		})
		cancel()
		if err == nil {
			if len(resp.Data) != len(batch) {
				return nil, &EmbedError{Err: fmt.Errorf("%d embeddings for %d inputs", len(resp.Data), len(batch))}
			}
			vecs := make([][]float32, len(batch))
			for _, d := range resp.Data {
				if d.Index < 0 || d.Index >= len(batch) {
					return nil, &EmbedError{Err: fmt.Errorf("embedding index %d out of range", d.Index)}
				}
				vecs[d.Index] = Normalize(d.Embedding)
			}
			return vecs, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		status := providerStatus(err)
		lastErr = &EmbedError{Status: status, Err: err}
		if status != 0 && status != http.StatusTooManyRequests && status < 500 {
			break // the request itself is wrong: key, model, input
		}
	}
	return nil, lastErr
}

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

// Normalize scales v to unit length in place (so that a dot product is the
// cosine) and returns it.
func Normalize(v []float32) []float32 {
	var sum float64
	for _, f := range v {
		sum += float64(f) * float64(f)
	}
	if sum == 0 {
		return v
	}
	inv := float32(1 / math.Sqrt(sum))
	for i := range v {
		v[i] *= inv
	}
	return v
}
