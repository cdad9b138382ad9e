package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/node/proxy"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// TestServiceAcrossRuntimes: through the whole system — the apiserver
// allocating the ClusterIP, the EndpointSlice controller listing a container
// pod and a wasm pod, the agent's services watch, cluster DNS and proxy —
// a client container resolves web.default.svc.cluster.local and both pods
// answer over repeated requests. The agent's rules go to a table of the
// test's own and its DNS IP is one of its own (other worktrees' tests share
// this machine).
func TestServiceAcrossRuntimes(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	cr := containerdRuntime(t, dir)
	image := runtimetest.BinaryImage(t, runtimetest.BuildGo(t, "./node/testdata/svcprog", "linux", runtime.GOARCH), "prog")
	c.kyb("module", "push", "cgi", precompiled(t, runtimetest.BuildGo(t, "./runtimes/wasm/testdata/cgi", "wasip1", "wasm")))
	dnsIP := fmt.Sprintf("10.43.252.%d", os.Getpid()%200+20)
	table := fmt.Sprintf("kybe2e%d", os.Getpid())
	t.Cleanup(func() {
		proxy.Cleanup("", table)
		exec.Command("ip", "addr", "del", dnsIP+"/32", "dev", "lo").Run()
		exec.Command("ip", "addr", "del", dnsIP+"/32", "dev", node.DNSInterface).Run()
	})
	c.startAgentWith("svc-1", dir, nil, map[string]runtimes.Runtime{
		api.RuntimeContainerd: cr,
		api.RuntimeWasm:       c.wasmRuntime("svc-1", dir),
	}, func(cfg *node.Config) {
		cfg.ClusterDNS, cfg.ServiceProxy, cfg.ProxyTable = dnsIP, true, table
	})
	// Free on the node, below the ephemeral range that other tests of this
	// machine take ports from: the wasm pod's port is served on the node's
	// address.
	port := 0
	for i := range 2000 {
		p := 30000 - 1 - (os.Getpid()*7+i*13)%10000
		if ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p)); err == nil {
			ln.Close()
			port = p
			break
		}
	}
	if port == 0 {
		t.Fatal("no free port in 20000-29999")
	}

	c.apply(fmt.Sprintf(`apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {app: web}
  ports:
  - port: 80
    targetPort: %[1]d
---
apiVersion: v1
kind: Pod
metadata:
  name: web-container
  labels: {app: web}
spec:
  containers:
  - name: main
    image: %[2]s
    args: ["serve", "container", "%[1]d"]
    ports:
    - containerPort: %[1]d
---
apiVersion: v1
kind: Pod
metadata:
  name: web-wasm
  labels: {app: web}
spec:
  runtimeClassName: wasm
  containers:
  - name: main
    image: kyb://cgi
    ports:
    - containerPort: %[1]d
`, port, image))
	box := c.waitPod("web-container", 120*time.Second, phaseIs(api.PodRunning))
	mod := c.waitPod("web-wasm", 60*time.Second, phaseIs(api.PodRunning))
	// The controller lists both: the container by its pod IP, the wasm pod
	// by its node's address.
	testutil.Eventually(t, 30*time.Second, func() error {
		out := c.kyb("get", "endpointslices", "-o", "yaml")
		for _, want := range []string{box.Status.PodIP, mod.Status.HostIP, "runtime: wasm"} {
			if !strings.Contains(out, want) {
				return fmt.Errorf("endpointslices lack %q:\n%s", want, out)
			}
		}
		return nil
	})

	c.apply(podManifest("client", "", image, "Never", 1, "", "fetch", "http://web.default.svc.cluster.local/", "30"))
	c.waitPod("client", 120*time.Second, phaseIs(api.PodSucceeded))
	var counts map[string]int
	testutil.Eventually(t, 20*time.Second, func() error {
		counts = map[string]int{}
		for _, l := range strings.Split(c.kyb("logs", "client"), "\n") {
			switch {
			case l == "container":
				counts["container"]++
			case strings.HasPrefix(l, "method=GET"):
				counts["wasm"]++
			case strings.HasPrefix(l, "error:"):
				counts["error"]++
			}
		}
		if counts["container"]+counts["wasm"]+counts["error"] < 30 {
			return fmt.Errorf("client logs so far: %v", counts)
		}
		return nil
	})
	if counts["container"] == 0 || counts["wasm"] == 0 || counts["error"] != 0 {
		t.Fatalf("the client saw %v, want both pods and no error\n%s", counts, c.kyb("logs", "client"))
	}
	t.Logf("answers: %v", counts)
}
