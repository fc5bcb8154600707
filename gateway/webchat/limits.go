package webchat

import (
	"sync"
	"time"
)

// Limits bound what the public routes take from one address and one
// visitor. Zero values take the defaults.
type Limits struct {
	PerIP      int // messages per minute from one IP address
	PerVisitor int // messages per minute from one visitor
	Sessions   int // visitor tokens minted per minute for one IP address
	MaxText    int // characters in one public message
}

func (l Limits) withDefaults() Limits {
	if l.PerIP <= 0 {
		l.PerIP = 60
	}
	if l.PerVisitor <= 0 {
		l.PerVisitor = 20
	}
	if l.Sessions <= 0 {
		l.Sessions = 30
	}
	if l.MaxText <= 0 {
		l.MaxText = 2000
	}
	return l
}

// limiter counts requests per key in fixed one-minute windows: cheap, and
// at worst twice the rate across a window's edge, which is enough to keep
// one address or visitor from running up a chatbot's model bill.
type limiter struct {
	limits Limits

	mu     sync.Mutex
	window time.Time
	counts map[string]int
}

func newLimiter(l Limits) *limiter {
	return &limiter{limits: l.withDefaults(), counts: map[string]int{}}
}

// allow counts one request under key and tells whether it is within n
// per minute.
func (l *limiter) allow(key string, n int, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if w := now.Truncate(time.Minute); !w.Equal(l.window) {
		l.window, l.counts = w, map[string]int{} // the old window's counts go with it
	}
	l.counts[key]++
	return l.counts[key] <= n
}
