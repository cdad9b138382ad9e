package node

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// volumeCP serves the volume verbs of the fake control plane: the volume
// of claim "data" (a 409 for the first unbound answers, as while the
// binder is not done), and records the deletions the agent reports.
type volumeCP struct {
	mu       sync.Mutex
	pv       *api.PersistentVolume
	unbound  int // answers of 409 still to give
	asked    int
	reported []api.VolumeDeleted
}

func serveVolumes(t *testing.T, h *harness, pv *api.PersistentVolume, unbound int) *volumeCP {
	t.Helper()
	v := &volumeCP{pv: pv, unbound: unbound}
	respond := func(m *nats.Msg, out any) {
		b, _ := json.Marshal(out)
		if st, ok := out.(*api.Status); ok {
			r := nats.NewMsg(m.Reply)
			r.Header.Set("Nats-Service-Error-Code", fmt.Sprint(st.Code))
			r.Header.Set("Nats-Service-Error", st.Message)
			r.Data = b
			_ = m.RespondMsg(r)
			return
		}
		_ = m.Respond(b)
	}
	sub, err := h.cp.nc.Subscribe(api.NodeSubject(h.cfg.Name, api.NodeVerbVolume), func(m *nats.Msg) {
		var r api.VolumeRequest
		_ = json.Unmarshal(m.Data, &r)
		v.mu.Lock()
		defer v.mu.Unlock()
		v.asked++
		switch {
		case r.Claim != "data":
			respond(m, api.NewForbidden("no pod names claim %q", r.Claim))
		case v.unbound > 0:
			v.unbound--
			respond(m, api.NewConflict("PersistentVolumeClaim", "data", "persistentvolumeclaim data is not bound yet"))
		default:
			respond(m, v.pv)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	sub2, err := h.cp.nc.Subscribe(api.NodeSubject(h.cfg.Name, api.NodeVerbVolumeDeleted), func(m *nats.Msg) {
		var d api.VolumeDeleted
		_ = json.Unmarshal(m.Data, &d)
		v.mu.Lock()
		v.reported = append(v.reported, d)
		v.mu.Unlock()
		respond(m, api.Ack{OK: true})
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub2.Unsubscribe() })
	return v
}

// provisioned returns a volume the local provisioner made for the
// harness's node, bound to claim default/data.
func provisioned(h *harness, name string) *api.PersistentVolume {
	pv := &api.PersistentVolume{ObjectMeta: api.ObjectMeta{Name: name, UID: "uid-" + name,
		Annotations: map[string]string{api.AnnotationProvisionedBy: api.LocalProvisioner}},
		Spec: api.PersistentVolumeSpec{
			Capacity:    api.ResourceList{api.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes: []string{api.ReadWriteOnce}, PersistentVolumeReclaimPolicy: api.ReclaimDelete,
			Local:        &api.LocalVolumeSource{Path: filepath.Join(h.cfg.DataDir, "volumes", name)},
			NodeAffinity: api.HostNodeAffinity(h.cfg.Name),
			ClaimRef:     &api.ObjectReference{Kind: "PersistentVolumeClaim", Namespace: "default", Name: "data", UID: "claim-uid"},
		}}
	api.Default(pv)
	return pv
}

// claimPod is a pod of image running args once, with claim "data" at /data.
func claimPod(name, image string, wasm bool, args ...string) *api.Pod {
	p := mkpod(name, api.RestartPolicyNever, image)
	p.Namespace = "default"
	if wasm {
		p.Spec.RuntimeClassName = ptr(api.RuntimeWasm)
	}
	p.Spec.Volumes = []api.Volume{{Name: "store", PersistentVolumeClaim: &api.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}
	c := &p.Spec.Containers[0]
	c.Args = args
	c.ImagePullPolicy = api.PullIfNotPresent
	c.VolumeMounts = []api.VolumeMount{{Name: "store", MountPath: "/data"}}
	api.Default(p)
	return p
}

// testPVCSurvivesPod: a pod writes a file to its claim's volume (after
// waiting, CreateContainerConfigError, while the claim is unbound), is
// deleted, and a new pod of the claim reads the file; the directory is
// the one provisioned under the agent's data dir. Then the control plane
// asks the agent to delete the volume: the directory goes and the agent
// reports it; a forged volume naming another directory is refused.
func testPVCSurvivesPod(t *testing.T, h *harness, image string, wasm bool) {
	pv := provisioned(h, "pvc-1")
	vcp := serveVolumes(t, h, pv, 2)
	writer := h.cp.assign(claimPod("writer", image, wasm, "write", "/data/greeting", "kept across pods"))
	if u := h.cp.waitPhase(t, writer.UID, api.PodSucceeded); u == nil {
		t.Fatal("writer did not succeed")
	}
	sawWait := false
	for _, u := range h.cp.history(writer.UID) {
		for _, cs := range u.Status.ContainerStatuses {
			if w := cs.State.Waiting; w != nil && w.Reason == "CreateContainerConfigError" && strings.Contains(w.Message, "not bound yet") {
				sawWait = true
			}
		}
	}
	if !sawWait {
		t.Errorf("the writer never waited for its claim to be bound (%d volume requests)", vcp.asked)
	}
	b, err := os.ReadFile(filepath.Join(h.cfg.DataDir, "volumes", "pvc-1", "greeting"))
	if err != nil || string(b) != "kept across pods" {
		t.Fatalf("provisioned directory holds %q, %v", b, err)
	}
	h.cp.markDeleted(writer.UID, ptr(int64(0)))
	testutil.Eventually(t, 20*time.Second, func() error {
		h.cp.mu.Lock()
		defer h.cp.mu.Unlock()
		if _, ok := h.cp.pods[writer.UID]; ok {
			return fmt.Errorf("writer not finalized yet")
		}
		return nil
	})

	reader := h.cp.assign(claimPod("reader", image, wasm, "cat", "/data/greeting"))
	h.cp.waitPhase(t, reader.UID, api.PodSucceeded)
	testutil.Eventually(t, 10*time.Second, func() error {
		lines := strings.Join(h.logLines("default", "reader", "c0"), "\n")
		if !strings.Contains(lines, "kept across pods") {
			return fmt.Errorf("reader's log %q", lines)
		}
		return nil
	})

	// A forged deletion of a directory that is not a volume of this node.
	victim := filepath.Join(h.cfg.DataDir, "precious")
	if err := os.MkdirAll(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	forged := provisioned(h, "pvc-2")
	forged.Spec.Local.Path = victim
	publish := func(pv *api.PersistentVolume) {
		b, _ := json.Marshal(pv)
		if err := h.cp.nc.Publish(api.AgentSubject(h.cfg.Name, api.AgentVerbVolumeDelete), b); err != nil {
			t.Fatal(err)
		}
	}
	publish(forged)
	publish(pv)
	testutil.Eventually(t, 10*time.Second, func() error {
		vcp.mu.Lock()
		defer vcp.mu.Unlock()
		if len(vcp.reported) != 1 || vcp.reported[0].Name != "pvc-1" || vcp.reported[0].UID != pv.UID {
			return fmt.Errorf("deletions reported: %+v", vcp.reported)
		}
		return nil
	})
	if _, err := os.Stat(pv.Spec.Local.Path); !os.IsNotExist(err) {
		t.Fatalf("volume directory still there: %v", err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatalf("a forged deletion removed %s: %v", victim, err)
	}
}

func TestWasmPVCSurvivesPod(t *testing.T) {
	h := wasmProbeHarness(t)
	testPVCSurvivesPod(t, h, wasmModule(t, "./runtimes/runtimetest/testprog"), true)
}

func TestContainerdPVCSurvivesPod(t *testing.T) {
	h, ref := containerdProbeHarness(t)
	testPVCSurvivesPod(t, h, ref, false)
}
