package fakeai

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
)

// modelCreated is a fixed timestamp so model listings are byte-for-byte stable.
const modelCreated = 1715367049

type model struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Created int64  `json:"created"`
	OwnedBy string `json:"owned_by"`
}

func newModel(id string) model {
	return model{ID: id, Object: "model", Created: modelCreated, OwnedBy: "system"}
}

func (s *Server) serveModels(w http.ResponseWriter, _ *http.Request, _ *Request) {
	data := make([]model, 0, len(s.models))
	for _, id := range s.models {
		data = append(data, newModel(id))
	}
	writeJSON(w, http.StatusOK, struct {
		Object string  `json:"object"`
		Data   []model `json:"data"`
	}{"list", data})
}

func (s *Server) serveModel(w http.ResponseWriter, r *http.Request, _ *Request) {
	id := strings.TrimPrefix(r.URL.Path, "/v1/models/")
	if !slices.Contains(s.models, id) {
		writeError(w, modelNotFound(id))
		return
	}
	writeJSON(w, http.StatusOK, newModel(id))
}

func modelNotFound(id string) apiError {
	return apiError{Status: http.StatusNotFound, Param: "model", Code: "model_not_found",
		Message: fmt.Sprintf("The model `%s` does not exist or you do not have access to it.", id)}
}

// checkModel enforces StrictModels.
func (s *Server) checkModel(id string) (apiError, bool) {
	if s.strict && !slices.Contains(s.models, id) {
		return modelNotFound(id), false
	}
	return apiError{}, true
}

// tokens is the fake tokenizer: a quarter token per character, at least one,
// so usage numbers are predictable in tests.
func tokens(chars int) int {
	return max(1, (chars+3)/4)
}
