package store

import (
	"context"
	"strconv"
	"strings"
	"sync"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
)

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

// String returns ADDED, MODIFIED, DELETED or SYNCED, as Kubernetes names
// watch events.
func (t EventType) String() string {
	switch t {
	case Added:
		return "ADDED"
	case Modified:
		return "MODIFIED"
	case Deleted:
		return "DELETED"
	case Synced:
		return "SYNCED"
	}
	return "EventType(" + strconv.Itoa(int(t)) + ")"
}

// Event is one change seen by a watch. For Deleted, Object is the last value
// before deletion. For Synced, Object is nil and Revision is the revision the
// initial state is complete at.
type Event struct {
	Type     EventType
	Object   api.Object
	Revision uint64
}

// watchBuffer is the capacity of a watch's event channel.
const watchBuffer = 1024

// Watch streams changes to objects of kind (every kind when nil) until ctx
// ends. From revision 0 it first sends every current object as Added, then
// Synced, then changes; from revision N it sends every change after N, with
// no gap, then Synced (even when there was none), then live changes. The
// channel closes when ctx ends or the watch fails.
//
// "No gap" has the meaning History 1 allows: the bucket keeps only the last
// revision of each key (and a delete marker for a deleted key), so a watch
// delivers, in revision order, the latest revision of every key changed
// after N; revisions superseded before the watch read them are not
// delivered. A cache built from List (or a watch from 0) and kept by the
// events therefore always converges to the exact stored state, and never
// misses a deletion.
//
// Each event's Revision is the KV revision of the change, and its object's
// resourceVersion equals it. A Deleted event carries the object's last value
// (kept in the delete marker) with resourceVersion set to the deletion's
// revision; a key deleted outside the store (without a value) yields an
// object holding only kind, name and namespace. Added vs Modified: an object
// created after the watch's start (or first seen by a watch from 0) is
// Added, a change to one that existed before is Modified.
//
// The watch reads the bucket's stream with an ordered consumer, which
// recreates itself after a reconnect, a server restart or a missed
// heartbeat, resuming after the last message it delivered: no event is lost
// or repeated. A slow reader blocks the watch (the server keeps the
// messages); it never drops events. It keeps a small map of the keys it has
// reported. Safe for concurrent use; each call is independent.
func (s *Store) Watch(ctx context.Context, kind *api.Kind, fromRevision uint64) (<-chan Event, error) {
	op := "watch " + kindName(kind)
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{s.subjectFilter(kind, "")},
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		InactiveThreshold: consumerIdle,
	}
	if fromRevision > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = fromRevision + 1
	}
	cons, err := s.js.OrderedConsumer(ctx, s.streamName, cfg)
	if err != nil {
		return nil, storeErr(op, err)
	}
	w := &watcher{
		s:        s,
		ctx:      ctx,
		kind:     kind,
		out:      make(chan Event, watchBuffer),
		fromZero: fromRevision == 0,
		from:     fromRevision,
		last:     fromRevision,
		known:    make(map[string]uint64),
	}
	cc, err := cons.Consume(w.handle, jetstream.PullMaxMessages(4096),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.Debug("watch consumer", "kind", kindName(kind), "err", err)
		}))
	if err != nil {
		return nil, storeErr(op, err)
	}
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		w.mu.Lock()
		w.markSynced()
		w.mu.Unlock()
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-cc.Closed():
			s.log.Warn("watch ended: consumer closed", "kind", kindName(kind))
		}
		cc.Stop()
		s.deleteConsumer(cons)
		w.mu.Lock()
		w.closed = true
		close(w.out)
		w.mu.Unlock()
	}()
	return w.out, nil
}

// watcher turns stream messages into events. Its mutex serialises the
// handler (a consumer reset can overlap two handler calls) and closing.
type watcher struct {
	s        *Store
	ctx      context.Context
	kind     *api.Kind
	out      chan Event
	fromZero bool
	from     uint64

	mu     sync.Mutex
	synced bool
	closed bool
	last   uint64            // revision of the last message handled
	known  map[string]uint64 // key -> creation revision of the object last reported
}

// send delivers ev unless the watch ended; mu held.
func (w *watcher) send(ev Event) bool {
	if w.closed {
		return false
	}
	select {
	case w.out <- ev:
		return true
	case <-w.ctx.Done():
		return false
	}
}

// markSynced sends Synced once; mu held.
func (w *watcher) markSynced() {
	if !w.synced {
		w.synced = true
		w.send(Event{Type: Synced, Revision: w.last})
	}
}

func (w *watcher) handle(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		w.s.log.Warn("watch: message without metadata", "subject", msg.Subject(), "err", err)
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	w.last = md.Sequence.Stream
	if ev, ok := w.event(msg, md.Sequence.Stream); ok {
		if !w.send(ev) {
			return
		}
	}
	if md.NumPending == 0 {
		w.markSynced()
	}
}

// event converts one message; ok is false for a message to skip. mu held.
func (w *watcher) event(msg jetstream.Msg, seq uint64) (Event, bool) {
	subject := msg.Subject()
	if !strings.HasPrefix(subject, w.s.prefix) {
		return Event{}, false
	}
	key := subject[len(w.s.prefix):]
	kindTok, namespace, name, ok := splitKey(key)
	if !ok {
		w.s.log.Warn("watch: skipping malformed key", "key", key)
		return Event{}, false
	}
	kind := w.kind
	if kind == nil {
		if kind = w.s.kindByToken(kindTok); kind == nil {
			w.s.log.Debug("watch: skipping key of unknown kind", "key", key)
			return Event{}, false
		}
	}
	h := msg.Headers()
	initial := w.fromZero && !w.synced
	data := msg.Data()
	if isMarker(h) {
		if _, seen := w.known[key]; !seen && initial {
			return Event{}, false // deleted before the watch began
		}
		delete(w.known, key)
		if len(data) > 0 {
			if obj, err := decode(kind, data, seq); err == nil {
				return Event{Type: Deleted, Object: obj, Revision: seq}, true
			}
		}
		obj := kind.New()
		meta := obj.GetObjectMeta()
		meta.Name, meta.Namespace = name, namespace
		meta.ResourceVersion = strconv.FormatUint(seq, 10)
		tm := obj.GetTypeMeta()
		tm.Kind, tm.APIVersion = kind.Name, kind.APIVersions[0]
		return Event{Type: Deleted, Object: obj, Revision: seq}, true
	}
	obj, err := decode(kind, data, seq)
	if err != nil {
		w.s.log.Warn("watch: skipping undecodable value", "key", key, "revision", seq, "err", err)
		return Event{}, false
	}
	created := createdRev(h, seq)
	prev, seen := w.known[key]
	typ := Modified
	switch {
	case initial:
		typ = Added
	case !seen && (w.fromZero || created > w.from):
		typ = Added // new since the watch began
	case seen && created != 0 && created != prev:
		typ = Added // deleted and created again
	}
	w.known[key] = created
	return Event{Type: typ, Object: obj, Revision: seq}, true
}
