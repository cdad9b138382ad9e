package nodelifecycle_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/nodelifecycle"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var podKind = api.KindOf(&api.Pod{})

// recorded is one event a controller recorded.
type recorded struct {
	pod, typ, reason, msg string
	at                    time.Time
}

// events records what the controller records, in order.
type events struct {
	mu  sync.Mutex
	all []recorded
}

func (e *events) Eventf(ref api.ObjectReference, typ, reason, format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.all = append(e.all, recorded{pod: ref.Namespace + "/" + ref.Name, typ: typ, reason: reason, msg: fmt.Sprintf(format, args...), at: time.Now()})
}

func (e *events) of(pod, reason string) []recorded {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []recorded
	for _, r := range e.all {
		if r.pod == pod && r.reason == reason {
			out = append(out, r)
		}
	}
	return out
}

// cluster is a real store and heartbeat bucket (1 s TTL: the grace period),
// nodes that beat until stopped, and the node lifecycle controller.
type cluster struct {
	t      testing.TB
	ctx    context.Context
	st     *store.Store
	hb     *store.Heartbeats
	ev     *events
	mu     sync.Mutex
	beats  map[string]context.CancelFunc
	wg     sync.WaitGroup
	cancel context.CancelFunc
}

func newCluster(t testing.TB, cfg nodelifecycle.Config, nodes ...string) *cluster {
	s := testutil.StartNATS(t)
	js, err := jetstream.New(testutil.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &cluster{t: t, ctx: ctx, ev: &events{}, beats: map[string]context.CancelFunc{}, cancel: cancel}
	if c.st, err = store.Open(ctx, js, store.Config{}); err != nil {
		t.Fatal(err)
	}
	if c.hb, err = store.OpenHeartbeats(ctx, js, time.Second); err != nil {
		t.Fatal(err)
	}
	for _, name := range nodes {
		n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name}}
		api.Default(n)
		n.Status.Conditions = []api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionTrue, Reason: "AgentReady", LastHeartbeatTime: time.Now().UTC()}}
		if err := c.st.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
		c.beat(name)
	}
	if cfg.Grace == 0 {
		cfg.Grace = time.Second
	}
	cfg.Recorder = c.ev
	mgr := framework.NewManager(c.st, slog.New(slog.DiscardHandler))
	mgr.Add("nodelifecycle", nodelifecycle.New(mgr, c.st, c.hb, cfg, slog.New(slog.DiscardHandler)))
	done := make(chan error, 1)
	go func() { done <- mgr.Run(ctx) }()
	t.Cleanup(func() {
		c.mu.Lock()
		for _, stop := range c.beats {
			stop()
		}
		c.mu.Unlock()
		c.wg.Wait()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("controllers: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Error("controllers did not stop within 10s")
		}
	})
	return c
}

// beat makes node beat every 100 ms until silence.
func (c *cluster) beat(node string) {
	if err := c.hb.Beat(c.ctx, node, time.Now()); err != nil {
		c.t.Fatal(err)
	}
	ctx, stop := context.WithCancel(c.ctx)
	c.mu.Lock()
	c.beats[node] = stop
	c.mu.Unlock()
	c.wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
				_ = c.hb.Beat(ctx, node, time.Now())
			}
		}
	})
}

// silence stops the beats of nodes, at once.
func (c *cluster) silence(nodes ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range nodes {
		if stop := c.beats[n]; stop != nil {
			stop()
			delete(c.beats, n)
		}
	}
}

// revive makes a silent node's agent come back: it beats and reports Ready.
func (c *cluster) revive(node string) {
	c.beat(node)
	c.updateNode(node, func(n *api.Node) {
		n.Status.SetCondition(api.NodeCondition{Type: api.NodeReady, Status: api.ConditionTrue, Reason: "AgentReady", LastHeartbeatTime: time.Now().UTC()})
	})
}

func (c *cluster) updateNode(name string, f func(n *api.Node)) {
	c.t.Helper()
	testutil.Eventually(c.t, 5*time.Second, func() error {
		obj, err := c.st.Get(c.ctx, nodeKind, "", name)
		if err != nil {
			return err
		}
		n := obj.(*api.Node)
		f(n)
		return c.st.Update(c.ctx, n)
	})
}

func (c *cluster) node(name string) *api.Node {
	c.t.Helper()
	obj, err := c.st.Get(c.ctx, nodeKind, "", name)
	if err != nil {
		c.t.Fatal(err)
	}
	return obj.(*api.Node)
}

func (c *cluster) pod(name string) *api.Pod {
	c.t.Helper()
	obj, err := c.st.Get(c.ctx, podKind, "default", name)
	if err != nil {
		c.t.Fatal(err)
	}
	return obj.(*api.Pod)
}

