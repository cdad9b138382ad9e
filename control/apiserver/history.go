package apiserver

import (
	"sync"

	"github.com/kybernetes/kybernetes/api"
)

// change is one committed change as the store watch delivered it.
type change struct {
	rev  uint64
	kind *api.Kind
	typ  string     // api.EventAdded, EventModified or EventDeleted
	obj  api.Object // after the change; for a delete, the last state
	prev api.Object // before the change; nil when unknown or added
	raw  []byte     // obj's JSON
}

// history keeps the last committed changes of every kind in order, so that
// a watch resumes from a resourceVersion without a gap (Kubernetes' watch
// cache). Safe for concurrent use.
type history struct {
	mu   sync.Mutex
	buf  []change // ring of cap size
	head int      // index of the oldest change
	n    int
	// floor is the revision after which every change is held: a watch
	// from rv >= floor misses nothing.
	floor uint64
	last  uint64 // revision of the last change, or the synced revision
	wake  chan struct{}
	ready bool
}

func newHistory(size int) *history {
	return &history{buf: make([]change, size), wake: make(chan struct{})}
}

// start marks the revision the store watch synced at: history begins there.
func (h *history) start(rev uint64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ready {
		h.floor, h.last, h.ready = rev, rev, true
	}
}

// add appends a change and wakes every waiting watch.
func (h *history) add(c change) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c.rev <= h.last {
		return // a restarted store watch repeating what was seen
	}
	if h.n == len(h.buf) {
		h.floor = h.buf[h.head].rev
		h.buf[h.head] = change{}
		h.head = (h.head + 1) % len(h.buf)
		h.n--
	}
	h.buf[(h.head+h.n)%len(h.buf)] = c
	h.n++
	h.last = c.rev
	close(h.wake)
	h.wake = make(chan struct{})
}

// since returns the changes after rev (at most max), the revision the
// caller has then seen everything up to, and a channel closed on the next
// add. It fails with 410 Expired when changes after rev were dropped.
func (h *history) since(rev uint64, max int) ([]change, uint64, <-chan struct{}, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if rev < h.floor {
		return nil, 0, nil, api.NewExpired(rev, h.floor)
	}
	if rev >= h.last {
		return nil, max64(rev, h.last), h.wake, nil
	}
	// Binary search the ring for the first change after rev.
	lo, hi := 0, h.n
	for lo < hi {
		m := (lo + hi) / 2
		if h.buf[(h.head+m)%len(h.buf)].rev <= rev {
			lo = m + 1
		} else {
			hi = m
		}
	}
	k := min(h.n-lo, max)
	out := make([]change, k)
	for i := range k {
		out[i] = h.buf[(h.head+lo+i)%len(h.buf)]
	}
	upTo := h.last
	if lo+k < h.n {
		upTo = out[k-1].rev
	}
	return out, upTo, h.wake, nil
}

// floorRev returns the revision after which the history holds every change.
func (h *history) floorRev() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.floor
}

// lastRev returns the revision of the last change held.
func (h *history) lastRev() uint64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

func max64(a, b uint64) uint64 { return max(a, b) }
