package node

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"golang.org/x/sys/unix"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/fake"
)

// configServer answers kyb.node.<node>.config from a map, as the
// apiserver does for the objects a node's pods reference, and sends
// notices as the apiserver does on a change.
type configServer struct {
	t    testing.TB
	nc   *nats.Conn
	node string
	mu   sync.Mutex
	objs map[configKey]api.Object
	asks int
}

func serveConfigs(t testing.TB, h *harness) *configServer {
	cp := h.cp
	// A pod left running holds the tmpfs of its secret volumes: unmount
	// them before the data dir is removed.
	t.Cleanup(func() { _ = unmountBeneath(h.cfg.DataDir) })
	s := &configServer{t: t, nc: cp.nc, node: cp.node, objs: map[configKey]api.Object{}}
	sub, err := cp.nc.Subscribe(api.NodeSubject(cp.node, api.NodeVerbConfig), func(m *nats.Msg) {
		var r api.ConfigRequest
		_ = json.Unmarshal(m.Data, &r)
		s.mu.Lock()
		s.asks++
		obj := s.objs[configKey{r.Kind, r.Namespace, r.Name}]
		var b []byte
		if obj != nil {
			b, _ = json.Marshal(obj)
		}
		s.mu.Unlock()
		if obj == nil {
			st := api.NewNotFound(r.Kind, r.Name)
			out := nats.NewMsg(m.Reply)
			out.Header.Set("Nats-Service-Error-Code", strconv.Itoa(st.Code))
			out.Header.Set("Nats-Service-Error", st.Message)
			out.Data, _ = json.Marshal(st)
			_ = m.RespondMsg(out)
			return
		}
		_ = m.Respond(b)
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return s
}

// put stores obj and sends the notice.
func (s *configServer) put(obj api.Object) {
	kind := api.KindOf(obj).Name
	m := obj.GetObjectMeta()
	if m.Namespace == "" {
		m.Namespace = api.DefaultNamespace
	}
	s.mu.Lock()
	s.objs[configKey{kind, m.Namespace, m.Name}] = obj
	s.mu.Unlock()
	b, _ := json.Marshal(api.ConfigNotice{Type: api.EventModified, Kind: kind, Namespace: m.Namespace, Name: m.Name})
	if err := s.nc.Publish(api.AgentSubject(s.node, api.AgentVerbConfig), b); err != nil {
		s.t.Fatal(err)
	}
	_ = s.nc.Flush()
}

// captureConfigs records every ContainerConfig the fake runtime is given.
func captureConfigs(rt *fake.Runtime) func() []*runtimes.ContainerConfig {
	var mu sync.Mutex
	var got []*runtimes.ContainerConfig
	rt.SetHooks(fake.Hooks{CreateContainer: func(_ context.Context, _ string, cfg *runtimes.ContainerConfig) error {
		mu.Lock()
		got = append(got, cfg)
		mu.Unlock()
		return nil
	}})
	return func() []*runtimes.ContainerConfig {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(got)
	}
}

func envMap(env []runtimes.EnvVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}

// A container gets its ConfigMap and Secret values as env (valueFrom,
// envFrom with an invalid key skipped and an event), its pod's fields and
// resources, HOSTNAME, $(VAR) expansion in env and args; and as read-only
// volumes in the kubelet's ..data layout, with items and modes. A changed
// ConfigMap reaches the file without a restart.
func TestConfigEnvAndVolumes(t *testing.T) {
	h := newHarness(t)
	configs := captureConfigs(h.fake)
	srv := serveConfigs(t, h)
	srv.put(&api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "cm"}, Data: map[string]string{"k": "v1", "1bad": "x", "other": "o"}})
	srv.put(&api.Secret{ObjectMeta: api.ObjectMeta{Name: "s"}, Data: map[string][]byte{"pw": []byte("hunter2")}})
	h.start()

	p := mkpod("cfg", api.RestartPolicyAlways, "fake://run")
	p.Labels = map[string]string{"app": "web"}
	p.Spec.SecurityContext = &api.PodSecurityContext{FSGroup: ptr(int64(2000))}
	c := &p.Spec.Containers[0]
	c.Resources.Limits = api.ResourceList{api.ResourceMemory: resource.MustParse("64Mi")}
	c.Env = []api.EnvVar{
		{Name: "A", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: &api.ConfigMapKeySelector{Name: "cm", Key: "k"}}},
		{Name: "B", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "s", Key: "pw"}}},
		{Name: "C", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "D", ValueFrom: &api.EnvVarSource{ResourceFieldRef: &api.ResourceFieldSelector{Resource: "limits.memory", Divisor: ptr(resource.MustParse("1Mi"))}}},
		{Name: "E", Value: "$(A)-$(B)-$$(A)-$(NOPE)"},
		{Name: "F", ValueFrom: &api.EnvVarSource{FieldRef: &api.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
		{Name: "G", ValueFrom: &api.EnvVarSource{SecretKeyRef: &api.SecretKeySelector{Name: "absent", Key: "x", Optional: ptr(true)}}},
		{Name: "other", Value: "env wins over envFrom"},
	}
	c.EnvFrom = []api.EnvFromSource{{ConfigMapRef: &api.ConfigMapEnvSource{Name: "cm"}}, {Prefix: "S_", SecretRef: &api.SecretEnvSource{Name: "s"}}}
	c.Args = []string{"$(A)", "$(C)"}
	p.Spec.Volumes = []api.Volume{
		{Name: "conf", ConfigMap: &api.ConfigMapVolumeSource{Name: "cm", Items: []api.KeyToPath{{Key: "k", Path: "sub/file", Mode: ptr(int32(0o400))}}}},
		{Name: "sec", Secret: &api.SecretVolumeSource{SecretName: "s", DefaultMode: ptr(int32(0o440))}},
		{Name: "info", DownwardAPI: &api.DownwardAPIVolumeSource{Items: []api.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &api.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}},
		{Name: "all", Projected: &api.ProjectedVolumeSource{DefaultMode: ptr(int32(0o400)), Sources: []api.VolumeProjection{
			{ConfigMap: &api.ConfigMapProjection{Name: "cm", Items: []api.KeyToPath{{Key: "k", Path: "cm/k"}}}},
			{Secret: &api.SecretProjection{Name: "s", Items: []api.KeyToPath{{Key: "pw", Path: "sec/pw"}}}},
			{DownwardAPI: &api.DownwardAPIProjection{Items: []api.DownwardAPIVolumeFile{{Path: "name", FieldRef: &api.ObjectFieldSelector{FieldPath: "metadata.name"}}}}},
		}}},
	}
	c.VolumeMounts = []api.VolumeMount{{Name: "conf", MountPath: "/etc/conf"}, {Name: "sec", MountPath: "/etc/sec"}, {Name: "info", MountPath: "/etc/info"}, {Name: "all", MountPath: "/etc/all"}}
	p = h.cp.assign(p)
	h.cp.waitPhase(t, p.UID, api.PodRunning)

	got := configs()
	if len(got) != 1 {
		t.Fatalf("%d containers created, want 1", len(got))
	}
	env := envMap(got[0].Env)
	want := map[string]string{"HOSTNAME": "cfg", "A": "v1", "B": "hunter2", "C": "cfg", "D": "64", "E": "v1-hunter2-$(A)-$(NOPE)",
		"F": "web", "k": "v1", "other": "env wins over envFrom", "S_pw": "hunter2"}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("env %s = %q, want %q", k, env[k], v)
		}
	}
	for _, k := range []string{"G", "1bad"} {
		if _, ok := env[k]; ok {
			t.Errorf("env %s is set, want it left out", k)
		}
	}
	if strings.Join(got[0].Args, " ") != "v1 cfg" {
		t.Errorf("args %q, want $(A) $(C) expanded", got[0].Args)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		for _, ev := range h.cp.eventsSnapshot() {
			if ev.Reason == ReasonInvalidEnvironmentVariableNames && strings.Contains(ev.Message, "1bad") {
				return nil
			}
		}
		return fmt.Errorf("no %s event", ReasonInvalidEnvironmentVariableNames)
	})
	mounts := map[string]runtimes.Mount{}
	for _, m := range got[0].Mounts {
		mounts[m.ContainerPath] = m
	}
	for _, p := range []string{"/etc/conf", "/etc/sec", "/etc/info", "/etc/all"} {
		if m, ok := mounts[p]; !ok || !m.ReadOnly {
			t.Errorf("mount %s = %+v, want a read-only mount", p, m)
		}
	}
	read := func(rel string) (string, os.FileMode) {
		t.Helper()
		path := filepath.Join(mounts["/etc/"+strings.SplitN(rel, "/", 2)[0]].HostPath, strings.SplitN(rel, "/", 2)[1])
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("read %s: %v", rel, err)
		}
		fi, _ := os.Stat(path)
		if os.Geteuid() == 0 && !ownedBy(fi, 2000) {
			t.Errorf("%s: not owned by the fsGroup 2000", rel)
		}
		return string(b), fi.Mode().Perm()
	}
	// Mode 0400, made group-readable for the fsGroup.
	if v, mode := read("conf/sub/file"); v != "v1" || mode != 0o440 {
		t.Errorf("conf/sub/file = %q %v, want v1 0440", v, mode)
	}
	if v, mode := read("sec/pw"); v != "hunter2" || mode != 0o440 {
		t.Errorf("sec/pw = %q %v, want hunter2 0440", v, mode)
	}
	if v, _ := read("info/labels"); v != "app=\"web\"\n" {
		t.Errorf("info/labels = %q", v)
	}
	for rel, want := range map[string]string{"all/cm/k": "v1", "all/sec/pw": "hunter2", "all/name": "cfg"} {
		if v, mode := read(rel); v != want || mode != 0o440 {
			t.Errorf("projected %s = %q %v, want %q 0440 (0400 and the fsGroup's read)", rel, v, mode, want)
		}
	}
	if _, err := os.Stat(filepath.Join(mounts["/etc/conf"].HostPath, "other")); err == nil {
		t.Errorf("conf/other written: only items are")
	}
	if l, err := os.Readlink(filepath.Join(mounts["/etc/conf"].HostPath, "..data")); err != nil || !strings.HasPrefix(l, "..") {
		t.Errorf("..data -> %q, %v; want the kubelet's layout", l, err)
	}

	// An update reaches the file in place, without a restart.
	srv.put(&api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "cm"}, Data: map[string]string{"k": "v2"}})
	testutil.Eventually(t, 5*time.Second, func() error {
		if v, _ := read("conf/sub/file"); v != "v2" {
			return fmt.Errorf("conf/sub/file = %q, want v2", v)
		}
		return nil
	})
	testutil.Eventually(t, 5*time.Second, func() error { // the old payload goes right after the swap
		if entries, _ := os.ReadDir(mounts["/etc/conf"].HostPath); len(entries) != 3 { // ..data, one payload dir, sub
			return fmt.Errorf("volume dir holds %d entries, want 3 (old payload removed)", len(entries))
		}
		return nil
	})
	if n := len(configs()); n != 1 {
		t.Errorf("%d containers created, want 1: an update must not restart", n)
	}
	// A label change reaches the downwardAPI file.
	p.Labels = map[string]string{"app": "api"}
	p = h.cp.store(p)
	h.cp.push(api.EventModified, p)
	testutil.Eventually(t, 5*time.Second, func() error {
		if v, _ := read("info/labels"); v != "app=\"api\"\n" {
			return fmt.Errorf("info/labels = %q", v)
		}
		return nil
	})

	// The secret volume is a tmpfs (never the node's disk), unmounted with
	// the pod; the configMap volume is not.
	podDir := h.podDir(p.UID)
	if os.Geteuid() == 0 {
		if !isTmpfs(t, mounts["/etc/sec"].HostPath) || !isTmpfs(t, mounts["/etc/all"].HostPath) || isTmpfs(t, mounts["/etc/conf"].HostPath) {
			t.Errorf("want the secret and projected volumes (only) on a tmpfs")
		}
	}
	h.cp.markDeleted(p.UID, ptr(int64(0)))
	testutil.Eventually(t, 10*time.Second, func() error {
		if u := h.cp.last(p.UID); u == nil || !u.Finalized {
			return fmt.Errorf("pod not finalized yet")
		}
		return nil
	})
	if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), podDir) {
		t.Errorf("a mount beneath the deleted pod's directory remains")
	}
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("pod dir: %v, want it removed", err)
	}
}

