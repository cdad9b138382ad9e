package scheduler

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/metrics"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// Binder writes a scheduling decision. Bind must be a compare-and-set on the
// pod's resourceVersion: when the pod changed since pod was read (another
// scheduler bound it, a user edited it) it returns an api Conflict Status and
// changes nothing; a pod that no longer exists gives NotFound. Bind must be
// safe for concurrent use and must not modify pod.
type Binder interface {
	Bind(ctx context.Context, pod *api.Pod, node string) error
}

// StatusWriter records on a pod that it cannot be scheduled now: the
// condition PodScheduled=False, reason Unschedulable, with message. Like Bind
// it is a compare-and-set on pod's resourceVersion, safe for concurrent use,
// and must not modify pod.
type StatusWriter interface {
	SetUnschedulable(ctx context.Context, pod *api.Pod, message string) error
}

// Stats counts what a scheduler did since it started. All fields only grow.
type Stats struct {
	// Attempts is how many scheduling decisions were made.
	Attempts uint64
	// Bound is how many binds this scheduler wrote successfully.
	Bound uint64
	// Unschedulable is how many decisions found no node.
	Unschedulable uint64
	// Conflicts is how many binds lost a compare-and-set (someone else
	// changed or bound the pod first).
	Conflicts uint64
	// StatusWrites is how many Unschedulable conditions were written.
	StatusWrites uint64
	// Errors is how many writes failed for other reasons.
	Errors uint64
}

type stats struct {
	attempts, bound, unschedulable, conflicts, statusWrites, errors atomic.Uint64
}

func (s *stats) snapshot() Stats {
	return Stats{
		Attempts: s.attempts.Load(), Bound: s.bound.Load(), Unschedulable: s.unschedulable.Load(),
		Conflicts: s.conflicts.Load(), StatusWrites: s.statusWrites.Load(), Errors: s.errors.Load(),
	}
}

// podState is where a pod is in the scheduler; zero means there is nothing
// to do for it (not ours, terminal, being deleted).
type podState uint8

const (
	stateIdle    podState = iota
	stateQueued           // waiting for a decision
	stateParked           // no node fits; retried when a node it could fit changes
	stateBinding          // node chosen and assumed, bind in flight
	stateWaiting          // a write lost its compare-and-set; waiting for the newer pod from the watch
	stateBackoff          // a write failed; retried by a timer
	stateBound            // bound (by us or anyone)
)

// podInfo is the scheduler's view of one pod.
type podInfo struct {
	key     string
	uid     string
	seq     uint64 // arrival order, for deterministic requeueing
	pod     *api.Pod
	req     Resources
	runtime string
	rtBit   uint64 // this runtime's bit in nodeInfo.rtMask
	state   podState

	toleratesUnschedulable bool
	toleratesNotReady      bool

	// countedOn is the node whose used resources include countedReq of this pod.
	countedOn  string
	countedReq Resources

	bindRV      string   // resourceVersion the in-flight bind was sent with
	writingMsg  string   // Unschedulable message being written
	statusStale bool     // a status write lost its CAS: re-evaluate on the next change
	bindErrors  int      // failed binds in a row, for the retry back-off
	claims      []string // the persistentVolumeClaims of its volumes (volumes.go)
}

// nodeInfo is the scheduler's view of one node, with what is used on it.
type nodeInfo struct {
	name          string
	node          *api.Node // nil: deleted or not seen yet, but pods are counted on it
	alloc         Resources
	used          Resources
	npods         int // pods counted here, to drop a placeholder when it reaches 0
	ready         bool
	unschedulable bool
	runtimes      []string
	rtMask        uint64 // bits of runtimes
	labels        map[string]string
	taints        []api.Taint // NoSchedule and NoExecute only
	dirty         bool
	hot           int // index in core.hot, -1 when not listed
}

// nodeHot is the part of a node that every decision reads, kept in one
// contiguous slice (in name order) so that scanning hundreds of nodes per
// decision reads memory in sequence instead of chasing pointers.
type nodeHot struct {
	alloc  Resources
	used   Resources
	rtMask uint64
	flags  uint8
	ni     *nodeInfo
}

const (
	hotUnschedulable uint8 = 1 << iota
	hotNotReady
	hotTainted // has NoSchedule/NoExecute taints: check them on nodeInfo
)

func (ni *nodeInfo) hotData() nodeHot {
	h := nodeHot{alloc: ni.alloc, used: ni.used, rtMask: ni.rtMask, ni: ni}
	if ni.unschedulable {
		h.flags |= hotUnschedulable
	}
	if !ni.ready {
		h.flags |= hotNotReady
	}
	if len(ni.taints) > 0 {
		h.flags |= hotTainted
	}
	return h
}

type jobKind uint8

const (
	jobBind jobKind = iota + 1
	jobStatus
)

type job struct {
	kind jobKind
	key  string
	uid  string
	pod  *api.Pod
	node string
	msg  string
	err  error
	// claims are the pod's claims to mark with the node before the bind
	// (WaitForFirstConsumer; volumes.go).
	claims []string
	rv     string // of the pod a status write was sent with
}

