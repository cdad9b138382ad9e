package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// wasmCluster is a control plane with one agent running the real wasm
// runtime, and the test program pushed as kyb://prog with `kyb module push`.
func wasmCluster(t *testing.T) (*cluster, *agent) {
	t.Helper()
	c := startCluster(t)
	prog := precompiled(t, runtimetest.BuildTestProg(t, "wasip1", "wasm"))
	out := c.kyb("module", "push", "prog", prog)
	if !strings.Contains(out, "module/prog pushed") {
		t.Fatalf("module push printed %q", out)
	}
	dir := t.TempDir()
	a := c.startAgent("wasm-1", dir, nil, map[string]runtimes.Runtime{api.RuntimeWasm: c.wasmRuntime("wasm-1", dir)})
	return c, a
}

func TestWasmPodRunsToCompletionWithLogs(t *testing.T) {
	c, _ := wasmCluster(t)
	// Watch the pod's phases as they are committed.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events, err := c.c.Watch(ctx, "Pod", "default")
	if err != nil {
		t.Fatal(err)
	}
	out := c.kyb("apply", "-f", writeFile(t, wasmPod("hello", "kyb://prog", "Never", "out", "hello from wasm", "err", "to stderr", "env", "HOME", "sleep", "500ms", "exit", "0")))
	if !strings.Contains(out, "pod/hello created") {
		t.Fatalf("apply printed %q", out)
	}
	p := c.waitPod("hello", 60*time.Second, phaseIs(api.PodSucceeded))
	cs := p.Status.ContainerStatuses[0]
	if cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" || cs.State.Terminated.ExitCode != 0 {
		t.Errorf("container state %+v, want terminated Completed 0", cs.State)
	}
	if p.Spec.NodeName != "wasm-1" || p.Status.StartTime == nil {
		t.Errorf("nodeName %q startTime %v", p.Spec.NodeName, p.Status.StartTime)
	}
	if !strings.HasPrefix(cs.ImageID, "sha256:") {
		t.Errorf("imageID %q, want the module's pinned digest", cs.ImageID)
	}
	// The phases went Pending -> Running -> Succeeded, in that order.
	var phases []api.PodPhase
	deadline := time.After(5 * time.Second)
collect:
	for {
		select {
		case ev := <-events:
			ph := ev.Object.(*api.Pod).Status.Phase
			if len(phases) == 0 || phases[len(phases)-1] != ph {
				phases = append(phases, ph)
			}
			if ph == api.PodSucceeded {
				break collect
			}
		case <-deadline:
			break collect
		}
	}
	if got := fmt.Sprint(phases); got != "[Pending Running Succeeded]" {
		t.Errorf("phases %s, want [Pending Running Succeeded]", got)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		logs := c.kyb("logs", "hello")
		for _, want := range []string{"hello from wasm", "to stderr", "HOME unset"} {
			if !strings.Contains(logs, want) {
				return fmt.Errorf("logs %q lack %q", logs, want)
			}
		}
		return nil
	})
	if tail := c.kyb("logs", "hello", "--tail", "1"); strings.Count(strings.TrimSpace(tail), "\n") != 0 {
		t.Errorf("--tail 1 printed %q", tail)
	}
	get := c.kyb("get", "pods", "-o", "wide")
	if !strings.Contains(get, "hello") || !strings.Contains(get, "Completed") || !strings.Contains(get, "wasm-1") {
		t.Errorf("kyb get pods -o wide:\n%s", get)
	}
}

func TestWasmCrashLoopBacksOff(t *testing.T) {
	c, _ := wasmCluster(t)
	c.apply(wasmPod("crash", "kyb://prog", "Always", "out", "crashing", "exit", "2"))
	// firstSeen[n] is when restartCount n was first observed. Status times
	// have second precision (as in Kubernetes), too coarse for 300ms steps.
	firstSeen := map[int32]time.Time{}
	sawBackOff := false
	testutil.Eventually(t, 60*time.Second, func() error {
		p, err := c.pod("crash")
		if err != nil || len(p.Status.ContainerStatuses) == 0 {
			return fmt.Errorf("no status yet: %v", err)
		}
		cs := p.Status.ContainerStatuses[0]
		if w := cs.State.Waiting; w != nil && w.Reason == "CrashLoopBackOff" {
			sawBackOff = true
		}
		if _, ok := firstSeen[cs.RestartCount]; !ok {
			firstSeen[cs.RestartCount] = time.Now()
		}
		if t := cs.LastState.Terminated; t != nil && (t.ExitCode != 2 || t.Reason != "Error") {
			return fmt.Errorf("last state %+v, want Error exit 2", t)
		}
		if cs.RestartCount < 5 {
			return fmt.Errorf("restartCount %d", cs.RestartCount)
		}
		return nil
	})
	if !sawBackOff {
		t.Error("never saw waiting reason CrashLoopBackOff")
	}
	if p, _ := c.pod("crash"); p.Status.Phase != api.PodRunning && p.Status.Phase != api.PodPending {
		t.Errorf("phase %s: a restarting Always pod neither completes nor fails", p.Status.Phase)
	}
	// Back-off doubles from 300ms: the gap before the 5th restart (about
	// 2.4s) is longer than the gap before the 2nd (about 300ms).
	t1, ok1 := firstSeen[1]
	t2, ok2 := firstSeen[2]
	t4, ok4 := firstSeen[4]
	t5, ok5 := firstSeen[5]
	if ok1 && ok2 && ok4 && ok5 {
		if early, late := t2.Sub(t1), t5.Sub(t4); late <= early {
			t.Errorf("back-off did not grow: gap 1->2 %v, gap 4->5 %v", early, late)
		}
	} else {
		t.Logf("restart counts seen: %v (polling missed some; growth not compared)", firstSeen)
	}
}

