package api

import (
	"fmt"
	"strconv"

	"github.com/wagate/wagate"
)

// Page sizes of paginated lists.
const (
	DefaultPageSize = 50
	MaxPageSize     = 200
)

// PageLimit reads a list's limit query parameter: DefaultPageSize when
// empty, from 1 to MaxPageSize otherwise.
func PageLimit(v string) (int, error) {
	if v == "" {
		return DefaultPageSize, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > MaxPageSize {
		return 0, wagate.Invalid("limit", fmt.Sprintf("must be an integer from 1 to %d", MaxPageSize))
	}
	return n, nil
}
