//go:build amd64 && !purego

package knowledge

import "golang.org/x/sys/cpu"

var haveAVX2 = cpu.X86.HasAVX2

// dotI8AVX2 is the dot product of n int16s at q and n int8s at c, n a
// multiple of 16 (index_amd64.s).
//
//go:noescape
func dotI8AVX2(q *int16, c *int8, n int) int32

// dotI8 is the dot product of the quantised query q and the codes c.
func dotI8(q []int16, c []int8) int32 {
	c = c[:len(q)]
	n := len(q) &^ 15
	if !haveAVX2 || n == 0 {
		return dotI8Go(q, c)
	}
	s := dotI8AVX2(&q[0], &c[0], n)
	if n < len(q) {
		s += dotI8Go(q[n:], c[n:])
	}
	return s
}
