package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
)

// A killed agent's pod stops showing Running 1/1 as soon as its node is
// found silent (heartbeat TTL 2 s here), shows the NodeNotReady and
// TaintManagerEviction events, is Terminating after its toleration (2 s),
// and is gone, container and all, once the agent is back: never two
// copies. The other node is untouched.
func TestKilledAgentPodNotReadyThenEvicted(t *testing.T) {
	c := startCluster(t)
	c.startAgent("node-a", "", nil, map[string]runtimes.Runtime{
		api.RuntimeContainerd: fakeRuntime(t, api.RuntimeContainerd, t.TempDir()),
	})
	dirB := t.TempDir()
	rtsB := map[string]runtimes.Runtime{api.RuntimeContainerd: fakeRuntime(t, api.RuntimeContainerd, dirB)}
	agentB := c.startAgent("node-b", dirB, nil, rtsB)
	c.apply(`apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeSelector: {kubernetes.io/hostname: node-b}
  terminationGracePeriodSeconds: 1
  tolerations:
  - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: 2}
  containers: [{name: c, image: fake://run}]
`)
	c.waitPod("web", 30*time.Second, func(p *api.Pod) error {
		if r := p.Status.Condition(api.PodReady); p.Status.Phase != api.PodRunning || r == nil || r.Status != api.ConditionTrue {
			return fmt.Errorf("web %s (%s)", p.Status.Phase, statusText(p))
		}
		return nil
	})
	row := func() string {
		for _, l := range strings.Split(c.kyb("get", "pods"), "\n") {
			if strings.HasPrefix(l, "web ") {
				return l
			}
		}
		return ""
	}
	if r := row(); !strings.Contains(r, "1/1") || !strings.Contains(r, "Running") {
		t.Fatalf("kyb get pods row %q, want 1/1 Running", r)
	}
	uid := func() string { p, _ := c.pod("web"); return p.UID }()

	agentB.stop(t)
	testutil.Eventually(t, 30*time.Second, func() error {
		if r := row(); !strings.Contains(r, "0/1") {
			return fmt.Errorf("kyb get pods row %q, want 0/1", r)
		}
		return nil
	})
	testutil.Eventually(t, 30*time.Second, func() error {
		if r := row(); !strings.Contains(r, "Terminating") {
			return fmt.Errorf("kyb get pods row %q, want Terminating", r)
		}
		return nil
	})
	testutil.Eventually(t, 10*time.Second, func() error {
		out := c.kyb("get", "events", "--field-selector", "involvedObject.name=web")
		for _, want := range []string{api.ReasonNodeNotReady, api.ReasonTaintManagerEviction} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("events lack %s:\n%s", want, out)
			}
		}
		return nil
	})
	if n, err := c.node("node-a"); err != nil || !n.IsReady() || len(n.Spec.Taints) != 0 {
		t.Errorf("node-a: %+v %v", n, err)
	}

	// The agent comes back on the same runtime, whose container of web ran
	// on: it stops it, and the pod leaves the store.
	c.startAgent("node-b", dirB, nil, rtsB)
	testutil.Eventually(t, 30*time.Second, func() error {
		if _, err := c.pod("web"); !api.IsNotFound(err) {
			return fmt.Errorf("web still stored: %v", err)
		}
		cs, err := rtsB[api.RuntimeContainerd].ListContainers(t.Context(), "")
		if err != nil {
			return err
		}
		for _, ct := range cs {
			if ct.Labels[node.LabelPodUID] == uid && ct.State == runtimes.ContainerRunning {
				return fmt.Errorf("web's container still runs on node-b")
			}
		}
		n, err := c.node("node-b")
		if err != nil {
			return err
		}
		if !n.IsReady() || len(n.Spec.Taints) != 0 {
			return fmt.Errorf("node-b ready %v taints %+v", n.IsReady(), n.Spec.Taints)
		}
		return nil
	})
}