func TestWasmNeverFails(t *testing.T) {
	c, _ := wasmCluster(t)
	c.apply(wasmPod("fail", "kyb://prog", "Never", "exit", "3"))
	p := c.waitPod("fail", 60*time.Second, phaseIs(api.PodFailed))
	cs := p.Status.ContainerStatuses[0]
	if cs.RestartCount != 0 || cs.State.Terminated == nil || cs.State.Terminated.ExitCode != 3 || cs.State.Terminated.Reason != "Error" {
		t.Errorf("container %+v, want terminated Error 3 without restarts", cs)
	}
	c.apply(wasmPod("onfailure-ok", "kyb://prog", "OnFailure", "exit", "0"))
	c.waitPod("onfailure-ok", 60*time.Second, phaseIs(api.PodSucceeded))
}

func TestWasmDeleteStopsInfiniteLoopWithinGrace(t *testing.T) {
	c, a := wasmCluster(t)
	c.apply(wasmPod("spin", "kyb://prog", "Always", "loop"))
	c.waitPod("spin", 60*time.Second, phaseIs(api.PodRunning))
	start := time.Now()
	out := c.kyb("delete", "pod", "spin")
	if !strings.Contains(out, "pod/spin deleted") {
		t.Fatalf("delete printed %q", out)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		if _, err := c.pod("spin"); !api.IsNotFound(err) {
			return fmt.Errorf("pod still there: %v", err)
		}
		return nil
	})
	// Grace is 1s; allow the machine's load on top, but not a hang.
	if d := time.Since(start); d > 15*time.Second {
		t.Errorf("delete took %v with a 1s grace period", d)
	}
	sbs, err := a.rts[api.RuntimeWasm].ListSandboxes(context.Background())
	if err != nil || len(sbs) != 0 {
		t.Errorf("runtime still holds sandboxes %v (%v)", sbs, err)
	}
}

func TestWasmMemoryLimit(t *testing.T) {
	c, _ := wasmCluster(t)
	c.apply(`apiVersion: v1
kind: Pod
metadata:
  name: hog
spec:
  runtimeClassName: wasm
  restartPolicy: Never
  containers:
  - name: main
    image: kyb://prog
    args: ["alloc", "256"]
    resources:
      limits: {memory: 64Mi}
`)
	p := c.waitPod("hog", 60*time.Second, phaseIs(api.PodFailed))
	if term := p.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != runtimes.ReasonOOMKilled {
		t.Errorf("terminated %+v, want reason OOMKilled", term)
	}
}

func TestWasmHTTPThroughHostPort(t *testing.T) {
	c, _ := wasmCluster(t)
	mod := precompiled(t, runtimetest.BuildGo(t, "./examples/http-wasm", "wasip1", "wasm"))
	c.kyb("module", "push", "http", mod)
	port := freePort(t)
	c.apply(fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: web
spec:
  runtimeClassName: wasm
  containers:
  - name: web
    image: kyb://http
    ports:
    - containerPort: 8080
      hostPort: %d
`, port))
	c.waitPod("web", 60*time.Second, phaseIs(api.PodRunning))
	testutil.Eventually(t, 30*time.Second, func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/greet?name=e2e", port))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(string(b), "hello, e2e, from wasm (GET /greet)") {
			return fmt.Errorf("status %d body %q", resp.StatusCode, b)
		}
		return nil
	})
	c.kyb("delete", "pod", "web")
	testutil.Eventually(t, 20*time.Second, func() error {
		if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port)); err == nil {
			return fmt.Errorf("host port %d still answers after delete", port)
		}
		return nil
	})
}

func TestWasmModuleFromOCIRegistry(t *testing.T) {
	c, _ := wasmCluster(t)
	srv := httptest.NewServer(registry.New())
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	b, err := os.ReadFile(runtimetest.BuildTestProg(t, "wasip1", "wasm"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(b, types.MediaType(wasm.MediaTypeWasmLayer)))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), "application/vnd.wasm.config.v0+json")
	ref, err := name.ParseReference(host + "/mods/prog:v1")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, img); err != nil {
		t.Fatalf("push artifact: %v", err)
	}
	c.apply(wasmPod("oci", ref.String(), "Never", "out", "from a registry"))
	p := c.waitPod("oci", 60*time.Second, phaseIs(api.PodSucceeded))
	if id := p.Status.ContainerStatuses[0].ImageID; !strings.HasPrefix(id, "sha256:") {
		t.Errorf("imageID %q", id)
	}
	// A module that is not there waits with a reason naming it, and the pod does not fail.
	c.apply(wasmPod("missing", host+"/mods/nope:v1", "Never"))
	c.waitPod("missing", 30*time.Second, func(p *api.Pod) error {
		if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return fmt.Errorf("not waiting: %s", statusText(p))
		}
		w := p.Status.ContainerStatuses[0].State.Waiting
		if w.Reason != "ModuleNotFound" && w.Reason != "ErrImagePull" && w.Reason != "ImagePullBackOff" {
			return fmt.Errorf("waiting reason %q (%s)", w.Reason, w.Message)
		}
		return nil
	})
}

func writeFile(t testing.TB, content string) string {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "manifest-*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(content)
	f.Close()
	return f.Name()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
