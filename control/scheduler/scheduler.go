package scheduler

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// Scheduler places unbound pods on nodes. Create it with New (over a store)
// or NewWith (over any Binder and StatusWriter), then call Run or RunEvents
// once. Ready and Stats are safe for concurrent use.
type Scheduler struct {
	st      *store.Store
	log     *slog.Logger
	core    *core
	err     error
	started atomic.Bool
}

// New returns a scheduler that watches pods and nodes in st and binds
// through it. A bad cfg is reported by Run.
func New(cfg Config, st *store.Store, log *slog.Logger) *Scheduler {
	if log == nil {
		log = slog.Default()
	}
	b := &StoreBinder{Store: st}
	s := NewWith(cfg, b, b, log)
	s.st = st
	return s
}

// NewWith returns a scheduler that writes its decisions through b and w; it
// is fed with RunEvents. A bad cfg is reported by RunEvents.
func NewWith(cfg Config, b Binder, w StatusWriter, log *slog.Logger) *Scheduler {
	if log == nil {
		log = slog.Default()
	}
	c, err := newCore(cfg, b, w, log)
	if err != nil {
		c, _ = newCore(Config{}, b, w, log) // so Ready and Stats work; Run reports err
	}
	return &Scheduler{log: log, core: c, err: err}
}

func (s *Scheduler) start() error {
	if s.err != nil {
		return s.err
	}
	if !s.started.CompareAndSwap(false, true) {
		return fmt.Errorf("scheduler: already started")
	}
	return nil
}

// Run watches pods and nodes in the store and schedules until ctx ends,
// then returns nil once its in-flight writes have finished. A watch that
// fails is restarted from the last revision seen. It returns an error for a
// bad Config, when the store cannot be watched at all, or when the
// scheduler was already started.
func (s *Scheduler) Run(ctx context.Context) error {
	if s.st == nil {
		return fmt.Errorf("scheduler: run: no store (use RunEvents)")
	}
	if err := s.start(); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan store.Event, 4096)
	kinds := []*api.Kind{api.KindOf(&api.Pod{}), api.KindOf(&api.Node{}),
		api.KindOf(&api.PersistentVolumeClaim{}), api.KindOf(&api.PersistentVolume{}), api.KindOf(&api.StorageClass{})}
	synced := make(chan struct{}, len(kinds))
	for _, k := range kinds {
		ch, err := s.st.Watch(ctx, k, 0)
		if err != nil {
			return fmt.Errorf("scheduler: watch %s: %w", k.Plural, err)
		}
		go s.forward(ctx, k, ch, events, synced)
	}
	go func() {
		for range kinds {
			select {
			case <-synced:
			case <-ctx.Done():
				return
			}
		}
		select {
		case events <- store.Event{Type: store.Synced}:
		case <-ctx.Done():
		}
	}()
	return s.core.run(ctx, events)
}

// forward copies one watch into events, signals its first Synced, and
// re-watches from the last revision when the watch ends before ctx.
func (s *Scheduler) forward(ctx context.Context, kind *api.Kind, ch <-chan store.Event, events chan<- store.Event, synced chan<- struct{}) {
	var rev uint64
	first := true
	wait := retry.NewTimer(retry.DefaultWatch)
	for {
		for ev := range ch {
			if ev.Revision > rev {
				rev = ev.Revision
			}
			if ev.Type == store.Synced {
				if first {
					first = false
					synced <- struct{}{}
				}
				continue
			}
			wait.Reset()
			select {
			case events <- ev:
			case <-ctx.Done():
				return
			}
		}
		for {
			if ctx.Err() != nil {
				return
			}
			s.log.Warn("scheduler watch ended; restarting", "kind", kind.Name, "revision", rev)
			select {
			case <-time.After(wait.Next()):
			case <-ctx.Done():
				return
			}
			var err error
			if ch, err = s.st.Watch(ctx, kind, rev); err == nil {
				break
			}
			s.log.Warn("scheduler re-watch", "kind", kind.Name, "err", err)
		}
	}
}

// Elector runs fn only while this process holds a leader lease, cancelling
// fn's context as soon as the lease is lost; *store.Lease implements it.
type Elector interface {
	Hold(ctx context.Context, fn func(context.Context) error) error
}

// RunWithLease runs Run only while e holds the scheduler's lease, so two
// control planes never schedule at once. It returns nil when ctx ends, and
// an error wrapping the lease's (store.ErrLeaseLost) when the lease is lost,
// after Run returned; a Scheduler runs once, so build a new one to campaign
// again.
func (s *Scheduler) RunWithLease(ctx context.Context, e Elector) error {
	if err := e.Hold(ctx, s.Run); err != nil {
		return fmt.Errorf("scheduler: %w", err)
	}
	return nil
}

