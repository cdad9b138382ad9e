package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
)

// Condition reason and message set on a node whose agent went silent.
const (
	ReasonNodeStatusUnknown = "NodeStatusUnknown"
	MessageStoppedPosting   = "Node agent stopped posting node status."
)

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
	// Workers is how many nodes are reconciled at once; default 2.
	Workers int
}

// Controller marks silent nodes Unknown. Create it with New and Run it
// while its Manager runs.
type Controller struct {
	st    *store.Store
	hb    *store.Heartbeats
	cfg   Config
	log   *slog.Logger
	now   func() time.Time
	nodes framework.Lister
	ctl   *framework.Controller
	start time.Time
	// watch starts the heartbeat watch (hb.Watch; replaced in tests).
	watch func(ctx context.Context) (<-chan store.HeartbeatEvent, error)
	// watchBackoff spaces restarts of the heartbeat watch.
	watchBackoff retry.Backoff
}

var nodeKind = api.KindOf(&api.Node{})

// New returns a controller over st (Node objects, read through mgr's shared
// Node informer) and hb (liveness keys).
func New(mgr *framework.Manager, st *store.Store, hb *store.Heartbeats, cfg Config, log *slog.Logger) *Controller {
	if cfg.Grace <= 0 {
		cfg.Grace = 40 * time.Second
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 2
	}
	if log == nil {
		log = slog.Default()
	}
	log = log.With("controller", "nodelifecycle")
	inf := mgr.Informer(nodeKind)
	c := &Controller{st: st, hb: hb, cfg: cfg, log: log, now: time.Now, nodes: inf.Lister(),
		watchBackoff: retry.Backoff{Initial: 100 * time.Millisecond, Max: 30 * time.Second, Factor: 2, Jitter: 0.1}}
	if hb != nil {
		c.watch = hb.Watch
	}
	c.ctl = framework.NewController("nodelifecycle", framework.ReconcileFunc(c.Reconcile),
		framework.Options{Workers: cfg.Workers, Logger: log})
	c.ctl.Watch(inf, nil)
	return c
}

// Run reconciles nodes until ctx ends, and returns nil then. Nodes are
// queued by the Node informer (every change) and by the heartbeat watch
// (every expiry). A heartbeat watch that cannot be started, or that ends (a
// lost connection), is restarted with back-off rather than stopping the
// controller (and with it the control plane).
func (c *Controller) Run(ctx context.Context) error {
	c.start = c.now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.watchHeartbeats(ctx)
	}()
	err := c.ctl.Run(ctx)
	<-done
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
// its grace period (from its creation and from the controller's start) is
// over; within the grace period it comes back when the period ends. A
// node that is gone or Unknown already needs nothing.
func (c *Controller) Reconcile(ctx context.Context, key framework.Key) (framework.Result, error) {
	obj, ok := c.nodes.Get("", key.Name)
	if !ok {
		return framework.Result{}, nil
	}
	n := obj.(*api.Node)
	if isUnknown(n) {
		return framework.Result{}, nil
	}
	if _, alive, err := c.hb.Last(ctx, key.Name); err != nil {
		return framework.Result{}, fmt.Errorf("read heartbeat of node %s: %w", key.Name, err)
	} else if alive {
		return framework.Result{}, nil // its expiry queues it again
	}
	deadline := c.start.Add(c.cfg.Grace)
	if d := n.CreationTimestamp.Add(c.cfg.Grace); d.After(deadline) {
		deadline = d
	}
	if wait := deadline.Sub(c.now()); wait > 0 {
		return framework.Result{RequeueAfter: wait}, nil
	}
	return framework.Result{}, c.MarkUnknown(ctx, key.Name)
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
