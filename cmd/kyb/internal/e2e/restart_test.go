package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// A control plane restart loses nothing acknowledged: every pod applied
// before it is still there with its status, the pods keep running, the
// agent reconnects on its own, and new work is scheduled and run.
func TestControlPlaneRestartLosesNothing(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	c.startAgent("fake-1", dir, nil, map[string]runtimes.Runtime{api.RuntimeWasm: fakeRuntime(t, api.RuntimeWasm, dir)})
	var docs []string
	for i := range 20 {
		docs = append(docs, wasmPod(fmt.Sprintf("before-%d", i), "fake://run", "Always"))
	}
	c.apply(strings.Join(docs, "---\n"))
	uids := map[string]string{}
	for i := range 20 {
		p := c.waitPod(fmt.Sprintf("before-%d", i), 30*time.Second, phaseIs(api.PodRunning))
		uids[p.Name] = p.UID
	}

	c.restart()

	for name, uid := range uids {
		p := c.waitPod(name, 30*time.Second, phaseIs(api.PodRunning))
		if p.UID != uid || p.Spec.NodeName != "fake-1" {
			t.Errorf("pod %s after restart: uid %s node %q, want uid %s on fake-1", name, p.UID, p.Spec.NodeName, uid)
		}
		if cs := p.Status.ContainerStatuses; len(cs) != 1 || cs[0].RestartCount != 0 {
			t.Errorf("pod %s restarted across a control plane restart: %+v", name, cs)
		}
	}
	c.apply(wasmPod("after", "fake://run", "Always"))
	c.waitPod("after", 30*time.Second, phaseIs(api.PodRunning))
	if n, err := c.node("fake-1"); err != nil || !n.IsReady() {
		t.Errorf("node after restart: %v %v", n, err)
	}
}
