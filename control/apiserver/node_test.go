package apiserver_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

func TestNodeRegister(t *testing.T) {
	e := newEnv(t)
	in := &api.Node{
		ObjectMeta: api.ObjectMeta{Labels: map[string]string{"zone": "a"}},
		Spec:       api.NodeSpec{Taints: []api.Taint{{Key: "gpu", Effect: api.TaintNoSchedule}}},
		Status: api.NodeStatus{
			Conditions: []api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionTrue}},
			NodeInfo:   api.NodeSystemInfo{Runtimes: []api.NodeRuntime{{Name: api.RuntimeWasm}}},
		},
	}
	n1 := e.registerNode(t, "n1", in)
	if n1.Spec.PodCIDR != "10.42.0.0/24" || !slices.Equal(n1.Spec.PodCIDRs, []string{"10.42.0.0/24"}) {
		t.Fatalf("n1 pod CIDR %q %v", n1.Spec.PodCIDR, n1.Spec.PodCIDRs)
	}
	if !n1.IsReady() || n1.Labels["zone"] != "a" || len(n1.Spec.Taints) != 1 || n1.UID == "" {
		t.Fatalf("n1 as registered: %+v", n1)
	}
	n2 := e.registerNode(t, "n2", nil)
	if n2.Spec.PodCIDR != "10.42.1.0/24" {
		t.Fatalf("n2 pod CIDR %q", n2.Spec.PodCIDR)
	}

	// An admin changes the taints; the agent re-registers with new labels:
	// taints and CIDR stay, labels merge.
	obj, err := e.st.Get(e.ctx, api.KindOf(&api.Node{}), "", "n1")
	if err != nil {
		t.Fatal(err)
	}
	admin := obj.(*api.Node)
	admin.Spec.Taints = nil
	admin.Labels["owner"] = "ops"
	if err := e.st.Update(e.ctx, admin); err != nil {
		t.Fatal(err)
	}
	again := e.registerNode(t, "n1", &api.Node{ObjectMeta: api.ObjectMeta{Labels: map[string]string{"zone": "b"}}, Spec: in.Spec})
	if again.Spec.PodCIDR != n1.Spec.PodCIDR || len(again.Spec.Taints) != 0 || again.Labels["zone"] != "b" || again.Labels["owner"] != "ops" || again.UID != n1.UID {
		t.Fatalf("re-registered n1: cidr %q taints %v labels %v", again.Spec.PodCIDR, again.Spec.Taints, again.Labels)
	}

	// A node may register only itself.
	_, err = e.c.Request(e.ctx, api.NodeSubject("n3", api.NodeVerbRegister), []byte(`{"metadata":{"name":"n1"}}`))
	if api.ReasonOf(err) != api.ReasonForbidden {
		t.Fatalf("n3 registering as n1: %v, want Forbidden", err)
	}
}

