package node

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node/proxy"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// TestServiceAcrossRuntimes: a client container resolves
// web.default.svc.cluster.local through the node's cluster DNS and reaches
// a Service backed by one container pod and one wasm pod (served by the
// proxy's wasm gateway through the wasm runtime), and both answer over
// repeated requests. The agent runs its own services watch, DNS server and
// proxy; the EndpointSlices are written by the test (the EndpointSlice
// controller is another branch's). The rules go to a table of the test's
// own and the DNS IP is one of its own, so that tests of other worktrees
// on this machine are not disturbed.
func TestServiceAcrossRuntimes(t *testing.T) {
	id := os.Getpid() % 200
	dnsIP := netip.MustParseAddr(fmt.Sprintf("10.43.254.%d", id+20))
	clusterIP := netip.MustParseAddr(fmt.Sprintf("10.43.253.%d", id+20))
	table := fmt.Sprintf("kybtest%d", os.Getpid())
	wasmPort := lowFreePort(t)
	t.Cleanup(func() {
		proxy.Cleanup("", table)
		exec.Command("ip", "addr", "del", dnsIP.String()+"/32", "dev", "lo").Run()
		exec.Command("ip", "addr", "del", dnsIP.String()+"/32", "dev", DNSInterface).Run()
	})
	h, _ := containerdHarness(t, func(h *harness) {
		h.cfg.ClusterDNS = dnsIP.String()
		h.cfg.ServiceProxy = true
		h.cfg.ProxyTable = table
		rt, err := wasm.New(wasm.Config{StateDir: t.TempDir(), CacheDir: wasmCacheDir, ModuleDirs: []string{os.TempDir()}}, nil)
		if err != nil {
			t.Fatalf("wasm.New: %v", err)
		}
		t.Cleanup(func() { rt.Close() })
		h.rts[api.RuntimeWasm] = rt
	})
	prog := runtimetest.BinaryImage(t, runtimetest.BuildGo(t, "./node/testdata/svcprog", "linux", runtime.GOARCH), "svcprog")

	// The pods behind the Service: a container and a wasm module.
	web := mkpod("web-c", api.RestartPolicyAlways, prog)
	web.Namespace = "default"
	web.Spec.Containers[0].Args = []string{"serve", "container", "8080"}
	web.Spec.Containers[0].Ports = []api.ContainerPort{{ContainerPort: 8080, Protocol: api.ProtocolTCP}}
	web = h.cp.assign(web)
	wasmPod := mkpod("web-w", api.RestartPolicyAlways, wasmModule(t, "./runtimes/wasm/testdata/cgi"))
	wasmPod.Namespace = "default"
	wasmPod.Spec.RuntimeClassName = ptr(api.RuntimeWasm)
	wasmPod.Spec.Containers[0].Ports = []api.ContainerPort{{ContainerPort: wasmPort, Protocol: api.ProtocolTCP}}
	wasmPod = h.cp.assign(wasmPod)
	st := h.cp.waitPhase(t, web.UID, api.PodRunning)
	h.cp.waitPhase(t, wasmPod.UID, api.PodRunning)
	podIP := st.Status.PodIP
	if podIP == "" {
		t.Fatalf("container pod has no IP: %+v", st.Status)
	}

	h.cp.putService(api.EventAdded, &api.Service{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "web"},
		Spec:       api.ServiceSpec{ClusterIP: clusterIP.String(), Ports: []api.ServicePort{{Port: 80, Protocol: "TCP"}}}})
	slice := func(name string, port int32, e api.Endpoint) *api.EndpointSlice {
		return &api.EndpointSlice{TypeMeta: api.TypeMeta{APIVersion: api.DiscoveryVersion, Kind: "EndpointSlice"},
			ObjectMeta:  api.ObjectMeta{Namespace: "default", Name: name, Labels: map[string]string{api.LabelServiceName: "web"}},
			AddressType: "IPv4", Endpoints: []api.Endpoint{e},
			Ports: []api.EndpointPort{{Name: ptr(""), Port: ptr(port), Protocol: ptr("TCP")}}}
	}
	h.cp.putService(api.EventAdded, slice("web-containerd", 8080, api.Endpoint{Addresses: []string{podIP}, Conditions: api.EndpointConditions{Ready: ptr(true)}}))
	h.cp.putService(api.EventAdded, slice("web-wasm", wasmPort, api.Endpoint{Addresses: []string{h.agent.nodeIP}, NodeName: h.cfg.Name, Runtime: api.RuntimeWasm,
		Conditions: api.EndpointConditions{Ready: ptr(true)},
		TargetRef:  &api.ObjectReference{Kind: "Pod", Namespace: "default", Name: wasmPod.Name, UID: wasmPod.UID}}))

	client := mkpod("client", api.RestartPolicyNever, prog)
	client.Namespace = "default"
	client.Spec.Containers[0].Args = []string{"fetch", "http://web.default.svc.cluster.local/", "30"}
	client = h.cp.assign(client)
	// 30 requests, each with its name lookups: longer than waitPhase's
	// 10 s on a loaded machine.
	var end *api.PodStatusUpdate
	testutil.Eventually(t, 90*time.Second, func() error {
		if end = h.cp.last(client.UID); end == nil || end.Status.Phase != api.PodSucceeded {
			return fmt.Errorf("client not done: %+v", end)
		}
		return nil
	})
	var lines []string
	testutil.Eventually(t, 5*time.Second, func() error {
		if lines = h.logLines("default", "client", "c0"); len(lines) < 30 {
			return fmt.Errorf("%d log lines", len(lines))
		}
		return nil
	})
	counts := map[string]int{}
	for _, l := range lines {
		switch {
		case l == "container":
			counts["container"]++
		case strings.HasPrefix(l, "method=GET"):
			counts["wasm"]++
		case strings.HasPrefix(l, "path=") || strings.HasPrefix(l, "query=") || strings.HasPrefix(l, "header=") ||
			strings.HasPrefix(l, "body=") || strings.HasPrefix(l, "env=") || strings.HasPrefix(l, "args="):
			// the rest of the wasm module's answer
		default:
			counts[l]++
		}
	}
	if counts["container"] == 0 || counts["wasm"] == 0 || counts["container"]+counts["wasm"] != 30 {
		t.Fatalf("the client saw %v (phase %s), want both pods and nothing else", counts, end.Status.Phase)
	}
	t.Logf("answers: %v", counts)
}

// lowFreePort returns a TCP port free on every address, below the
// ephemeral range: the wasm pod's port is served on the node's address,
// and other tests of this machine take ephemeral ports (":0") all the time.
func lowFreePort(t testing.TB) int32 {
	t.Helper()
	for i := range 2000 {
		p := 20000 + (os.Getpid()*7+i*13)%10000
		ln, err := net.Listen("tcp", fmt.Sprintf(":%d", p))
		if err == nil {
			ln.Close()
			return int32(p)
		}
	}
	t.Fatal("no free port in 20000-29999")
	return 0
}
