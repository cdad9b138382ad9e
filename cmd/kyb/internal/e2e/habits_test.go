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
	want := "Client Version: " + cli.Version + "\nServer Version: " + apiserver.Version + "\nAgent Version: \\S+ \\(fake-1\\)\n"
	if !regexp.MustCompile("^" + regexp.QuoteMeta("Client Version: "+cli.Version+"\nServer Version: "+apiserver.Version+"\n") + `Agent Version: \S+ \(fake-1\)\n$`).MatchString(out) {
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
	c.kyb("delete", "pod/sleeper")
	start := time.Now()
	if out := c.kyb("wait", "pod", "sleeper", "--for=delete", "--timeout=30s"); out != "pod/sleeper deleted\n" {
		t.Errorf("wait --for=delete printed %q after %v", out, time.Since(start))
	}
}
