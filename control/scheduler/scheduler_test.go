package scheduler

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

func TestScoreFitBinPack(t *testing.T) {
	alloc := Resources{CPU: 4000, Memory: 8 << 30}
	tests := []struct {
		name string
		used Resources
		want float64
	}{
		{"empty", Resources{}, 0},
		{"full", Resources{CPU: 4000, Memory: 8 << 30}, 18},
		{"overfull counts as full", Resources{CPU: 8000, Memory: 16 << 30}, 18},
		{"half", Resources{CPU: 2000, Memory: 4 << 30}, 20 - 2*3.1622776601683795},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ScoreFitBinPack(alloc, tt.used)
			if d := got - tt.want; d > 1e-5 || d < -1e-5 {
				t.Errorf("ScoreFitBinPack = %v, want %v", got, tt.want)
			}
			if s := ScoreFitSpread(alloc, tt.used); s+got-18 > 1e-9 || s+got-18 < -1e-9 {
				t.Errorf("ScoreFitSpread = %v, want 18 - binpack = %v", s, 18-got)
			}
		})
	}
	if ScoreFitBinPack(alloc, Resources{CPU: 3000, Memory: 6 << 30}) <= ScoreFitBinPack(alloc, Resources{CPU: 1000, Memory: 2 << 30}) {
		t.Error("a fuller node must score higher")
	}
	if got := ScoreFitBinPack(Resources{}, Resources{}); got != 18 {
		t.Errorf("zero allocatable: got %v, want 18 (counts as full)", got)
	}
}

func TestUnschedulableMessage(t *testing.T) {
	tests := []struct {
		name   string
		total  int
		counts map[string]int
		want   string
	}{
		{"kubernetes style", 3, map[string]int{RuntimeNotAvailable("wasm"): 1, ReasonInsufficientMemory: 2},
			"0/3 nodes are available: 2 Insufficient memory, 1 runtime wasm not available."},
		{"ties by text", 4, map[string]int{ReasonNodeNotReady: 2, ReasonInsufficientCPU: 2},
			"0/4 nodes are available: 2 Insufficient cpu, 2 node(s) were not ready."},
		{"no nodes", 0, nil, "no nodes available to schedule pods"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unschedulableMessage(tt.total, tt.counts); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNumFeasibleNodesToFind(t *testing.T) {
	tests := []struct{ pct, all, want int }{
		{0, 50, 50}, {0, 1000, 420}, {0, 5000, 500}, {0, 100000, 5000}, {10, 5000, 500}, {100, 5000, 5000}, {1, 5000, 100},
	}
	for _, tt := range tests {
		if got := numFeasibleNodesToFind(tt.pct, tt.all); got != tt.want {
			t.Errorf("numFeasibleNodesToFind(%d, %d) = %d, want %d", tt.pct, tt.all, got, tt.want)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"strategy", Config{Strategy: "Random"}, `strategy "Random"`},
		{"percentage", Config{PercentageOfNodesToScore: 101}, "percentageOfNodesToScore 101"},
		{"workers", Config{BindWorkers: -1}, "bindWorkers -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewWith(tt.cfg, nil, nil, nil)
			err := s.RunEvents(t.Context(), nil)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error naming %q", err, tt.want)
			}
			_ = s.Stats() // usable even so
		})
	}
}

// TestScoring places a 1-cpu pod on nodes a (3 of 4 cpu used), b (empty),
// c (3.5 of 4 used, too full): bin-pack takes the fullest that fits, spread
// the emptiest.
func TestRunOnce(t *testing.T) {
	h := newHarness(t, Config{})
	h.idle(t) // the harness's RunEvents is running
	if err := h.s.RunEvents(t.Context(), h.events); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Fatalf("second RunEvents: %v, want already started", err)
	}
	if err := New(Config{}, nil, nil).Run(t.Context()); err == nil || !strings.Contains(err.Error(), "no store") {
		t.Fatalf("Run without store: %v", err)
	}
}

func TestScoring(t *testing.T) {
	tests := []struct {
		strategy Strategy
		want     string
	}{
		{"", "a"}, {BinPack, "a"}, {Spread, "b"},
	}
	for _, tt := range tests {
		t.Run(string(tt.strategy), func(t *testing.T) {
			h := newHarness(t, Config{Strategy: tt.strategy})
			for _, n := range []string{"a", "b", "c"} {
				h.putNode(mkNode(n, "4", "16Gi"))
			}
			h.putPod(mkPod("on-a", "3", "1Gi", onNode("a")))
			h.putPod(mkPod("on-c", "3500m", "1Gi", onNode("c")))
			h.synced()
			h.putPod(mkPod("p", "1", "1Gi"))
			h.idle(t)
			if got := h.nodeOf(t, "p"); got != tt.want {
				t.Errorf("pod went to %q, want %q", got, tt.want)
			}
		})
	}
}

