package nodelifecycle

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

func TestEvictionTime(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	added := now.Add(-10 * time.Second)
	secs := func(s int64) *int64 { return &s }
	unreachable := api.Taint{Key: api.TaintNodeUnreachable, Effect: api.TaintNoExecute, TimeAdded: &added}
	tol := func(key string, s *int64) api.Toleration {
		return api.Toleration{Key: key, Operator: api.TolerationOpExists, Effect: api.TaintNoExecute, TolerationSeconds: s}
	}
	tests := []struct {
		name   string
		taints []api.Taint
		tols   []api.Toleration
		want   time.Duration // after added
		none   bool
	}{
		{name: "no taint", none: true},
		{name: "NoSchedule taint only", taints: []api.Taint{{Key: "gpu", Effect: api.TaintNoSchedule}}, none: true},
		{name: "tolerated 30s", taints: []api.Taint{unreachable}, tols: []api.Toleration{tol(api.TaintNodeUnreachable, secs(30))}, want: 30 * time.Second},
		{name: "longest matching toleration wins", taints: []api.Taint{unreachable},
			tols: []api.Toleration{tol(api.TaintNodeUnreachable, secs(5)), tol("", secs(60))}, want: 60 * time.Second},
		{name: "tolerated for ever", taints: []api.Taint{unreachable}, tols: []api.Toleration{tol(api.TaintNodeUnreachable, nil)}, none: true},
		{name: "no toleration of unreachable: the default 300s", taints: []api.Taint{unreachable}, want: 300 * time.Second},
		{name: "negative seconds: at once", taints: []api.Taint{unreachable}, tols: []api.Toleration{tol(api.TaintNodeUnreachable, secs(-5))}, want: 0},
		{name: "an untolerated admin taint: at once", taints: []api.Taint{unreachable, {Key: "maintenance", Effect: api.TaintNoExecute, TimeAdded: &added}},
			tols: []api.Toleration{tol(api.TaintNodeUnreachable, nil)}, want: 0},
		{name: "taint without timeAdded: from when first seen", taints: []api.Taint{{Key: "maintenance", Effect: api.TaintNoExecute}},
			tols: []api.Toleration{tol("maintenance", secs(7))}, want: 10*time.Second + 7*time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := &Controller{now: func() time.Time { return now }, firstSeen: map[string]time.Time{}}
			n := &api.Node{ObjectMeta: api.ObjectMeta{Name: "n"}, Spec: api.NodeSpec{Taints: tc.taints}}
			p := &api.Pod{Spec: api.PodSpec{Tolerations: tc.tols}}
			at, ok := c.evictionTime(p, n)
			if ok == tc.none {
				t.Fatalf("evictionTime found=%v, want %v", ok, !tc.none)
			}
			if ok && !at.Equal(added.Add(tc.want)) {
				t.Fatalf("evictionTime %v, want taint time + %v", at.Sub(added), tc.want)
			}
		})
	}
}

func TestZones(t *testing.T) {
	h := func(zone string, bad bool) *health { return &health{zone: zone, unhealthy: bad} }
	z := newZones(0.55)
	steps := []struct {
		name       string
		old, new   *health
		flipped    []string
		disruptedA bool
	}{
		{name: "a1 joins ready", new: h("a", false)},
		{name: "a2 joins ready", new: h("a", false)},
		{name: "a3 joins ready", new: h("a", false)},
		{name: "b1 joins not ready: b alone is disrupted", new: h("b", true), flipped: []string{"b"}},
		{name: "a1 silent: a third", old: h("a", false), new: h("a", true)},
		{name: "a2 silent: two thirds, disrupted", old: h("a", false), new: h("a", true), flipped: []string{"a"}, disruptedA: true},
		{name: "a3 silent", old: h("a", false), new: h("a", true), disruptedA: true},
		{name: "a1 back: still two thirds", old: h("a", true), new: h("a", false), disruptedA: true},
		{name: "a2 back", old: h("a", true), new: h("a", false), flipped: []string{"a"}},
		{name: "a3 deleted", old: h("a", true)},
	}
	for _, s := range steps {
		got := z.change(s.old, s.new)
		slices.Sort(got)
		if !slices.Equal(got, s.flipped) {
			t.Errorf("%s: flipped %v, want %v", s.name, got, s.flipped)
		}
		if d := z.disrupted("a"); d != s.disruptedA {
			t.Errorf("%s: zone a disrupted=%v, want %v", s.name, d, s.disruptedA)
		}
	}
	if z.disrupted("nowhere") {
		t.Error("an empty zone is disrupted")
	}
}

