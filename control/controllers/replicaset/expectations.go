package replicaset

import (
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/control/controllers/framework"
)

// expectations remembers, per owner key, the pods it created or deleted
// that the pod cache has not shown yet, as Kubernetes' controller
// expectations (by pod name rather than by count, so an event about some
// other pod never satisfies one). Safe for concurrent use.
type expectations struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[framework.Key]*expected
}

type expected struct {
	adds, dels map[string]bool
	at         time.Time
}

func newExpectations(ttl time.Duration, now func() time.Time) *expectations {
	return &expectations{ttl: ttl, now: now, m: make(map[framework.Key]*expected)}
}

func (e *expectations) entry(k framework.Key) *expected {
	x := e.m[k]
	if x == nil {
		x = &expected{adds: map[string]bool{}, dels: map[string]bool{}}
		e.m[k] = x
	}
	x.at = e.now()
	return x
}

// expectCreate records a pod about to be created.
func (e *expectations) expectCreate(k framework.Key, pod string) {
	e.mu.Lock()
	e.entry(k).adds[pod] = true
	e.mu.Unlock()
}

// expectDelete records a pod about to be deleted.
func (e *expectations) expectDelete(k framework.Key, pod string) {
	e.mu.Lock()
	e.entry(k).dels[pod] = true
	e.mu.Unlock()
}

// created marks a pod's creation seen (or abandoned).
func (e *expectations) created(k framework.Key, pod string) {
	e.mu.Lock()
	if x := e.m[k]; x != nil {
		delete(x.adds, pod)
	}
	e.mu.Unlock()
}

// deleted marks a pod's deletion seen (or abandoned).
func (e *expectations) deleted(k framework.Key, pod string) {
	e.mu.Lock()
	if x := e.m[k]; x != nil {
		delete(x.dels, pod)
	}
	e.mu.Unlock()
}

// satisfied reports whether every create and delete for k has been seen,
// or the oldest is older than the ttl (an event was lost: act again).
func (e *expectations) satisfied(k framework.Key) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := e.m[k]
	if x == nil || (len(x.adds) == 0 && len(x.dels) == 0) {
		return true
	}
	if e.now().Sub(x.at) > e.ttl {
		delete(e.m, k)
		return true
	}
	return false
}

// forget drops k's expectations (its owner is gone).
func (e *expectations) forget(k framework.Key) {
	e.mu.Lock()
	delete(e.m, k)
	e.mu.Unlock()
}
