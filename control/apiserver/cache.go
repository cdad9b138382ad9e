package apiserver

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// entry is one cached object with its JSON encoding. Entries are immutable
// once stored: a change replaces the entry.
type entry struct {
	obj     api.Object
	raw     []byte
	rev     uint64
	deleted bool // tombstone: the object was deleted at or after rev
	node    string
	ns      string
}

// tombstoneTTL is how long a tombstone guards a deleted key against a late
// write-through of an older revision.
const tombstoneTTL = 30 * time.Second

type tombstone struct {
	kind, key string
	rev       uint64
	at        time.Time
}

// cache holds every object the store watch has delivered, plus the
// apiserver's own writes (write-through), so that a client reads its writes
// at once. Every update is guarded by revision: an older revision never
// replaces a newer one. Safe for concurrent use.
type cache struct {
	mu  sync.RWMutex
	rev uint64 // last revision delivered by the watch
	// revCh is closed when rev next grows; nil while no reader waits.
	revCh      chan struct{}
	objs       map[string]map[string]*entry
	podsByNode map[string]map[string]*entry
	tombs      []tombstone
	// sorted holds each kind's keys (tombstones included) in order; nil
	// when a key was added or dropped since it was last sorted.
	sorted map[string][]string
}

func newCache() *cache {
	c := &cache{
		objs:       map[string]map[string]*entry{},
		podsByNode: map[string]map[string]*entry{},
		sorted:     map[string][]string{},
	}
	for _, k := range api.Kinds() {
		c.objs[k.Name] = map[string]*entry{}
	}
	return c
}

// cacheKey is "<namespace>/<name>", "/<name>" for cluster-scoped objects, so
// that keys sort by namespace then name.
func cacheKey(ns, name string) string { return ns + "/" + name }

// encode sets the object's TypeMeta when empty and returns its JSON.
func encode(obj api.Object) ([]byte, error) {
	tm := obj.GetTypeMeta()
	api.KindOf(obj).FillTypeMeta(tm)
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", tm.Kind, obj.GetObjectMeta().Name, err)
	}
	return b, nil
}

// put stores obj at rev unless the cache already holds rev or newer for its
// key.
func (c *cache) put(kind *api.Kind, obj api.Object, raw []byte, rev uint64) {
	m := obj.GetObjectMeta()
	e := &entry{obj: obj, raw: raw, rev: rev, ns: m.Namespace}
	if p, ok := obj.(*api.Pod); ok {
		e.node = p.Spec.NodeName
	}
	key := cacheKey(m.Namespace, m.Name)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.objs[kind.Name][key]
	if old != nil && old.rev >= rev {
		return
	}
	if old == nil {
		delete(c.sorted, kind.Name)
	}
	if old != nil && old.deleted {
		old = nil
	}
	c.objs[kind.Name][key] = e
	if kind.Name == "Pod" {
		c.unindexPod(key, old)
		c.indexPod(key, e)
	}
}

// remove deletes the key as of rev (the revision of the delete, or for a
// write-through the last revision before it) and leaves a tombstone so that
// a late write of an older revision cannot resurrect it.
func (c *cache) remove(kind *api.Kind, ns, name string, rev uint64) {
	key := cacheKey(ns, name)
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.objs[kind.Name][key]
	if old != nil && old.rev > rev {
		return
	}
	if old == nil {
		delete(c.sorted, kind.Name)
	}
	if old != nil && old.deleted {
		old = nil
	}
	c.objs[kind.Name][key] = &entry{rev: rev, deleted: true, ns: ns}
	if kind.Name == "Pod" {
		c.unindexPod(key, old)
	}
	now := time.Now()
	c.tombs = append(c.tombs, tombstone{kind: kind.Name, key: key, rev: rev, at: now})
	for len(c.tombs) > 0 && now.Sub(c.tombs[0].at) > tombstoneTTL {
		t := c.tombs[0]
		c.tombs = c.tombs[1:]
		if e := c.objs[t.kind][t.key]; e != nil && e.deleted && e.rev == t.rev {
			delete(c.objs[t.kind], t.key)
			delete(c.sorted, t.kind)
		}
	}
}

