package daemonset

import (
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/control/controllers/framework"
)

// expectations holds, per DaemonSet, the pods it created or deleted that
// the pod cache has not shown yet, so that a reconcile on a stale cache
// does not create a second pod on a node or delete one twice. An entry
// older than ttl no longer holds the DaemonSet back.
type expectations struct {
	mu   sync.Mutex
	ttl  time.Duration
	now  func() time.Time
	pend map[framework.Key]map[string]pending
}

// pending is one create or delete not yet shown.
type pending struct {
	at  time.Time
	del bool
}

func newExpectations(ttl time.Duration, now func() time.Time) *expectations {
	return &expectations{ttl: ttl, now: now, pend: map[framework.Key]map[string]pending{}}
}

// expect records that pod name of key is being created (del false) or
// deleted.
func (e *expectations) expect(key framework.Key, name string, del bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.pend[key]
	if m == nil {
		m = map[string]pending{}
		e.pend[key] = m
	}
	m[name] = pending{at: e.now(), del: del}
}

// seen settles name when the cache shows it: a create as soon as the pod
// appears, a delete once it is marked or gone (gone true). A pod seen
// alive that was expected to be deleted stays pending.
func (e *expectations) seen(key framework.Key, name string, gone bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := e.pend[key]
	if m == nil {
		return
	}
	pe, ok := m[name]
	if !ok {
		return
	}
	if gone || !pe.del {
		delete(m, name)
	}
	if len(m) == 0 {
		delete(e.pend, key)
	}
}

// satisfied reports whether key has nothing pending younger than ttl.
func (e *expectations) satisfied(key framework.Key) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := e.now()
	for name, pe := range e.pend[key] {
		if now.Sub(pe.at) < e.ttl {
			return false
		}
		delete(e.pend[key], name)
	}
	return true
}

// forget drops what key expected (the DaemonSet is gone).
func (e *expectations) forget(key framework.Key) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.pend, key)
}
