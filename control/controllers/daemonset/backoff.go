package daemonset

import (
	"sync"
	"time"
)

// failBackoff spaces out the replacement of daemon pods that keep failing
// on one node, as Kubernetes' failedPodsBackoff (1 s doubling to 15 min):
// a node that rejects a daemon must not make the controller and the node
// fight in a hot loop. Safe for concurrent use.
type failBackoff struct {
	mu      sync.Mutex
	initial time.Duration
	max     time.Duration
	entries map[string]backoffEntry
}

type backoffEntry struct {
	last  time.Time
	delay time.Duration
}

func newFailBackoff(initial, max time.Duration) *failBackoff {
	return &failBackoff{initial: initial, max: max, entries: map[string]backoffEntry{}}
}

// left returns how long key is still in back-off at now (0: not).
func (b *failBackoff) left(key string, now time.Time) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	if !ok {
		return 0
	}
	if d := e.last.Add(e.delay).Sub(now); d > 0 {
		return d
	}
	return 0
}

// next records a failure of key at now: the first (or the first after a
// quiet spell of twice the maximum) waits initial, each further one twice
// the last, up to max.
func (b *failBackoff) next(key string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.entries[key]
	switch {
	case !ok || now.Sub(e.last) > 2*b.max:
		e.delay = b.initial
	default:
		e.delay = min(2*e.delay, b.max)
	}
	e.last = now
	b.entries[key] = e
	// Forget entries quiet for long, so the map does not grow forever.
	for k, o := range b.entries {
		if now.Sub(o.last) > 2*b.max {
			delete(b.entries, k)
		}
	}
}
