package store

// API SKELETON written by the lead so that other packages compile against it.
// The store owner replaces every panic("unimplemented") with the real thing and
// keeps these signatures (extend them if needed; tell the lead about changes).

import (
	"context"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
)

// Config configures the object store.
type Config struct {
	// Bucket is the KV bucket of API objects; default "kyb-objects".
	Bucket string
	// Replicas is the bucket's replica count (3 on a 3-server cluster); default 1.
	Replicas int
	// Logger receives the store's logs; default slog.Default().
	Logger *slog.Logger
}

// Store is a typed store of API objects over one JetStream KV bucket. It is
// safe for concurrent use.
type Store struct{}

// Open creates (or opens) the bucket and returns a Store over it.
func Open(ctx context.Context, js jetstream.JetStream, cfg Config) (*Store, error) {
	panic("unimplemented")
}

// ListOptions narrows a List.
type ListOptions struct {
	// Namespace limits to one namespace; "" means every namespace.
	Namespace string
	// Labels filters by label selector; nil means everything.
	Labels labels.Selector
	// Fields filters by spec.nodeName, metadata.name, metadata.namespace,
	// status.phase; nil means everything.
	Fields fields.Selector
}

// Create stores a new object. It fails with an api AlreadyExists Status when
// the key exists. On success obj is updated in place: uid, creationTimestamp,
// generation 1, resourceVersion (the KV revision).
func (s *Store) Create(ctx context.Context, obj api.Object) error { panic("unimplemented") }

// Get returns the object, or an api NotFound Status.
func (s *Store) Get(ctx context.Context, kind *api.Kind, namespace, name string) (api.Object, error) {
	panic("unimplemented")
}

// Update writes obj with compare-and-set on obj's resourceVersion: a stale
// one fails with an api Conflict Status, a missing object with NotFound.
// uid and creationTimestamp are kept from the stored object; generation grows
// by one when spec changed. On success obj is updated in place.
func (s *Store) Update(ctx context.Context, obj api.Object) error { panic("unimplemented") }

// Delete removes the object and returns its last stored value. A non-empty
// resourceVersion is a precondition (Conflict when stale).
func (s *Store) Delete(ctx context.Context, kind *api.Kind, namespace, name, resourceVersion string) (api.Object, error) {
	panic("unimplemented")
}

// List returns the objects of kind matching opts, and the revision they were read at.
func (s *Store) List(ctx context.Context, kind *api.Kind, opts ListOptions) ([]api.Object, uint64, error) {
	panic("unimplemented")
}

// EventType is the type of a watch event; zero is unset.
type EventType int

// Watch event types.
const (
	Added EventType = iota + 1
	Modified
	Deleted
	// Synced marks the end of the initial state of a watch from revision 0.
	Synced
)

// Event is one change seen by a watch. For Deleted, Object is the last value
// before deletion. For Synced, Object is nil.
type Event struct {
	Type     EventType
	Object   api.Object
	Revision uint64
}

// Watch streams changes to objects of kind (every kind when nil) until ctx
// ends. From revision 0 it first sends every current object as Added, then
// Synced, then changes; from revision N it sends every change after N, with
// no gap, then Synced. The channel closes when ctx ends or the watch fails.
func (s *Store) Watch(ctx context.Context, kind *api.Kind, fromRevision uint64) (<-chan Event, error) {
	panic("unimplemented")
}

// Heartbeats is a KV bucket of node liveness keys with a per-key TTL, so a
// node's liveness never rewrites its Node object. Safe for concurrent use.
type Heartbeats struct{}

// OpenHeartbeats creates (or opens) the heartbeat bucket; a key not beaten
// within ttl expires.
func OpenHeartbeats(ctx context.Context, js jetstream.JetStream, ttl time.Duration) (*Heartbeats, error) {
	panic("unimplemented")
}

// Beat records that node is alive at t.
func (h *Heartbeats) Beat(ctx context.Context, node string, t time.Time) error { panic("unimplemented") }

// Last returns the time of node's last live beat, or false when it has expired or never beat.
func (h *Heartbeats) Last(ctx context.Context, node string) (time.Time, bool, error) {
	panic("unimplemented")
}

// HeartbeatEvent reports a node's beat (Alive) or its expiry (!Alive).
type HeartbeatEvent struct {
	Node  string
	Alive bool
	Time  time.Time
}

// Watch streams beats and expiries until ctx ends; it starts with the current keys.
func (h *Heartbeats) Watch(ctx context.Context) (<-chan HeartbeatEvent, error) {
	panic("unimplemented")
}
