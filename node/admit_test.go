package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
)

// validPod is a pod as the control plane hands it to node-1.
func validPod() *api.Pod {
	p := mkpod("web", api.RestartPolicyAlways, "fake://run")
	p.Namespace = api.DefaultNamespace
	p.UID = "0b7d3c1e-5f2a-4c8e-9d41-2a6f0e9b7c55"
	p.Spec.NodeName = "node-1"
	p.Spec.Volumes = []api.Volume{
		{Name: "scratch", EmptyDir: &api.EmptyDirVolumeSource{}},
		{Name: "data", HostPath: &api.HostPathVolumeSource{Path: "/srv/data"}},
	}
	p.Spec.Containers[0].VolumeMounts = []api.VolumeMount{{Name: "scratch", MountPath: "/scratch"}, {Name: "data", MountPath: "/data"}}
	return p
}

func TestAdmit(t *testing.T) {
	long := strings.Repeat("a", 4096)
	cases := []struct {
		name   string
		change func(p *api.Pod)
		fields []string // the causes' fields, nil: admitted
		report bool     // reportable when refused
	}{
		{name: "valid", change: func(*api.Pod) {}},
		{name: "uid with a path", change: func(p *api.Pod) { p.UID = "../../../victim" }, fields: []string{"metadata.uid"}},
		{name: "uid empty", change: func(p *api.Pod) { p.UID = "" }, fields: []string{"metadata.uid"}},
		{name: "uid upper case", change: func(p *api.Pod) { p.UID = strings.ToUpper(p.UID) }, fields: []string{"metadata.uid"}},
		{name: "uid not a uuid", change: func(p *api.Pod) { p.UID = "0b7d3c1e_5f2a-4c8e-9d41-2a6f0e9b7c55" }, fields: []string{"metadata.uid"}},
		{name: "4 KB name", change: func(p *api.Pod) { p.Name = long }, fields: []string{"metadata.name"}},
		{name: "name with a slash", change: func(p *api.Pod) { p.Name = "a/../b" }, fields: []string{"metadata.name"}},
		{name: "no namespace", change: func(p *api.Pod) { p.Namespace = "" }, fields: []string{"metadata.namespace"}},
		{name: "namespace with dots", change: func(p *api.Pod) { p.Namespace = "kyb.>" }, fields: []string{"metadata.namespace"}},
		{name: "another node", change: func(p *api.Pod) { p.Spec.NodeName = "node-2" }, fields: []string{"spec.nodeName"}},
		{name: "unbound", change: func(p *api.Pod) { p.Spec.NodeName = "" }, fields: []string{"spec.nodeName"}},
		{name: "container name with a path", change: func(p *api.Pod) { p.Spec.Containers[0].Name = "../../x" },
			fields: []string{"spec.containers[0].name"}, report: true},
		{name: "4 KB container name", change: func(p *api.Pod) { p.Spec.Containers[0].Name = long },
			fields: []string{"spec.containers[0].name"}, report: true},
		{name: "volume name with a path", change: func(p *api.Pod) {
			p.Spec.Volumes[0].Name = "../../../x"
			p.Spec.Containers[0].VolumeMounts[0].Name = "../../../x"
		}, fields: []string{"spec.volumes[0].name"}, report: true},
		{name: "mount of a missing volume", change: func(p *api.Pod) { p.Spec.Containers[0].VolumeMounts[0].Name = "nope" },
			fields: []string{"spec.containers[0].volumeMounts[0].name"}, report: true},
		{name: "hostPath with ..", change: func(p *api.Pod) { p.Spec.Volumes[1].HostPath.Path = "/srv/../etc" },
			fields: []string{"spec.volumes[1].hostPath.path"}, report: true},
		{name: "hostPath relative", change: func(p *api.Pod) { p.Spec.Volumes[1].HostPath.Path = "srv/data" },
			fields: []string{"spec.volumes[1].hostPath.path"}, report: true},
		{name: "hostPath not clean", change: func(p *api.Pod) { p.Spec.Volumes[1].HostPath.Path = "/srv//data/" },
			fields: []string{"spec.volumes[1].hostPath.path"}, report: true},
		{name: "hostPath with NUL", change: func(p *api.Pod) { p.Spec.Volumes[1].HostPath.Path = "/srv/\x00data" },
			fields: []string{"spec.volumes[1].hostPath.path"}, report: true},
		{name: "mountPath with ..", change: func(p *api.Pod) { p.Spec.Containers[0].VolumeMounts[1].MountPath = "/data/../../etc" },
			fields: []string{"spec.containers[0].volumeMounts[1].mountPath"}, report: true},
		{name: "init container mountPath with NUL", change: func(p *api.Pod) {
			p.Spec.InitContainers = []api.Container{{Name: "init", Image: "fake://exit/0",
				VolumeMounts: []api.VolumeMount{{Name: "scratch", MountPath: "/s\x00"}}}}
		}, fields: []string{"spec.initContainers[0].volumeMounts[0].mountPath"}, report: true},
		{name: "mountPath relative", change: func(p *api.Pod) { p.Spec.Containers[0].VolumeMounts[1].MountPath = "data" },
			fields: []string{"spec.containers[0].volumeMounts[1].mountPath"}, report: true},
		{name: "no containers", change: func(p *api.Pod) { p.Spec.Containers = nil; p.Spec.Volumes = nil },
			fields: []string{"spec.containers"}, report: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := validPod()
			tc.change(p)
			err := admit(p, "node-1")
			if tc.fields == nil {
				if err != nil {
					t.Fatalf("admit = %v, want nil", err)
				}
				return
			}
			var st *api.Status
			if !errors.As(err, &st) || st.Code != 422 {
				t.Fatalf("admit = %v, want a 422 *api.Status", err)
			}
			var got []string
			for _, c := range st.Causes {
				got = append(got, c.Field)
			}
			for _, f := range tc.fields {
				if !slices.Contains(got, f) {
					t.Errorf("causes name %v, want %s among them (%v)", got, f, err)
				}
			}
			if r := reportable(p, "node-1"); r != tc.report {
				t.Errorf("reportable = %v, want %v", r, tc.report)
			}
			if msg := rejectMessage("node-1", err); len(msg) > maxRejectMessage || !strings.Contains(msg, tc.fields[0]) {
				t.Errorf("reject message %q: longer than %d or does not name %s", msg, maxRejectMessage, tc.fields[0])
			}
		})
	}
}