// TestSampling: on 1,000 nodes that all fit, each decision looks at
// Kubernetes' 42% (420 nodes), and the rotating start spreads the
// candidates, so even bin-pack ties do not pile every pod on one node.
func TestSampling(t *testing.T) {
	h := newHarness(t, Config{Strategy: Spread})
	for i := range 1000 {
		h.putNode(mkNode(fmt.Sprintf("n%04d", i), "4", "4Gi"))
	}
	h.synced()
	for i := range 10 {
		h.putPod(mkPod(fmt.Sprintf("p%d", i), "1", "1Gi"))
	}
	snap := h.idle(t)
	if want := uint64(10 * 420); snap.visited != want {
		t.Fatalf("visited %d nodes for 10 pods, want %d", snap.visited, want)
	}
	nodes := map[string]bool{}
	for i := range 10 {
		nodes[h.nodeOf(t, fmt.Sprintf("p%d", i))] = true
	}
	if len(nodes) != 10 {
		t.Fatalf("10 pods on %d nodes with spread, want 10", len(nodes))
	}
}

func TestFilters(t *testing.T) {
	type tc struct {
		name    string
		nodes   []*api.Node
		pod     *api.Pod
		want    string // node, or "" when unschedulable
		message string
	}
	tests := []tc{
		{name: "wasm pod goes to the wasm node",
			nodes: []*api.Node{mkNode("c1", "8", "8Gi", runtimes("containerd")), mkNode("w1", "1", "1Gi", runtimes("wasm"))},
			pod:   mkPod("p", "100m", "64Mi", wasm), want: "w1"},
		{name: "container pod avoids wasm-only nodes",
			nodes: []*api.Node{mkNode("w1", "8", "8Gi", runtimes("wasm")), mkNode("c1", "1", "1Gi", runtimes("containerd"))},
			pod:   mkPod("p", "100m", "64Mi"), want: "c1"},
		{name: "no wasm anywhere",
			nodes:   []*api.Node{mkNode("c1", "8", "8Gi", runtimes("containerd")), mkNode("c2", "8", "8Gi", runtimes("containerd"))},
			pod:     mkPod("p", "100m", "64Mi", wasm),
			message: "0/2 nodes are available: 2 runtime wasm not available."},
		{name: "nodeSelector",
			nodes: []*api.Node{mkNode("a", "8", "8Gi", labels("disk", "hdd")), mkNode("b", "1", "1Gi", labels("disk", "ssd"))},
			pod:   mkPod("p", "100m", "64Mi", selector("disk", "ssd")), want: "b"},
		{name: "nodeSelector matches nothing",
			nodes:   []*api.Node{mkNode("a", "8", "8Gi", labels("disk", "hdd")), mkNode("b", "8", "8Gi")},
			pod:     mkPod("p", "100m", "64Mi", selector("disk", "ssd")),
			message: "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."},
		{name: "untolerated taint",
			nodes:   []*api.Node{mkNode("a", "8", "8Gi", taint("gpu", "true", api.TaintNoSchedule)), mkNode("b", "8", "8Gi", taint("dedicated", "db", api.TaintNoExecute))},
			pod:     mkPod("p", "100m", "64Mi"),
			message: "0/2 nodes are available: 1 node(s) had untolerated taint {dedicated: db}, 1 node(s) had untolerated taint {gpu: true}."},
		{name: "PreferNoSchedule does not filter",
			nodes: []*api.Node{mkNode("a", "8", "8Gi", taint("gpu", "true", api.TaintPreferNoSchedule))},
			pod:   mkPod("p", "100m", "64Mi"), want: "a"},
		{name: "toleration Equal",
			nodes: []*api.Node{mkNode("a", "8", "8Gi", taint("gpu", "true", api.TaintNoSchedule)), mkNode("b", "1", "1Gi", taint("gpu", "false", api.TaintNoSchedule))},
			pod:   mkPod("p", "100m", "64Mi", toleration(api.Toleration{Key: "gpu", Value: "true", Effect: api.TaintNoSchedule})), want: "a"},
		{name: "toleration Exists without key tolerates everything",
			nodes: []*api.Node{mkNode("a", "8", "8Gi", taint("gpu", "true", api.TaintNoSchedule), taint("x", "", api.TaintNoExecute))},
			pod:   mkPod("p", "100m", "64Mi", toleration(api.Toleration{Operator: api.TolerationOpExists})), want: "a"},
		{name: "not ready and cordoned",
			nodes:   []*api.Node{mkNode("a", "8", "8Gi", notReady), mkNode("b", "8", "8Gi", cordoned), mkNode("c", "8", "8Gi", cordoned)},
			pod:     mkPod("p", "100m", "64Mi"),
			message: "0/3 nodes are available: 2 node(s) were unschedulable, 1 node(s) were not ready."},
		{name: "cordoned node tolerated",
			nodes: []*api.Node{mkNode("b", "8", "8Gi", cordoned)},
			pod:   mkPod("p", "100m", "64Mi", toleration(api.Toleration{Key: "node.kubernetes.io/unschedulable", Operator: api.TolerationOpExists})), want: "b"},
		{name: "cpu and memory",
			nodes:   []*api.Node{mkNode("a", "1", "8Gi"), mkNode("b", "8", "1Gi"), mkNode("c", "1", "1Gi")},
			pod:     mkPod("p", "2", "2Gi"),
			message: "0/3 nodes are available: 2 Insufficient cpu, 2 Insufficient memory."},
		{name: "pod slots per runtime",
			nodes: []*api.Node{mkNode("a", "8", "8Gi", maxPods("0", "10")), mkNode("b", "8", "8Gi", maxPods("10", "0"))},
			pod:   mkPod("p", "100m", "64Mi", wasm), want: "a"},
		{name: "no pod slots",
			nodes:   []*api.Node{mkNode("a", "8", "8Gi", maxPods("0", "10"))},
			pod:     mkPod("p", "100m", "64Mi"),
			message: "0/1 nodes are available: 1 Too many pods."},
		{name: "no nodes",
			pod:     mkPod("p", "100m", "64Mi"),
			message: "no nodes available to schedule pods"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			for _, n := range tt.nodes {
				h.putNode(n)
			}
			h.synced()
			h.putPod(tt.pod)
			h.idle(t)
			if tt.want != "" {
				if got := h.nodeOf(t, "p"); got != tt.want {
					t.Fatalf("pod went to %q, want %q", got, tt.want)
				}
				return
			}
			if got := h.unschedulableMessage(t, "p"); got != tt.message {
				t.Fatalf("message %q, want %q", got, tt.message)
			}
		})
	}
}

