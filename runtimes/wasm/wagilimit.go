package wasm

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
)

// slots is a counting semaphore with a bounded queue: at most maxWait
// callers wait for a slot, each for a while; more are refused at once.
type slots struct {
	ch      chan struct{}
	waiting atomic.Int64
	maxWait int64
}

// newSlots makes n slots with a queue of queue waiters.
func newSlots(n, queue int) *slots {
	return &slots{ch: make(chan struct{}, n), maxWait: int64(queue)}
}

// acquire takes a slot, waiting up to wait (or until ctx ends) when none
// is free and the queue has room, and reports whether it got one.
func (s *slots) acquire(ctx context.Context, wait time.Duration) bool {
	select {
	case s.ch <- struct{}{}:
		return true
	default:
	}
	if s.waiting.Add(1) > s.maxWait {
		s.waiting.Add(-1)
		return false
	}
	defer s.waiting.Add(-1)
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s.ch <- struct{}{}:
		return true
	case <-t.C:
	case <-ctx.Done():
	}
	return false
}

func (s *slots) release() { <-s.ch }

// size is the number of slots.
func (s *slots) size() int { return cap(s.ch) }

// podSlots are the request slots of one pod, shared by its serving
// containers, counted so that the last one to stop drops them.
type podSlots struct {
	slots *slots
	users int
}

// podKey names a sandbox for podSlots.
func podKey(sb *runtimes.SandboxConfig) string {
	if sb.UID != "" {
		return sb.UID
	}
	return sb.Namespace + "/" + sb.Name
}

// podSlotsOf returns the request slots of a pod, making them: the pod's
// own cap (sb.WAGIMaxConcurrency) or the runtime's, with a queue of
// QueueFactor times as many; call the returned func when the container
// stops serving.
func (r *Runtime) podSlotsOf(sb *runtimes.SandboxConfig) (*slots, func()) {
	key := podKey(sb)
	r.mu.Lock()
	defer r.mu.Unlock()
	ps := r.pods[key]
	if ps == nil {
		n := r.cfg.HTTP.MaxConcurrent
		if sb.WAGIMaxConcurrency > 0 {
			n = sb.WAGIMaxConcurrency
		}
		ps = &podSlots{slots: newSlots(n, n*r.cfg.HTTP.QueueFactor)}
		r.pods[key] = ps
	}
	ps.users++
	return ps.slots, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if ps.users--; ps.users == 0 && r.pods[key] == ps {
			delete(r.pods, key)
		}
	}
}

// inflight counts the requests a container is serving, so that it ends
// only after the last one, and refuses new ones once it is draining.
type inflight struct {
	mu       sync.Mutex
	n        int
	draining bool
	idle     chan struct{}
}

// enter counts a request in; false when draining.
func (f *inflight) enter() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.draining {
		return false
	}
	f.n++
	return true
}

func (f *inflight) leave() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.n--; f.n == 0 && f.idle != nil {
		close(f.idle)
		f.idle = nil
	}
}

// drain refuses new requests and waits for those in flight.
func (f *inflight) drain() {
	f.mu.Lock()
	f.draining = true
	if f.n == 0 {
		f.mu.Unlock()
		return
	}
	idle := make(chan struct{})
	f.idle = idle
	f.mu.Unlock()
	<-idle
}
