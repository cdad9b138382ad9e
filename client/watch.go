package client

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
)

// Event is one change seen by a watch.
type Event struct {
	// Type is api.EventAdded, api.EventModified or api.EventDeleted.
	Type   string
	Object api.Object
	// ResourceVersion is the revision of the change; "" for the ADDED
	// events of a watch's initial list.
	ResourceVersion string
}

// Watcher is a running watch (kyb.api.v1.watch). Its events arrive on
// Events, which closes when the watch ends; Err then says why.
type Watcher struct {
	events chan Event
	mu     sync.Mutex
	err    error
}

// Events returns the channel of events; it closes when the watch ends.
func (w *Watcher) Events() <-chan Event { return w.events }

// Err returns why the watch ended once Events is closed: nil when its
// context ended, else the error (a 410 Expired *api.Status when the server
// no longer holds the changes after the resourceVersion: list again).
func (w *Watcher) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// WatchFrom watches the objects req selects, filtered on the server: every
// change committed after req.ResourceVersion (none missed, none twice), or
// with no ResourceVersion the current objects as ADDED and then every
// change, until ctx ends or the watch fails. When the server ends a stream
// on its own the watch resumes from the last revision it saw, unseen by
// the caller. A kind that does not exist fails at once.
func (c *Client) WatchFrom(ctx context.Context, req api.WatchRequest) (*Watcher, error) {
	k, err := api.LookupKind(req.Kind)
	if err != nil {
		return nil, api.NewBadRequest("kind: %v", err)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encode watch request: %w", err)
	}
	w := &Watcher{events: make(chan Event, 64)}
	go func() {
		defer close(w.events)
		next := func(resume string) ([]byte, error) {
			req.ResourceVersion = resume
			return json.Marshal(req)
		}
		err := Stream(ctx, c.nc, c.streamIdle, api.SubjectWatch, body, next, func(m *nats.Msg) error {
			var we api.WatchEvent
			if err := json.Unmarshal(m.Data, &we); err != nil {
				return fmt.Errorf("watch %s: decode event: %w", k.Plural, err)
			}
			obj := k.New()
			if err := json.Unmarshal(we.Object, obj); err != nil {
				return fmt.Errorf("watch %s: decode %s: %w", k.Plural, k.Name, err)
			}
			select {
			case w.events <- Event{Type: we.Type, Object: obj, ResourceVersion: m.Header.Get(api.StreamSeqHeader)}:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
		if ctx.Err() != nil {
			err = nil
		}
		w.mu.Lock()
		w.err = err
		w.mu.Unlock()
	}()
	return w, nil
}

// Watch streams the changes to objects of kind in namespace ("" for all)
// committed from now on, until ctx ends or the watch fails; then the
// channel closes. It does not replay the current state: List first, then
// WatchFrom the list's resourceVersion to miss nothing.
func (c *Client) Watch(ctx context.Context, kind, namespace string) (<-chan Event, error) {
	k, err := api.LookupKind(kind)
	if err != nil {
		return nil, err
	}
	// The current revision, from the cheapest list.
	_, rv, err := c.ListRaw(ctx, api.ListRequest{Kind: k.Name, Namespace: namespace, AllNamespaces: namespace == "", Limit: 1})
	if err != nil {
		return nil, fmt.Errorf("watch %s: %w", k.Plural, err)
	}
	w, err := c.WatchFrom(ctx, api.WatchRequest{Kind: k.Name, Namespace: namespace, AllNamespaces: namespace == "", ResourceVersion: rv})
	if err != nil {
		return nil, err
	}
	return w.Events(), nil
}
