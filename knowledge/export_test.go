package knowledge

import (
	"context"

	"github.com/wagate/wagate/store"
)

// IndexOf is the chatbot's current index, built or reused as a search would.
func (s *Service) IndexOf(ctx context.Context, chatbotID string) (*Index, error) {
	return s.indexes.get(ctx, chatbotID)
}

// RankWith is Search without the embeddings call: qvec stands for the
// query's embedding.
func (s *Service) RankWith(ctx context.Context, cb *store.Chatbot, query string, qvec []float32) ([]Result, error) {
	ix, err := s.indexes.get(ctx, cb.ID)
	if err != nil {
		return nil, err
	}
	set := SettingsOf(cb)
	return s.rank(ctx, cb.ID, query, qvec, ix, set.MinSimilarity, set.TopK)
}
