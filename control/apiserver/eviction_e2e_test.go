package apiserver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/nodelifecycle"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/fake"
)

// TestKilledAgentEvictedAndReturns runs real agents (over the fake runtime,
// whose containers, like containerd's, outlive the agent) against the
// apiserver and the node lifecycle controller. A killed agent's pod turns
// not Ready at once its node is found silent, is evicted after its
// toleration (2 s here), and when the agent starts again it stops the
// evicted pod, which is then gone from the store and the runtime: never two
// copies. The node's taint comes and goes.
func TestKilledAgentEvictedAndReturns(t *testing.T) {
	e := newEnv(t) // heartbeat TTL 2s: the grace period
	mgr := framework.NewManager(e.st, logger(t))
	mgr.Add("nodelifecycle", nodelifecycle.New(mgr, e.st, e.hb, nodelifecycle.Config{
		Grace: 2 * time.Second, Recorder: e.srv.Recorder(api.ComponentNodeController, logger(t)),
	}, logger(t)))
	go func() { _ = mgr.Run(e.ctx) }()

	rts := map[string]runtimes.Runtime{}
	dirs := map[string]string{}
	startAgent := func(name string) (stop func()) {
		if rts[name] == nil {
			rt, err := fake.New(fake.Config{Name: api.RuntimeContainerd}, nil)
			if err != nil {
				t.Fatal(err)
			}
			rts[name], dirs[name] = rt, t.TempDir()
		}
		agent, err := node.New(node.Config{
			Name: name, DataDir: dirs[name],
			HeartbeatInterval: 200 * time.Millisecond, StatusFlushInterval: 20 * time.Millisecond,
		}, testutil.Connect(t, e.ns), map[string]runtimes.Runtime{api.RuntimeContainerd: rts[name]}, logger(t))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(e.ctx)
		done := make(chan error, 1)
		go func() { done <- agent.Run(ctx) }()
		select {
		case <-agent.Ready():
		case err := <-done:
			t.Fatalf("agent %s: %v", name, err)
		case <-time.After(20 * time.Second):
			t.Fatalf("agent %s not ready within 20s", name)
		}
		stopped := false
		stop = func() {
			if stopped {
				return
			}
			stopped = true
			cancel()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Errorf("agent %s did not stop within 20s", name)
			}
		}
		t.Cleanup(stop)
		return stop
	}
	containers := func(name, uid string) int {
		cs, err := rts[name].ListContainers(e.ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, c := range cs {
			if c.Labels[node.LabelPodUID] == uid && c.State == runtimes.ContainerRunning {
				n++
			}
		}
		return n
	}
	getNode := func(name string) (*api.Node, error) {
		obj, err := e.c.Get(e.ctx, "node", "", name)
		if err != nil {
			return nil, err
		}
		return obj.(*api.Node), nil
	}
	tainted := func(n *api.Node) bool {
		for _, t := range n.Spec.Taints {
			if t.Key == api.TaintNodeUnreachable && t.Effect == api.TaintNoExecute && t.TimeAdded != nil {
				return true
			}
		}
		return false
	}

	stopN1 := startAgent("n1")
	startAgent("n2") // a live node: one of two silent is no disruption
	e.apply(t, `apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  terminationGracePeriodSeconds: 1
  tolerations:
  - key: node.kubernetes.io/unreachable
    operator: Exists
    effect: NoExecute
    tolerationSeconds: 2
  containers:
  - name: app
    image: nginx:1.27
`)
	e.bind(t, "default", "web", "n1")
	testutil.Eventually(t, 20*time.Second, func() error {
		p := e.pod(t, "default", "web")
		if r := p.Status.Condition(api.PodReady); p.Status.Phase != api.PodRunning || r == nil || r.Status != api.ConditionTrue {
			return fmt.Errorf("pod %s, Ready %+v", p.Status.Phase, r)
		}
		return nil
	})
	uid := e.pod(t, "default", "web").UID
	if p := e.pod(t, "default", "web"); len(p.Spec.Tolerations) != 2 {
		t.Errorf("tolerations %+v, want the pod's and the not-ready default", p.Spec.Tolerations)
	}

	// The agent is killed; its container runs on.
	stopN1()
	if n := containers("n1", uid); n != 1 {
		t.Fatalf("%d running containers of web after the agent stopped, want 1", n)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		n, err := getNode("n1")
		if err != nil {
			return err
		}
		if !tainted(n) {
			return fmt.Errorf("n1 not tainted: %+v", n.Spec.Taints)
		}
		p := e.pod(t, "default", "web")
		if r := p.Status.Condition(api.PodReady); r == nil || r.Status != api.ConditionFalse || r.Reason != api.ReasonNodeLost {
			return fmt.Errorf("web Ready %+v, want False/NodeLost", r)
		}
		return nil
	})
	testutil.Eventually(t, 20*time.Second, func() error {
		if p := e.pod(t, "default", "web"); p.DeletionTimestamp == nil {
			return fmt.Errorf("web not evicted")
		}
		return nil
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		evs, err := e.c.Events(e.ctx, "default", false, "involvedObject.name=web")
		if err != nil {
			return err
		}
		got := map[string]*api.Event{}
		for _, ev := range evs {
			got[ev.Reason] = ev
		}
		for _, r := range []string{api.ReasonNodeNotReady, api.ReasonTaintManagerEviction} {
			if ev := got[r]; ev == nil || ev.Source.Component != api.ComponentNodeController {
				return fmt.Errorf("no %s event from %s among %v", r, api.ComponentNodeController, got)
			}
		}
		return nil
	})
	if n, err := getNode("n2"); err != nil || !n.IsReady() || tainted(n) {
		t.Errorf("live node n2: %+v %v", n, err)
	}

	// The agent comes back: it stops the evicted pod (its container too),
	// which leaves the store; the node is Ready without the taint.
	startAgent("n1")
	testutil.Eventually(t, 20*time.Second, func() error {
		if _, err := e.c.Get(e.ctx, "pod", "default", "web"); !api.IsNotFound(err) {
			return fmt.Errorf("evicted pod still stored: %v", err)
		}
		if n := containers("n1", uid); n != 0 {
			return fmt.Errorf("%d containers of the evicted pod still run", n)
		}
		n, err := getNode("n1")
		if err != nil {
			return err
		}
		if !n.IsReady() || tainted(n) {
			return fmt.Errorf("n1 ready %v taints %+v", n.IsReady(), n.Spec.Taints)
		}
		return nil
	})
}