// TestUnschedulableMessageCounts is the message of the brief: two nodes
// without enough memory, one without wasm.
func TestUnschedulableMessageCounts(t *testing.T) {
	h := newHarness(t, Config{})
	h.putNode(mkNode("a", "8", "1Gi"))
	h.putNode(mkNode("b", "8", "2Gi"))
	h.putNode(mkNode("c", "8", "64Gi", runtimes("containerd")))
	h.synced()
	h.putPod(mkPod("p", "100m", "4Gi", wasm))
	h.idle(t)
	want := "0/3 nodes are available: 2 Insufficient memory, 1 runtime wasm not available."
	if got := h.unschedulableMessage(t, "p"); got != want {
		t.Fatalf("message %q, want %q", got, want)
	}
	if st := h.s.Stats(); st.StatusWrites != 1 {
		t.Fatalf("status writes %d, want 1", st.StatusWrites)
	}
}

// TestParkedUntilClusterChange proves an unschedulable pod is not retried
// while nothing relevant changes, and is retried (and bound) when a pod
// holding the resources goes away.
func TestParkedUntilClusterChange(t *testing.T) {
	h := newHarness(t, Config{})
	h.putNode(mkNode("a", "2", "4Gi", labels("zone", "1")))
	h.putPod(mkPod("big", "2", "1Gi", onNode("a")))
	h.synced()
	h.putPod(mkPod("p", "1", "1Gi"))
	h.idle(t)
	before := h.s.Stats()
	if before.Attempts != 1 || before.Unschedulable != 1 || before.StatusWrites != 1 {
		t.Fatalf("after first try: %+v, want 1 attempt, 1 unschedulable, 1 status write", before)
	}
	if msg := h.unschedulableMessage(t, "p"); msg != "0/1 nodes are available: 1 Insufficient cpu." {
		t.Fatalf("message %q", msg)
	}

	// Changes that cannot help: an unrelated pod comes and goes elsewhere,
	// the node gets a new label, the parked pod gets a new annotation. The
	// node's own status echo of our write is in here too.
	h.putPod(mkPod("other", "1", "1Gi", onNode("elsewhere")))
	h.deletePod("other")
	h.putNode(mkNode("a", "2", "4Gi", labels("zone", "2")))
	p := copyPod(h.pod("p"))
	p.Annotations = map[string]string{"note": "x"}
	h.putPod(p)
	snap := h.idle(t)
	if after := h.s.Stats(); after.Attempts != before.Attempts {
		t.Fatalf("retried without a helpful change: attempts %d -> %d", before.Attempts, after.Attempts)
	}
	if snap.parked != 1 {
		t.Fatalf("parked %d, want 1", snap.parked)
	}

	// The big pod finishes: its cpu is free, p is retried and bound.
	done := copyPod(h.pod("big"))
	done.Status.Phase = api.PodSucceeded
	h.putPod(done)
	h.idle(t)
	if got := h.nodeOf(t, "p"); got != "a" {
		t.Fatalf("pod on %q after resources were freed, want a", got)
	}
	if after := h.s.Stats(); after.Attempts != before.Attempts+1 {
		t.Fatalf("attempts %d, want exactly one retry (%d)", after.Attempts, before.Attempts+1)
	}
}