// TestDisruptedZoneHoldsEvictions: a pod whose eviction is due (an
// untolerated NoExecute taint) on a node of a zone where most nodes are not
// Ready is not evicted but held; when the zone recovers it is queued again
// and evicted.
func TestDisruptedZoneHoldsEvictions(t *testing.T) {
	s := testutil.StartNATS(t)
	js, err := jetstream.New(testutil.Connect(t, s))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.Open(ctx, js, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC().Truncate(time.Second)
	for _, name := range []string{"n1", "n2"} {
		n := &api.Node{ObjectMeta: api.ObjectMeta{Name: name, Labels: map[string]string{api.LabelTopologyZone: "z"}}}
		api.Default(n)
		n.Status.Conditions = []api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionUnknown}}
		if name == "n1" {
			n.Spec.Taints = []api.Taint{{Key: "maintenance", Effect: api.TaintNoExecute, TimeAdded: &now}}
		}
		if err := st.Create(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: "p", Namespace: "default"}, Spec: api.PodSpec{
		NodeName: "n1", Containers: []api.Container{{Name: "app", Image: "nginx:1.27"}}}}
	api.Default(p)
	if err := st.Create(ctx, p); err != nil {
		t.Fatal(err)
	}
	mgr := framework.NewManager(st, slog.New(slog.DiscardHandler))
	c := New(mgr, st, nil, Config{}, slog.New(slog.DiscardHandler)) // reconciled by hand, not run
	go func() { _ = mgr.Run(ctx) }()
	if !mgr.WaitForSync(ctx) {
		t.Fatal("informers did not sync")
	}
	key := framework.KeyOf(p)
	held := func() bool {
		c.evMu.Lock()
		defer c.evMu.Unlock()
		_, ok := c.blocked[key]
		return ok
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if _, ok := c.pods.Get("default", "p"); !ok || !c.zones.disrupted("z") {
			return fmt.Errorf("cache not ready")
		}
		return nil
	})
	if _, err := c.ReconcilePod(ctx, key); err != nil {
		t.Fatal(err)
	}
	obj, err := st.Get(ctx, podKind, "default", "p")
	if err != nil {
		t.Fatal(err)
	}
	if obj.(*api.Pod).DeletionTimestamp != nil {
		t.Fatal("pod evicted in a disrupted zone")
	}
	if !held() {
		t.Fatal("eviction not held for the zone")
	}
	// n2 comes back: half the zone is Ready, no longer disrupted.
	obj, err = st.Get(ctx, nodeKind, "", "n2")
	if err != nil {
		t.Fatal(err)
	}
	n2 := obj.(*api.Node)
	n2.Status.Conditions = []api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionTrue}}
	if err := st.Update(ctx, n2); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		if held() || c.podCtl.Queue().Len() == 0 {
			return fmt.Errorf("held eviction not queued again")
		}
		return nil
	})
	if _, err := c.ReconcilePod(ctx, key); err != nil {
		t.Fatal(err)
	}
	obj, err = st.Get(ctx, podKind, "default", "p")
	if err != nil {
		t.Fatal(err)
	}
	if obj.(*api.Pod).DeletionTimestamp == nil {
		t.Fatal("pod not evicted once the zone recovered")
	}
}
