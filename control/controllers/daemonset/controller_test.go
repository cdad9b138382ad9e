package daemonset_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/daemonset"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/framework/frameworktest"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var (
	podKind  = api.KindOf(&api.Pod{})
	nodeKind = api.KindOf(&api.Node{})
	dsKind   = api.KindOf(&api.DaemonSet{})
)

func openStore(t *testing.T) (context.Context, *store.Store) { return frameworktest.OpenStore(t) }

type recorder struct {
	mu     sync.Mutex
	events []string
}

func (r *recorder) Eventf(_ api.ObjectReference, _, reason, format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, reason+": "+fmt.Sprintf(format, args...))
}

func (r *recorder) find(reason string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.events {
		if len(e) > len(reason) && e[:len(reason)] == reason {
			return e
		}
	}
	return ""
}

func startController(t *testing.T, st *store.Store) *recorder {
	t.Helper()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	rec := &recorder{}
	frameworktest.Run(t, st, log, func(mgr *framework.Manager) {
		mgr.Add("daemonset", daemonset.New(mgr, st, daemonset.Config{Recorder: rec}, log))
	})
	return rec
}

func addNode(t *testing.T, ctx context.Context, st *store.Store, name string, lbls map[string]string, taints ...api.Taint) {
	t.Helper()
	n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name, Labels: lbls}, Spec: api.NodeSpec{Taints: taints}}
	n.Status.SetCondition(api.NodeCondition{Type: api.NodeReady, Status: api.ConditionTrue})
	if err := st.Create(ctx, n); err != nil {
		t.Fatal(err)
	}
}

func updateNode(t *testing.T, ctx context.Context, st *store.Store, name string, f func(n *api.Node)) {
	t.Helper()
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, nodeKind, "", name)
		if err != nil {
			return err
		}
		n := obj.(*api.Node)
		f(n)
		return st.Update(ctx, n)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func newDS(name string, f func(*api.DaemonSetSpec)) *api.DaemonSet {
	ds := &api.DaemonSet{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"},
		Spec: api.DaemonSetSpec{
			Selector: &api.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: api.PodTemplateSpec{
				ObjectMeta: api.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec:       api.PodSpec{Containers: []api.Container{{Name: "c", Image: "file:///agent.wasm"}}},
			},
		},
	}
	if f != nil {
		f(&ds.Spec)
	}
	api.Default(ds)
	if err := api.Validate(ds); err != nil {
		panic(err)
	}
	return ds
}

func getDS(t *testing.T, ctx context.Context, st *store.Store, name string) *api.DaemonSet {
	t.Helper()
	obj, err := st.Get(ctx, dsKind, "default", name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*api.DaemonSet)
}

// podsOf returns the DaemonSet's pods not being deleted.
func podsOf(t *testing.T, ctx context.Context, st *store.Store, name string) []*api.Pod {
	t.Helper()
	objs, _, err := st.List(ctx, podKind, store.ListOptions{Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	var out []*api.Pod
	for _, o := range objs {
		p := o.(*api.Pod)
		if ref := api.ControllerOf(p); ref != nil && ref.Kind == "DaemonSet" && ref.Name == name && p.DeletionTimestamp == nil {
			out = append(out, p)
		}
	}
	return out
}

func nodesOf(pods []*api.Pod) []string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Spec.NodeName)
	}
	sort.Strings(out)
	return out
}

// waitOnNodes waits until the DaemonSet has exactly one pod on each of
// nodes and none elsewhere, and its status says so; it fails at once if a
// node ever holds two live pods.
func waitOnNodes(t *testing.T, ctx context.Context, st *store.Store, name string, nodes ...string) []*api.Pod {
	t.Helper()
	sort.Strings(nodes)
	var pods []*api.Pod
	testutil.Eventually(t, 10*time.Second, func() error {
		pods = podsOf(t, ctx, st, name)
		got := nodesOf(pods)
		if c := slices.Compact(slices.Clone(got)); len(c) != len(got) {
			t.Fatalf("two live pods on one node: %v", got)
		}
		if !slices.Equal(got, nodes) {
			return fmt.Errorf("pods on %v, want %v", got, nodes)
		}
		ds := getDS(t, ctx, st, name)
		if ds.Status.DesiredNumberScheduled != int32(len(nodes)) || ds.Status.CurrentNumberScheduled != int32(len(nodes)) ||
			ds.Status.ObservedGeneration != ds.Generation || ds.Status.NumberMisscheduled != 0 {
			return fmt.Errorf("status %+v (generation %d)", ds.Status, ds.Generation)
		}
		return nil
	})
	return pods
}

