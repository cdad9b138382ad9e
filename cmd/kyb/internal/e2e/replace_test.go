package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
)

// nodeDeathReplacement runs a one-replica Deployment (tolerating an
// unreachable node for tolerate), kills the agent of the node its pod runs
// on, and waits until a replacement pod Runs on the other node. It returns
// the time from the kill to that Running replacement.
func nodeDeathReplacement(t testing.TB, tolerate int) time.Duration {
	c := startCluster(t)
	agents := map[string]*agent{}
	for _, n := range []string{"node-a", "node-b"} {
		dir := t.TempDir()
		agents[n] = c.startAgent(n, dir, nil, map[string]runtimes.Runtime{api.RuntimeWasm: fakeRuntime(t, api.RuntimeWasm, dir)})
	}
	c.apply(fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      runtimeClassName: wasm
      terminationGracePeriodSeconds: 1
      tolerations:
      - {key: node.kubernetes.io/unreachable, operator: Exists, effect: NoExecute, tolerationSeconds: %d}
      containers: [{name: m, image: fake://run}]
`, tolerate))
	var first *api.Pod
	testutil.Eventually(t, 30*time.Second, func() error {
		pods, err := c.appPods("web")
		if err != nil {
			return err
		}
		for _, p := range pods {
			if p.Status.Phase == api.PodRunning {
				first = p
				return nil
			}
		}
		return fmt.Errorf("no Running pod of web yet (%d pods)", len(pods))
	})
	dead := first.Spec.NodeName
	agents[dead].stop(t)
	killed := time.Now()
	testutil.Eventually(t, 60*time.Second, func() error {
		pods, err := c.appPods("web")
		if err != nil {
			return err
		}
		for _, p := range pods {
			if p.UID != first.UID && p.Spec.NodeName != dead && p.Status.Phase == api.PodRunning && p.DeletionTimestamp == nil {
				return nil
			}
		}
		return fmt.Errorf("no replacement Running on another node yet (%d pods)", len(pods))
	})
	took := time.Since(killed)
	// The dead node's pod is marked for deletion (it is removed once its
	// agent returns and stops it), never counted twice.
	p, err := c.pod(first.Name)
	if err == nil && p.DeletionTimestamp == nil {
		t.Fatalf("the dead node's pod %s is not marked for deletion", first.Name)
	}
	return took
}

// appPods lists the pods labelled app=name.
func (c *cluster) appPods(name string) ([]*api.Pod, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	objs, _, err := c.c.List(ctx, api.ListRequest{Kind: "Pod", LabelSelector: "app=" + name})
	if err != nil {
		return nil, err
	}
	out := make([]*api.Pod, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.(*api.Pod))
	}
	return out, nil
}

// TestNodeDeathReplacesPods: a killed agent's Deployment pod is evicted
// after grace + toleration and its ReplicaSet runs a replacement on the
// other node.
func TestNodeDeathReplacesPods(t *testing.T) {
	took := nodeDeathReplacement(t, 1)
	t.Logf("node death to replacement Running: %v (heartbeat TTL 2 s, grace 3 s, toleration 1 s)", took)
}

// BenchmarkNodeDeathToReplacement reports the time from an agent's death
// to its Deployment pod's replacement Running on another node, beyond the
// heartbeat TTL (2 s) and toleration (1 s) the test cluster sets (target:
// at most 2 s beyond them).
func BenchmarkNodeDeathToReplacement(b *testing.B) {
	var total time.Duration
	for b.Loop() {
		total += nodeDeathReplacement(b, 1)
	}
	b.ReportMetric((total/time.Duration(b.N) - 3*time.Second).Seconds(), "beyond-ttl+toleration-s")
}