// RunEvents schedules from a stream of pod and node events (as a store
// watch delivers them, with one Synced after the initial state of both
// kinds) until ctx ends, returning nil, or events closes, returning an
// error. It is the alternative to Run; a scheduler runs once.
func (s *Scheduler) RunEvents(ctx context.Context, events <-chan store.Event) error {
	if err := s.start(); err != nil {
		return err
	}
	return s.core.run(ctx, events)
}

// Ready is closed once the initial state of pods and nodes is loaded and
// scheduling has begun.
func (s *Scheduler) Ready() <-chan struct{} { return s.core.ready }

// Stats returns the scheduler's counters.
func (s *Scheduler) Stats() Stats { return s.core.stats.snapshot() }

// StoreBinder binds pods and records Unschedulable conditions with
// compare-and-set writes in a store. Concurrent writes are grouped: while
// one group is being written, the next one gathers, and each group is one
// pipelined Store.UpdateAll (about one round trip however many pods it
// holds), so many binds in flight cost few round trips. It writes from the
// pod it is given (the scheduler's cache holds the stored object), without
// reading the store first. It is safe for concurrent use.
type StoreBinder struct {
	Store *store.Store
	// Now returns the time for condition transitions; default time.Now.
	Now func() time.Time

	mu       sync.Mutex
	pending  []*writeReq
	flushing int           // groups being written
	groups   int           // groups written, for benchmarks
	written  int           // objects written, for benchmarks
	busy     time.Duration // time spent in UpdateAll, for benchmarks
}

type writeReq struct {
	obj  api.Object
	done chan error
}

func (b *StoreBinder) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now().UTC().Truncate(time.Second)
}

// maxGroupsInFlight is how many groups may be written at once, so the next
// group is already on the wire while the acknowledgements of the last come.
const maxGroupsInFlight = 4

// write queues obj for the next group and waits for its outcome. A writer
// that finds fewer than maxGroupsInFlight groups being written writes
// groups until none is left (group commit, with no goroutine of its own).
func (b *StoreBinder) write(ctx context.Context, obj api.Object) error {
	r := &writeReq{obj: obj, done: make(chan error, 1)}
	b.mu.Lock()
	b.pending = append(b.pending, r)
	if b.flushing >= maxGroupsInFlight {
		b.mu.Unlock()
		return <-r.done
	}
	b.flushing++
	for len(b.pending) > 0 {
		group := b.pending
		b.pending = nil
		b.mu.Unlock()
		objs := make([]api.Object, len(group))
		for i, g := range group {
			objs[i] = g.obj
		}
		t0 := time.Now()
		errs := b.Store.UpdateAll(ctx, objs)
		d := time.Since(t0)
		for i, err := range errs {
			group[i].done <- err
		}
		b.mu.Lock()
		b.groups++
		b.written += len(group)
		b.busy += d
	}
	b.flushing--
	b.mu.Unlock()
	return <-r.done
}

// copyPod returns a copy of p whose spec and conditions can be changed
// without touching p (the cache's object).
func copyPod(p *api.Pod) *api.Pod {
	cp := *p
	cp.Status.Conditions = append([]api.PodCondition(nil), p.Status.Conditions...)
	return &cp
}

// Bind sets spec.nodeName and PodScheduled=True on a copy of pod and
// writes it with compare-and-set on pod's resourceVersion: a Conflict Status
// when the pod changed since, NotFound when it is gone.
func (b *StoreBinder) Bind(ctx context.Context, pod *api.Pod, node string) error {
	cp := copyPod(pod)
	cp.Spec.NodeName = node
	cp.Generation++ // spec changed; the store keeps what it is given
	cp.Status.SetCondition(api.PodCondition{Type: api.PodScheduled, Status: api.ConditionTrue, LastTransitionTime: b.now()})
	if err := b.write(ctx, cp); err != nil {
		return fmt.Errorf("bind pod %s/%s to node %s: %w", pod.Namespace, pod.Name, node, err)
	}
	return nil
}

// SetUnschedulable sets PodScheduled=False, reason Unschedulable, with
// message on a copy of pod and writes it with compare-and-set, failing like
// Bind.
func (b *StoreBinder) SetUnschedulable(ctx context.Context, pod *api.Pod, message string) error {
	cp := copyPod(pod)
	now := b.now()
	cond := api.PodCondition{Type: api.PodScheduled, Status: api.ConditionFalse,
		Reason: api.ReasonUnschedulable, Message: message, LastProbeTime: now}
	if old := cp.Status.Condition(api.PodScheduled); old == nil || old.Status != api.ConditionFalse {
		cond.LastTransitionTime = now
	}
	cp.Status.SetCondition(cond)
	if err := b.write(ctx, cp); err != nil {
		return fmt.Errorf("set pod %s/%s unschedulable: %w", pod.Namespace, pod.Name, err)
	}
	return nil
}