func setReady(t *testing.T, ctx context.Context, st *store.Store, p *api.Pod) {
	t.Helper()
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, podKind, p.Namespace, p.Name)
		if err != nil {
			return err
		}
		cur := obj.(*api.Pod)
		cur.Status.Phase = api.PodRunning
		cur.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: api.ConditionTrue, LastTransitionTime: time.Now().UTC()})
		return st.Update(ctx, cur)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOnePodPerMatchingNode(t *testing.T) {
	ctx, st := openStore(t)
	addNode(t, ctx, st, "n1", map[string]string{"role": "edge"})
	addNode(t, ctx, st, "n2", map[string]string{"role": "edge"})
	addNode(t, ctx, st, "n3", map[string]string{"role": "core"})
	// Not tolerated: no pod there.
	addNode(t, ctx, st, "n4", map[string]string{"role": "edge"}, api.Taint{Key: "dedicated", Value: "db", Effect: api.TaintNoSchedule})
	// Tolerated by the template: gets one.
	addNode(t, ctx, st, "n5", map[string]string{"role": "edge"}, api.Taint{Key: "gpu", Effect: api.TaintNoSchedule})
	// Cordoned and not Ready: a daemon goes there anyway, as in Kubernetes.
	addNode(t, ctx, st, "n6", map[string]string{"role": "edge"}, api.Taint{Key: api.TaintNodeNotReady, Effect: api.TaintNoExecute})
	updateNode(t, ctx, st, "n6", func(n *api.Node) {
		n.Spec.Unschedulable = true
		n.Status.SetCondition(api.NodeCondition{Type: api.NodeReady, Status: api.ConditionFalse})
	})
	startController(t, st)
	ds := newDS("agent", func(s *api.DaemonSetSpec) {
		s.Template.Spec.NodeSelector = map[string]string{"role": "edge"}
		s.Template.Spec.Tolerations = []api.Toleration{{Key: "gpu", Operator: api.TolerationOpExists}}
	})
	if err := st.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	pods := waitOnNodes(t, ctx, st, "agent", "n1", "n2", "n5", "n6")
	for _, p := range pods {
		if p.Labels[api.LabelControllerRevisionHash] == "" || p.Labels["app"] != "agent" {
			t.Errorf("pod %s labels %v", p.Name, p.Labels)
		}
		// Bound by the controller; the tolerations defaulted so eviction
		// never removes a daemon.
		for _, key := range []string{api.TaintNodeNotReady, api.TaintNodeUnreachable} {
			i := slices.IndexFunc(p.Spec.Tolerations, func(tol api.Toleration) bool { return tol.Key == key })
			if i < 0 || p.Spec.Tolerations[i].Effect != api.TaintNoExecute || p.Spec.Tolerations[i].Operator != api.TolerationOpExists ||
				p.Spec.Tolerations[i].TolerationSeconds != nil {
				t.Errorf("pod %s tolerations %+v: want %s Exists NoExecute forever", p.Name, p.Spec.Tolerations, key)
			}
			for _, tol := range p.Spec.Tolerations {
				if tol.Key == key && tol.TolerationSeconds != nil {
					t.Errorf("pod %s has a bounded toleration of %s: %+v", p.Name, key, tol)
				}
			}
		}
		if !slices.ContainsFunc(p.Spec.Tolerations, func(tol api.Toleration) bool {
			return tol.Key == api.TaintNodeUnschedulable && tol.Effect == api.TaintNoSchedule
		}) {
			t.Errorf("pod %s lacks the unschedulable toleration: %+v", p.Name, p.Spec.Tolerations)
		}
	}
}

