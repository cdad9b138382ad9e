package framework

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// Watcher is what an Informer reads: control/store.Store's Watch.
type Watcher interface {
	Watch(ctx context.Context, kind *api.Kind, fromRevision uint64) (<-chan store.Event, error)
}

// Handler receives an Informer's changes, after its cache has applied
// them, one at a time on the informer's goroutine: it must be quick (add
// keys to a queue) and must not change the objects. OnUpdate gets the
// cached object before the change. A nil func is skipped.
type Handler struct {
	OnAdd    func(obj api.Object)
	OnUpdate func(old, obj api.Object)
	OnDelete func(obj api.Object)
}

// Informer is the one reflector of a kind: a watch of the store that feeds
// an in-memory cache of every object of the kind, event handlers, and a
// synced signal. After an error it watches again from the last revision it
// applied, never from the start, and never lists the bucket in a loop.
// Objects it hands out (Lister, handlers) are shared with the cache: never
// change them; copy with api.DeepCopy first. Safe for concurrent use.
type Informer struct {
	w       Watcher
	kind    *api.Kind
	log     *slog.Logger
	backoff retry.Backoff

	// hmu orders changes and handler calls, and handler registration
	// (which replays the cache) with both.
	hmu      sync.Mutex
	handlers []Handler

	mu     sync.RWMutex
	byNS   map[string]map[string]api.Object // namespace -> name -> object
	rev    uint64                           // last revision applied
	synced chan struct{}
	once   sync.Once
}

// NewInformer returns an informer of kind over w; Run starts it.
func NewInformer(w Watcher, kind *api.Kind, log *slog.Logger) *Informer {
	if log == nil {
		log = slog.Default()
	}
	return &Informer{
		w:       w,
		kind:    kind,
		log:     log.With("informer", kind.Plural),
		backoff: retry.DefaultWatch,
		byNS:    make(map[string]map[string]api.Object),
		synced:  make(chan struct{}),
	}
}

// Kind returns the informer's kind.
func (i *Informer) Kind() *api.Kind { return i.kind }

// AddHandler registers h. Objects already in the cache are replayed to
// h.OnAdd first, so a handler added after the start misses nothing.
func (i *Informer) AddHandler(h Handler) {
	i.hmu.Lock()
	defer i.hmu.Unlock()
	if h.OnAdd != nil {
		for _, obj := range i.Lister().List("", nil) {
			h.OnAdd(obj)
		}
	}
	i.handlers = append(i.handlers, h)
}

// Synced is closed once the cache holds the whole initial state.
func (i *Informer) Synced() <-chan struct{} { return i.synced }

// HasSynced reports whether Synced is closed.
func (i *Informer) HasSynced() bool {
	select {
	case <-i.synced:
		return true
	default:
		return false
	}
}

// Revision returns the last store revision the cache applied.
func (i *Informer) Revision() uint64 {
	i.mu.RLock()
	defer i.mu.RUnlock()
	return i.rev
}

// Lister returns the read side of the cache.
func (i *Informer) Lister() Lister { return Lister{i: i} }

// Run watches until ctx ends and returns nil then. A watch that cannot
// start, or ends early (a lost connection), is started again from the last
// applied revision after a back-off (retry.DefaultWatch).
func (i *Informer) Run(ctx context.Context) error {
	wait := retry.NewTimer(i.backoff)
	for ctx.Err() == nil {
		from := i.Revision()
		ch, err := i.w.Watch(ctx, i.kind, from)
		if err != nil {
			i.log.Error("watch; retrying", "from", from, "err", err)
		} else {
			if i.consume(ctx, ch) {
				wait.Reset()
			}
			if ctx.Err() != nil {
				return nil
			}
			i.log.Warn("watch ended; resuming", "from", i.Revision())
		}
		t := time.NewTimer(wait.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
	return nil
}

// consume applies a watch's events until it ends; it reports whether any
// arrived.
func (i *Informer) consume(ctx context.Context, ch <-chan store.Event) bool {
	any := false
	for ev := range ch {
		any = true
		i.apply(ev)
	}
	return any
}

// apply applies one event to the cache and then to the handlers.
func (i *Informer) apply(ev store.Event) {
	i.hmu.Lock()
	defer i.hmu.Unlock()
	if ev.Type == store.Synced {
		i.mu.Lock()
		i.rev = max(i.rev, ev.Revision)
		i.mu.Unlock()
		i.once.Do(func() { close(i.synced) })
		return
	}
	if ev.Object == nil {
		return
	}
	m := ev.Object.GetObjectMeta()
	i.mu.Lock()
	i.rev = max(i.rev, ev.Revision)
	ns := i.byNS[m.Namespace]
	old := ns[m.Name]
	if old != nil && revision(old) >= ev.Revision && ev.Revision != 0 {
		i.mu.Unlock()
		return // applied already (a watch resumed over it)
	}
	if ev.Type == store.Deleted {
		if old != nil {
			delete(ns, m.Name)
			if len(ns) == 0 {
				delete(i.byNS, m.Namespace)
			}
		}
	} else {
		if ns == nil {
			ns = make(map[string]api.Object)
			i.byNS[m.Namespace] = ns
		}
		ns[m.Name] = ev.Object
	}
	i.mu.Unlock()
	for _, h := range i.handlers {
		switch {
		case ev.Type == store.Deleted:
			if old != nil && h.OnDelete != nil {
				h.OnDelete(ev.Object)
			}
		case old == nil:
			if h.OnAdd != nil {
				h.OnAdd(ev.Object)
			}
		default:
			if h.OnUpdate != nil {
				h.OnUpdate(old, ev.Object)
			}
		}
	}
}

// revision parses an object's resourceVersion; 0 when unset.
func revision(obj api.Object) uint64 {
	r, _ := strconv.ParseUint(obj.GetObjectMeta().ResourceVersion, 10, 64)
	return r
}

// Lister reads an Informer's cache. The objects it returns are the cache's
// own: callers must not change them (copy with api.DeepCopy first). Safe
// for concurrent use.
type Lister struct{ i *Informer }

// Get returns the cached object, or false when the cache has none.
func (l Lister) Get(namespace, name string) (api.Object, bool) {
	l.i.mu.RLock()
	defer l.i.mu.RUnlock()
	obj, ok := l.i.byNS[namespace][name]
	return obj, ok
}

// List returns the cached objects in namespace ("" for every namespace;
// cluster-scoped objects have namespace "") that match sel (nil for
// every object), in no particular order.
func (l Lister) List(namespace string, sel labels.Selector) []api.Object {
	l.i.mu.RLock()
	defer l.i.mu.RUnlock()
	var out []api.Object
	add := func(m map[string]api.Object) {
		for _, obj := range m {
			if sel == nil || sel.Matches(labels.Set(obj.GetObjectMeta().Labels)) {
				out = append(out, obj)
			}
		}
	}
	if namespace != "" || !l.i.kind.Namespaced {
		add(l.i.byNS[namespace])
		return out
	}
	for _, m := range l.i.byNS {
		add(m)
	}
	return out
}

// Count returns how many objects the cache holds in namespace ("" for
// every namespace), without copying them.
func (l Lister) Count(namespace string) int {
	l.i.mu.RLock()
	defer l.i.mu.RUnlock()
	if namespace != "" || !l.i.kind.Namespaced {
		return len(l.i.byNS[namespace])
	}
	n := 0
	for _, m := range l.i.byNS {
		n += len(m)
	}
	return n
}