func TestSafeJoin(t *testing.T) {
	base := "/var/lib/kyb/agent/pods"
	cases := []struct {
		elems []string
		want  string // "" for an error
	}{
		{[]string{"0b7d3c1e-5f2a-4c8e-9d41-2a6f0e9b7c55", "volumes", "scratch"}, base + "/0b7d3c1e-5f2a-4c8e-9d41-2a6f0e9b7c55/volumes/scratch"},
		{[]string{"uid", "c0.0.log"}, base + "/uid/c0.0.log"},
		{nil, base},
		{[]string{"../../../victim"}, ""},
		{[]string{".."}, ""},
		{[]string{"."}, ""},
		{[]string{""}, ""},
		{[]string{"uid", "a/b"}, ""},
		{[]string{"/etc"}, ""},
		{[]string{"uid\x00"}, ""},
		{[]string{strings.Repeat("a", 256)}, ""},
		{[]string{"uid", "volumes", ".."}, ""},
	}
	for _, tc := range cases {
		t.Run(fmt.Sprintf("%q", tc.elems), func(t *testing.T) {
			got, err := safeJoin(base, tc.elems...)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("safeJoin = %q, want an error", got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("safeJoin = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestBeneath(t *testing.T) {
	for _, tc := range []struct {
		p    string
		want bool
	}{
		{"/data/pods", true}, {"/data/pods/x", true}, {"/data/pods/x/../y", true},
		{"/data/pods/..", false}, {"/data/podsx", false}, {"/data/pods/../../etc", false}, {"/etc", false},
	} {
		if got := beneath("/data/pods", tc.p); got != tc.want {
			t.Errorf("beneath(/data/pods, %s) = %v, want %v", tc.p, got, tc.want)
		}
	}
}

// victimLayout makes a data dir and, beside it, a victim dir holding a file
// that the uid "../../../victim" reaches from <data dir>/pods/<uid>.
func victimLayout(t *testing.T, h *harness) (victim string) {
	t.Helper()
	tmp := t.TempDir()
	h.cfg.DataDir = filepath.Join(tmp, "a", "data")
	victim = filepath.Join(tmp, "victim")
	if err := os.MkdirAll(victim, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(victim, "precious"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := filepath.Join(h.cfg.DataDir, "pods", "../../../victim"); got != victim {
		t.Fatalf("layout: the uid reaches %s, not the victim %s", got, victim)
	}
	return victim
}

// victimIntact fails unless the victim dir holds exactly its one file.
func victimIntact(t *testing.T, victim string) {
	t.Helper()
	ents, err := os.ReadDir(victim)
	if err != nil {
		t.Fatalf("victim dir: %v", err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"precious"}) {
		t.Errorf("victim dir holds %v, want only precious", names)
	}
}

// publishRaw publishes an assignment on the agent's subject as any NATS
// client could, not through the fake control plane's store.
func publishRaw(t *testing.T, h *harness, typ string, p *api.Pod) {
	t.Helper()
	b, err := json.Marshal(api.Assignment{Type: typ, Pod: *p})
	if err != nil {
		t.Fatal(err)
	}
	nc := testutil.Connect(t, h.srv)
	if err := nc.Publish(api.AgentSubject(h.cfg.Name, api.AgentVerbPods), b); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// barrier assigns a valid pod and waits for it to run: assignments are
// handled in order, so everything published before has been handled, and
// every status update queued before has been sent.
func barrier(t *testing.T, h *harness) {
	t.Helper()
	p := h.cp.assign(mkpod(fmt.Sprintf("barrier-%d", uidSeq.Add(1)), api.RestartPolicyAlways, "fake://run"))
	h.cp.waitPhase(t, p.UID, api.PodRunning)
}

func sandboxesOf(t *testing.T, h *harness, name string) int {
	t.Helper()
	sbs, err := h.fake.ListSandboxes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, sb := range sbs {
		if sb.Name == name {
			n++
		}
	}
	return n
}

// The attack of issue 7: a pod whose uid is ../../../victim, published raw
// on the agent's subject, made the agent create a directory for it and,
// on its removal, os.RemoveAll the victim.
func TestAttackUIDEscape(t *testing.T) {
	h := newHarness(t)
	victim := victimLayout(t, h)
	h.start()

	p := validPod()
	p.Name = "evil"
	p.UID = "../../../victim"
	publishRaw(t, h, api.EventAdded, p)
	now := time.Now().UTC()
	p.DeletionTimestamp = &now
	publishRaw(t, h, api.EventModified, p)
	publishRaw(t, h, api.EventDeleted, p)
	barrier(t, h)

	victimIntact(t, victim)
	if n := sandboxesOf(t, h, "evil"); n != 0 {
		t.Errorf("%d sandboxes of the refused pod, want 0", n)
	}
	if u := h.cp.history(p.UID); len(u) != 0 {
		t.Errorf("status reported for a pod with a bad uid: %+v", u)
	}
	if n := h.agent.PodCount(); n != 1 {
		t.Errorf("%d pod workers, want 1 (the barrier pod)", n)
	}
	// Nothing was made for it in the data dir either: only the barrier
	// pod's directory is there.
	ents, err := os.ReadDir(filepath.Join(h.cfg.DataDir, "pods"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 1 || !validUID(ents[0].Name()) {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("pods dir holds %v, want only the barrier pod's directory", names)
	}
}

// The same uid from the control plane's own sync list, and as the uid of a
// sandbox a runtime holds when the agent starts (recovery removes the
// directories of orphan sandboxes).
func TestAttackUIDEscapeOnRecovery(t *testing.T) {
	h := newHarness(t)
	victim := victimLayout(t, h)
	p := validPod()
	p.Name = "evil"
	p.UID = "../../../victim/." // not the stray's, so that the stray is an orphan
	h.cp.store(p)               // the fake control plane keeps the uid it is given
	if _, err := h.fake.CreateSandbox(context.Background(), &runtimes.SandboxConfig{
		// The runtime refuses such a uid itself; its label says it too.
		Namespace: "default", Name: "stray",
		Labels: map[string]string{LabelPodUID: "../../../victim"},
	}); err != nil {
		t.Fatal(err)
	}
	h.start()
	barrier(t, h)
	victimIntact(t, victim)
	if n := sandboxesOf(t, h, "evil"); n != 0 {
		t.Errorf("%d sandboxes of the refused pod, want 0", n)
	}
	if n := sandboxesOf(t, h, "stray"); n != 0 {
		t.Errorf("the stray sandbox was not removed")
	}
	// A reconnect syncs again: the pod is still refused, the victim stays.
	_, syncs, _, _ := h.cp.counts()
	id, err := h.nc.GetClientID()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.srv.DisconnectClientByID(id); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if _, s, _, _ := h.cp.counts(); s <= syncs {
			return fmt.Errorf("%d syncs, want more than %d", s, syncs)
		}
		return nil
	})
	barrier(t, h)
	victimIntact(t, victim)
	if n := sandboxesOf(t, h, "evil"); n != 0 {
		t.Errorf("%d sandboxes of the refused pod after a reconnect, want 0", n)
	}
}

func TestRefusedPods(t *testing.T) {
	h := newHarness(t)
	h.start()
	noSandbox := func(t *testing.T, name string) {
		t.Helper()
		if n := sandboxesOf(t, h, name); n != 0 {
			t.Errorf("%d sandboxes of refused pod %s, want 0", n, name)
		}
		if _, err := os.Stat(filepath.Join(h.cfg.DataDir, "pods")); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("another node's pod is ignored", func(t *testing.T) {
		p := validPod()
		p.Name, p.UID, p.Spec.NodeName = "elsewhere", newUID(), "node-2"
		publishRaw(t, h, api.EventAdded, p)
		barrier(t, h)
		noSandbox(t, "elsewhere")
		if u := h.cp.history(p.UID); len(u) != 0 {
			t.Errorf("status reported for another node's pod: %+v", u)
		}
	})

	t.Run("4 KB name is refused", func(t *testing.T) {
		p := validPod()
		p.Name, p.UID = strings.Repeat("a", 4096), newUID()
		publishRaw(t, h, api.EventAdded, p)
		barrier(t, h)
		noSandbox(t, p.Name)
		if u := h.cp.history(p.UID); len(u) != 0 {
			t.Errorf("status reported for a pod named with 4 KB: %d updates", len(u))
		}
	})

	t.Run("hostPath with .. is refused and reported", func(t *testing.T) {
		p := validPod()
		p.Name, p.UID = "dotdot", ""
		p.Spec.Volumes[1].HostPath.Path = "/srv/../etc"
		p = h.cp.assign(p)
		u := h.cp.waitPhase(t, p.UID, api.PodFailed)
		if u.Status.Reason != ReasonRejected || !strings.Contains(u.Status.Message, "spec.volumes[1].hostPath.path") {
			t.Errorf("status %s %q, want reason %s naming spec.volumes[1].hostPath.path", u.Status.Reason, u.Status.Message, ReasonRejected)
		}
		noSandbox(t, "dotdot")
		if _, err := os.Stat(filepath.Join(h.cfg.DataDir, "pods", p.UID)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a directory was made for the refused pod: %v", err)
		}

		// Its status write comes back as an update: no new report.
		stored := *p
		stored.Status = u.Status
		stored.ResourceVersion = "1000"
		h.cp.push(api.EventModified, &stored)
		barrier(t, h)
		if n := len(h.cp.history(p.UID)); n != 1 {
			t.Errorf("%d status reports, want 1", n)
		}

		// Marked for deletion: nothing runs, so it is finalized at once.
		h.cp.markDeleted(p.UID, nil)
		testutil.Eventually(t, 5*time.Second, func() error {
			if u := h.cp.last(p.UID); u == nil || !u.Finalized {
				return fmt.Errorf("not finalized: %+v", u)
			}
			return nil
		})
	})

	t.Run("refused update of a running pod leaves it running", func(t *testing.T) {
		p := h.cp.assign(mkpod("running", api.RestartPolicyAlways, "fake://run"))
		h.cp.waitPhase(t, p.UID, api.PodRunning)
		bad := *p
		bad.ResourceVersion = "2000"
		bad.Spec.Volumes = []api.Volume{{Name: "root", HostPath: &api.HostPathVolumeSource{Path: "/x/../"}}}
		publishRaw(t, h, api.EventModified, &bad)
		barrier(t, h)
		if u := h.cp.last(p.UID); u.Status.Phase != api.PodRunning {
			t.Errorf("running pod is %s after a refused update", u.Status.Phase)
		}
		if n := sandboxesOf(t, h, "running"); n != 1 {
			t.Errorf("%d sandboxes of the running pod, want 1", n)
		}
	})
}

// A runtime's record of a container's log file is not trusted beyond the
// pod's directory: the log tailer writes an offset file beside it.
func TestAdoptIgnoresForeignLogPath(t *testing.T) {
	h := newHarness(t)
	h.start()
	p := h.cp.assign(mkpod("logs", api.RestartPolicyAlways, "fake://run"))
	h.cp.waitPhase(t, p.UID, api.PodRunning)
	h.stop()

	// While the agent is down, its container is replaced by one whose
	// runtime record names a log file elsewhere.
	ctx := context.Background()
	outside := filepath.Join(t.TempDir(), "evil.log")
	if err := os.WriteFile(outside, []byte("line\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cs, _ := h.fake.ListContainers(ctx, "")
	for _, c := range cs {
		if c.Labels[LabelPodUID] != p.UID {
			continue
		}
		if err := h.fake.RemoveContainer(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		id, err := h.fake.CreateContainer(ctx, c.SandboxID, &runtimes.ContainerConfig{
			Name: "c0", Image: "fake://run", LogPath: outside, Labels: c.Labels,
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := h.fake.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	// A line in the log file the agent made for the container: once it is
	// published, the tailer has read the file it trusts.
	inside := filepath.Join(h.podDir(p.UID), "c0.0.log")
	f, err := os.OpenFile(inside, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("inside\n")
	f.Close()
	h.start()
	testutil.Eventually(t, 5*time.Second, func() error {
		if got := h.logLines("default", "logs", "c0"); !slices.Contains(got, "inside") {
			return fmt.Errorf("log lines %q, want the line written inside the pod's directory", got)
		}
		return nil
	})
	h.stop()
	if _, err := os.Stat(outside + offsetSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the agent wrote an offset file beside a log file outside its data dir: %v", err)
	}
}

// BenchmarkAdmit is the agent's cost of checking one pod it is handed.
func BenchmarkAdmit(b *testing.B) {
	p := validPod()
	for b.Loop() {
		if err := admit(p, "node-1"); err != nil {
			b.Fatal(err)
		}
	}
}