func TestPodCIDRsUniqueAndStable(t *testing.T) {
	s := testutil.StartNATS(t)
	e := newEnvOn(t, s, apiserver.Config{ClusterCIDR: "10.50.0.0/22", NodeCIDRMaskSize: 24})
	var wg sync.WaitGroup
	cidrs := make([]string, 4)
	errs := make([]error, 4)
	for i := range 4 {
		wg.Go(func() {
			b, err := e.c.Request(e.ctx, api.NodeSubject(fmt.Sprintf("n%d", i), api.NodeVerbRegister), []byte(`{}`))
			var n api.Node
			if err == nil {
				err = json.Unmarshal(b, &n)
			}
			cidrs[i], errs[i] = n.Spec.PodCIDR, err
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("register n%d: %v", i, err)
		}
	}
	got := slices.Sorted(slices.Values(cidrs))
	if want := []string{"10.50.0.0/24", "10.50.1.0/24", "10.50.2.0/24", "10.50.3.0/24"}; !slices.Equal(got, want) {
		t.Fatalf("concurrent registrations got %v, want %v", got, want)
	}
	// Range exhausted.
	if _, err := e.c.Request(e.ctx, api.NodeSubject("n4", api.NodeVerbRegister), []byte(`{}`)); api.ReasonOf(err) != api.ReasonUnavailable {
		t.Fatalf("register beyond the cluster CIDR: %v, want Unavailable", err)
	}
	// A second apiserver (a restart) keeps every node's range.
	e2 := newEnvOn(t, s, apiserver.Config{ClusterCIDR: "10.50.0.0/22", NodeCIDRMaskSize: 24})
	for i := range 4 {
		if n := e2.registerNode(t, fmt.Sprintf("n%d", i), nil); n.Spec.PodCIDR != cidrs[i] {
			t.Fatalf("n%d after restart: %q, want %q", i, n.Spec.PodCIDR, cidrs[i])
		}
	}
}

func TestNodeStatusPodStatusSyncAssignments(t *testing.T) {
	e := newEnv(t)
	e.registerNode(t, "n1", nil)
	e.registerNode(t, "n2", nil)

	// Node status replaces the status.
	st := api.NodeStatus{Conditions: []api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionFalse, Reason: "Testing"}}}
	if _, err := e.c.Request(e.ctx, api.NodeSubject("n1", api.NodeVerbStatus), must(json.Marshal(st))); err != nil {
		t.Fatal(err)
	}
	obj, err := e.c.Get(e.ctx, "node", "", "n1")
	if err != nil {
		t.Fatal(err)
	}
	if c := obj.(*api.Node).Status.Condition(api.NodeReady); c == nil || c.Reason != "Testing" {
		t.Fatalf("node status not stored: %+v", obj.(*api.Node).Status)
	}
	if _, err := e.c.Request(e.ctx, api.NodeSubject("ghost", api.NodeVerbStatus), must(json.Marshal(st))); !api.IsNotFound(err) {
		t.Fatalf("status of unregistered node: %v, want NotFound", err)
	}

	// Assignments: n1's agent listens on its subject.
	assign := make(chan *nats.Msg, 16)
	sub, err := e.nc.ChanSubscribe(api.AgentSubject("n1", api.AgentVerbPods), assign)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := e.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	next := func() api.Assignment {
		t.Helper()
		select {
		case m := <-assign:
			var a api.Assignment
			if err := json.Unmarshal(m.Data, &a); err != nil {
				t.Fatal(err)
			}
			return a
		case <-time.After(10 * time.Second):
			t.Fatal("no assignment within 10s")
		}
		return api.Assignment{}
	}
	e.apply(t, podYAML("", "a", nil)+"---\n"+podYAML("", "b", nil)+"---\n"+podYAML("", "c", nil))
	e.bind(t, "default", "a", "n1")
	if a := next(); a.Type != api.EventAdded || a.Pod.Name != "a" || a.Pod.Spec.NodeName != "n1" {
		t.Fatalf("assignment %s %s", a.Type, a.Pod.Name)
	}
	e.bind(t, "default", "b", "n1")
	if a := next(); a.Type != api.EventAdded || a.Pod.Name != "b" {
		t.Fatalf("assignment %s %s", a.Type, a.Pod.Name)
	}
	e.bind(t, "default", "c", "n2")

	// Sync lists exactly the node's pods.
	testutil.Eventually(t, 5*time.Second, func() error {
		b, err := e.c.Request(e.ctx, api.NodeSubject("n1", api.NodeVerbSync), nil)
		if err != nil {
			return err
		}
		var ps api.PodSync
		if err := json.Unmarshal(b, &ps); err != nil {
			return err
		}
		var names []string
		for _, p := range ps.Pods {
			names = append(names, p.Name)
		}
		if !slices.Equal(names, []string{"a", "b"}) || ps.Revision == 0 {
			return fmt.Errorf("sync: rev %d pods %v", ps.Revision, names)
		}
		return nil
	})

	// Pod status: matching UID is stored (and re-published as MODIFIED);
	// a stale UID or another node's report is ignored.
	a := e.pod(t, "default", "a")
	e.podStatus(t, "n1",
		api.PodStatusUpdate{Namespace: "default", Name: "a", UID: a.UID, Status: api.PodStatus{Phase: api.PodRunning, PodIP: "10.42.0.5"}},
		api.PodStatusUpdate{Namespace: "default", Name: "b", UID: "old-uid", Status: api.PodStatus{Phase: api.PodFailed}},
		api.PodStatusUpdate{Namespace: "default", Name: "gone", UID: "x", Status: api.PodStatus{Phase: api.PodFailed}},
	)
	c := e.pod(t, "default", "c")
	e.podStatus(t, "n1", api.PodStatusUpdate{Namespace: "default", Name: "c", UID: c.UID, Status: api.PodStatus{Phase: api.PodFailed}})
	if p := e.pod(t, "default", "a"); p.Status.Phase != api.PodRunning || p.Status.PodIP != "10.42.0.5" {
		t.Fatalf("status of a: %+v", p.Status)
	}
	if p := e.pod(t, "default", "b"); p.Status.Phase != "" && p.Status.Phase != api.PodPending {
		t.Fatalf("stale UID changed b: %+v", p.Status)
	}
	if p := e.pod(t, "default", "c"); p.Status.Phase == api.PodFailed {
		t.Fatalf("n1 changed n2's pod c")
	}
	if as := next(); as.Type != api.EventModified || as.Pod.Status.Phase != api.PodRunning {
		t.Fatalf("assignment after status: %s %s", as.Type, as.Pod.Status.Phase)
	}
	// Deleting a bound pod: the agent sees MODIFIED with a deletionTimestamp,
	// then DELETED once it reports the pod finalized.
	if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "pod", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	if as := next(); as.Type != api.EventModified || as.Pod.DeletionTimestamp == nil {
		t.Fatalf("assignment after delete: %s", as.Type)
	}
	e.podStatus(t, "n1", api.PodStatusUpdate{Namespace: "default", Name: "a", UID: a.UID, Finalized: true})
	if as := next(); as.Type != api.EventDeleted || as.Pod.Name != "a" {
		t.Fatalf("assignment after finalize: %s %s", as.Type, as.Pod.Name)
	}
}

