package store

import (
	"context"
	"runtime"
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
	// Progress says the watch has read the stream up to Revision, through
	// a message that is no object's change (a lease renewal, a key of an
	// unknown kind, the marker of a key deleted before the watch began).
	// Only a watch from WatchProgress sends it; Object is nil.
	Progress
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
	case Progress:
		return "PROGRESS"
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
	return s.watch(ctx, kind, fromRevision, false)
}

// WatchProgress is Watch that also sends a Progress event for every message
// of the stream that is no object's change, so that the revision of the
// last event always reaches the stream's last sequence (LastRevision) once
// the watch has read that far, as etcd's progress notifications let a
// watch cache prove it is current (Kubernetes' consistent reads from
// cache). Progress events come in revision order with the others.
func (s *Store) WatchProgress(ctx context.Context, kind *api.Kind, fromRevision uint64) (<-chan Event, error) {
	return s.watch(ctx, kind, fromRevision, true)
}

func (s *Store) watch(ctx context.Context, kind *api.Kind, fromRevision uint64, progress bool) (<-chan Event, error) {
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
		work:     make(chan *watchJob, watchBuffer),
		ordered:  make(chan *watchJob, 4*watchBuffer),
		fromZero: fromRevision == 0,
		progress: progress,
		from:     fromRevision,
		last:     fromRevision,
		known:    make(map[string]uint64),
	}
	for range runtime.GOMAXPROCS(0) {
		go w.decodeLoop()
	}
	go w.emitLoop()
	cc, err := cons.Consume(w.handle, jetstream.PullMaxMessages(4096),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			s.log.Debug("watch consumer", "kind", kindName(kind), "err", err)
		}))
	if err != nil {
		w.shutdown()
		return nil, storeErr(op, err)
	}
	if ci := cons.CachedInfo(); ci != nil && ci.NumPending == 0 {
		w.enqueue(&watchJob{syncNow: true})
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-cc.Closed():
			s.log.Info("watch ended: consumer closed (connection closed?)", "kind", kindName(kind))
		}
		cc.Stop()
		s.deleteConsumer(cons)
		w.shutdown()
	}()
	return w.out, nil
}

// watcher turns stream messages into events in three stages: the consumer's
// handler queues each message in order, decoders (one per CPU) decode
// values in parallel, and one emitter waits for each message in turn,
// decides its event type and sends it. So a watch's initial sync of many
// objects uses every core, and events stay in revision order.
type watcher struct {
	s        *Store
	ctx      context.Context
	kind     *api.Kind
	out      chan Event
	fromZero bool
	progress bool // send Progress for messages that are no object's change
	from     uint64

	// mu serialises the handler (a consumer reset can overlap two handler
	// calls) with shutdown.
	mu      sync.Mutex
	closed  bool
	work    chan *watchJob // to the decoders
	ordered chan *watchJob // to the emitter, in stream order

	// Emitter state.
	synced bool
	last   uint64            // revision of the last message handled
	known  map[string]uint64 // key -> creation revision of the object last reported
}

// watchJob is one message on its way through the watcher.
type watchJob struct {
	seq, pending uint64
	key          string // the KV key (subject without prefix)
	kind         *api.Kind
	marker       bool   // a delete/purge/expiry marker
	created      uint64 // revision that created the object (puts)
	data         []byte
	syncNow      bool          // a synthetic "initial state is empty" job
	done         chan struct{} // closed when obj/err are set; nil: nothing to decode
	obj          api.Object
	err          error
}

// enqueue hands a job to the decoders (when it has a value) and to the
// emitter, in order; it gives up when the watch ends.
func (w *watcher) enqueue(j *watchJob) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return
	}
	if j.done != nil {
		select {
		case w.work <- j:
		case <-w.ctx.Done():
			return
		}
	}
	select {
	case w.ordered <- j:
	case <-w.ctx.Done():
	}
}

// shutdown stops the pipeline; the emitter closes out when it has drained.
func (w *watcher) shutdown() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.closed {
		w.closed = true
		close(w.work)
		close(w.ordered)
	}
}