func TestNodesJoinAndStopMatching(t *testing.T) {
	ctx, st := openStore(t)
	addNode(t, ctx, st, "n1", map[string]string{"role": "edge"})
	startController(t, st)
	if err := st.Create(ctx, newDS("agent", func(s *api.DaemonSetSpec) { s.Template.Spec.NodeSelector = map[string]string{"role": "edge"} })); err != nil {
		t.Fatal(err)
	}
	first := waitOnNodes(t, ctx, st, "agent", "n1")

	t.Run("a node that joins later gets one", func(t *testing.T) {
		addNode(t, ctx, st, "n2", map[string]string{"role": "edge"})
		addNode(t, ctx, st, "n3", map[string]string{"role": "core"})
		waitOnNodes(t, ctx, st, "agent", "n1", "n2")
	})
	t.Run("a node whose labels stop matching loses it", func(t *testing.T) {
		updateNode(t, ctx, st, "n1", func(n *api.Node) { n.Labels["role"] = "core" })
		waitOnNodes(t, ctx, st, "agent", "n2")
		obj, err := st.Get(ctx, podKind, "default", first[0].Name)
		if err == nil && obj.(*api.Pod).DeletionTimestamp == nil {
			t.Fatalf("pod %s on n1 not deleted", first[0].Name)
		}
	})
	t.Run("a node that starts matching gets one", func(t *testing.T) {
		updateNode(t, ctx, st, "n3", func(n *api.Node) { n.Labels["role"] = "edge" })
		waitOnNodes(t, ctx, st, "agent", "n2", "n3")
	})
	t.Run("an untolerated NoExecute taint removes it", func(t *testing.T) {
		updateNode(t, ctx, st, "n3", func(n *api.Node) {
			n.Spec.Taints = append(n.Spec.Taints, api.Taint{Key: "drain", Effect: api.TaintNoExecute})
		})
		waitOnNodes(t, ctx, st, "agent", "n2")
	})
	t.Run("a deleted node's pod goes", func(t *testing.T) {
		if _, err := st.Delete(ctx, nodeKind, "", "n2", ""); err != nil {
			t.Fatal(err)
		}
		waitOnNodes(t, ctx, st, "agent")
	})
}

