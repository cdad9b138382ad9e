package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// claimPodManifest is a wasm pod of the test program with claim "data"
// mounted at /data.
func claimPodManifest(name string, args ...string) string {
	return podManifest(name, "  runtimeClassName: wasm\n  volumes:\n  - name: store\n    persistentVolumeClaim: {claimName: data}\n",
		"kyb://prog", "Never", 1, "    volumeMounts: [{name: store, mountPath: /data}]\n", args...)
}

// TestPVCDataSurvivesPodAndIsReclaimed runs the whole storage path: a
// claim of the built-in local class waits for its first pod; the scheduler
// selects the node, the binder provisions a volume there, the agent makes
// its directory; a file one pod writes is read by the next; deleting the
// claim (Delete policy) removes the directory and the volume. Then a
// StatefulSet gets one claim and volume per ordinal.
func TestPVCDataSurvivesPodAndIsReclaimed(t *testing.T) {
	c, a := wasmCluster(t)
	ctx := context.Background()
	c.apply("apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n")
	claim := func() *api.PersistentVolumeClaim {
		o, err := c.c.Get(ctx, "PersistentVolumeClaim", "default", "data")
		if err != nil {
			t.Fatal(err)
		}
		return o.(*api.PersistentVolumeClaim)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if cl := claim(); cl.ClassName() != api.LocalStorageClassName || cl.Status.Phase != api.ClaimPending {
			return fmt.Errorf("claim class %q phase %s, want the default class and Pending", cl.ClassName(), cl.Status.Phase)
		}
		return nil
	})
	testutil.Eventually(t, 10*time.Second, func() error { // the event is recorded asynchronously
		if out := c.kyb("describe", "pvc", "data"); !strings.Contains(out, "WaitForFirstConsumer") || !strings.Contains(out, "Pending") {
			return fmt.Errorf("kyb describe pvc data (no consumer yet):\n%s", out)
		}
		return nil
	})
	c.apply(claimPodManifest("writer", "write", "/data/greeting", "hello from the last pod"))
	c.waitPod("writer", 60*time.Second, phaseIs(api.PodSucceeded))
	cl := claim()
	if cl.Status.Phase != api.ClaimBound || cl.Annotations[api.AnnotationSelectedNode] != a.name {
		t.Fatalf("claim %+v %v", cl.Status, cl.Annotations)
	}
	// Re-applying the claim's manifest keeps what the binder filled in.
	if out := c.kyb("apply", "-f", writeFile(t, "apiVersion: v1\nkind: PersistentVolumeClaim\nmetadata: {name: data}\nspec:\n  accessModes: [ReadWriteOnce]\n  resources: {requests: {storage: 1Gi}}\n")); !strings.Contains(out, "unchanged") {
		t.Fatalf("re-apply of a bound claim printed %q, want unchanged", out)
	}
	dir := filepath.Join(a.dir, "volumes", cl.Spec.VolumeName)
	if out := c.kyb("describe", "pv", cl.Spec.VolumeName); !strings.Contains(out, "default/data") || !strings.Contains(out, dir) || !strings.Contains(out, api.LabelHostname+" in ["+a.name+"]") {
		t.Fatalf("kyb describe pv:\n%s", out)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "greeting")); err != nil || string(b) != "hello from the last pod" {
		t.Fatalf("volume directory: %q %v", b, err)
	}
	c.kyb("delete", "pod", "writer")
	c.apply(claimPodManifest("reader", "cat", "/data/greeting"))
	c.waitPod("reader", 60*time.Second, phaseIs(api.PodSucceeded))
	testutil.Eventually(t, 10*time.Second, func() error {
		if out := c.kyb("logs", "reader"); !strings.Contains(out, "hello from the last pod") {
			return fmt.Errorf("reader's log %q", out)
		}
		return nil
	})
	if out := c.kyb("get", "pvc"); !strings.Contains(out, "data") || !strings.Contains(out, "Bound") || !strings.Contains(out, cl.Spec.VolumeName) {
		t.Fatalf("kyb get pvc:\n%s", out)
	}
	// Reclaim: the claim goes, the volume is Released, its directory and
	// then the volume go.
	c.kyb("delete", "pod", "reader")
	c.kyb("delete", "pvc", "data")
	testutil.Eventually(t, 20*time.Second, func() error {
		if _, err := c.c.Get(ctx, "PersistentVolume", "", cl.Spec.VolumeName); !api.IsNotFound(err) {
			return fmt.Errorf("volume %s still there: %v", cl.Spec.VolumeName, err)
		}
		if _, err := os.Stat(dir); !os.IsNotExist(err) {
			return fmt.Errorf("directory %s still there: %v", dir, err)
		}
		return nil
	})

	// A StatefulSet: one claim and one provisioned volume per ordinal.
	c.apply(`apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  replicas: 2
  serviceName: db
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec:
      runtimeClassName: wasm
      containers:
      - name: main
        image: kyb://prog
        args: [write, /data/id, here, sleep, forever]
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 100Mi}}
`)
	for _, p := range []string{"db-0", "db-1"} {
		c.waitPod(p, 60*time.Second, phaseIs(api.PodRunning))
	}
	for _, name := range []string{"data-db-0", "data-db-1"} {
		o, err := c.c.Get(ctx, "PersistentVolumeClaim", "default", name)
		if err != nil {
			t.Fatal(err)
		}
		v := o.(*api.PersistentVolumeClaim).Spec.VolumeName
		testutil.Eventually(t, 10*time.Second, func() error {
			_, err := os.Stat(filepath.Join(a.dir, "volumes", v, "id"))
			return err
		})
	}
	testutil.Eventually(t, 10*time.Second, func() error { // the status follows the pods
		if out := c.kyb("get", "statefulset"); !strings.Contains(out, "db") || !strings.Contains(out, "2/2") {
			return fmt.Errorf("kyb get statefulset:\n%s", out)
		}
		return nil
	})
}

