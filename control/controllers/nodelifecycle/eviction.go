package nodelifecycle

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/internal/retry"
)

var podKind = api.KindOf(&api.Pod{})

// noExecuteKeys are the taints this controller owns on nodes.
var noExecuteKeys = []string{api.TaintNodeUnreachable, api.TaintNodeNotReady}

// wantedTaint is the NoExecute taint node n should carry by its Ready
// condition: unreachable when Unknown, not-ready when False, none when True
// (or when it has no Ready condition yet: an agent that never reported).
func wantedTaint(n *api.Node) string {
	r := n.Status.Condition(api.NodeReady)
	switch {
	case r == nil:
		return ""
	case r.Status == api.ConditionUnknown:
		return api.TaintNodeUnreachable
	case r.Status == api.ConditionFalse:
		return api.TaintNodeNotReady
	}
	return ""
}

// ownedTaint returns the controller's NoExecute taint on n ("" when none).
func ownedTaint(n *api.Node) string {
	for _, t := range n.Spec.Taints {
		if t.Effect == api.TaintNoExecute && slices.Contains(noExecuteKeys, t.Key) {
			return t.Key
		}
	}
	return ""
}

// reconcileTaint makes node name carry the NoExecute taint its Ready
// condition calls for (none while its zone is disrupted), with
// compare-and-set. A taint it adds has timeAdded now; one already there
// keeps its time. Removing a taint is never delayed.
func (c *Controller) reconcileTaint(ctx context.Context, name string) error {
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, nodeKind, "", name)
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("get node %s: %w", name, err)
		}
		n := obj.(*api.Node)
		want := wantedTaint(n)
		if want != "" && c.zones.disrupted(healthOf(n).zone) {
			want = "" // the control plane is likely the one cut off
		}
		if ownedTaint(n) == want {
			return nil
		}
		now := c.now().UTC().Truncate(time.Second)
		taints := make([]api.Taint, 0, len(n.Spec.Taints)+1)
		for _, t := range n.Spec.Taints {
			if t.Effect == api.TaintNoExecute && slices.Contains(noExecuteKeys, t.Key) && t.Key != want {
				continue
			}
			taints = append(taints, t)
		}
		if want != "" && !slices.ContainsFunc(taints, func(t api.Taint) bool { return t.Key == want && t.Effect == api.TaintNoExecute }) {
			taints = append(taints, api.Taint{Key: want, Effect: api.TaintNoExecute, TimeAdded: &now})
		}
		n.Spec.Taints = taints
		if err := c.st.Update(ctx, n); err != nil {
			if api.IsNotFound(err) {
				return nil
			}
			return err
		}
		if want != "" {
			c.log.Info("node tainted", "node", name, "taint", want+":NoExecute")
		} else {
			c.log.Info("node taints removed", "node", name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("taint node %s: %w", name, err)
	}
	return nil
}

// ReconcilePod acts on one pod bound to a node that is not Ready: it turns
// the pod's Ready condition False at once when the node stopped posting
// status (its agent cannot say what runs), and marks the pod for deletion
// (an eviction, rate limited) once its tolerations of the node's NoExecute
// taints run out, unless the node's zone is disrupted. A terminating pod
// whose node was deleted is removed (no agent will finalize it, as
// Kubernetes' pod garbage collector removes orphans). A pod that is gone,
// unbound, already terminating or completed is otherwise left alone. Safe for
// concurrent use; never run twice at once for one key.
func (c *Controller) ReconcilePod(ctx context.Context, key framework.Key) (framework.Result, error) {
	obj, ok := c.pods.Get(key.Namespace, key.Name)
	if !ok {
		c.forget(key)
		return framework.Result{}, nil
	}
	pod := obj.(*api.Pod)
	if pod.Spec.NodeName == "" {
		c.forget(key)
		return framework.Result{}, nil
	}
	nobj, ok := c.nodes.Get("", pod.Spec.NodeName)
	if !ok {
		c.forget(key)
		if pod.DeletionTimestamp != nil {
			// No agent will ever finalize it.
			return framework.Result{}, c.removeOrphan(ctx, key)
		}
		return framework.Result{}, nil
	}
	if pod.DeletionTimestamp != nil || terminal(pod) {
		c.forget(key)
		return framework.Result{}, nil
	}
	n := nobj.(*api.Node)
	if r := n.Status.Condition(api.NodeReady); r != nil && r.Status == api.ConditionUnknown && podReady(pod) {
		if err := c.markPodNotReady(ctx, key, n.Name); err != nil {
			return framework.Result{}, err
		}
	}
	at, ok := c.evictionTime(pod, n)
	if !ok {
		c.forget(key)
		return framework.Result{}, nil
	}
	if wait := at.Sub(c.now()); wait > 0 {
		return framework.Result{RequeueAfter: wait}, nil
	}
	if c.zones.disrupted(healthOf(n).zone) {
		// Queued again when a node's health changes (blocked).
		c.block(key)
		return framework.Result{}, nil
	}
	c.unblock(key)
	if wait := c.evictionToken(key); wait > 0 {
		return framework.Result{RequeueAfter: wait}, nil
	}
	return framework.Result{}, c.evict(ctx, key, n.Name)
}