// TestRollingUpdate changes the template of a DaemonSet on 5 nodes with
// maxUnavailable 2 and checks, at every step, that no more than 2 nodes
// lack an available pod, until every node runs the new template.
func TestRollingUpdate(t *testing.T) {
	ctx, st := openStore(t)
	nodes := []string{"n1", "n2", "n3", "n4", "n5"}
	for _, n := range nodes {
		addNode(t, ctx, st, n, nil)
	}
	startController(t, st)
	two := api.FromInt(2)
	ds := newDS("agent", func(s *api.DaemonSetSpec) {
		s.UpdateStrategy.RollingUpdate = &api.RollingUpdateDaemonSet{MaxUnavailable: &two}
	})
	if err := st.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	for _, p := range waitOnNodes(t, ctx, st, "agent", nodes...) {
		setReady(t, ctx, st, p)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if s := getDS(t, ctx, st, "agent").Status; s.NumberAvailable != 5 || s.UpdatedNumberScheduled != 5 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
	oldHash := podsOf(t, ctx, st, "agent")[0].Labels[api.LabelControllerRevisionHash]

	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		cur := getDS(t, ctx, st, "agent")
		cur.Spec.Template.Spec.Containers[0].Image = "file:///agent-v2.wasm"
		return st.Update(ctx, cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	maxDown := 0
	testutil.Eventually(t, 15*time.Second, func() error {
		pods := podsOf(t, ctx, st, "agent")
		avail, updated := map[string]bool{}, 0
		for _, p := range pods {
			if p.Labels[api.LabelControllerRevisionHash] != oldHash {
				updated++
				if p.Spec.Containers[0].Image != "file:///agent-v2.wasm" {
					t.Fatalf("new pod %s runs %s", p.Name, p.Spec.Containers[0].Image)
				}
				setReady(t, ctx, st, p) // the agent starts the new pod
			}
			if c := p.Status.Condition(api.PodReady); c != nil && c.Status == api.ConditionTrue {
				avail[p.Spec.NodeName] = true
			}
		}
		down := len(nodes) - len(avail)
		maxDown = max(maxDown, down)
		if down > 2 {
			t.Fatalf("%d nodes without an available pod during the rollout, maxUnavailable 2", down)
		}
		s := getDS(t, ctx, st, "agent").Status
		if updated != 5 || len(pods) != 5 || s.UpdatedNumberScheduled != 5 || s.NumberAvailable != 5 {
			return fmt.Errorf("%d pods, %d updated, status %+v", len(pods), updated, s)
		}
		return nil
	})
	if maxDown == 0 {
		t.Fatal("the rollout never took a node down: the check above saw nothing")
	}
}

func TestOnDeleteKeepsOldPods(t *testing.T) {
	ctx, st := openStore(t)
	addNode(t, ctx, st, "n1", nil)
	addNode(t, ctx, st, "n2", nil)
	startController(t, st)
	ds := newDS("agent", func(s *api.DaemonSetSpec) {
		s.UpdateStrategy = api.DaemonSetUpdateStrategy{Type: api.OnDeleteDaemonSetStrategyType}
	})
	if err := st.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	before := waitOnNodes(t, ctx, st, "agent", "n1", "n2")
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		cur := getDS(t, ctx, st, "agent")
		cur.Spec.Template.Spec.Containers[0].Image = "file:///agent-v2.wasm"
		return st.Update(ctx, cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if d := getDS(t, ctx, st, "agent"); d.Status.ObservedGeneration != d.Generation || d.Status.UpdatedNumberScheduled != 0 {
			return fmt.Errorf("status %+v", d.Status)
		}
		return nil
	})
	// A pod deleted by someone else comes back with the new template.
	if _, err := st.Delete(ctx, podKind, "default", before[0].Name, ""); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		pods := podsOf(t, ctx, st, "agent")
		n := 0
		for _, p := range pods {
			if p.Spec.Containers[0].Image == "file:///agent-v2.wasm" {
				n++
			}
		}
		if len(pods) != 2 || n != 1 {
			return fmt.Errorf("%d pods, %d new", len(pods), n)
		}
		return nil
	})
}

func TestPodSecurityAtCreate(t *testing.T) {
	ctx, st := openStore(t)
	ns := &api.Namespace{ObjectMeta: api.ObjectMeta{Name: "locked", Labels: map[string]string{api.LabelPodSecurityEnforce: "baseline"}}}
	api.Default(ns)
	if err := st.Create(ctx, ns); err != nil {
		t.Fatal(err)
	}
	addNode(t, ctx, st, "n1", nil)
	rec := startController(t, st)
	ds := newDS("agent", func(s *api.DaemonSetSpec) { s.Template.Spec.HostNetwork = true })
	ds.Namespace = "locked"
	if err := st.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if rec.find(framework.ReasonFailedCreate) == "" {
			return fmt.Errorf("no FailedCreate event yet")
		}
		return nil
	})
	objs, _, err := st.List(ctx, podKind, store.ListOptions{Namespace: "locked"})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 0 {
		t.Fatalf("%d pods created in a baseline namespace for a hostNetwork daemon", len(objs))
	}
}