func TestRetryOnClusterChange(t *testing.T) {
	tests := []struct {
		name   string
		change func(h *harness)
		want   string
	}{
		{"node added", func(h *harness) { h.putNode(mkNode("b", "4", "4Gi")) }, "b"},
		{"node becomes ready", func(h *harness) { h.putNode(mkNode("a", "4", "4Gi")) }, "a"},
		{"pod deleted", func(h *harness) { h.deletePod("hog") }, "x"},
		{"pod failed", func(h *harness) {
			p := copyPod(h.pod("hog"))
			p.Status.Phase = api.PodFailed
			h.putPod(p)
		}, "x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.putNode(mkNode("a", "4", "4Gi", notReady))
			h.putNode(mkNode("x", "1", "4Gi"))
			h.putPod(mkPod("hog", "1", "1Gi", onNode("x")))
			h.synced()
			h.putPod(mkPod("p", "1", "1Gi"))
			h.idle(t)
			if msg := h.unschedulableMessage(t, "p"); msg != "0/2 nodes are available: 1 Insufficient cpu, 1 node(s) were not ready." {
				t.Fatalf("message %q", msg)
			}
			tt.change(h)
			h.idle(t)
			if got := h.nodeOf(t, "p"); got != tt.want {
				t.Fatalf("pod on %q, want %q", got, tt.want)
			}
		})
	}
}

// TestMessageWrittenOnlyWhenChanged: the Unschedulable condition is
// written when the message changes and only then.
func TestMessageWrittenOnlyWhenChanged(t *testing.T) {
	h := newHarness(t, Config{})
	h.putNode(mkNode("a", "1", "1Gi"))
	h.synced()
	h.putPod(mkPod("p", "2", "1Gi"))
	h.idle(t)
	if msg := h.unschedulableMessage(t, "p"); msg != "0/1 nodes are available: 1 Insufficient cpu." {
		t.Fatalf("message %q", msg)
	}
	// A node that does not help: no retry, no write (the count in the
	// message is from the last try, as with Kubernetes' queueing hints).
	h.putNode(mkNode("b", "1", "1Gi"))
	h.idle(t)
	if st := h.s.Stats(); st.Attempts != 1 || st.StatusWrites != 1 {
		t.Fatalf("after an unhelpful node: %+v, want 1 attempt and 1 write", st)
	}
	// The pod changes: tried again, new reason, written.
	p := copyPod(h.pod("p"))
	p.Spec.Containers = []api.Container{{Name: "c", Image: "img"}}
	p.Spec.NodeSelector = map[string]string{"zone": "x"}
	h.putPod(p)
	h.idle(t)
	if msg := h.unschedulableMessage(t, "p"); msg != "0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector." {
		t.Fatalf("message %q", msg)
	}
	// It changes again with the same outcome: tried, nothing written.
	p = copyPod(h.pod("p"))
	p.Spec.Containers = []api.Container{{Name: "c", Image: "img:2"}}
	h.putPod(p)
	h.idle(t)
	if st := h.s.Stats(); st.Attempts != 3 || st.StatusWrites != 2 {
		t.Fatalf("after a change with the same outcome: %+v, want 3 attempts and 2 writes", st)
	}
}