func (c *cache) indexPod(key string, e *entry) {
	if e.node == "" {
		return
	}
	m := c.podsByNode[e.node]
	if m == nil {
		m = map[string]*entry{}
		c.podsByNode[e.node] = m
	}
	m[key] = e
}

func (c *cache) unindexPod(key string, old *entry) {
	if old == nil {
		return
	}
	if old.node == "" {
		return
	}
	if m := c.podsByNode[old.node]; m != nil {
		delete(m, key)
		if len(m) == 0 {
			delete(c.podsByNode, old.node)
		}
	}
}

// get returns the live cached entry, or nil.
func (c *cache) get(kind *api.Kind, ns, name string) *entry {
	c.mu.RLock()
	defer c.mu.RUnlock()
	e := c.objs[kind.Name][cacheKey(ns, name)]
	if e == nil || e.deleted {
		return nil
	}
	return e
}

// setRev records the last revision the watch delivered, and wakes the
// readers waiting for it.
func (c *cache) setRev(rev uint64) {
	c.mu.Lock()
	if rev > c.rev {
		c.rev = rev
		if c.revCh != nil {
			close(c.revCh)
			c.revCh = nil
		}
	}
	c.mu.Unlock()
}

// waitRev blocks until the watch has delivered revision rev (or later), or
// ctx ends (its error).
func (c *cache) waitRev(ctx context.Context, rev uint64) error {
	for {
		c.mu.Lock()
		if c.rev >= rev {
			c.mu.Unlock()
			return nil
		}
		if c.revCh == nil {
			c.revCh = make(chan struct{})
		}
		ch := c.revCh
		c.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// revision returns the last revision the watch delivered.
func (c *cache) revision() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.rev
}

// nodePods returns the raw pods bound to node, sorted by key, and the revision.
func (c *cache) nodePods(node string) ([][]byte, uint64) {
	c.mu.RLock()
	m := c.podsByNode[node]
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	out := make([][]byte, len(keys))
	for i, k := range keys {
		out[i] = m[k].raw
	}
	rev := c.rev
	c.mu.RUnlock()
	return out, rev
}

// podsOn calls yield with each live pod bound to node until it returns
// false. yield runs under the cache's read lock: it must be quick and must
// not call the cache.
func (c *cache) podsOn(node string, yield func(*api.Pod) bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	for _, e := range c.podsByNode[node] {
		if !yield(e.obj.(*api.Pod)) {
			return
		}
	}
}

// scan calls yield, in key order, with every live entry of kind in
// namespace ns ("" for all) whose key sorts after after, until yield
// returns false. yield runs under the cache's read lock: it must be quick
// and must not call the cache.
func (c *cache) scan(kind *api.Kind, ns, after string, yield func(key string, e *entry) bool) {
	prefix := ""
	if ns != "" {
		prefix = ns + "/"
	}
	c.mu.RLock()
	keys, ok := c.sorted[kind.Name]
	if !ok {
		c.mu.RUnlock()
		c.mu.Lock()
		if keys, ok = c.sorted[kind.Name]; !ok {
			keys = make([]string, 0, len(c.objs[kind.Name]))
			for k := range c.objs[kind.Name] {
				keys = append(keys, k)
			}
			slices.Sort(keys)
			c.sorted[kind.Name] = keys
		}
		c.mu.Unlock()
		c.mu.RLock()
		if cur, ok := c.sorted[kind.Name]; ok {
			keys = cur
		}
	}
	defer c.mu.RUnlock()
	from := prefix
	if after >= from {
		from = after + "\x00"
	}
	m := c.objs[kind.Name]
	i, _ := slices.BinarySearch(keys, from)
	for ; i < len(keys); i++ {
		k := keys[i]
		if !strings.HasPrefix(k, prefix) {
			break
		}
		e := m[k]
		if e == nil || e.deleted {
			continue
		}
		if !yield(k, e) {
			return
		}
	}
}

// rawAt returns the cached JSON of the object when the cache holds exactly
// revision rev of it (a write-through of this server), else nil.
func (c *cache) rawAt(kind *api.Kind, ns, name string, rev uint64) []byte {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if e := c.objs[kind.Name][cacheKey(ns, name)]; e != nil && !e.deleted && e.rev == rev {
		return e.raw
	}
	return nil
}