func TestNodeShouldRun(t *testing.T) {
	node := func(lbls map[string]string, taints ...api.Taint) *api.Node {
		return &api.Node{ObjectMeta: api.ObjectMeta{Name: "n", Labels: lbls}, Spec: api.NodeSpec{Taints: taints}}
	}
	cases := []struct {
		name      string
		node      *api.Node
		spec      api.PodSpec
		run, cont bool
	}{
		{"plain", node(nil), api.PodSpec{}, true, true},
		{"selector matches", node(map[string]string{"a": "b"}), api.PodSpec{NodeSelector: map[string]string{"a": "b"}}, true, true},
		{"selector does not match", node(map[string]string{"a": "c"}), api.PodSpec{NodeSelector: map[string]string{"a": "b"}}, false, false},
		{"NoSchedule untolerated", node(nil, api.Taint{Key: "x", Effect: api.TaintNoSchedule}), api.PodSpec{}, false, true},
		{"NoExecute untolerated", node(nil, api.Taint{Key: "x", Effect: api.TaintNoExecute}), api.PodSpec{}, false, false},
		{"PreferNoSchedule ignored", node(nil, api.Taint{Key: "x", Effect: api.TaintPreferNoSchedule}), api.PodSpec{}, true, true},
		{"tolerated", node(nil, api.Taint{Key: "x", Value: "y", Effect: api.TaintNoExecute}),
			api.PodSpec{Tolerations: []api.Toleration{{Key: "x", Value: "y"}}}, true, true},
		{"not-ready tolerated by default", node(nil, api.Taint{Key: api.TaintNodeNotReady, Effect: api.TaintNoExecute}), api.PodSpec{}, true, true},
		{"unschedulable tolerated by default", node(nil, api.Taint{Key: api.TaintNodeUnschedulable, Effect: api.TaintNoSchedule}), api.PodSpec{}, true, true},
		{"network-unavailable only for hostNetwork", node(nil, api.Taint{Key: api.TaintNodeNetworkUnavail, Effect: api.TaintNoSchedule}), api.PodSpec{}, false, true},
		{"network-unavailable hostNetwork", node(nil, api.Taint{Key: api.TaintNodeNetworkUnavail, Effect: api.TaintNoSchedule}), api.PodSpec{HostNetwork: true}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			run, cont := daemonset.NodeShouldRun(tc.node, &tc.spec)
			if run != tc.run || cont != tc.cont {
				t.Fatalf("NodeShouldRun = %v, %v; want %v, %v", run, cont, tc.run, tc.cont)
			}
		})
	}
}

// An orphan pod the DaemonSet selects is adopted (no second pod on its
// node); an owned pod whose labels stop matching is released, and its
// node gets a new daemon.
func TestAdoptAndRelease(t *testing.T) {
	ctx, st := openStore(t)
	addNode(t, ctx, st, "n1", nil)
	addNode(t, ctx, st, "n2", nil)
	orphan := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "left-behind", Namespace: "default", Labels: map[string]string{"app": "agent"}},
		Spec: api.PodSpec{NodeName: "n1", Containers: []api.Container{{Name: "c", Image: "file:///agent.wasm"}}}}
	api.Default(orphan)
	if err := st.Create(ctx, orphan); err != nil {
		t.Fatal(err)
	}
	startController(t, st)
	ds := newDS("agent", func(s *api.DaemonSetSpec) {
		s.UpdateStrategy = api.DaemonSetUpdateStrategy{Type: api.OnDeleteDaemonSetStrategyType}
	})
	if err := st.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	pods := waitOnNodes(t, ctx, st, "agent", "n1", "n2")
	if !slices.ContainsFunc(pods, func(p *api.Pod) bool { return p.Name == "left-behind" }) {
		t.Fatalf("the orphan on n1 was not adopted: %v", pods)
	}
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, podKind, "default", "left-behind")
		if err != nil {
			return err
		}
		p := obj.(*api.Pod)
		p.Labels = map[string]string{"app": "debug"}
		return st.Update(ctx, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	var obj api.Object
	testutil.Eventually(t, 10*time.Second, func() error {
		var err error
		if obj, err = st.Get(ctx, podKind, "default", "left-behind"); err != nil {
			return err
		}
		if ref := api.ControllerOf(obj); ref != nil {
			return fmt.Errorf("still controlled by %s", ref.Name)
		}
		return nil
	})
	pods = waitOnNodes(t, ctx, st, "agent", "n1", "n2")
	if slices.ContainsFunc(pods, func(p *api.Pod) bool { return p.Name == "left-behind" }) {
		t.Fatalf("the relabelled pod is still the daemon: %v", pods)
	}
	if ref := api.ControllerOf(obj); ref != nil || obj.GetObjectMeta().DeletionTimestamp != nil {
		t.Fatalf("released pod: owner %v, deletion %v", ref, obj.GetObjectMeta().DeletionTimestamp)
	}
}

