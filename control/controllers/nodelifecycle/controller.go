package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/record"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// Condition reason and message set on a node whose agent went silent.
const (
	ReasonNodeStatusUnknown = "NodeStatusUnknown"
	MessageStoppedPosting   = "Node agent stopped posting node status."
)

// Component is the source of the events the controller records.
const Component = api.ComponentNodeController

// Config configures the controller. The zero value is usable.
type Config struct {
	// Grace is how long a node that never beat (since the controller
	// started, or since the node was created) is given before it is marked
	// Unknown; default 40s, Kubernetes' node monitor grace period.
	Grace time.Duration
	// Period is ignored.
	//
	// Deprecated: a node that never beat is reconciled again when its
	// grace period ends (Result.RequeueAfter), not by a periodic sweep.
	Period time.Duration
	// Workers is how many nodes (and, separately, pods) are reconciled at
	// once; default 2.
	Workers int
	// EvictionRate is how many pods a second may be evicted across the
	// cluster, and EvictionBurst how many at once; default 10 a second
	// with bursts of 100 (a typical dead node's pods go at once, a mass
	// failure is paced).
	EvictionRate  float64
	EvictionBurst int
	// UnhealthyZoneThreshold: when more than this fraction of a zone's
	// nodes (label topology.kubernetes.io/zone; nodes without it form one
	// zone) are not Ready, the zone is disrupted: no NoExecute taint is
	// added there (those there are removed) and no pod is evicted, since
	// the control plane is more likely cut off than most nodes dead at
	// once. Default 0.55, Kubernetes' unhealthy-zone-threshold.
	UnhealthyZoneThreshold float64
	// Recorder records events on pods (NodeNotReady,
	// TaintManagerEviction); default none.
	Recorder record.EventRecorder
}

// Controller marks silent nodes Unknown, taints nodes that are not Ready,
// marks the pods of silent nodes not ready and evicts pods whose
// tolerations run out. Create it with New and Run it while its Manager
// runs.
type Controller struct {
	st     *store.Store
	hb     *store.Heartbeats
	cfg    Config
	log    *slog.Logger
	rec    record.EventRecorder
	now    func() time.Time
	nodes  framework.Lister
	pods   framework.Lister
	ctl    *framework.Controller // node keys
	podCtl *framework.Controller // pod keys
	start  time.Time
	zones  *zones
	index  *podIndex
	bucket *framework.Bucket

	// seen is, per node, the Ready condition's last heartbeat time and
	// when this controller first saw it: a node that posts status is
	// alive even before its first heartbeat arrives.
	seenMu sync.Mutex
	seen   map[string]seenReady

	evMu      sync.Mutex
	reserved  map[framework.Key]time.Time // eviction tokens taken, usable at
	blocked   map[framework.Key]struct{}  // evictions held by a disrupted zone
	firstSeen map[string]time.Time        // taints without timeAdded
	// watch starts the heartbeat watch (hb.Watch; replaced in tests).
	watch func(ctx context.Context) (<-chan store.HeartbeatEvent, error)
	// watchBackoff spaces restarts of the heartbeat watch.
	watchBackoff retry.Backoff
}

type seenReady struct {
	heartbeat time.Time
	at        time.Time
}

var nodeKind = api.KindOf(&api.Node{})