func (w *watcher) decodeLoop() {
	for j := range w.work {
		j.obj, j.err = w.s.decode(j.kind, j.data, j.seq)
		close(j.done)
	}
}

func (w *watcher) emitLoop() {
	defer close(w.out)
	for j := range w.ordered {
		if j.done != nil {
			<-j.done
		}
		if w.ctx.Err() != nil {
			continue // drain
		}
		if j.syncNow {
			w.markSynced()
			continue
		}
		w.last = j.seq
		if ev, ok := w.event(j); ok {
			w.send(ev)
		} else if w.progress {
			w.send(Event{Type: Progress, Revision: j.seq})
		}
		if j.pending == 0 {
			w.markSynced()
		}
	}
}

// send delivers ev unless the watch ended.
func (w *watcher) send(ev Event) {
	select {
	case w.out <- ev:
	case <-w.ctx.Done():
	}
}

// markSynced sends Synced once.
func (w *watcher) markSynced() {
	if !w.synced {
		w.synced = true
		w.send(Event{Type: Synced, Revision: w.last})
	}
}

// handle runs on the consumer's goroutine: it parses what is cheap and
// queues the message.
func (w *watcher) handle(msg jetstream.Msg) {
	md, err := msg.Metadata()
	if err != nil {
		w.s.log.Warn("watch: message without metadata", "subject", msg.Subject(), "err", err)
		return
	}
	subject := msg.Subject()
	if !strings.HasPrefix(subject, w.s.prefix) {
		return
	}
	j := &watchJob{seq: md.Sequence.Stream, pending: md.NumPending, key: subject[len(w.s.prefix):], kind: w.kind}
	kindTok, _, _, ok := splitKey(j.key)
	if !ok {
		if !isLeaseKey(j.key) {
			w.s.log.Warn("watch: skipping malformed key", "key", j.key)
		}
		j.key = "" // still counts for Synced
	} else if j.kind == nil {
		if j.kind = w.s.kindByToken(kindTok); j.kind == nil {
			w.s.log.Debug("watch: skipping key of unknown kind", "key", j.key)
			j.key = ""
		}
	}
	h := msg.Headers()
	j.marker = isMarker(h)
	if !j.marker {
		j.created = createdRev(h, j.seq)
	}
	if j.key != "" {
		if data := msg.Data(); len(data) > 0 {
			j.data = data
			j.done = make(chan struct{})
		}
	}
	w.enqueue(j)
}

// event converts one decoded job; ok is false for a message to skip.
func (w *watcher) event(j *watchJob) (Event, bool) {
	if j.key == "" {
		return Event{}, false
	}
	initial := w.fromZero && !w.synced
	if j.marker {
		if _, seen := w.known[j.key]; !seen && initial {
			return Event{}, false // deleted before the watch began
		}
		delete(w.known, j.key)
		if j.obj != nil {
			return Event{Type: Deleted, Object: j.obj, Revision: j.seq}, true
		}
		// A marker without (a decodable) value: name the object by its key.
		_, namespace, name, _ := splitKey(j.key)
		obj := j.kind.New()
		meta := obj.GetObjectMeta()
		meta.Name, meta.Namespace = name, namespace
		meta.ResourceVersion = strconv.FormatUint(j.seq, 10)
		j.kind.FillTypeMeta(obj.GetTypeMeta())
		return Event{Type: Deleted, Object: obj, Revision: j.seq}, true
	}
	if j.obj == nil {
		w.s.log.Warn("watch: skipping undecodable value", "key", j.key, "revision", j.seq, "err", j.err)
		return Event{}, false
	}
	prev, seen := w.known[j.key]
	typ := Modified
	switch {
	case initial:
		typ = Added
	case !seen && (w.fromZero || j.created > w.from):
		typ = Added // new since the watch began
	case seen && j.created != 0 && j.created != prev:
		typ = Added // deleted and created again
	}
	w.known[j.key] = j.created
	return Event{Type: typ, Object: j.obj, Revision: j.seq}, true
}