// terminal reports whether a pod completed: it holds nothing and its
// record matters (a Job counts it), so it is never evicted.
func terminal(p *api.Pod) bool {
	return p.Status.Phase == api.PodSucceeded || p.Status.Phase == api.PodFailed
}

// podReady reports whether a pod (or one of its containers) still shows
// ready.
func podReady(p *api.Pod) bool {
	for _, t := range []string{api.PodReady, api.ContainersReady} {
		if c := p.Status.Condition(t); c != nil && c.Status == api.ConditionTrue {
			return true
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Ready {
			return true
		}
	}
	return false
}

// evictionTime returns when pod must leave node n: the earliest, over the
// node's NoExecute taints, of when the taint was added plus the longest
// time a toleration of the pod allows (untolerated: at once). No
// NoExecute taint, or only taints tolerated forever: false. A pod with no
// toleration at all of the unreachable and not-ready taints gets
// Kubernetes' default 300 s (api.Default gives it them; this covers pods
// written without defaulting).
func (c *Controller) evictionTime(pod *api.Pod, n *api.Node) (time.Time, bool) {
	var at time.Time
	found := false
	for i := range n.Spec.Taints {
		t := &n.Spec.Taints[i]
		if t.Effect != api.TaintNoExecute {
			continue
		}
		added := c.taintTime(n.Name, t)
		tolerated, forever := false, false
		var secs int64
		for j := range pod.Spec.Tolerations {
			tol := &pod.Spec.Tolerations[j]
			if !tol.ToleratesTaint(t) {
				continue
			}
			if tol.TolerationSeconds == nil {
				forever = true
				break
			}
			if s := max(*tol.TolerationSeconds, 0); !tolerated || s > secs {
				secs = s
			}
			tolerated = true
		}
		if forever {
			continue
		}
		if !tolerated && slices.Contains(noExecuteKeys, t.Key) {
			tolerated, secs = true, api.DefaultTolerationSeconds
		}
		due := added
		if tolerated {
			due = added.Add(time.Duration(secs) * time.Second)
		}
		if !found || due.Before(at) {
			at, found = due, true
		}
	}
	return at, found
}

// taintTime returns when taint t was added to node: its timeAdded, or for
// a taint added without one (by hand), when this controller first saw it.
func (c *Controller) taintTime(node string, t *api.Taint) time.Time {
	if t.TimeAdded != nil {
		return *t.TimeAdded
	}
	id := node + "\x00" + t.Key + "\x00" + string(t.Effect)
	c.evMu.Lock()
	defer c.evMu.Unlock()
	at, ok := c.firstSeen[id]
	if !ok {
		at = c.now()
		c.firstSeen[id] = at
	}
	return at
}

// evictionToken takes a token of the eviction rate for key (once: a key
// that waits for its turn keeps its reservation) and returns how long to
// wait for it.
func (c *Controller) evictionToken(key framework.Key) time.Duration {
	c.evMu.Lock()
	defer c.evMu.Unlock()
	now := c.now()
	if at, ok := c.reserved[key]; ok {
		if wait := at.Sub(now); wait > 0 {
			return wait
		}
		delete(c.reserved, key)
		return 0
	}
	wait := c.bucket.When(key)
	if wait > 0 {
		c.reserved[key] = now.Add(wait)
	}
	return wait
}

func (c *Controller) block(key framework.Key) {
	c.evMu.Lock()
	c.blocked[key] = struct{}{}
	c.evMu.Unlock()
}

func (c *Controller) unblock(key framework.Key) {
	c.evMu.Lock()
	delete(c.blocked, key)
	c.evMu.Unlock()
}

// forget drops what is remembered of a pod that needs no eviction.
func (c *Controller) forget(key framework.Key) {
	c.evMu.Lock()
	delete(c.blocked, key)
	delete(c.reserved, key)
	c.evMu.Unlock()
}

// requeueBlocked queues again every pod whose eviction waited for its zone.
func (c *Controller) requeueBlocked() {
	c.evMu.Lock()
	keys := make([]framework.Key, 0, len(c.blocked))
	for k := range c.blocked {
		keys = append(keys, k)
	}
	clear(c.blocked)
	c.evMu.Unlock()
	for _, k := range keys {
		c.podCtl.Queue().Add(k)
	}
}

// markPodNotReady turns the pod's Ready and ContainersReady conditions
// False (reason NodeLost) and its containers not ready, with
// compare-and-set, unless it moved, is terminating or already shows not
// ready. Its agent's next status report (when it returns) says what is
// true again.
func (c *Controller) markPodNotReady(ctx context.Context, key framework.Key, node string) error {
	marked := false
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, podKind, key.Namespace, key.Name)
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		p := obj.(*api.Pod)
		if p.Spec.NodeName != node || p.DeletionTimestamp != nil || terminal(p) || !podReady(p) {
			return nil
		}
		now := c.now().UTC().Truncate(time.Second)
		msg := fmt.Sprintf("Node %s which was running pod %s is unresponsive", node, p.Name)
		for _, t := range []string{api.PodReady, api.ContainersReady} {
			p.Status.SetCondition(api.PodCondition{Type: t, Status: api.ConditionFalse, LastTransitionTime: now,
				Reason: api.ReasonNodeLost, Message: msg})
		}
		for i := range p.Status.ContainerStatuses {
			p.Status.ContainerStatuses[i].Ready = false
		}
		if err := c.st.Update(ctx, p); err != nil {
			if api.IsNotFound(err) {
				return nil
			}
			return err
		}
		marked = true
		c.rec.Eventf(api.RefTo(p), api.EventTypeWarning, api.ReasonNodeNotReady, "Node is not ready")
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark pod %s not ready: %w", key, err)
	}
	if marked {
		c.log.Info("pod marked not ready: its node stopped posting status", "pod", key.String(), "node", node)
	}
	return nil
}