// TestAssumedAccounting: while bind echoes are held back, the second
// decision already sees the first pod on the node; when the echoes arrive
// nothing is counted twice.
func TestAssumedAccounting(t *testing.T) {
	h := newHarness(t, Config{})
	h.putNode(mkNode("a", "2", "4Gi"))
	h.synced()
	h.mu.Lock()
	h.hold = true
	h.mu.Unlock()
	for _, n := range []string{"p1", "p2", "p3"} {
		h.putPod(mkPod(n, "1", "1Gi"))
	}
	snap := h.idle(t)
	if got := snap.used["a"]; got.CPU != 2000 || got.Pods != 2 {
		t.Fatalf("used on a before echoes: %+v, want 2 cpu and 2 pods", got)
	}
	if snap.parked != 1 {
		t.Fatalf("parked %d, want 1", snap.parked)
	}
	h.release()
	snap = h.idle(t)
	if got := snap.used["a"]; got.CPU != 2000 || got.Pods != 2 || got.Memory != 2<<30 {
		t.Fatalf("used on a after echoes: %+v, want exactly the two bound pods", got)
	}
	bound := 0
	for _, n := range []string{"p1", "p2", "p3"} {
		if h.nodeOf(t, n) == "a" {
			bound++
		}
	}
	if bound != 2 {
		t.Fatalf("%d pods bound, want 2", bound)
	}
}

// TestResourcesFreed: deleting or finishing a bound pod gives its resources
// back to the node.
func TestResourcesFreed(t *testing.T) {
	for _, how := range []string{"deleted", "succeeded", "failed"} {
		t.Run(how, func(t *testing.T) {
			h := newHarness(t, Config{})
			h.putNode(mkNode("a", "4", "4Gi"))
			h.putPod(mkPod("q", "3", "1Gi", onNode("a")))
			h.synced()
			if snap := h.idle(t); snap.used["a"].CPU != 3000 {
				t.Fatalf("used %+v, want 3 cpu", snap.used["a"])
			}
			switch how {
			case "deleted":
				h.deletePod("q")
			case "succeeded", "failed":
				p := copyPod(h.pod("q"))
				p.Status.Phase = map[string]api.PodPhase{"succeeded": api.PodSucceeded, "failed": api.PodFailed}[how]
				h.putPod(p)
			}
			if snap := h.idle(t); snap.used["a"] != (Resources{}) {
				t.Fatalf("used %+v after the pod %s, want nothing", snap.used["a"], how)
			}
		})
	}
}

// TestConflictSkipsPodBoundElsewhere: a bind that loses its CAS because
// someone else bound the pod leaves the pod where the winner put it and
// counts it there.
func TestConflictSkipsPodBoundElsewhere(t *testing.T) {
	h := newHarness(t, Config{})
	h.putNode(mkNode("a", "4", "4Gi"))
	h.putNode(mkNode("b", "4", "4Gi"))
	h.synced()
	h.mu.Lock()
	h.hold = true // keep our own echoes back so the race is visible
	h.mu.Unlock()
	p := mkPod("p", "1", "1Gi")
	h.putPod(p)
	// Another scheduler wins on b before we bind: a plain update that the
	// watch delivers after our decision.
	won := copyPod(p)
	won.Spec.NodeName = "b"
	h.mu.Lock()
	h.hold = false
	h.mu.Unlock()
	h.putPod(won) // may or may not beat our bind; both orders must end the same
	snap := h.idle(t)
	got := h.nodeOf(t, "p")
	if got != "b" && got != "a" {
		t.Fatalf("pod on %q", got)
	}
	if snap.used[got].CPU != 1000 || snap.used[other(got)].CPU != 0 {
		t.Fatalf("used %+v: want the pod counted once, on %s", snap.used, got)
	}
}

func other(n string) string {
	if n == "a" {
		return "b"
	}
	return "a"
}

func TestPodsNotOurs(t *testing.T) {
	h := newHarness(t, Config{})
	h.putNode(mkNode("a", "4", "4Gi"))
	h.synced()
	h.putPod(mkPod("other-scheduler", "1", "1Gi", func(p *api.Pod) { p.Spec.SchedulerName = "custom" }))
	h.putPod(mkPod("done", "1", "1Gi", phase(api.PodSucceeded)))
	h.putPod(mkPod("ours", "1", "1Gi", func(p *api.Pod) { p.Spec.SchedulerName = DefaultSchedulerName }))
	h.idle(t)
	if got := h.nodeOf(t, "other-scheduler"); got != "" {
		t.Errorf("pod of another scheduler bound to %q", got)
	}
	if got := h.nodeOf(t, "done"); got != "" {
		t.Errorf("finished pod bound to %q", got)
	}
	if got := h.nodeOf(t, "ours"); got != "a" {
		t.Errorf("our pod bound to %q, want a", got)
	}
}

