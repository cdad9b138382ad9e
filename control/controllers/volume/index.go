package volume

import (
	"sync"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
)

// claimIndex maps a claim (namespace/name) to the volumes whose claimRef
// names it, kept by the volume informer's handler, so that a claim's event
// or a pod's finds its volumes without scanning every volume. Safe for
// concurrent use.
type claimIndex struct {
	mu sync.Mutex
	m  map[framework.Key]map[string]bool
}

func newClaimIndex() *claimIndex { return &claimIndex{m: map[framework.Key]map[string]bool{}} }

func claimKeyOf(pv *api.PersistentVolume) (framework.Key, bool) {
	if r := pv.Spec.ClaimRef; r != nil {
		return framework.Key{Namespace: r.Namespace, Name: r.Name}, true
	}
	return framework.Key{}, false
}

func (x *claimIndex) set(old, pv *api.PersistentVolume) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old != nil {
		if k, ok := claimKeyOf(old); ok {
			delete(x.m[k], old.Name)
			if len(x.m[k]) == 0 {
				delete(x.m, k)
			}
		}
	}
	if pv != nil {
		if k, ok := claimKeyOf(pv); ok {
			if x.m[k] == nil {
				x.m[k] = map[string]bool{}
			}
			x.m[k][pv.Name] = true
		}
	}
}

// volumes returns the names of the volumes whose claimRef names k.
func (x *claimIndex) volumes(k framework.Key) []string {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]string, 0, len(x.m[k]))
	for n := range x.m[k] {
		out = append(out, n)
	}
	return out
}

// handler keeps the index from the volume informer.
func (x *claimIndex) handler() framework.Handler {
	return framework.Handler{
		OnAdd:    func(obj api.Object) { x.set(nil, obj.(*api.PersistentVolume)) },
		OnUpdate: func(old, obj api.Object) { x.set(old.(*api.PersistentVolume), obj.(*api.PersistentVolume)) },
		OnDelete: func(obj api.Object) { x.set(obj.(*api.PersistentVolume), nil) },
	}
}