// runningPod stores a pod bound to node as its agent reports it: Running,
// Ready, its container ready. defaulted runs api.Default (the apiserver's
// path); otherwise the pod is stored exactly as given.
func (c *cluster) runningPod(name, node string, defaulted bool, tols ...api.Toleration) *api.Pod {
	c.t.Helper()
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Spec: api.PodSpec{
		NodeName: node, Tolerations: tols, Containers: []api.Container{{Name: "app", Image: "nginx:1.27"}},
	}}
	if defaulted {
		api.Default(p)
	}
	now := time.Now().UTC().Truncate(time.Second)
	p.Status = api.PodStatus{Phase: api.PodRunning, Conditions: []api.PodCondition{
		{Type: api.PodReady, Status: api.ConditionTrue, LastTransitionTime: now},
		{Type: api.ContainersReady, Status: api.ConditionTrue, LastTransitionTime: now},
	}, ContainerStatuses: []api.ContainerStatus{{Name: "app", Ready: true, Image: "nginx:1.27",
		State: api.ContainerState{Running: &api.ContainerStateRunning{StartedAt: now}}}}}
	if err := c.st.Create(c.ctx, p); err != nil {
		c.t.Fatal(err)
	}
	return p
}

func unreachableTaint(n *api.Node) *api.Taint {
	for i, t := range n.Spec.Taints {
		if t.Key == api.TaintNodeUnreachable && t.Effect == api.TaintNoExecute {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}

func tolerate(key string, secs *int64) api.Toleration {
	return api.Toleration{Key: key, Operator: api.TolerationOpExists, Effect: api.TaintNoExecute, TolerationSeconds: secs}
}

func seconds(s int64) *int64 { return &s }

// TestSilentNodeEvicted: a node that stops beating becomes Unknown with the
// unreachable NoExecute taint (timeAdded set); its pods turn not Ready at
// once (they no longer show Running and 1/1 ready); each is evicted (marked
// for deletion, TaintManagerEviction) when its toleration of the taint runs
// out, and not before; pods tolerating it for long or for ever, completed
// pods and pods of other nodes stay. When the node returns the taint goes.
func TestSilentNodeEvicted(t *testing.T) {
	c := newCluster(t, nodelifecycle.Config{}, "dead", "alive")
	short := c.runningPod("short", "dead", true, tolerate(api.TaintNodeUnreachable, seconds(2)))
	untolerated := c.runningPod("zero", "dead", true, tolerate(api.TaintNodeUnreachable, seconds(0)))
	defaulted := c.runningPod("defaulted", "dead", true) // api.Default: 300 s
	raw := c.runningPod("raw", "dead", false)            // stored without defaulting: 300 s as well
	forever := c.runningPod("forever", "dead", true, tolerate(api.TaintNodeUnreachable, nil))
	done := c.runningPod("done", "dead", true, tolerate(api.TaintNodeUnreachable, seconds(0)))
	other := c.runningPod("other", "alive", true, tolerate(api.TaintNodeUnreachable, seconds(0)))
	done.Status.Phase = api.PodSucceeded
	done.Status.Conditions = nil
	done.Status.ContainerStatuses[0].Ready = false
	if err := c.st.Update(c.ctx, done); err != nil {
		t.Fatal(err)
	}
	if n := len(defaulted.Spec.Tolerations); n != 2 {
		t.Fatalf("defaulted pod has %d tolerations, want the 2 defaults", n)
	}

	if n := c.node("dead"); unreachableTaint(n) != nil {
		t.Fatalf("taint before the node went silent: %+v", n.Spec.Taints)
	}
	c.silence("dead")
	var added time.Time
	testutil.Eventually(t, 10*time.Second, func() error {
		n := c.node("dead")
		if r := n.Status.Condition(api.NodeReady); r == nil || r.Status != api.ConditionUnknown {
			return fmt.Errorf("Ready %+v, want Unknown", r)
		}
		taint := unreachableTaint(n)
		if taint == nil || taint.TimeAdded == nil {
			return fmt.Errorf("taints %+v, want %s:NoExecute with timeAdded", n.Spec.Taints, api.TaintNodeUnreachable)
		}
		added = *taint.TimeAdded
		return nil
	})
	// At once: every running pod of the node shows not ready.
	testutil.Eventually(t, 5*time.Second, func() error {
		for _, p := range []*api.Pod{short, defaulted, raw, forever} {
			got := c.pod(p.Name)
			r := got.Status.Condition(api.PodReady)
			if r == nil || r.Status != api.ConditionFalse || r.Reason != api.ReasonNodeLost {
				return fmt.Errorf("pod %s Ready %+v, want False/%s", p.Name, r, api.ReasonNodeLost)
			}
			if got.Status.ContainerStatuses[0].Ready {
				return fmt.Errorf("pod %s: container still ready", p.Name)
			}
			if len(c.ev.of("default/"+p.Name, api.ReasonNodeNotReady)) == 0 {
				return fmt.Errorf("no NodeNotReady event for %s", p.Name)
			}
		}
		return nil
	})
	// A toleration of 0 s: evicted at once.
	testutil.Eventually(t, 5*time.Second, func() error {
		if p := c.pod(untolerated.Name); p.DeletionTimestamp == nil {
			return fmt.Errorf("pod %s not evicted", p.Name)
		}
		return nil
	})
	if p := c.pod(short.Name); p.DeletionTimestamp != nil && p.DeletionTimestamp.Before(added.Add(2*time.Second)) {
		t.Fatalf("pod short evicted at %v, before the taint (%v) + its toleration (2s)", p.DeletionTimestamp, added)
	}
	// After its 2 s toleration: evicted, with the condition and event.
	testutil.Eventually(t, 10*time.Second, func() error {
		p := c.pod(short.Name)
		if p.DeletionTimestamp == nil {
			return fmt.Errorf("pod short not evicted")
		}
		return nil
	})
	p := c.pod(short.Name)
	if p.DeletionTimestamp.Before(added.Add(2 * time.Second)) {
		t.Errorf("pod short evicted at %v, before the taint (%v) + 2s", p.DeletionTimestamp, added)
	}
	if p.DeletionGracePeriodSeconds == nil || *p.DeletionGracePeriodSeconds != api.DefaultTerminationGracePeriodSeconds {
		t.Errorf("deletion grace %v, want the pod's 30", p.DeletionGracePeriodSeconds)
	}
	if d := p.Status.Condition(api.DisruptionTarget); d == nil || d.Status != api.ConditionTrue || d.Reason != api.ReasonDeletionByTaintManager {
		t.Errorf("DisruptionTarget %+v", d)
	}
	if evs := c.ev.of("default/short", api.ReasonTaintManagerEviction); len(evs) != 1 || evs[0].msg != "Marking for deletion Pod default/short" {
		t.Errorf("eviction events %+v", evs)
	}
	// The others stay: 300 s (default or fallback), for ever, completed, another node.
	for _, name := range []string{defaulted.Name, raw.Name, forever.Name, done.Name, other.Name} {
		if p := c.pod(name); p.DeletionTimestamp != nil {
			t.Errorf("pod %s evicted", name)
		}
	}
	if r := c.pod(other.Name).Status.Condition(api.PodReady); r.Status != api.ConditionTrue {
		t.Errorf("pod of the live node marked %+v", r)
	}
	if c.pod(done.Name).Status.Condition(api.PodReady) != nil {
		t.Errorf("completed pod was given a Ready condition")
	}

	// The node returns: the taint goes (and is not put back).
	c.revive("dead")
	testutil.Eventually(t, 10*time.Second, func() error {
		n := c.node("dead")
		if !n.IsReady() || unreachableTaint(n) != nil {
			return fmt.Errorf("ready %v taints %+v, want Ready without the taint", n.IsReady(), n.Spec.Taints)
		}
		return nil
	})
}

// TestAllNodesSilentEvictsNothing: when every node goes silent at once (the
// control plane is the one cut off), no pod is evicted, though their
// toleration is short: the taints go as the zone turns disrupted. When
// most nodes come back, the one still silent is tainted afresh and its
// pods are evicted after their toleration from then.
func TestAllNodesSilentEvictsNothing(t *testing.T) {
	nodes := []string{"n1", "n2", "n3"}
	c := newCluster(t, nodelifecycle.Config{}, nodes...)
	for _, n := range nodes {
		c.runningPod("pod-"+n, n, true, tolerate(api.TaintNodeUnreachable, seconds(3)))
	}
	c.silence(nodes...)
	testutil.Eventually(t, 15*time.Second, func() error {
		for _, name := range nodes {
			n := c.node(name)
			if r := n.Status.Condition(api.NodeReady); r == nil || r.Status != api.ConditionUnknown {
				return fmt.Errorf("node %s Ready %+v, want Unknown", name, r)
			}
			if tt := unreachableTaint(n); tt != nil {
				return fmt.Errorf("node %s still tainted in a disrupted zone", name)
			}
		}
		return nil
	})
	for _, name := range nodes {
		p := c.pod("pod-" + name)
		if p.DeletionTimestamp != nil {
			t.Fatalf("pod %s evicted while every node was silent", p.Name)
		}
		// Still marked not ready: the agents cannot say.
		if r := p.Status.Condition(api.PodReady); r.Status != api.ConditionFalse {
			t.Errorf("pod %s Ready %s", p.Name, r.Status)
		}
	}

	// Two come back: n3 alone is silent, a third of the zone.
	c.revive("n1")
	c.revive("n2")
	var added time.Time
	testutil.Eventually(t, 10*time.Second, func() error {
		taint := unreachableTaint(c.node("n3"))
		if taint == nil || taint.TimeAdded == nil {
			return fmt.Errorf("n3 not tainted again")
		}
		added = *taint.TimeAdded
		return nil
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		if p := c.pod("pod-n3"); p.DeletionTimestamp == nil {
			return fmt.Errorf("pod-n3 not evicted")
		}
		return nil
	})
	if p := c.pod("pod-n3"); p.DeletionTimestamp.Before(added.Add(3 * time.Second)) {
		t.Errorf("pod-n3 evicted at %v, before the fresh taint (%v) + 3s", p.DeletionTimestamp, added)
	}
	for _, name := range []string{"pod-n1", "pod-n2"} {
		if p := c.pod(name); p.DeletionTimestamp != nil {
			t.Errorf("pod %s of a returned node evicted", name)
		}
	}
}

// TestEvictionsRateLimited: a node's pods whose toleration ends at once
// are evicted at the configured rate (2 a second, burst 1), not all at once.
func TestEvictionsRateLimited(t *testing.T) {
	c := newCluster(t, nodelifecycle.Config{EvictionRate: 2, EvictionBurst: 1}, "dead", "a", "b")
	names := []string{"p1", "p2", "p3"}
	for _, n := range names {
		c.runningPod(n, "dead", true, tolerate(api.TaintNodeUnreachable, seconds(0)))
	}
	c.silence("dead")
	var at []time.Time
	testutil.Eventually(t, 15*time.Second, func() error {
		at = at[:0]
		for _, n := range names {
			evs := c.ev.of("default/"+n, api.ReasonTaintManagerEviction)
			if len(evs) != 1 {
				return fmt.Errorf("pod %s: %d eviction events", n, len(evs))
			}
			at = append(at, evs[0].at)
		}
		return nil
	})
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	// Two evictions after the first take a token each, 0.5 s apart.
	if gap := at[2].Sub(at[0]); gap < 900*time.Millisecond {
		t.Errorf("3 evictions within %v at 2 a second with burst 1", gap)
	}
}

// BenchmarkNodeDeathToEviction measures from a node's last heartbeat to
// its pod's eviction, with a 1 s heartbeat TTL (the grace period) and a
// toleration of 0 s: the rest is the controller's own delay, reported as
// overhead-ms (the store's TTL marker comes within about a second of the
// TTL, which is counted in it).
func BenchmarkNodeDeathToEviction(b *testing.B) {
	c := newCluster(b, nodelifecycle.Config{}, "alive-1", "alive-2")
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("dead-%d", i)
		n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name}}
		api.Default(n)
		n.Status.Conditions = []api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionTrue, LastHeartbeatTime: time.Now().UTC()}}
		if err := c.st.Create(c.ctx, n); err != nil {
			b.Fatal(err)
		}
		c.beat(name)
		c.runningPod("pod-"+name, name, true, tolerate(api.TaintNodeUnreachable, seconds(0)))
		time.Sleep(50 * time.Millisecond) // let a beat land after the pod is known
		start := time.Now()
		c.silence(name)
		testutil.Eventually(b, 20*time.Second, func() error {
			if p := c.pod("pod-" + name); p.DeletionTimestamp == nil {
				return fmt.Errorf("not evicted")
			}
			return nil
		})
		total += time.Since(start) - c.hb.TTL()
		// Gone, so that dead nodes never make most of the zone.
		if _, err := c.st.Delete(c.ctx, nodeKind, "", name, ""); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "overhead-ms")
}

