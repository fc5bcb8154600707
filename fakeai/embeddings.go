package fakeai

import (
	"encoding/base64"
	"encoding/binary"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
	"unicode"
)

// Embed is the fake's embedding of text in dims dimensions: hashed word
// features (each word adds ±1 to one coordinate chosen by its hash), then
// normalised. Texts that share words are similar, texts that share none
// are nearly orthogonal, and the same text always gets the same vector —
// enough for retrieval tests to rank the right passage first.
func Embed(text string, dims int) []float32 {
	v := make([]float32, dims)
	for _, w := range strings.FieldsFunc(strings.ToLower(text), func(r rune) bool {
		return !unicode.IsLetter(r) && !unicode.IsDigit(r)
	}) {
		if len(w) < 2 || embedStop[w] {
			continue
		}
		w = strings.TrimSuffix(w, "s") // plurals meet their singulars
		h := fnv.New64a()
		h.Write([]byte(w))
		x := h.Sum64()
		sign := float32(1)
		if x>>63 == 1 {
			sign = -1
		}
		v[x%uint64(dims)] += sign
	}
	var sum float64
	for _, f := range v {
		sum += float64(f) * float64(f)
	}
	if sum > 0 {
		inv := float32(1 / math.Sqrt(sum))
		for i := range v {
			v[i] *= inv
		}
	}
	return v
}

var embedStop = map[string]bool{"the": true, "a": true, "an": true, "and": true, "or": true, "of": true, "to": true,
	"is": true, "are": true, "in": true, "on": true, "for": true, "it": true, "be": true, "do": true, "does": true,
	"what": true, "how": true, "with": true, "this": true, "that": true, "can": true, "my": true, "your": true, "you": true}

// defaultDims are the native dimensions of OpenAI's embedding models.
func defaultDims(model string) int {
	if strings.Contains(model, "large") {
		return 3072
	}
	return 1536
}

func (s *Server) serveEmbeddings(w http.ResponseWriter, r *http.Request, req *Request) {
	if req.Body == nil {
		writeError(w, apiError{Status: http.StatusBadRequest, Message: "We could not parse the JSON body of your request."})
		return
	}
	model, _ := req.Body["model"].(string)
	s.update(req, func(q *Request) { q.Model = model })
	var inputs []string
	switch in := req.Body["input"].(type) {
	case string:
		inputs = []string{in}
	case []any:
		for _, x := range in {
			str, ok := x.(string)
			if !ok {
				writeError(w, apiError{Status: http.StatusBadRequest, Param: "input", Message: "input must be a string or an array of strings"})
				return
			}
			inputs = append(inputs, str)
		}
	}
	switch {
	case model == "":
		writeError(w, missingParam("model"))
		return
	case len(inputs) == 0:
		writeError(w, missingParam("input"))
		return
	case len(inputs) > 2048:
		writeError(w, apiError{Status: http.StatusBadRequest, Param: "input", Message: "'$.input' is too long. Maximum length is 2048"})
		return
	}
	if e, ok := s.checkModel(model); !ok {
		writeError(w, e)
		return
	}
	dims := defaultDims(model)
	if d, ok := req.Body["dimensions"].(float64); ok && d > 0 {
		dims = int(d)
	}
	if _, ok := s.answer(w, r, &s.embeddings, req); !ok {
		return
	}
	base64Format := req.Body["encoding_format"] == "base64"
	data := make([]map[string]any, len(inputs))
	chars := 0
	for i, in := range inputs {
		chars += len(in)
		vec := Embed(in, dims)
		var emb any = vec
		if base64Format {
			b := make([]byte, 4*len(vec))
			for j, f := range vec {
				binary.LittleEndian.PutUint32(b[4*j:], math.Float32bits(f))
			}
			emb = base64.StdEncoding.EncodeToString(b)
		}
		data[i] = map[string]any{"object": "embedding", "index": i, "embedding": emb}
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"object": "list", "data": data, "model": model,
		"usage": map[string]int{"prompt_tokens": tokens(chars), "total_tokens": tokens(chars)},
	})
}
