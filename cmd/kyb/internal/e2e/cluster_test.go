package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/fake"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

func fakeRuntime(t testing.TB, class, dir string) *fake.Runtime {
	t.Helper()
	rt, err := fake.New(fake.Config{Name: class, StateDir: filepath.Join(dir, "fake-"+class)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

// Two agents, one offering containers and one wasm: the scheduler places
// each pod on the node that can run it and honours nodeSelector; a pod that
// fits nowhere says why; an agent that stops turns its node Unknown.
func TestTwoAgentsPlacementAndNodeLoss(t *testing.T) {
	c := startCluster(t)
	dirA, dirB := t.TempDir(), t.TempDir()
	c.startAgent("node-a", dirA, map[string]string{"zone": "a"}, map[string]runtimes.Runtime{
		api.RuntimeContainerd: fakeRuntime(t, api.RuntimeContainerd, dirA),
	})
	agentB := c.startAgent("node-b", dirB, map[string]string{"zone": "b"}, map[string]runtimes.Runtime{
		api.RuntimeContainerd: fakeRuntime(t, api.RuntimeContainerd, dirB),
		api.RuntimeWasm:       fakeRuntime(t, api.RuntimeWasm, dirB),
	})

	c.apply(`apiVersion: v1
kind: Pod
metadata: {name: wasm-pod}
spec:
  runtimeClassName: wasm
  containers: [{name: m, image: fake://run}]
---
apiVersion: v1
kind: Pod
metadata: {name: zone-a}
spec:
  nodeSelector: {zone: a}
  containers: [{name: c, image: fake://run, resources: {requests: {cpu: 100m, memory: 64Mi}}}]
---
apiVersion: v1
kind: Pod
metadata: {name: huge}
spec:
  runtimeClassName: wasm
  containers: [{name: m, image: fake://run, resources: {requests: {memory: 100Ti}}}]
`)
	for name, want := range map[string]string{"wasm-pod": "node-b", "zone-a": "node-a"} {
		p := c.waitPod(name, 30*time.Second, phaseIs(api.PodRunning))
		if p.Spec.NodeName != want {
			t.Errorf("pod %s on %q, want %q", name, p.Spec.NodeName, want)
		}
	}
	p := c.waitPod("huge", 30*time.Second, func(p *api.Pod) error {
		cond := p.Status.Condition(api.PodScheduled)
		if cond == nil || cond.Status != api.ConditionFalse {
			return fmt.Errorf("no PodScheduled=False yet")
		}
		return nil
	})
	cond := p.Status.Condition(api.PodScheduled)
	if cond.Reason != "Unschedulable" || !strings.HasPrefix(cond.Message, "0/2 nodes are available:") ||
		!strings.Contains(cond.Message, "1 Insufficient memory") || !strings.Contains(cond.Message, "1 runtime wasm not available") {
		t.Errorf("unschedulable condition %+v", cond)
	}
	desc := c.kyb("describe", "pod", "huge")
	if !strings.Contains(desc, "Unschedulable") || !strings.Contains(desc, "Insufficient memory") {
		t.Errorf("describe pod huge does not say why it is pending:\n%s", desc)
	}
	desc = c.kyb("describe", "node", "node-a")
	for _, want := range []string{"PodCIDR:", "10.42.", "Allocatable:", "Allocated resources:", "zone-a", "100m", "Ready"} {
		if !strings.Contains(desc, want) {
			t.Errorf("describe node node-a lacks %q:\n%s", want, desc)
		}
	}

	// node-b's agent stops: its heartbeats expire and the node turns Unknown.
	agentB.stop(t)
	testutil.Eventually(t, 30*time.Second, func() error {
		n, err := c.node("node-b")
		if err != nil {
			return err
		}
		if r := n.Status.Condition(api.NodeReady); r == nil || r.Status != api.ConditionUnknown {
			return fmt.Errorf("node-b Ready %+v", r)
		}
		return nil
	})
	if out := c.kyb("get", "nodes"); !strings.Contains(out, "node-b   Unknown") && !strings.Contains(out, "Unknown") {
		t.Errorf("kyb get nodes:\n%s", out)
	}
}

// An agent restart reconciles the runtime with the assignments: a pod
// that was running runs again exactly once, and a pod deleted while the
// agent was down is stopped, removed and finalized.
func TestAgentRestartReconciles(t *testing.T) {
	c := startCluster(t)
	prog := precompiled(t, runtimetest.BuildTestProg(t, "wasip1", "wasm"))
	c.kyb("module", "push", "prog", prog)
	dir := t.TempDir()
	rt1 := c.wasmRuntime("wasm-1", dir)
	a1 := c.startAgent("wasm-1", dir, nil, map[string]runtimes.Runtime{api.RuntimeWasm: rt1})
	c.apply(wasmPod("keep", "kyb://prog", "Always", "out", "up", "sleep", "forever"))
	c.apply(wasmPod("gone", "kyb://prog", "Always", "sleep", "forever"))
	c.waitPod("keep", 60*time.Second, phaseIs(api.PodRunning))
	gone := c.waitPod("gone", 60*time.Second, phaseIs(api.PodRunning))

	// The agent process dies: its modules die with it.
	a1.stop(t)
	rt1.Close()
	c.kyb("delete", "pod", "gone")
	if p, err := c.pod("gone"); err != nil || p.DeletionTimestamp == nil {
		t.Fatalf("pod gone while its node is down: %v %v; want it kept, marked for deletion", p, err)
	}

	rt2 := c.wasmRuntime("wasm-1", dir)
	c.startAgent("wasm-1", dir, nil, map[string]runtimes.Runtime{api.RuntimeWasm: rt2})
	testutil.Eventually(t, 30*time.Second, func() error {
		if _, err := c.pod("gone"); !api.IsNotFound(err) {
			return fmt.Errorf("pod gone still there (%v)", err)
		}
		return nil
	})
	p := c.waitPod("keep", 60*time.Second, func(p *api.Pod) error {
		if err := phaseIs(api.PodRunning)(p); err != nil {
			return err
		}
		if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].State.Running == nil {
			return fmt.Errorf("keep: %s", statusText(p))
		}
		return nil
	})
	ctx := context.Background()
	sbs, err := rt2.ListSandboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var keepSandboxes int
	for _, sb := range sbs {
		switch sb.UID {
		case p.UID:
			keepSandboxes++
		case gone.UID:
			t.Errorf("sandbox of deleted pod gone still held: %+v", sb)
		}
	}
	if keepSandboxes != 1 {
		t.Errorf("pod keep has %d sandboxes, want 1", keepSandboxes)
	}
	cs, err := rt2.ListContainers(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	running := 0
	for _, c := range cs {
		if c.State == runtimes.ContainerRunning {
			running++
		}
	}
	if running != 1 {
		t.Errorf("%d running containers after the restart, want 1 (keep): %+v", running, cs)
	}
}