// New returns a controller over st (Node and Pod objects, read through
// mgr's shared informers) and hb (liveness keys).
func New(mgr *framework.Manager, st *store.Store, hb *store.Heartbeats, cfg Config, log *slog.Logger) *Controller {
	if cfg.Grace <= 0 {
		cfg.Grace = 40 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if cfg.EvictionRate <= 0 {
		cfg.EvictionRate = 10
	}
	if cfg.EvictionBurst <= 0 {
		cfg.EvictionBurst = 100
	}
	if cfg.UnhealthyZoneThreshold <= 0 {
		cfg.UnhealthyZoneThreshold = 0.55
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("controller", "nodelifecycle")
	rec := cfg.Recorder
	if rec == nil {
		rec = record.Nop{}
	}
	inf := mgr.Informer(nodeKind)
	podInf := mgr.Informer(podKind)
	c := &Controller{st: st, hb: hb, cfg: cfg, log: log, rec: rec, now: time.Now, nodes: inf.Lister(), pods: podInf.Lister(),
		watchBackoff: retry.Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Factor: 2, Jitter: 0.1},
		zones:        newZones(cfg.UnhealthyZoneThreshold), index: newPodIndex(),
		bucket: framework.NewBucket(cfg.EvictionRate, cfg.EvictionBurst, nil),
		seen:   map[string]seenReady{}, reserved: map[framework.Key]time.Time{},
		blocked: map[framework.Key]struct{}{}, firstSeen: map[string]time.Time{}}
	if hb != nil {
		c.watch = hb.Watch
	}
	c.ctl = framework.NewController("nodelifecycle", framework.ReconcileFunc(c.Reconcile),
		framework.Options{Workers: cfg.Workers, Logger: log})
	c.podCtl = framework.NewController("taint-eviction", framework.ReconcileFunc(c.ReconcilePod),
		framework.Options{Workers: cfg.Workers, Logger: log})
	// The zone counts and the pod index are kept before the controllers
	// hear of a change (handlers run in the order they were added).
	inf.AddHandler(framework.Handler{
		OnAdd:    func(obj api.Object) { c.nodeChanged(nil, obj.(*api.Node)) },
		OnUpdate: func(old, obj api.Object) { c.nodeChanged(old.(*api.Node), obj.(*api.Node)) },
		OnDelete: func(obj api.Object) { c.nodeChanged(obj.(*api.Node), nil) },
	})
	podInf.AddHandler(framework.Handler{
		OnAdd: func(obj api.Object) {
			c.index.set("", obj.(*api.Pod).Spec.NodeName, framework.KeyOf(obj))
		},
		OnUpdate: func(old, obj api.Object) {
			c.index.set(old.(*api.Pod).Spec.NodeName, obj.(*api.Pod).Spec.NodeName, framework.KeyOf(obj))
		},
		OnDelete: func(obj api.Object) {
			c.index.set(obj.(*api.Pod).Spec.NodeName, "", framework.KeyOf(obj))
		},
	})
	c.ctl.Watch(inf, nil)
	c.podCtl.Watch(podInf, nil)
	return c
}

// nodeChanged keeps the zone counts, and queues what a node's change
// concerns: its pods when its readiness or NoExecute taints changed, every
// node of a zone whose disruption flipped, and the evictions a disrupted
// zone held. It runs on the Node informer's goroutine (old or n nil: added
// or deleted).
func (c *Controller) nodeChanged(old, n *api.Node) {
	var ho, hn *health
	if old != nil {
		h := healthOf(old)
		ho = &h
	}
	if n != nil {
		h := healthOf(n)
		hn = &h
	}
	healthChanged := ho == nil || hn == nil || *ho != *hn
	if !healthChanged && slices.Equal(noExecute(old), noExecute(n)) &&
		readyStatus(old) == readyStatus(n) {
		return
	}
	var flipped []string
	if healthChanged {
		flipped = c.zones.change(ho, hn)
	}
	name := ""
	if n != nil {
		name = n.Name
	} else {
		name = old.Name
		c.seenMu.Lock()
		delete(c.seen, name)
		c.seenMu.Unlock()
	}
	for _, k := range c.index.on(name) {
		c.podCtl.Queue().Add(k)
	}
	if len(flipped) > 0 {
		for _, obj := range c.nodes.List("", nil) {
			if slices.Contains(flipped, healthOf(obj.(*api.Node)).zone) {
				c.ctl.Queue().Add(framework.KeyOf(obj))
			}
		}
	}
	if healthChanged {
		c.requeueBlocked()
	}
}

// noExecute returns the keys of n's NoExecute taints, with their times.
func noExecute(n *api.Node) []string {
	if n == nil {
		return nil
	}
	var out []string
	for _, t := range n.Spec.Taints {
		if t.Effect == api.TaintNoExecute {
			at := ""
			if t.TimeAdded != nil {
				at = t.TimeAdded.String()
			}
			out = append(out, t.Key+"="+t.Value+"@"+at)
		}
	}
	return out
}

func readyStatus(n *api.Node) api.ConditionStatus {
	if n == nil {
		return ""
	}
	if r := n.Status.Condition(api.NodeReady); r != nil {
		return r.Status
	}
	return ""
}

// Run reconciles nodes until ctx ends, and returns nil then. Nodes are
// queued by the Node informer (every change) and by the heartbeat watch
// (every expiry). A heartbeat watch that cannot be started, or that ends (a
// lost connection), is restarted with back-off rather than stopping the
// controller (and with it the control plane).
func (c *Controller) Run(ctx context.Context) error {
	c.start = c.now()
	var wg sync.WaitGroup
	wg.Go(func() { c.watchHeartbeats(ctx) })
	podErr := make(chan error, 1)
	wg.Go(func() { podErr <- c.podCtl.Run(ctx) })
	err := c.ctl.Run(ctx)
	wg.Wait()
	if err == nil {
		err = <-podErr
	}
	return err
}

// watchHeartbeats queues every node whose heartbeat expires, until ctx ends.
func (c *Controller) watchHeartbeats(ctx context.Context) {
	wait := retry.NewTimer(c.watchBackoff)
	for ctx.Err() == nil {
		events, err := c.watch(ctx)
		if err != nil {
			c.log.Error("watch heartbeats; retrying", "err", err)
		} else {
		consume:
			for {
				select {
				case <-ctx.Done():
					return
				case ev, ok := <-events:
					if !ok {
						break consume
					}
					wait.Reset()
					if !ev.Alive {
						c.ctl.Queue().Add(framework.Key{Name: ev.Node})
					}
				}
			}
			if ctx.Err() != nil {
				return
			}
			c.log.Warn("heartbeat watch ended; restarting")
		}
		t := time.NewTimer(wait.Next())
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
	}
}

// Reconcile marks node key.Name Unknown when it has no live heartbeat and
// its grace period (from its creation, the controller's start, and the
// last change of its Ready condition's heartbeat time) is over; within the
// grace period it comes back when the period ends. Then it makes the
// node's NoExecute taint match its Ready condition (unreachable for
// Unknown, not-ready for False, none for True; none in a disrupted zone).
// A node that is gone needs nothing.
func (c *Controller) Reconcile(ctx context.Context, key framework.Key) (framework.Result, error) {
	obj, ok := c.nodes.Get("", key.Name)
	if !ok {
		return framework.Result{}, nil
	}
	n := obj.(*api.Node)
	var res framework.Result
	if !isUnknown(n) {
		if _, alive, err := c.hb.Last(ctx, key.Name); err != nil {
			return framework.Result{}, fmt.Errorf("read heartbeat of node %s: %w", key.Name, err)
		} else if !alive { // when alive, its expiry queues it again
			deadline := c.lastSeen(n).Add(c.cfg.Grace)
			if d := c.start.Add(c.cfg.Grace); d.After(deadline) {
				deadline = d
			}
			if d := n.CreationTimestamp.Add(c.cfg.Grace); d.After(deadline) {
				deadline = d
			}
			if wait := deadline.Sub(c.now()); wait > 0 {
				res = framework.Result{RequeueAfter: wait}
			} else {
				// The change queues the node again, for its taint.
				return framework.Result{}, c.MarkUnknown(ctx, key.Name)
			}
		}
	}
	want := wantedTaint(n)
	if want != "" && c.zones.disrupted(healthOf(n).zone) {
		want = ""
	}
	if ownedTaint(n) != want {
		if err := c.reconcileTaint(ctx, key.Name); err != nil {
			return framework.Result{}, err
		}
	}
	return res, nil
}

// lastSeen returns when this controller first saw the node's current
// Ready heartbeat time (the agent's register and status reports renew it).
func (c *Controller) lastSeen(n *api.Node) time.Time {
	var hb time.Time
	if r := n.Status.Condition(api.NodeReady); r != nil {
		hb = r.LastHeartbeatTime
	}
	c.seenMu.Lock()
	defer c.seenMu.Unlock()
	s, ok := c.seen[n.Name]
	if !ok || !s.heartbeat.Equal(hb) {
		s = seenReady{heartbeat: hb, at: c.now()}
		c.seen[n.Name] = s
	}
	return s.at
}

func isUnknown(n *api.Node) bool {
	r := n.Status.Condition(api.NodeReady)
	return r != nil && r.Status == api.ConditionUnknown
}

// MarkUnknown sets the node's Ready condition (and the pressure conditions
// it has) to Unknown with compare-and-set (retried on conflict), unless the
// node beats again or is already Unknown. A node that does not exist is not
// an error. Safe for concurrent use.
func (c *Controller) MarkUnknown(ctx context.Context, name string) error {
	marked := false
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		if _, alive, err := c.hb.Last(ctx, name); err != nil {
			return fmt.Errorf("read heartbeat of node %s: %w", name, err)
		} else if alive {
			return nil
		}
		obj, err := c.st.Get(ctx, nodeKind, "", name)
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get node %s: %w", name, err)
		}
		n := obj.(*api.Node)
		if isUnknown(n) {
			return nil
		}
		now := c.now().UTC().Truncate(time.Second)
		types := []string{api.NodeReady}
		for _, t := range []string{api.NodeMemoryPressure, api.NodeDiskPressure, api.NodePIDPressure} {
			if n.Status.Condition(t) != nil {
				types = append(types, t)
			}
		}
		for _, t := range types {
			var hb time.Time
			if old := n.Status.Condition(t); old != nil {
				hb = old.LastHeartbeatTime
			}
			n.Status.SetCondition(api.NodeCondition{
				Type: t, Status: api.ConditionUnknown, LastHeartbeatTime: hb, LastTransitionTime: now,
				Reason: ReasonNodeStatusUnknown, Message: MessageStoppedPosting,
			})
		}
		err = c.st.Update(ctx, n)
		if api.IsNotFound(err) {
			return nil
		}
		if err == nil {
			marked = true
		}
		return err
	})
	if api.IsConflict(err) {
		return fmt.Errorf("update node %s: changed concurrently too often: %w", name, err)
	}
	if err != nil {
		return fmt.Errorf("mark node %s unknown: %w", name, err)
	}
	if marked {
		c.log.Info("node stopped posting status; marked Unknown", "node", name)
	}
	return nil
}
