package record

import (
	"container/list"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/kybernetes/kybernetes/api"
)

// EventRecorder records events about objects. Implementations are safe for
// concurrent use and never block on the network.
type EventRecorder interface {
	// Eventf records an event of type typ (api.EventTypeNormal or
	// api.EventTypeWarning) about ref, with a CamelCase reason and a
	// message made from format and args.
	Eventf(ref api.ObjectReference, typ, reason, format string, args ...any)
}

// Sink stores an event as the recorder built it: Count and FirstTimestamp
// are the recorder's, and a sink that holds an earlier copy of the same
// event (by name) keeps the larger count. It is called from one goroutine
// at a time.
type Sink interface {
	Record(ctx context.Context, ev *api.Event) error
}

// SinkFunc adapts a function to Sink.
type SinkFunc func(ctx context.Context, ev *api.Event) error

// Record calls f.
func (f SinkFunc) Record(ctx context.Context, ev *api.Event) error { return f(ctx, ev) }

// Nop records nothing; for components run without events.
type Nop struct{}

// Eventf does nothing.
func (Nop) Eventf(api.ObjectReference, string, string, string, ...any) {}

// Options tune a Recorder. The zero value is usable.
type Options struct {
	// Cache bounds the events remembered for folding (least recently
	// recorded forgotten first); default 4096, as client-go's.
	Cache int
	// Queue bounds the events waiting for the sink; beyond it new events
	// are dropped (and counted in the log); default 1024.
	Queue int
	// Timeout bounds one Sink.Record; default 5s.
	Timeout time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
}

// Recorder folds and delivers events. Create it with New; it is safe for
// concurrent use. It runs a goroutine only while events wait for the sink,
// so it needs no Run or Close; Flush waits for what is queued.
type Recorder struct {
	sink   Sink
	source api.EventSource
	log    *slog.Logger
	opt    Options

	mu      sync.Mutex
	lru     *list.List               // of *entry, most recent first
	byKey   map[string]*list.Element // fold key -> lru element
	queue   []*api.Event
	queued  map[string]*api.Event // by namespace/name: the queue's events
	running bool
	dropped int
	idle    *sync.Cond
}

type entry struct {
	key   string
	name  string
	count int32
	first time.Time
}

// New returns a recorder that delivers to sink events seen by source
// (component, and host for a node's agent).
func New(sink Sink, source api.EventSource, opt Options, log *slog.Logger) *Recorder {
	if opt.Cache <= 0 {
		opt.Cache = 4096
	}
	if opt.Queue <= 0 {
		opt.Queue = 1024
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 5 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Recorder{sink: sink, source: source, log: log, opt: opt, lru: list.New(), byKey: map[string]*list.Element{}, queued: map[string]*api.Event{}}
	r.idle = sync.NewCond(&r.mu)
	return r
}

// Eventf records an event about ref: a repeat of one recorded before (same
// object, type, reason, message and source) is the same Event with its
// count one higher and a new lastTimestamp. The message is cut to
// api.MaxEventMessage bytes. It never blocks: with the queue full, the
// event is dropped.
func (r *Recorder) Eventf(ref api.ObjectReference, typ, reason, format string, args ...any) {
	msg := truncate(fmt.Sprintf(format, args...), api.MaxEventMessage)
	now := r.opt.Now().UTC()
	key := FoldKey(ref, typ, reason, msg, r.source)
	r.mu.Lock()
	defer r.mu.Unlock()
	var e *entry
	if el, ok := r.byKey[key]; ok {
		r.lru.MoveToFront(el)
		e = el.Value.(*entry)
		e.count++
	} else {
		e = &entry{key: key, name: EventName(ref, key), count: 1, first: now}
		r.byKey[key] = r.lru.PushFront(e)
		if r.lru.Len() > r.opt.Cache {
			old := r.lru.Remove(r.lru.Back()).(*entry)
			delete(r.byKey, old.key)
		}
	}
	ev := &api.Event{
		TypeMeta:       api.TypeMeta{APIVersion: "v1", Kind: "Event"},
		ObjectMeta:     api.ObjectMeta{Name: e.name, Namespace: api.EventNamespace(ref)},
		InvolvedObject: ref,
		Type:           typ, Reason: reason, Message: msg,
		Source:         r.source,
		FirstTimestamp: e.first, LastTimestamp: now, Count: e.count,
		ReportingComponent: r.source.Component, ReportingInstance: r.source.Host,
	}
	// A queued copy of the same event is superseded: deliver the newest.
	qkey := ev.Namespace + "/" + ev.Name
	if q, ok := r.queued[qkey]; ok {
		*q = *ev
		return
	}
	if len(r.queue) >= r.opt.Queue {
		r.dropped++
		if r.dropped == 1 || r.dropped%100 == 0 {
			r.log.Warn("event queue full; dropping events", "dropped", r.dropped, "reason", reason)
		}
		return
	}
	r.queue = append(r.queue, ev)
	r.queued[qkey] = ev
	if !r.running {
		r.running = true
		go r.drain()
	}
}

// drain delivers queued events one at a time until the queue is empty.
func (r *Recorder) drain() {
	r.mu.Lock()
	for len(r.queue) > 0 {
		ev := r.queue[0]
		r.queue[0] = nil
		r.queue = r.queue[1:]
		delete(r.queued, ev.Namespace+"/"+ev.Name) // ev is the drain's alone now
		r.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), r.opt.Timeout)
		err := r.sink.Record(ctx, ev)
		cancel()
		if err != nil {
			r.log.Warn("record event", "object", ev.InvolvedObject.Kind+" "+ev.InvolvedObject.Namespace+"/"+ev.InvolvedObject.Name, "reason", ev.Reason, "err", err)
		}
		r.mu.Lock()
	}
	r.running = false
	r.idle.Broadcast()
	r.mu.Unlock()
}

// Flush waits until every event recorded so far has been handed to the sink.
func (r *Recorder) Flush() {
	r.mu.Lock()
	for r.running {
		r.idle.Wait()
	}
	r.mu.Unlock()
}

// FoldKey is what makes two events repeats of one: the involved object
// (kind, namespace, name, uid, field path), type, reason, message and source.
func FoldKey(ref api.ObjectReference, typ, reason, msg string, src api.EventSource) string {
	return strings.Join([]string{ref.Kind, ref.Namespace, ref.Name, ref.UID, ref.FieldPath, typ, reason, msg, src.Component, src.Host}, "\x00")
}

// EventName is the name of the event with fold key key about ref:
// "<name>.<16 hex digits of the key's SHA-256>", the same for every repeat
// and every recorder.
func EventName(ref api.ObjectReference, key string) string {
	sum := sha256.Sum256([]byte(key))
	return ref.Name + "." + hex.EncodeToString(sum[:8])
}

// truncate cuts s to at most n bytes on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