func TestJetStreamAssets(t *testing.T) {
	e := newEnv(t)
	st, err := e.js.Stream(e.ctx, apiserver.LogsStream)
	if err != nil {
		t.Fatalf("logs stream: %v", err)
	}
	cfg := st.CachedInfo().Config
	if !slices.Equal(cfg.Subjects, []string{"kyb.logs.>"}) || cfg.MaxAge != 72*time.Hour || cfg.MaxBytes != 1<<30 ||
		cfg.Discard != jetstream.DiscardOld || cfg.Storage != jetstream.FileStorage {
		t.Fatalf("logs stream config: %+v", cfg)
	}
	if _, err := e.js.ObjectStore(e.ctx, apiserver.ModulesBucket); err != nil {
		t.Fatalf("module store: %v", err)
	}
	// A log line published by an agent lands in the stream.
	if _, err := e.js.Publish(e.ctx, api.LogSubject("n1", "default", "web", "app"), []byte("hello")); err != nil {
		t.Fatalf("publish log: %v", err)
	}
}

func TestHeartbeat(t *testing.T) {
	e := newEnv(t)
	if _, err := e.c.Request(e.ctx, api.NodeSubject("n1", api.NodeVerbHeartbeat), []byte(`{}`)); !api.IsNotFound(err) {
		t.Fatalf("heartbeat before register: %v, want NotFound", err)
	}
	e.registerNode(t, "n1", nil)
	if _, alive, err := e.hb.Last(e.ctx, "n1"); err != nil || alive {
		t.Fatalf("before any beat: alive=%v %v", alive, err)
	}
	b, err := e.c.Request(e.ctx, api.NodeSubject("n1", api.NodeVerbHeartbeat), must(json.Marshal(api.Heartbeat{Time: time.Now()})))
	if err != nil || string(b) != `{"ok":true}` {
		t.Fatalf("heartbeat: %s %v", b, err)
	}
	if _, alive, err := e.hb.Last(e.ctx, "n1"); err != nil || !alive {
		t.Fatalf("after a beat: alive=%v %v", alive, err)
	}
	// Deleting the node forgets its heartbeat.
	if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "node", Name: "n1"}); err != nil {
		t.Fatal(err)
	}
	if _, alive, err := e.hb.Last(e.ctx, "n1"); err != nil || alive {
		t.Fatalf("after delete: alive=%v %v", alive, err)
	}
}