// Status counts a Ready pod as available only after minReadySeconds: here
// one pod has been Ready long enough and the other just became Ready.
func TestStatusMinReadySeconds(t *testing.T) {
	ctx, st := openStore(t)
	addNode(t, ctx, st, "n1", nil)
	addNode(t, ctx, st, "n2", nil)
	startController(t, st)
	if err := st.Create(ctx, newDS("agent", func(s *api.DaemonSetSpec) { s.MinReadySeconds = 600 })); err != nil {
		t.Fatal(err)
	}
	pods := waitOnNodes(t, ctx, st, "agent", "n1", "n2")
	for i, p := range pods {
		since := time.Now().UTC()
		if i == 0 {
			since = since.Add(-time.Hour)
		}
		err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
			obj, err := st.Get(ctx, podKind, p.Namespace, p.Name)
			if err != nil {
				return err
			}
			cur := obj.(*api.Pod)
			cur.Status.Phase = api.PodRunning
			cur.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: api.ConditionTrue, LastTransitionTime: since})
			return st.Update(ctx, cur)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		s := getDS(t, ctx, st, "agent").Status
		if s.DesiredNumberScheduled != 2 || s.NumberReady != 2 || s.NumberAvailable != 1 || s.NumberUnavailable != 1 || s.UpdatedNumberScheduled != 2 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
}

// TestRollingUpdateSurge rolls a DaemonSet with maxSurge 1, maxUnavailable
// 0: a node gets its new pod beside the old one, the old goes once the new
// is available, so no node is ever without an available pod.
func TestRollingUpdateSurge(t *testing.T) {
	ctx, st := openStore(t)
	nodes := []string{"n1", "n2", "n3"}
	for _, n := range nodes {
		addNode(t, ctx, st, n, nil)
	}
	startController(t, st)
	one, zero := api.FromInt(1), api.FromInt(0)
	ds := newDS("agent", func(s *api.DaemonSetSpec) {
		s.UpdateStrategy.RollingUpdate = &api.RollingUpdateDaemonSet{MaxSurge: &one, MaxUnavailable: &zero}
	})
	if err := st.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	for _, p := range waitOnNodes(t, ctx, st, "agent", nodes...) {
		setReady(t, ctx, st, p)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if s := getDS(t, ctx, st, "agent").Status; s.NumberAvailable != 3 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		cur := getDS(t, ctx, st, "agent")
		cur.Spec.Template.Spec.Containers[0].Image = "file:///agent-v2.wasm"
		return st.Update(ctx, cur)
	})
	if err != nil {
		t.Fatal(err)
	}
	surged := false
	testutil.Eventually(t, 15*time.Second, func() error {
		pods := podsOf(t, ctx, st, "agent")
		perNode, avail, pendingNew, updated := map[string]int{}, map[string]bool{}, 0, 0
		for _, p := range pods {
			perNode[p.Spec.NodeName]++
			if c := p.Status.Condition(api.PodReady); c != nil && c.Status == api.ConditionTrue {
				avail[p.Spec.NodeName] = true
			}
			if p.Spec.Containers[0].Image == "file:///agent-v2.wasm" {
				updated++
				if c := p.Status.Condition(api.PodReady); c == nil || c.Status != api.ConditionTrue {
					pendingNew++
				}
			}
		}
		if pendingNew > 1 {
			t.Fatalf("%d new pods not yet available at once, maxSurge 1", pendingNew)
		}
		for _, n := range nodes {
			if !avail[n] {
				t.Fatalf("node %s without an available pod during a surge rollout (maxUnavailable 0): %v", n, perNode)
			}
			if perNode[n] > 2 {
				t.Fatalf("node %s has %d pods", n, perNode[n])
			}
			surged = surged || perNode[n] == 2
		}
		for _, p := range pods {
			if p.Spec.Containers[0].Image == "file:///agent-v2.wasm" {
				setReady(t, ctx, st, p) // the agent starts the new pod
			}
		}
		s := getDS(t, ctx, st, "agent").Status
		if updated != 3 || len(pods) != 3 || s.UpdatedNumberScheduled != 3 || s.NumberAvailable != 3 {
			var desc []string
			for _, p := range pods {
				desc = append(desc, p.Spec.NodeName+":"+p.Spec.Containers[0].Image+":"+string(p.Status.Phase))
			}
			return fmt.Errorf("%d pods (%v), %d updated, status %+v", len(pods), desc, updated, s)
		}
		return nil
	})
	if !surged {
		t.Fatal("no node ever ran an old and a new pod: the rollout did not surge")
	}
}

