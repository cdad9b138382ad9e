package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
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
	// Period is how often nodes that never beat are looked for; expiries
	// are seen at once through the heartbeat watch. Default Grace/4, at
	// least one second.
	Period time.Duration
}

// Controller marks silent nodes Unknown. Create it with New and Run it.
type Controller struct {
	st  *store.Store
	hb  *store.Heartbeats
	cfg Config
	log *slog.Logger
	now func() time.Time
	// watch starts the heartbeat watch (hb.Watch; replaced in tests).
	watch func(ctx context.Context) (<-chan store.HeartbeatEvent, error)
}

var nodeKind = api.KindOf(&api.Node{})

// New returns a controller over st (Node objects) and hb (liveness keys).
func New(st *store.Store, hb *store.Heartbeats, cfg Config, log *slog.Logger) *Controller {
	if cfg.Grace <= 0 {
		cfg.Grace = 40 * time.Second
	}
	if cfg.Period <= 0 {
		cfg.Period = max(cfg.Grace/4, time.Second)
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Controller{st: st, hb: hb, cfg: cfg, log: log.With("controller", "nodelifecycle"), now: time.Now}
	if hb != nil {
		c.watch = hb.Watch
	}
	return c
}

// Watch restart back-off: the first retry after this, doubling up to the cap.
const (
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 30 * time.Second
)

// Run watches heartbeats until ctx ends, and returns nil then. A heartbeat
// watch that cannot be started, or that ends (a lost connection), is
// restarted with back-off rather than stopping the controller (and with it
// the control plane); meanwhile the periodic sweep still marks silent nodes.
func (c *Controller) Run(ctx context.Context) error {
	start := c.now()
	tick := time.NewTicker(c.cfg.Period)
	defer tick.Stop()
	var events <-chan store.HeartbeatEvent // nil while no watch runs
	backoff := watchRetryMin
	retry := time.NewTimer(0)
	defer retry.Stop()
	again := func() {
		retry.Reset(backoff)
		backoff = min(2*backoff, watchRetryMax)
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-retry.C:
			ch, err := c.watch(ctx)
			if err != nil {
				c.log.Error("watch heartbeats; retrying", "err", err, "in", backoff)
				again()
				continue
			}
			events = ch
		case ev, ok := <-events:
			if !ok {
				if ctx.Err() != nil {
					return nil
				}
				c.log.Warn("heartbeat watch ended; restarting", "in", backoff)
				events = nil
				again()
				continue
			}
			backoff = watchRetryMin
			if !ev.Alive {
				if err := c.MarkUnknown(ctx, ev.Node); err != nil {
					c.log.Error("mark node unknown", "node", ev.Node, "err", err)
				}
			}
		case <-tick.C:
			if c.now().Sub(start) < c.cfg.Grace {
				continue
			}
			if err := c.sweep(ctx); err != nil {
				c.log.Error("look for silent nodes", "err", err)
			}
		}
	}
}

// sweep marks Unknown every node older than the grace period that has no
// live heartbeat and is not Unknown yet: nodes that never beat, and nodes
// whose expiry the watch could not see.
func (c *Controller) sweep(ctx context.Context) error {
	nodes, _, err := c.st.List(ctx, nodeKind, store.ListOptions{})
	if err != nil {
		return fmt.Errorf("list nodes: %w", err)
	}
	for _, o := range nodes {
		n := o.(*api.Node)
		if isUnknown(n) || c.now().Sub(n.CreationTimestamp) < c.cfg.Grace {
			continue
		}
		if err := c.MarkUnknown(ctx, n.Name); err != nil {
			c.log.Error("mark node unknown", "node", n.Name, "err", err)
		}
	}
	return nil
}

func isUnknown(n *api.Node) bool {
	r := n.Status.Condition(api.NodeReady)
	return r != nil && r.Status == api.ConditionUnknown
}

// MarkUnknown sets the node's Ready condition (and the pressure conditions
// it has) to Unknown with compare-and-set, unless the node beats again or is
// already Unknown. A node that does not exist is not an error. Safe for
// concurrent use.
func (c *Controller) MarkUnknown(ctx context.Context, name string) error {
	for attempt := 0; attempt < 20; attempt++ {
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
		if api.IsConflict(err) {
			continue
		}
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("update node %s: %w", name, err)
		}
		c.log.Info("node stopped posting status; marked Unknown", "node", name)
		return nil
	}
	return api.NewConflict("Node", name, "changed concurrently too often")
}
