package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/containerd"
	"github.com/kybernetes/kybernetes/runtimes/containerd/containerdtest"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// containerdRuntime returns a real containerd runtime for an agent, or
// skips the test when no containerd answers (never when CI=true).
func containerdRuntime(t testing.TB, dir string) *containerd.Runtime {
	t.Helper()
	return containerdtest.Runtime(t, containerd.Config{
		Namespace:   containerdtest.Namespace("kyb-e2e"),
		StateDir:    filepath.Join(dir, "containerd"),
		NetworkName: "kybe2e",
		BridgeName:  "kybe2e0",
		IPAMDir:     filepath.Join(dir, "ipam"),
		LogDriver:   runtimetest.BuildGo(t, "./runtimes/containerd/testdata/logdriver", "linux", runtime.GOARCH),
	}, testLog(t).With("runtime", "containerd"))
}

// progImage serves the conformance test program, built static for linux,
// as /prog in an image from an in-process registry, and returns its reference.
func progImage(t testing.TB) string {
	t.Helper()
	return runtimetest.BinaryImage(t, runtimetest.BuildTestProg(t, "linux", runtime.GOARCH), "prog")
}

// containerPod is a container pod manifest for the test program with args;
// extra goes under the container.
func containerPod(name, image, restart string, extra string, args ...string) string {
	return podManifest(name, "", image, restart, 2, extra, args...)
}

// One node runs a container pod (a real containerd, an image pulled from a
// registry, a CNI network) and a wasm pod side by side.
func TestContainerAndWasmPodsOnOneNode(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	cr := containerdRuntime(t, dir)
	image := progImage(t)
	prog := precompiled(t, runtimetest.BuildTestProg(t, "wasip1", "wasm"))
	c.kyb("module", "push", "prog", prog)
	c.startAgent("mixed-1", dir, nil, map[string]runtimes.Runtime{
		api.RuntimeContainerd: cr,
		api.RuntimeWasm:       c.wasmRuntime("mixed-1", dir),
	})
	n, err := c.node("mixed-1")
	if err != nil || !n.Status.NodeInfo.HasRuntime(api.RuntimeContainerd) || !strings.HasPrefix(n.Spec.PodCIDR, "10.42.") {
		t.Fatalf("node %+v %v: want containerd advertised and a 10.42.x podCIDR", n, err)
	}

	c.apply(containerPod("box", image, "Always", "", "out", "hello from a container", "env", "PATH", "sleep", "forever"))
	c.apply(wasmPod("mod", "kyb://prog", "Always", "out", "hello from wasm", "sleep", "forever"))
	box := c.waitPod("box", 120*time.Second, phaseIs(api.PodRunning))
	c.waitPod("mod", 60*time.Second, phaseIs(api.PodRunning))
	if !strings.HasPrefix(box.Status.PodIP, "10.42.") {
		t.Errorf("container pod IP %q, want one of the node's podCIDR %s", box.Status.PodIP, n.Spec.PodCIDR)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		for pod, want := range map[string]string{"box": "hello from a container", "mod": "hello from wasm"} {
			if out := c.kyb("logs", pod); !strings.Contains(out, want) {
				return fmt.Errorf("logs %s: %q lacks %q", pod, out, want)
			}
		}
		return nil
	})

	// The pod's events tell the story: pulled (with size and digest), started.
	testutil.Eventually(t, 10*time.Second, func() error {
		desc := c.kyb("describe", "pod", "box")
		for _, want := range []string{"Events:", "Pulling", "Pulled", image, "Started", "mixed-1"} {
			if !strings.Contains(desc, want) {
				return fmt.Errorf("describe pod box lacks %q:\n%s", want, desc)
			}
		}
		return nil
	})

	// Out of memory: the kernel kills it, the status says OOMKilled, 137.
	c.apply(containerPod("hog", image, "Never", "    resources:\n      limits: {memory: 32Mi}\n", "alloc", "256"))
	hog := c.waitPod("hog", 120*time.Second, phaseIs(api.PodFailed))
	if term := hog.Status.ContainerStatuses[0].State.Terminated; term == nil || term.Reason != runtimes.ReasonOOMKilled || term.ExitCode != 137 {
		t.Errorf("hog terminated %+v, want OOMKilled 137", term)
	}

	// A registry that is not there: the pod waits, with the reason, and backs off.
	c.apply(containerPod("nowhere", "127.0.0.1:1/none/such:v1", "Always", ""))
	c.waitPod("nowhere", 60*time.Second, func(p *api.Pod) error {
		if len(p.Status.ContainerStatuses) == 0 || p.Status.ContainerStatuses[0].State.Waiting == nil {
			return fmt.Errorf("not waiting: %s", statusText(p))
		}
		if r := p.Status.ContainerStatuses[0].State.Waiting.Reason; r != "ImagePullBackOff" {
			return fmt.Errorf("waiting reason %q, want ImagePullBackOff after ErrImagePull", r)
		}
		return nil
	})

	if desc := c.kyb("describe", "pod", "nowhere"); !strings.Contains(desc, "Warning") || !strings.Contains(desc, "Failed to pull image") {
		t.Errorf("describe pod nowhere shows no pull failure event:\n%s", desc)
	}

	// Delete: SIGTERM, then the grace period, then gone, leaving nothing behind.
	c.kyb("delete", "pod", "box", "hog", "nowhere")
	testutil.Eventually(t, 60*time.Second, func() error {
		for _, pod := range []string{"box", "hog", "nowhere"} {
			if _, err := c.pod(pod); !api.IsNotFound(err) {
				return fmt.Errorf("pod %s still there (%v)", pod, err)
			}
		}
		return nil
	})
	sbs, err := cr.ListSandboxes(context.Background())
	if err != nil || len(sbs) != 0 {
		t.Errorf("containerd still holds sandboxes %+v (%v)", sbs, err)
	}
}
