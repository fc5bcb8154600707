//go:build !amd64 || purego

package knowledge

// dotI8 is the dot product of the quantised query q and the codes c.
func dotI8(q []int16, c []int8) int32 { return dotI8Go(q, c) }