func isTmpfs(t *testing.T, dir string) bool {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return st.Type == unix.TMPFS_MAGIC
}

// A missing ConfigMap key holds the container in CreateContainerConfigError
// naming the key and the object; it starts when the key appears (the
// notice, not the back-off, wakes it: the back-off here is an hour).
func TestMissingConfigKeyWaits(t *testing.T) {
	h := newHarness(t)
	h.cfg.BackoffBase, h.cfg.BackoffMax = time.Hour, time.Hour
	srv := serveConfigs(t, h)
	srv.put(&api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "app-config"}, Data: map[string]string{"other": "x"}})
	h.start()
	p := mkpod("wait", api.RestartPolicyAlways, "fake://run")
	p.Spec.Containers[0].Env = []api.EnvVar{{Name: "MODE", ValueFrom: &api.EnvVarSource{ConfigMapKeyRef: &api.ConfigMapKeySelector{Name: "app-config", Key: "mode"}}}}
	p.Spec.Volumes = []api.Volume{{Name: "s", Secret: &api.SecretVolumeSource{SecretName: "later"}}}
	p.Spec.Containers[0].VolumeMounts = []api.VolumeMount{{Name: "s", MountPath: "/s"}}
	p = h.cp.assign(p)
	waitReason := func(want ...string) {
		t.Helper()
		testutil.Eventually(t, 5*time.Second, func() error {
			u := h.cp.last(p.UID)
			if u == nil || len(u.Status.ContainerStatuses) == 0 || u.Status.ContainerStatuses[0].State.Waiting == nil {
				return fmt.Errorf("no waiting status")
			}
			w := u.Status.ContainerStatuses[0].State.Waiting
			if w.Reason != runtimes.ReasonCreateContainerConfigError {
				return fmt.Errorf("waiting %+v", w)
			}
			for _, s := range want {
				if !strings.Contains(w.Message, s) {
					return fmt.Errorf("message %q does not name %q", w.Message, s)
				}
			}
			return nil
		})
	}
	waitReason("mode", "app-config")
	srv.put(&api.ConfigMap{ObjectMeta: api.ObjectMeta{Name: "app-config"}, Data: map[string]string{"mode": "fast"}})
	waitReason(`secret "later" not found`)
	srv.put(&api.Secret{ObjectMeta: api.ObjectMeta{Name: "later"}, Data: map[string][]byte{"t": []byte("tok")}})
	h.cp.waitPhase(t, p.UID, api.PodRunning)
}

