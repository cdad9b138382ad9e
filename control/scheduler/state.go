// The scheduler's view of the cluster: pods and nodes kept from the store's
// events, each node's allocation counted and its hot data (what the filters
// read per decision) refreshed when it changes.

package scheduler

import (
	"maps"
	"reflect"
	"slices"
	"strings"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
)

func (c *core) handleEvent(ev store.Event) {
	c.events++
	switch o := ev.Object.(type) {
	case *api.Pod:
		c.handlePod(ev.Type, o)
	case *api.Node:
		c.handleNode(ev.Type, o)
	case *api.PersistentVolumeClaim, *api.PersistentVolume, *api.StorageClass:
		c.vols.handle(ev.Type, o)
		c.requeueVolumeWaiters()
	case nil:
		if ev.Type == store.Synced && !c.synced {
			c.synced = true
			close(c.ready)
			c.log.Info("scheduler cache synced", "nodes", len(c.nodes), "pods", len(c.pods), "queued", c.queuedLen())
		}
	}
}

func podKey(p *api.Pod) string { return p.Namespace + "/" + p.Name }

func (c *core) ours(p *api.Pod) bool {
	return p.Spec.SchedulerName == "" || p.Spec.SchedulerName == c.cfg.SchedulerName
}

func terminal(p *api.Pod) bool {
	return p.Status.Phase == api.PodSucceeded || p.Status.Phase == api.PodFailed
}

func (c *core) handlePod(typ store.EventType, p *api.Pod) {
	key := podKey(p)
	pi := c.pods[key]
	if typ == store.Deleted {
		if pi != nil {
			c.setCounted(pi, "")
			delete(c.parked, key)
			delete(c.pods, key)
		}
		return
	}
	if pi != nil && pi.uid != p.UID && p.UID != "" && pi.uid != "" {
		// Deleted and re-created under the same name while we looked away.
		c.setCounted(pi, "")
		delete(c.parked, key)
		pi = nil
	}
	if pi == nil {
		c.seq++
		pi = &podInfo{key: key, seq: c.seq}
		c.pods[key] = pi
	}
	old := pi.pod
	c.setPod(pi, p)

	if p.Spec.NodeName != "" {
		delete(c.parked, key)
		pi.state = stateBound
		if terminal(p) {
			c.setCounted(pi, "")
		} else {
			c.setCounted(pi, p.Spec.NodeName)
		}
		return
	}
	if !c.ours(p) || terminal(p) || p.DeletionTimestamp != nil {
		delete(c.parked, key)
		if pi.state != stateBinding {
			pi.state = stateIdle
			c.setCounted(pi, "")
		}
		return
	}
	switch pi.state {
	case stateIdle:
		c.enqueue(pi)
	case stateBound:
		// Our bind succeeded and this is an older version still in the
		// watch; the bound version follows.
	case stateWaiting:
		if p.ResourceVersion != pi.bindRV {
			c.enqueue(pi)
		}
	case stateParked:
		if pi.statusStale || old == nil || !reflect.DeepEqual(old.Spec, p.Spec) {
			pi.statusStale = false
			delete(c.parked, key)
			c.enqueue(pi)
		}
	case stateQueued, stateBinding, stateBackoff:
		// The pending decision or write will see the new pod.
	}
}

func (c *core) setPod(pi *podInfo, p *api.Pod) {
	pi.pod = p
	pi.uid = p.UID
	pi.req = podRequests(p)
	pi.runtime = p.Spec.RuntimeClass()
	pi.rtBit = c.runtimeBit(pi.runtime)
	pi.toleratesUnschedulable = tolerates(p.Spec.Tolerations, &api.Taint{Key: taintUnschedulable, Effect: api.TaintNoSchedule})
	pi.toleratesNotReady = tolerates(p.Spec.Tolerations, &api.Taint{Key: taintNotReady, Effect: api.TaintNoSchedule})
	pi.claims = podClaims(p)
}

func (c *core) handleNode(typ store.EventType, n *api.Node) {
	ni := c.nodes[n.Name]
	if typ == store.Deleted {
		if ni != nil && ni.node != nil {
			ni.node = nil
			c.listDirty = true
			if ni.npods == 0 {
				delete(c.nodes, n.Name)
			}
		}
		return
	}
	if ni == nil {
		ni = &nodeInfo{name: n.Name, hot: -1}
		c.nodes[n.Name] = ni
	}
	added := ni.node == nil
	var taints []api.Taint
	for _, t := range n.Spec.Taints {
		if t.Effect == api.TaintNoSchedule || t.Effect == api.TaintNoExecute {
			taints = append(taints, t)
		}
	}
	runtimes := make([]string, 0, len(n.Status.NodeInfo.Runtimes))
	for _, r := range n.Status.NodeInfo.Runtimes {
		runtimes = append(runtimes, r.Name)
	}
	alloc := nodeAllocatable(n)
	changed := added || alloc != ni.alloc || n.IsReady() != ni.ready ||
		n.Spec.Unschedulable != ni.unschedulable || !maps.Equal(n.Labels, ni.labels) ||
		!slices.EqualFunc(taints, ni.taints, sameTaint) || !slices.Equal(runtimes, ni.runtimes)
	if added || !slices.Equal(runtimes, ni.runtimes) {
		c.listDirty = true
	}
	ni.node = n
	ni.alloc = alloc
	ni.ready = n.IsReady()
	ni.unschedulable = n.Spec.Unschedulable
	ni.labels = n.Labels
	ni.taints = taints
	ni.runtimes = runtimes
	ni.rtMask = 0
	for _, r := range runtimes {
		ni.rtMask |= c.runtimeBit(r)
	}
	if h := c.hotOf(ni); h != nil && !c.listDirty {
		*h = ni.hotData()
	}
	if changed {
		// Parked pods that fit on the new or changed node are retried. As
		// with Kubernetes' queueing hints, a node that helps no one does not
		// rewrite every parked pod's "0/N nodes" message.
		c.markDirty(ni)
	}
}