// TestNoSchedulingBeforeSync: pods seen before the initial state is complete
// wait for it, so they are not declared unschedulable for lack of nodes.
func TestNoSchedulingBeforeSync(t *testing.T) {
	h := newHarness(t, Config{})
	h.putPod(mkPod("p", "1", "1Gi"))
	h.putNode(mkNode("a", "4", "4Gi"))
	h.synced()
	h.idle(t)
	if got := h.nodeOf(t, "p"); got != "a" {
		t.Fatalf("pod on %q, want a", got)
	}
	if st := h.s.Stats(); st.Unschedulable != 0 {
		t.Fatalf("unschedulable decisions %d, want 0", st.Unschedulable)
	}
}

func TestPow10(t *testing.T) {
	for i := 0; i <= 10000; i++ {
		x := float64(i) / 10000
		if got, want := pow10(x), math.Pow(10, x); math.Abs(got-want) > 1e-5 {
			t.Fatalf("pow10(%v) = %v, want %v", x, got, want)
		}
	}
}

// TestHotCheckAgreesWithChain holds the decision's fast path (hot node
// data) to the filter chain: same verdict, same first reason, on random
// nodes and pods.
func TestHotCheckAgreesWithChain(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 9))
	c, err := newCore(Config{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	pick := func(xs ...string) string { return xs[r.IntN(len(xs))] }
	for i := range 300 {
		var opts []nodeOpt
		switch r.IntN(3) {
		case 0:
			opts = append(opts, runtimes("containerd"))
		case 1:
			opts = append(opts, runtimes("wasm"))
		}
		if r.IntN(5) == 0 {
			opts = append(opts, notReady)
		}
		if r.IntN(5) == 0 {
			opts = append(opts, cordoned)
		}
		if r.IntN(3) == 0 {
			opts = append(opts, taint(pick("gpu", "db"), pick("a", "b"), api.TaintEffect(pick("NoSchedule", "NoExecute", "PreferNoSchedule"))))
		}
		opts = append(opts, labels("zone", pick("1", "2", "3")), maxPods(pick("0", "3", "110"), pick("0", "2", "500")))
		c.handleEvent(storeEvent(mkNode(fmt.Sprintf("n%03d", i), pick("1", "2", "4"), pick("1Gi", "2Gi", "4Gi"), opts...)))
	}
	mkRandomPod := func(name string, node string) *api.Pod {
		var opts []podOpt
		if r.IntN(3) == 0 {
			opts = append(opts, wasm)
		}
		if r.IntN(3) == 0 {
			opts = append(opts, selector("zone", pick("1", "2")))
		}
		if r.IntN(3) == 0 {
			opts = append(opts, toleration(api.Toleration{Key: pick("gpu", "db", ""), Operator: api.TolerationOperator(pick("Exists", "Equal")), Value: pick("a", "b")}))
		}
		if node != "" {
			opts = append(opts, onNode(node))
		}
		return mkPod(name, pick("", "100m", "1", "2"), pick("", "256Mi", "1Gi", "3Gi"), opts...)
	}
	for i := range 400 {
		c.handleEvent(storeEvent(mkRandomPod(fmt.Sprintf("bound-%d", i), fmt.Sprintf("n%03d", r.IntN(300)))))
	}
	c.rebuildList()
	checked, feasible := 0, 0
	for i := range 200 {
		c.handleEvent(storeEvent(mkRandomPod(fmt.Sprintf("p-%d", i), "")))
		pi := c.pop()
		for _, ni := range c.list {
			want, got := c.feasible(pi, ni), c.hotCheck(pi, &c.hot[ni.hot])
			if want.code != got.code || (want.taint == nil) != (got.taint == nil) || (want.taint != nil && *want.taint != *got.taint) {
				t.Fatalf("pod %s on node %s: chain %+v, hot %+v", pi.key, ni.name, want, got)
			}
			checked++
			if want.code == 0 {
				feasible++
			}
		}
	}
	if feasible == 0 || feasible == checked {
		t.Fatalf("%d of %d feasible: the random cases do not cover both outcomes", feasible, checked)
	}
}