func TestExpandVars(t *testing.T) {
	vars := map[string]string{"A": "a", "EMPTY": ""}
	lookup := func(n string) (string, bool) { v, ok := vars[n]; return v, ok }
	for in, want := range map[string]string{
		"plain":         "plain",
		"$(A)":          "a",
		"x$(A)y$(A)":    "xaya",
		"$$(A)":         "$(A)",
		"$(B)":          "$(B)",
		"$(EMPTY)|":     "|",
		"$(A":           "$(A",
		"$":             "$",
		"a$b":           "a$b",
		"$$$(A)":        "$a",
		"$()":           "$()",
		"100$":          "100$",
		"$(A)$(A)$$":    "aa$",
		"mixed $(A) $x": "mixed a $x",
	} {
		if got := expandVars(in, lookup); got != want {
			t.Errorf("expandVars(%q) = %q, want %q", in, got, want)
		}
	}
}

// writeAtomic refuses paths that would leave the volume, even when the
// apiserver was bypassed.
func TestWriteAtomicRefusesEscapes(t *testing.T) {
	dir := t.TempDir()
	for _, p := range []string{"../x", "/etc/passwd", "a/../../x", "..data", "", "a//b"} {
		if _, err := writeAtomic(filepath.Join(dir, "v"), map[string]volumeFile{p: {data: []byte("x"), mode: 0o644}}); err == nil {
			t.Errorf("path %q: written, want refused", p)
		}
	}
	changed, err := writeAtomic(filepath.Join(dir, "v"), map[string]volumeFile{"a": {data: []byte("1"), mode: 0o644}})
	if err != nil || !changed {
		t.Fatalf("first write: %v %v", changed, err)
	}
	if changed, err := writeAtomic(filepath.Join(dir, "v"), map[string]volumeFile{"a": {data: []byte("1"), mode: 0o644}}); err != nil || changed {
		t.Fatalf("same payload: changed=%v %v, want nothing written", changed, err)
	}
	if changed, err := writeAtomic(filepath.Join(dir, "v"), map[string]volumeFile{"b": {data: []byte("2"), mode: 0o644}}); err != nil || !changed {
		t.Fatalf("new payload: %v %v", changed, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, "v", "a")); err == nil {
		t.Errorf("a key that left the payload is still linked")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "v", "b")); err != nil || string(b) != "2" {
		t.Errorf("b = %q %v", b, err)
	}
}

func (cp *fakeCP) eventsSnapshot() []api.Event {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return slices.Clone(cp.events)
}