// runtimeBit returns the bit of a runtime class name, so the runtime check
// is one AND.
func (c *core) runtimeBit(name string) uint64 {
	if b, ok := c.rtBits[name]; ok {
		return b
	}
	b := uint64(1) << min(len(c.rtBits), 63)
	c.rtBits[name] = b
	return b
}

func sameTaint(a, b api.Taint) bool {
	return a.Key == b.Key && a.Value == b.Value && a.Effect == b.Effect
}

// setCounted moves pi's resources onto node ("" for none). It is idempotent,
// so a bind's watch echo after the assumed placement counts nothing twice.
func (c *core) setCounted(pi *podInfo, node string) {
	if pi.countedOn == node && (node == "" || pi.countedReq == pi.req) {
		return
	}
	if pi.countedOn != "" {
		if ni := c.nodes[pi.countedOn]; ni != nil {
			ni.used.sub(pi.countedReq)
			ni.npods--
			c.syncHot(ni)
			c.markDirty(ni) // resources were freed: parked pods may fit now
			if ni.node == nil && ni.npods == 0 {
				delete(c.nodes, ni.name)
			}
		}
	}
	if node != "" {
		ni := c.nodes[node]
		if ni == nil {
			ni = &nodeInfo{name: node, hot: -1} // a placeholder until the node itself is seen
			c.nodes[node] = ni
		}
		ni.used.add(pi.req)
		ni.npods++
		c.syncHot(ni)
	}
	pi.countedOn, pi.countedReq = node, pi.req
}

// syncHot mirrors a node's used resources into its hot entry.
func (c *core) syncHot(ni *nodeInfo) {
	if h := c.hotOf(ni); h != nil {
		h.used = ni.used
	}
}

// hotOf returns ni's entry in c.hot, or nil when it has none (yet).
func (c *core) hotOf(ni *nodeInfo) *nodeHot {
	if ni.hot >= 0 && ni.hot < len(c.hot) && c.hot[ni.hot].ni == ni {
		return &c.hot[ni.hot]
	}
	return nil
}

func (c *core) markDirty(ni *nodeInfo) {
	if !ni.dirty && ni.node != nil && len(c.parked) > 0 {
		ni.dirty = true
		c.dirtyNodes = append(c.dirtyNodes, ni)
	}
}

// flushDirty moves parked pods back to the queue when a node they might now
// fit on changed: for each parked pod only the changed nodes are checked, so
// a pod is retried exactly when the cluster changed in its favour.
func (c *core) flushDirty() {
	if len(c.dirtyNodes) == 0 {
		return
	}
	dirty := c.dirtyNodes
	c.dirtyNodes = c.dirtyNodes[:0]
	for _, ni := range dirty {
		ni.dirty = false
	}
	// Checking every parked pod against more than half the nodes costs
	// about what retrying it does.
	all := len(dirty) > 64 && len(dirty) > len(c.list)/2
	if len(c.parked) == 0 {
		return
	}
	var wake []*podInfo
	for _, pi := range c.parked {
		if all {
			wake = append(wake, pi)
			continue
		}
		for _, ni := range dirty {
			if ni.node != nil && c.feasible(pi, ni).code == 0 {
				wake = append(wake, pi)
				break
			}
		}
	}
	slices.SortFunc(wake, func(a, b *podInfo) int { return int(a.seq - b.seq) })
	for _, pi := range wake {
		delete(c.parked, pi.key)
		c.enqueue(pi)
	}
}

// rebuildList orders the nodes by name and rebuilds their hot data and
// the per-runtime index the decisions walk.
func (c *core) rebuildList() {
	c.list = c.list[:0]
	for _, ni := range c.nodes {
		if ni.node != nil {
			c.list = append(c.list, ni)
		}
	}
	slices.SortFunc(c.list, func(a, b *nodeInfo) int { return strings.Compare(a.name, b.name) })
	for _, ni := range c.nodes {
		ni.hot = -1
	}
	c.hot = c.hot[:0]
	clear(c.byRuntime)
	for i, ni := range c.list {
		ni.hot = i
		c.hot = append(c.hot, ni.hotData())
		for bits := ni.rtMask; bits != 0; bits &= bits - 1 {
			bit := bits & -bits
			c.byRuntime[bit] = append(c.byRuntime[bit], int32(i))
		}
	}
	c.listDirty = false
}