// evict marks the pod for graceful deletion, as the apiserver's delete of
// a pod bound to a node does (deletionTimestamp and the pod's grace
// period; its agent, if it ever returns, stops it and reports it
// finalized, which removes it), with a DisruptionTarget condition, and
// records a TaintManagerEviction event. Controllers that own the pod count
// a terminating pod as gone and replace it, as in Kubernetes.
func (c *Controller) evict(ctx context.Context, key framework.Key, node string) error {
	evicted := false
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, podKind, key.Namespace, key.Name)
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		p := obj.(*api.Pod)
		if p.Spec.NodeName != node || p.DeletionTimestamp != nil || terminal(p) {
			return nil
		}
		now := c.now().UTC().Truncate(time.Second)
		grace := api.DefaultTerminationGracePeriodSeconds
		if g := p.Spec.TerminationGracePeriodSeconds; g != nil {
			grace = *g
		}
		p.DeletionTimestamp = &now
		p.DeletionGracePeriodSeconds = &grace
		p.Status.SetCondition(api.PodCondition{Type: api.DisruptionTarget, Status: api.ConditionTrue, LastTransitionTime: now,
			Reason: api.ReasonDeletionByTaintManager, Message: "Taint manager: deleting due to NoExecute taint"})
		if err := c.st.Update(ctx, p); err != nil {
			if api.IsNotFound(err) {
				return nil
			}
			return err
		}
		evicted = true
		c.rec.Eventf(api.RefTo(p), api.EventTypeNormal, api.ReasonTaintManagerEviction, "Marking for deletion Pod %s/%s", p.Namespace, p.Name)
		return nil
	})
	if err != nil {
		return fmt.Errorf("evict pod %s: %w", key, err)
	}
	if evicted {
		c.log.Info("pod evicted: NoExecute taint not tolerated any longer", "pod", key.String(), "node", node)
	}
	return nil
}

// removeOrphan removes a terminating pod whose node is gone from the store
// (not only from the cache, which may lag a node just registered), with
// compare-and-set on the pod read.
func (c *Controller) removeOrphan(ctx context.Context, key framework.Key) error {
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := c.st.Get(ctx, podKind, key.Namespace, key.Name)
		if api.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return err
		}
		p := obj.(*api.Pod)
		if p.DeletionTimestamp == nil || p.Spec.NodeName == "" {
			return nil
		}
		if _, err := c.st.Get(ctx, nodeKind, "", p.Spec.NodeName); !api.IsNotFound(err) {
			return err // nil: the node exists after all
		}
		if _, err := c.st.Delete(ctx, podKind, key.Namespace, key.Name, p.ResourceVersion); err != nil && !api.IsNotFound(err) {
			return err
		}
		c.log.Info("terminating pod of a deleted node removed", "pod", key.String(), "node", p.Spec.NodeName)
		return nil
	})
	if err != nil {
		return fmt.Errorf("remove pod %s of a deleted node: %w", key, err)
	}
	return nil
}
