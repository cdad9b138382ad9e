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

// TestWithRealAgent runs the real node agent (over the fake runtime) against
// the apiserver: registration, heartbeats, a pod bound to the node running,
// and a graceful delete ending in the agent's Finalized report.
func TestWithRealAgent(t *testing.T) {
	e := newEnv(t)
	rt, err := fake.New(fake.Config{Name: api.RuntimeContainerd}, nil)
	if err != nil {
		t.Fatal(err)
	}
	agent, err := node.New(node.Config{
		Name: "n1", DataDir: t.TempDir(),
		HeartbeatInterval: 200 * time.Millisecond, StatusFlushInterval: 20 * time.Millisecond,
	}, testutil.Connect(t, e.ns), map[string]runtimes.Runtime{api.RuntimeContainerd: rt}, logger(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx) }()
	defer cancel()
	select {
	case <-agent.Ready():
	case err := <-done:
		t.Fatalf("agent: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent not ready within 20s")
	}

	testutil.Eventually(t, 10*time.Second, func() error {
		obj, err := e.c.Get(e.ctx, "node", "", "n1")
		if err != nil {
			return err
		}
		n := obj.(*api.Node)
		if n.Spec.PodCIDR != "10.42.0.0/24" || !n.IsReady() {
			return fmt.Errorf("node: cidr %q ready %v", n.Spec.PodCIDR, n.IsReady())
		}
		if _, alive, err := e.hb.Last(e.ctx, "n1"); err != nil || !alive {
			return fmt.Errorf("heartbeat alive=%v %v", alive, err)
		}
		return nil
	})

	e.apply(t, podYAML("", "web", nil))
	e.bind(t, "default", "web", "n1")
	testutil.Eventually(t, 20*time.Second, func() error {
		if p := e.pod(t, "default", "web"); p.Status.Phase != api.PodRunning {
			return fmt.Errorf("pod phase %q", p.Status.Phase)
		}
		return nil
	})

	// The agent's events reach the events stream through the apiserver,
	// about this pod (its UID) and its container, from the kubelet of n1.
	uid := e.pod(t, "default", "web").UID
	reasons := func() (map[string]*api.Event, error) {
		evs, err := e.c.Events(e.ctx, "default", false, "involvedObject.kind=Pod,involvedObject.name=web")
		if err != nil {
			return nil, err
		}
		m := map[string]*api.Event{}
		for _, ev := range evs {
			m[ev.Reason] = ev
		}
		return m, nil
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		m, err := reasons()
		if err != nil {
			return err
		}
		ev := m[api.ReasonStarted]
		if ev == nil {
			return fmt.Errorf("no Started event among %v", m)
		}
		if ev.InvolvedObject.UID != uid || ev.InvolvedObject.FieldPath != "spec.containers{app}" ||
			ev.Source != (api.EventSource{Component: api.ComponentKubelet, Host: "n1"}) || ev.Type != api.EventTypeNormal || ev.Count != 1 {
			return fmt.Errorf("Started event %+v", ev)
		}
		return nil
	})

	grace := int64(2)
	if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "pod", Name: "web", GracePeriodSeconds: &grace}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		if _, err := e.c.Get(e.ctx, "pod", "", "web"); !api.IsNotFound(err) {
			return fmt.Errorf("pod still there: %v", err)
		}
		return nil
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		if m, err := reasons(); err != nil || m[api.ReasonKilling] == nil {
			return fmt.Errorf("no Killing event: %v %v", m, err)
		}
		return nil
	})

	// The agent stops: its heartbeat key expires and the node lifecycle
	// controller marks the node Unknown.
	mgr := framework.NewManager(e.st, logger(t))
	mgr.Add("nodelifecycle", nodelifecycle.New(mgr, e.st, e.hb, nodelifecycle.Config{Grace: 5 * time.Second}, logger(t)))
	go func() { _ = mgr.Run(e.ctx) }()
	cancel()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("agent did not stop within 20s")
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		obj, err := e.c.Get(e.ctx, "node", "", "n1")
		if err != nil {
			return err
		}
		if c := obj.(*api.Node).Status.Condition(api.NodeReady); c == nil || c.Status != api.ConditionUnknown {
			return fmt.Errorf("Ready condition %+v", c)
		}
		return nil
	})
}