// TestTerminatingPodOfDeletedNodeRemoved: an evicted pod waits for its
// agent to finalize it; when its Node is deleted instead, nothing ever
// will, and the controller removes it. A running pod of that node is left
// to the user (a delete of a pod whose node is gone removes it at once).
func TestTerminatingPodOfDeletedNodeRemoved(t *testing.T) {
	c := newCluster(t, nodelifecycle.Config{}, "dead", "a", "b")
	c.runningPod("evicted", "dead", true, tolerate(api.TaintNodeUnreachable, seconds(0)))
	c.runningPod("kept", "dead", true, tolerate(api.TaintNodeUnreachable, nil))
	c.silence("dead")
	testutil.Eventually(t, 10*time.Second, func() error {
		if p := c.pod("evicted"); p.DeletionTimestamp == nil {
			return fmt.Errorf("not evicted")
		}
		return nil
	})
	if _, err := c.st.Delete(c.ctx, nodeKind, "", "dead", ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if _, err := c.st.Get(c.ctx, podKind, "default", "evicted"); !api.IsNotFound(err) {
			return fmt.Errorf("terminating pod of the deleted node still stored: %v", err)
		}
		return nil
	})
	if p := c.pod("kept"); p.DeletionTimestamp != nil {
		t.Errorf("pod tolerating for ever was evicted")
	}
}
