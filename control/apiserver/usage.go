package apiserver

import (
	"slices"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// Usage history: the samples agents report (kyb.node.<node>.usage) are
// kept in memory, as Kubernetes' metrics-server keeps them: a ring of at
// most UsagePoints samples per node and per pod, no older than
// UsageRetention, so memory is bounded by the pods bound to nodes. A pod's
// series goes when its node reports without it and it is no longer bound
// there (deleted, or gone elsewhere); a node's when the Node is deleted. A
// server restart starts the history afresh (the next report, at most one
// sampling interval later, answers `kyb top` again). Every API server of
// a cluster records every report (usageshare.go).

// ring is a bounded series of samples, oldest first once unrolled.
type ring struct {
	pts  []api.UsagePoint
	next int // where the next point goes once the ring is full
}

func (r *ring) add(p api.UsagePoint, max int) {
	if len(r.pts) < max {
		r.pts = append(r.pts, p)
		return
	}
	r.pts[r.next] = p
	r.next = (r.next + 1) % max
}

// since returns the points not older than t, oldest first. Points come
// in the order they were recorded, which a report another API server
// passed on (usageshare.go) can break by a few milliseconds: sorted here.
func (r *ring) since(t time.Time) []api.UsagePoint {
	out := make([]api.UsagePoint, 0, len(r.pts))
	for i := range r.pts {
		p := r.pts[(r.next+i)%len(r.pts)]
		if !p.Time.Before(t) {
			out = append(out, p)
		}
	}
	slices.SortStableFunc(out, func(a, b api.UsagePoint) int { return a.Time.Compare(b.Time) })
	return out
}

type nodeSeries struct {
	ring   ring
	last   api.UsagePoint
	window time.Duration
	pods   map[string]bool // keys of the pod series this node reported
}

type podSeries struct {
	node, uid, runtime string
	ring               ring
	last               api.UsagePoint
	window             time.Duration
	containers         []api.ContainerUsage
}

// usageStore holds the usage history. Safe for concurrent use.
type usageStore struct {
	points int
	keep   time.Duration

	mu    sync.RWMutex
	nodes map[string]*nodeSeries
	pods  map[string]*podSeries // by namespace/name
}

func newUsageStore(points int, keep time.Duration) *usageStore {
	return &usageStore{points: points, keep: keep, nodes: map[string]*nodeSeries{}, pods: map[string]*podSeries{}}
}

// record stores a node's report received at now. bound says whether a pod
// (namespace, name, uid) is bound to the node now; pods that are not are
// left out, and counted in the return value.
func (u *usageStore) record(node string, r *api.NodeUsageReport, now time.Time, bound func(ns, name, uid string) bool) (rejected int) {
	u.mu.Lock()
	defer u.mu.Unlock()
	ns := u.nodes[node]
	if ns == nil {
		ns = &nodeSeries{pods: map[string]bool{}}
		u.nodes[node] = ns
	}
	// A report older than the last one recorded (passed on late by
	// another API server) joins the series but is not the current usage.
	npt := api.UsagePoint{Time: now, CPUNanoCores: r.CPUNanoCores, MemoryBytes: r.MemoryBytes}
	if !now.Before(ns.last.Time) {
		ns.last, ns.window = npt, r.Window.Duration
	}
	ns.ring.add(npt, u.points)
	seen := make(map[string]bool, len(r.Pods))
	for _, p := range r.Pods {
		key := p.Namespace + "/" + p.Name
		if !bound(p.Namespace, p.Name, p.UID) {
			rejected++
			continue
		}
		seen[key] = true
		ps := u.pods[key]
		if ps == nil || ps.uid != p.UID {
			ps = &podSeries{uid: p.UID}
			u.pods[key] = ps
		}
		if ps.node != node {
			if old := u.nodes[ps.node]; old != nil {
				delete(old.pods, key)
			}
			ps.node = node
		}
		pt := api.UsagePoint{Time: now}
		for _, c := range p.Containers {
			pt.CPUNanoCores += c.CPUNanoCores
			pt.MemoryBytes += c.MemoryBytes
		}
		if !now.Before(ps.last.Time) {
			ps.runtime, ps.window, ps.containers, ps.last = p.Runtime, r.Window.Duration, slices.Clone(p.Containers), pt
		}
		ps.ring.add(pt, u.points)
		ns.pods[key] = true
	}
	for key := range ns.pods {
		if seen[key] {
			continue
		}
		ps := u.pods[key]
		if ps == nil {
			delete(ns.pods, key)
			continue
		}
		nsName, name := splitKey(key)
		if !bound(nsName, name, ps.uid) || now.Sub(ps.last.Time) > u.keep {
			delete(u.pods, key)
			delete(ns.pods, key)
		}
	}
	return rejected
}

// forgetNode drops a deleted node's series and its pods'.
func (u *usageStore) forgetNode(node string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	ns := u.nodes[node]
	if ns == nil {
		return
	}
	for key := range ns.pods {
		if ps := u.pods[key]; ps != nil && ps.node == node {
			delete(u.pods, key)
		}
	}
	delete(u.nodes, node)
}

// size returns how many series and points are held (for tests).
func (u *usageStore) size() (series, points int) {
	u.mu.RLock()
	defer u.mu.RUnlock()
	for _, n := range u.nodes {
		series++
		points += len(n.ring.pts)
	}
	for _, p := range u.pods {
		series++
		points += len(p.ring.pts)
	}
	return series, points
}

func splitKey(key string) (string, string) {
	for i := range len(key) {
		if key[i] == '/' {
			return key[:i], key[i+1:]
		}
	}
	return "", key
}
