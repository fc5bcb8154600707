package knowledge

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestDotI8 checks the assembly dot product against the plain one, at
// lengths around its 16- and 32-wide steps and at the extremes of both
// types.
func TestDotI8(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{1, 3, 15, 16, 17, 31, 32, 33, 48, 100, 512, 1536} {
		q, c := make([]int16, n), make([]int8, n)
		for i := range q {
			q[i], c[i] = int16(r.IntN(65535)-32767), int8(r.IntN(255)-127)
		}
		if got, want := dotI8(q, c), dotI8Go(q, c); got != want {
			t.Errorf("n=%d: dotI8 = %d, want %d", n, got, want)
		}
		for i := range q {
			q[i], c[i] = int16(min(32767, math.MaxInt32/(127*n))), -127
		}
		if got, want := dotI8(q, c), dotI8Go(q, c); got != want {
			t.Errorf("n=%d extremes: dotI8 = %d, want %d", n, got, want)
		}
	}
}
