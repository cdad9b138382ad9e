package e2e

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/cmd/kyb/internal/cli"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/runtimes"
)

// kubectl's habits against a whole cluster with an agent: wait for a
// condition the agent reports, version and cluster-info from the API
// service, and get's TYPE/NAME and List forms on a running pod.
func TestKubectlHabits(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	c.startAgent("fake-1", dir, nil, map[string]runtimes.Runtime{api.RuntimeWasm: fakeRuntime(t, api.RuntimeWasm, dir)})
	c.apply(wasmPod("sleeper", "fake://prog", "Never", "sleep", "1h"))
	if out := c.kyb("wait", "pod/sleeper", "--for=condition=Ready", "--timeout=30s"); out != "pod/sleeper condition met\n" {
		t.Errorf("wait printed %q", out)
	}
	if p, err := c.pod("sleeper"); err != nil || p.Status.Phase != api.PodRunning {
		t.Errorf("after wait: %v %v", p, err)
	}
	out := c.kyb("version")
	want := "Client Version: " + cli.Version + "\nServer Version: v" + apiserver.Version + "\nAgent Version: \\S+ \\(fake-1\\)\n"
	if !regexp.MustCompile("^" + regexp.QuoteMeta("Client Version: "+cli.Version+"\nServer Version: v"+apiserver.Version+"\n") + `Agent Version: \S+ \(fake-1\)\n$`).MatchString(out) {
		t.Errorf("version printed %q, want %q", out, want)
	}
	out = c.kyb("cluster-info")
	if !strings.Contains(out, "Kybernetes control plane is running at nats://") || !strings.Contains(out, "API service kyb "+apiserver.Version) {
		t.Errorf("cluster-info printed %q", out)
	}
	out = c.kyb("get", "pods", "-o", "jsonpath={.kind} {.items[0].status.conditions[?(@.type==\"Ready\")].status}")
	if out != "List True" {
		t.Errorf("jsonpath printed %q", out)
	}
	// Labels on a running pod and on a node that heartbeats: the status
	// the agent wrote stays, the label lands.
	if out := c.kyb("label", "pod", "sleeper", "tier=back"); out != "pod/sleeper labeled\n" {
		t.Errorf("label pod printed %q", out)
	}
	if p, err := c.pod("sleeper"); err != nil || p.Labels["tier"] != "back" || p.Status.Phase != api.PodRunning || p.Spec.NodeName != "fake-1" {
		t.Errorf("labeled pod: %+v %v", p, err)
	}
	if out := c.kyb("label", "nodes/fake-1", "zone=a"); out != "node/fake-1 labeled\n" {
		t.Errorf("label node printed %q", out)
	}
	if n, err := c.node("fake-1"); err != nil || n.Labels["zone"] != "a" || n.Status.Condition(api.NodeReady) == nil {
		t.Errorf("labeled node: %+v %v", n, err)
	}
	if out := c.kyb("get", "nodes", "-L", "zone", "-o", "custom-columns=NAME:.metadata.name,ZONE:.metadata.labels.zone"); out != "NAME     ZONE\nfake-1   a\n" {
		t.Errorf("custom-columns printed %q", out)
	}
	c.kyb("delete", "pod/sleeper")
	start := time.Now()
	if out := c.kyb("wait", "pod", "sleeper", "--for=delete", "--timeout=30s"); out != "pod/sleeper deleted\n" {
		t.Errorf("wait --for=delete printed %q after %v", out, time.Since(start))
	}
}