// TestStatefulSetCounterExample runs examples/counter-wasm: each pod of
// the StatefulSet counts its starts in its own claim's volume, so a
// deleted pod's replacement (same name, same claim) counts on.
func TestStatefulSetCounterExample(t *testing.T) {
	c, _ := wasmCluster(t)
	mod := precompiled(t, runtimetest.BuildGo(t, "./examples/counter-wasm", "wasip1", "wasm"))
	c.kyb("module", "push", "counter", mod)
	c.kyb("apply", "-f", "../../../../examples/counter-wasm/statefulset.yaml")
	logsOf := func(pod, want string) {
		t.Helper()
		testutil.Eventually(t, 60*time.Second, func() error {
			out, _, err := c.kybErr("logs", pod)
			if err != nil || !strings.Contains(out, want) {
				return fmt.Errorf("logs of %s: %q %v, want %q", pod, out, err, want)
			}
			return nil
		})
	}
	for _, p := range []string{"counter-0", "counter-1"} {
		c.waitPod(p, 60*time.Second, phaseIs(api.PodRunning))
		logsOf(p, "started 1 time(s)")
	}
	old, err := c.pod("counter-0")
	if err != nil {
		t.Fatal(err)
	}
	c.kyb("delete", "pod", "counter-0")
	c.waitPod("counter-0", 60*time.Second, func(p *api.Pod) error {
		if p.UID == old.UID || p.Status.Phase != api.PodRunning {
			return fmt.Errorf("counter-0 not replaced and running yet (%s)", statusText(p))
		}
		if p.Spec.Hostname != "counter-0" || p.Spec.Subdomain != "counter" {
			return fmt.Errorf("hostname %q subdomain %q", p.Spec.Hostname, p.Spec.Subdomain)
		}
		return nil
	})
	logsOf("counter-0", "started 2 time(s)")
}