// core is the scheduling loop. All of its state is owned by the goroutine
// running run; binds and status writes run on workers and report back.
type core struct {
	cfg    Config
	binder Binder
	status StatusWriter
	log    *slog.Logger
	chain  []checker

	pods   map[string]*podInfo
	nodes  map[string]*nodeInfo
	parked map[string]*podInfo
	queue  []*podInfo // FIFO with stale entries skipped at pop
	qhead  int
	seq    uint64

	// list is every known node, sorted by name; byRuntime indexes it by
	// runtime class; both are rebuilt when the set of nodes changes.
	list       []*nodeInfo
	hot        []nodeHot
	byRuntime  map[uint64][]int32 // runtime bit -> indexes into hot
	listDirty  bool
	next       map[uint64]int // rotating start of the sampled search, per runtime
	dirtyNodes []*nodeInfo

	synced     bool
	ready      chan struct{}
	inFlight   int
	maxIn      int
	jobs       chan job
	results    chan job
	retries    chan string
	probe      chan chan snapshot
	events     uint64
	stats      stats
	rtBits     map[string]uint64 // runtime name -> bit, assigned on first sight
	counts     map[string]int    // scratch for diagnosis
	failCounts map[failKey]int   // scratch for diagnosis
	scratch    []string
	vols       *volumes // claims, volumes and classes (volumes.go)

	visited       uint64 // nodes looked at by decisions, for benchmarks
	recordLatency bool
	latencies     []time.Duration
}

// snapshot is the loop's state as a test sees it when the loop is idle.
type snapshot struct {
	events   uint64
	queued   int
	parked   int
	inFlight int
	used     map[string]Resources // per node, for tests
	visited  uint64
}

func newCore(cfg Config, b Binder, w StatusWriter, log *slog.Logger) (*core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	maxIn := cfg.BindWorkers * 2
	vols := newVolumes()
	return &core{
		cfg: cfg, binder: b, status: w, log: log, chain: filterChain(vols), vols: vols,
		pods: map[string]*podInfo{}, nodes: map[string]*nodeInfo{}, parked: map[string]*podInfo{},
		byRuntime: map[uint64][]int32{}, next: map[uint64]int{},
		ready: make(chan struct{}), maxIn: maxIn,
		jobs: make(chan job, maxIn), results: make(chan job, maxIn),
		retries: make(chan string), probe: make(chan chan snapshot),
		counts: map[string]int{}, failCounts: map[failKey]int{}, rtBits: map[string]uint64{},
	}, nil
}

var errEventsClosed = errors.New("scheduler: event stream closed")

