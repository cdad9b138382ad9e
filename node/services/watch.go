package services

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// Cache is a node's copy of the Services and EndpointSlices. The zero
// value is not usable: make one with NewCache. Safe for concurrent use.
type Cache struct {
	mu       sync.Mutex
	services map[string]*api.Service
	slices   map[string]*api.EndpointSlice // by slice key
	synced   bool
	syncedCh chan struct{} // closed at the first EndList
	snap     *State        // nil when changed since the last State
	subs     []chan struct{}
	// listing holds the keys seen since a new list began; nil otherwise.
	listing map[string]bool
}

// NewCache returns an empty cache.
func NewCache() *Cache {
	return &Cache{services: map[string]*api.Service{}, slices: map[string]*api.EndpointSlice{}, syncedCh: make(chan struct{})}
}

// WaitSynced waits until the cache holds a first full list (its state is
// then the cluster's, or what it last was through an outage) or ctx ends.
func (c *Cache) WaitSynced(ctx context.Context) error {
	select {
	case <-c.syncedCh:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe returns a channel that receives (without blocking the cache,
// coalesced) after each change.
func (c *Cache) Subscribe() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan struct{}, 1)
	c.subs = append(c.subs, ch)
	return ch
}

// State returns the current snapshot.
func (c *Cache) State() *State {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap != nil {
		return c.snap
	}
	st := &State{Services: maps.Clone(c.services), Slices: map[string][]*api.EndpointSlice{}, Synced: c.synced}
	for _, sl := range c.slices {
		svc := sl.Labels[api.LabelServiceName]
		if svc == "" {
			continue
		}
		k := Key(sl.Namespace, svc)
		st.Slices[k] = append(st.Slices[k], sl)
	}
	for _, ss := range st.Slices {
		slices.SortFunc(ss, func(a, b *api.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	}
	c.snap = st
	return st
}

// changed drops the snapshot and wakes the subscribers; c.mu is held.
func (c *Cache) changed() {
	c.snap = nil
	for _, ch := range c.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Apply records one watch event: typ ADDED, MODIFIED or DELETED with a
// Service or EndpointSlice.
func (c *Cache) Apply(typ string, obj api.Object) {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := obj.GetObjectMeta()
	key := Key(m.Namespace, m.Name)
	switch o := obj.(type) {
	case *api.Service:
		if c.listing != nil {
			c.listing["svc/"+key] = true
		}
		if typ == api.EventDeleted {
			delete(c.services, key)
		} else {
			c.services[key] = o
		}
	case *api.EndpointSlice:
		if c.listing != nil {
			c.listing["eps/"+key] = true
		}
		if typ == api.EventDeleted {
			delete(c.slices, key)
		} else {
			c.slices[key] = o
		}
	default:
		return
	}
	c.changed()
}

// BeginList starts a new full list: what it does not name is dropped at
// EndList. Run calls both; a cache fed by hand (tests) may too.
func (c *Cache) BeginList() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listing = map[string]bool{}
}

// EndList drops what the list just ended did not hold and marks the cache
// synced.
func (c *Cache) EndList() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.listing != nil {
		for k := range c.services {
			if !c.listing["svc/"+k] {
				delete(c.services, k)
			}
		}
		for k := range c.slices {
			if !c.listing["eps/"+k] {
				delete(c.slices, k)
			}
		}
	}
	c.listing = nil
	if !c.synced {
		close(c.syncedCh)
	}
	c.synced = true
	c.changed()
}

// Run keeps the cache up to date from the node's services watch on nc
// (kyb.node.<node>.servicewatch) until ctx ends: a broken watch is listed
// again after a back-off. idle is the stream's silence limit (0: the
// client's default).
func (c *Cache) Run(ctx context.Context, nc *nats.Conn, node string, idle time.Duration, log *slog.Logger) {
	subject := api.NodeSubject(node, api.NodeVerbServiceWatch)
	fails := 0
	for ctx.Err() == nil {
		got := false
		c.BeginList()
		next := func(resume string) ([]byte, error) {
			return json.Marshal(api.ServicesWatchRequest{ResourceVersion: resume})
		}
		err := client.Stream(ctx, nc, idle, subject, []byte("{}"), next, func(m *nats.Msg) error {
			got = true
			return c.handle(m.Data)
		})
		if ctx.Err() != nil {
			return
		}
		if got {
			fails = 0
		}
		log.Warn("services watch ended; listing again", "err", err, "retry", fails)
		if retry.DefaultWatch.Wait(ctx, fails) != nil {
			return
		}
		fails++
	}
}

// handle applies one message of the watch.
func (c *Cache) handle(data []byte) error {
	var we api.WatchEvent
	if err := json.Unmarshal(data, &we); err != nil {
		return fmt.Errorf("services watch: decode event: %w", err)
	}
	if we.Type == api.EventSynced {
		c.EndList()
		return nil
	}
	var tm api.TypeMeta
	if err := json.Unmarshal(we.Object, &tm); err != nil {
		return fmt.Errorf("services watch: decode object: %w", err)
	}
	var obj api.Object
	switch tm.Kind {
	case "Service":
		obj = &api.Service{}
	case "EndpointSlice":
		obj = &api.EndpointSlice{}
	default:
		return nil // not ours
	}
	if err := json.Unmarshal(we.Object, obj); err != nil {
		return fmt.Errorf("services watch: decode %s: %w", tm.Kind, err)
	}
	c.Apply(we.Type, obj)
	return nil
}
