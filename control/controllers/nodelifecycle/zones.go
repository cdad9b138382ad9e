package nodelifecycle

import (
	"sync"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
)

// health is what the controller tracks of a node for disruption: its zone
// and whether its Ready condition is other than True.
type health struct {
	zone      string
	unhealthy bool
}

func healthOf(n *api.Node) health {
	return health{zone: n.Labels[api.LabelTopologyZone], unhealthy: !n.IsReady()}
}

// zones counts nodes and unhealthy nodes per zone, updated by the Node
// informer's handler (O(1) a change), and reports whether a zone is
// disrupted: more than threshold of its nodes are not Ready. A disrupted
// zone is most likely one the control plane lost, not one whose nodes all
// died at once, so nothing in it is tainted or evicted. Safe for concurrent
// use.
type zones struct {
	threshold float64

	mu        sync.Mutex
	total     map[string]int
	unhealthy map[string]int
}

func newZones(threshold float64) *zones {
	return &zones{threshold: threshold, total: map[string]int{}, unhealthy: map[string]int{}}
}

// change moves a node from old to new (nil: absent) and reports the zones
// whose disrupted state flipped.
func (z *zones) change(old, new *health) []string {
	z.mu.Lock()
	defer z.mu.Unlock()
	before := map[string]bool{}
	for _, h := range []*health{old, new} {
		if h != nil {
			before[h.zone] = z.disruptedLocked(h.zone)
		}
	}
	if old != nil {
		z.total[old.zone]--
		if old.unhealthy {
			z.unhealthy[old.zone]--
		}
	}
	if new != nil {
		z.total[new.zone]++
		if new.unhealthy {
			z.unhealthy[new.zone]++
		}
	}
	var flipped []string
	for zone, was := range before {
		if z.disruptedLocked(zone) != was {
			flipped = append(flipped, zone)
		}
	}
	return flipped
}

// disrupted reports whether more than the threshold of zone's nodes are
// not Ready.
func (z *zones) disrupted(zone string) bool {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.disruptedLocked(zone)
}

func (z *zones) disruptedLocked(zone string) bool {
	t := z.total[zone]
	if t == 0 {
		return false
	}
	return float64(z.unhealthy[zone])/float64(t) > z.threshold
}

// podIndex maps a node name to the keys of the pods bound to it, kept by
// the Pod informer's handler, so that a node's change queues only its own
// pods. Safe for concurrent use.
type podIndex struct {
	mu     sync.Mutex
	byNode map[string]map[framework.Key]struct{}
}

func newPodIndex() *podIndex {
	return &podIndex{byNode: map[string]map[framework.Key]struct{}{}}
}

// set moves key from oldNode to newNode ("" for none).
func (x *podIndex) set(oldNode, newNode string, key framework.Key) {
	if oldNode == newNode {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if oldNode != "" && oldNode != newNode {
		if m := x.byNode[oldNode]; m != nil {
			delete(m, key)
			if len(m) == 0 {
				delete(x.byNode, oldNode)
			}
		}
	}
	if newNode != "" {
		m := x.byNode[newNode]
		if m == nil {
			m = map[framework.Key]struct{}{}
			x.byNode[newNode] = m
		}
		m[key] = struct{}{}
	}
}

// on returns the keys of the pods bound to node.
func (x *podIndex) on(node string) []framework.Key {
	x.mu.Lock()
	defer x.mu.Unlock()
	out := make([]framework.Key, 0, len(x.byNode[node]))
	for k := range x.byNode[node] {
		out = append(out, k)
	}
	return out
}