// run consumes events until ctx ends (returning nil) or events closes
// (returning an error). Scheduling starts at the first Synced event.
func (c *core) run(ctx context.Context, events <-chan store.Event) error {
	var wg sync.WaitGroup
	for range c.cfg.BindWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.worker(ctx)
		}()
	}
	defer func() {
		close(c.jobs)
		wg.Wait()
	}()
	for {
		// Take in everything that is waiting, so decisions see a fresh cache.
	drain:
		for range 1024 {
			select {
			case ev, ok := <-events:
				if !ok {
					return errEventsClosed
				}
				c.handleEvent(ev)
			case r := <-c.results:
				c.handleResult(ctx, r)
			case key := <-c.retries:
				c.handleRetry(key)
			default:
				break drain
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		c.flushDirty()
		c.observeQueue()
		if c.synced && c.inFlight < c.maxIn {
			if pi := c.pop(); pi != nil {
				c.scheduleOne(ctx, pi)
				continue
			}
		}
		select {
		case ev, ok := <-events:
			if !ok {
				return errEventsClosed
			}
			c.handleEvent(ev)
		case r := <-c.results:
			c.handleResult(ctx, r)
		case key := <-c.retries:
			c.handleRetry(key)
		case reply := <-c.probe:
			used := make(map[string]Resources, len(c.nodes))
			for name, ni := range c.nodes {
				used[name] = ni.used
			}
			reply <- snapshot{events: c.events, queued: c.queuedLen(), parked: len(c.parked), inFlight: c.inFlight, used: used, visited: c.visited}
		case <-ctx.Done():
			return nil
		}
	}
}

func (c *core) worker(ctx context.Context) {
	for j := range c.jobs {
		switch j.kind {
		case jobBind:
			if j.err = selectClaims(ctx, c.binder, &j); j.err == nil {
				j.err = c.binder.Bind(ctx, j.pod, j.node)
			}
		case jobStatus:
			j.err = c.status.SetUnschedulable(ctx, j.pod, j.msg)
		}
		j.pod = nil
		c.results <- j // never blocks: results holds maxIn and at most maxIn jobs are in flight
	}
}

func (c *core) dispatch(j job) {
	c.inFlight++
	c.jobs <- j
}

// ---- events ----

// overflowRuntimeBit is shared by every runtime name past the 63rd; the
// runtime check compares names for them.
const overflowRuntimeBit = uint64(1) << 63

// ---- queue ----

// ---- decisions ----

// failKey is one reason a node failed: one failure bit, and the taint for
// failTaint.
type failKey struct {
	code                 uint16
	taintKey, taintValue string
}

func (c *core) scheduleOne(ctx context.Context, pi *podInfo) {
	var t0 time.Time
	if c.recordLatency {
		t0 = time.Now()
	}
	c.stats.attempts.Add(1)
	ni, msg := c.decide(pi)
	if ni != nil {
		metricScheduled.Inc()
		c.setCounted(pi, ni.name) // assumed: the next decisions see it at once
		pi.state = stateBinding
		pi.bindRV = pi.pod.ResourceVersion
		c.dispatch(job{kind: jobBind, key: pi.key, uid: pi.uid, pod: pi.pod, node: ni.name, claims: c.vols.toSelect(pi, ni.name)})
	} else {
		c.stats.unschedulable.Add(1)
		metricUnschedulable.Inc()
		c.cfg.Recorder.Eventf(api.RefTo(pi.pod), api.EventTypeWarning, api.ReasonFailedScheduling, "%s", msg)
		pi.state = stateParked
		c.parked[pi.key] = pi
		if msg != pi.writingMsg && !hasUnschedulable(pi.pod, msg) {
			pi.writingMsg = msg
			c.dispatch(job{kind: jobStatus, key: pi.key, uid: pi.uid, pod: pi.pod, msg: msg, rv: pi.pod.ResourceVersion})
		}
		c.log.Debug("pod unschedulable", "pod", pi.key, "reason", msg)
	}
	if c.recordLatency {
		c.latencies = append(c.latencies, time.Since(t0))
	}
}

func hasUnschedulable(p *api.Pod, msg string) bool {
	cond := p.Status.Condition(api.PodScheduled)
	return cond != nil && cond.Status == api.ConditionFalse && cond.Reason == api.ReasonUnschedulable && cond.Message == msg
}

// ---- results ----

func (c *core) handleResult(ctx context.Context, r job) {
	c.inFlight--
	pi := c.pods[r.key]
	if pi == nil || pi.uid != r.uid {
		return // deleted meanwhile; its resources were released then
	}
	switch r.kind {
	case jobBind:
		if r.err == nil {
			c.stats.bound.Add(1)
			metrics.PodsBound.Inc()
			c.cfg.Recorder.Eventf(api.RefTo(pi.pod), api.EventTypeNormal, api.ReasonScheduled, "Successfully assigned %s to %s", r.key, r.node)
			if pi.state == stateBinding {
				pi.state = stateBound
			}
			pi.bindErrors = 0
			return
		}
		if api.IsConflict(r.err) {
			c.stats.conflicts.Add(1)
		}
		if pi.state != stateBinding {
			return // the watch already told us how it ended
		}
		c.setCounted(pi, "") // un-assume
		switch {
		case api.IsConflict(r.err), api.IsNotFound(r.err):
			// Someone else bound or changed it: act on the newer pod, which
			// the watch has brought already or will bring.
			if pi.pod.ResourceVersion != pi.bindRV {
				c.enqueue(pi)
			} else {
				pi.state = stateWaiting
			}
		default:
			c.stats.errors.Add(1)
			metricBindError.Inc()
			c.log.Warn("bind pod", "pod", pi.key, "node", r.node, "err", r.err)
			c.backoffRetry(ctx, pi)
		}
	case jobStatus:
		if pi.writingMsg == r.msg {
			pi.writingMsg = ""
		}
		switch {
		case r.err == nil:
			c.stats.statusWrites.Add(1)
		case api.IsConflict(r.err):
			if pi.pod.ResourceVersion != r.rv && pi.state == stateParked {
				// The newer pod came already (another write of ours, in
				// flight with this one): look again now.
				delete(c.parked, pi.key)
				c.enqueue(pi)
				break
			}
			pi.statusStale = true // the watch brings the newer pod; look again then
		case api.IsNotFound(r.err):
		default:
			c.stats.errors.Add(1)
			c.log.Warn("set pod unschedulable", "pod", pi.key, "err", r.err)
		}
	}
}

// bindBackoff spaces the retries of a pod whose bind failed (not a
// conflict): 100 ms doubling to 30 s.
var bindBackoff = retry.Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Factor: 2}

func (c *core) backoffRetry(ctx context.Context, pi *podInfo) {
	wait := bindBackoff.Delay(pi.bindErrors)
	pi.bindErrors++
	pi.state = stateBackoff
	key := pi.key
	time.AfterFunc(wait, func() {
		select {
		case c.retries <- key:
		case <-ctx.Done():
		}
	})
}

func (c *core) handleRetry(key string) {
	if pi := c.pods[key]; pi != nil && pi.state == stateBackoff {
		c.enqueue(pi)
	}
}

// waitIdle returns the loop's state the next time it has nothing to do.
func (c *core) waitIdle(ctx context.Context) (snapshot, error) {
	reply := make(chan snapshot, 1)
	select {
	case c.probe <- reply:
		return <-reply, nil
	case <-ctx.Done():
		return snapshot{}, fmt.Errorf("wait for idle scheduler: %w", ctx.Err())
	}
}