// A daemon pod that failed is deleted and its node gets a new one.
func TestFailedPodReplaced(t *testing.T) {
	ctx, st := openStore(t)
	addNode(t, ctx, st, "n1", nil)
	startController(t, st)
	if err := st.Create(ctx, newDS("agent", nil)); err != nil {
		t.Fatal(err)
	}
	first := waitOnNodes(t, ctx, st, "agent", "n1")[0]
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, podKind, "default", first.Name)
		if err != nil {
			return err
		}
		p := obj.(*api.Pod)
		p.Status.Phase = api.PodFailed
		return st.Update(ctx, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		pods := podsOf(t, ctx, st, "agent")
		live := 0
		for _, p := range pods {
			if p.Name == first.Name {
				return fmt.Errorf("failed pod %s not deleted", p.Name)
			}
			if p.Status.Phase != api.PodFailed {
				live++
			}
		}
		if live != 1 {
			return fmt.Errorf("%d replacement pods, want 1", live)
		}
		return nil
	})
}

// A node whose daemon pod fails again within its back-off keeps the failed
// pod and gets no new one until the back-off passes (no hot loop of
// create, fail, delete).
func TestFailedPodBackoff(t *testing.T) {
	ctx, st := openStore(t)
	addNode(t, ctx, st, "n1", nil)
	var clockMu sync.Mutex
	clock := time.Now()
	now := func() time.Time { clockMu.Lock(); defer clockMu.Unlock(); return clock }
	mctx, cancel := context.WithCancel(context.Background())
	log := slog.New(slog.DiscardHandler)
	mgr := framework.NewManager(st, log)
	mgr.Add("daemonset", daemonset.New(mgr, st, daemonset.Config{Now: now, FailedPodBackoff: 200 * time.Millisecond}, log))
	done := make(chan struct{})
	go func() { defer close(done); _ = mgr.Run(mctx) }()
	t.Cleanup(func() { cancel(); <-done })
	if err := st.Create(ctx, newDS("agent", nil)); err != nil {
		t.Fatal(err)
	}
	fail := func(name string) {
		t.Helper()
		err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
			obj, err := st.Get(ctx, podKind, "default", name)
			if err != nil {
				return err
			}
			p := obj.(*api.Pod)
			p.Status.Phase = api.PodFailed
			return st.Update(ctx, p)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	replaced := func(old string) *api.Pod {
		t.Helper()
		var out *api.Pod
		testutil.Eventually(t, 10*time.Second, func() error {
			pods := podsOf(t, ctx, st, "agent")
			if len(pods) != 1 || pods[0].Name == old {
				return fmt.Errorf("%d live pods, want one new", len(pods))
			}
			out = pods[0]
			return nil
		})
		return out
	}
	first := waitOnNodes(t, ctx, st, "agent", "n1")[0]
	fail(first.Name)
	second := replaced(first.Name) // the first failure is replaced at once
	fail(second.Name)
	// The reconcile that sees the second failure writes status (no pod
	// scheduled) and, in back-off, neither deletes nor creates.
	testutil.Eventually(t, 10*time.Second, func() error {
		if s := getDS(t, ctx, st, "agent").Status; s.CurrentNumberScheduled != 0 {
			return fmt.Errorf("status %+v", s)
		}
		return nil
	})
	pods := podsOf(t, ctx, st, "agent")
	if len(pods) != 1 || pods[0].Name != second.Name || pods[0].Status.Phase != api.PodFailed {
		t.Fatalf("in back-off the failed pod was replaced: %d pods", len(pods))
	}
	clockMu.Lock()
	clock = clock.Add(time.Second)
	clockMu.Unlock()
	replaced(second.Name)
}
