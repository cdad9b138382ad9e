package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
)

func i64(v int64) *int64 { return &v }

// runOutput runs a container to its exit and returns its output.
func runOutput(t *testing.T, r *Runtime, sb *runtimes.Sandbox, cfg *runtimes.ContainerConfig) string {
	t.Helper()
	cfg.LogPath = filepath.Join(t.TempDir(), cfg.Name+".log")
	id := run(t, r, sb, cfg)
	if res := waitExit(t, r, id, 30*time.Second); res.ExitCode != 0 {
		out, _ := os.ReadFile(cfg.LogPath)
		t.Fatalf("exit = %+v\n%s", res, out)
	}
	// The log copier may still be writing the last output when the exit
	// is seen: wait for the output (every caller's program prints).
	return waitLogHas(t, cfg.LogPath)
}

// Each case is an attack or a restriction of issue 7's pod security part,
// checked from inside a real container.
// newRuntimeWith returns a Runtime on the test environment whose config
// change changed, with the test image present.
func newRuntimeWith(t *testing.T, change func(*Config)) *Runtime {
	t.Helper()
	e := requireEnv(t)
	cfg := testConfig(e)
	change(&cfg)
	r, err := New(context.Background(), cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	if _, err := r.EnsureImage(context.Background(), e.image, runtimes.PullIfNotPresent, nil); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestSecurityApplied(t *testing.T) {
	profileDir := t.TempDir()
	r := newRuntimeWith(t, func(c *Config) { c.SeccompProfileDir = profileDir })
	// A Localhost profile that allows everything but keyctl.
	if err := os.WriteFile(filepath.Join(profileDir, "no-keyctl.json"), []byte(`{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"names":["keyctl"],"action":"SCMP_ACT_ERRNO"}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	hostFile := filepath.Join(t.TempDir(), "written-by-a-privileged-pod")
	sb := newSandbox(t, r, "sec")
	const eperm = "operation not permitted"
	// Each container runs `app probe`: its status lines, then write
	// /work/x, chown /tmp/f and keyctl (and a write through /host).
	tests := []struct {
		name    string
		sec     runtimes.Security
		args    []string
		mounts  []runtimes.Mount
		want    []string
		notWant []string
	}{
		{name: "default: root, runtime default capabilities, seccomp RuntimeDefault blocks keyctl, rootfs writable",
			want: []string{"Uid: 0 0 0 0", "CapBnd: 00000000a80425fb", "NoNewPrivs: 0", "Seccomp: 2", "write ok", "chown ok", "keyctl: " + eperm}},
		{name: "runAsUser, runAsGroup, supplementalGroups",
			sec:  runtimes.Security{RunAsUser: i64(1000), RunAsGroup: i64(2000), SupplementalGroups: []int64{3000}},
			want: []string{"Uid: 1000 1000 1000 1000", "Gid: 2000 2000 2000 2000", "Groups: 2000 3000"}},
		{name: "drop ALL removes CAP_CHOWN", sec: runtimes.Security{CapDrop: []string{"ALL"}},
			want: []string{"chown: chown /tmp/f: " + eperm, "CapBnd: 0000000000000000", "CapEff: 0000000000000000"}},
		{name: "drop ALL, add NET_BIND_SERVICE; read-only rootfs", sec: runtimes.Security{CapDrop: []string{"ALL"}, CapAdd: []string{"NET_BIND_SERVICE"}, ReadOnlyRootFilesystem: true},
			want: []string{"CapBnd: 0000000000000400", "write: open /work/x: read-only file system"}},
		{name: "drop one; no_new_privs",
			sec:  runtimes.Security{CapDrop: []string{"CHOWN"}, NoNewPrivileges: true},
			want: []string{"chown: chown /tmp/f: " + eperm, "CapBnd: 00000000a80425fa", "NoNewPrivs: 1"}},
		{name: "Unconfined does not filter", sec: runtimes.Security{Seccomp: runtimes.SeccompUnconfined},
			want: []string{"Seccomp: 0"}, notWant: []string{"keyctl: " + eperm}},
		{name: "a Localhost profile is applied", sec: runtimes.Security{Seccomp: runtimes.SeccompLocalhost, SeccompProfile: "no-keyctl.json"},
			want: []string{"Seccomp: 2", "keyctl: " + eperm}},
		{name: "privileged with hostPath / still works", args: []string{"/host" + hostFile},
			sec:    runtimes.Security{Privileged: true},
			mounts: []runtimes.Mount{{HostPath: "/", ContainerPath: "/host"}},
			want:   []string{"Seccomp: 0", "write ok", "chown ok"}, notWant: []string{"CapBnd: 00000000a80425fb", "keyctl: " + eperm}},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"probe"}, tc.args...)
			out := runOutput(t, r, sb, &runtimes.ContainerConfig{Name: "sec" + strconv.Itoa(i), Args: args, Security: tc.sec, Mounts: tc.mounts})
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}
	if _, err := os.Stat(hostFile); err != nil {
		t.Errorf("the privileged pod's write through hostPath / is not on the node: %v", err)
	}
}

func TestRunAsNonRoot(t *testing.T) {
	r, _ := newTestRuntime(t)
	sb := newSandbox(t, r, "nonroot")
	// The test image has no USER: it runs as root, which runAsNonRoot refuses.
	_, err := r.CreateContainer(context.Background(), sb.ID, &runtimes.ContainerConfig{
		Name: "root", Image: env.image, Args: []string{"status"}, Security: runtimes.Security{RunAsNonRoot: true},
	})
	var re *runtimes.ReasonError
	if !errors.As(err, &re) || re.Reason != runtimes.ReasonCreateContainerConfigError || !strings.Contains(err.Error(), "runAsNonRoot") {
		t.Fatalf("CreateContainer runAsNonRoot as root = %v, want %s naming runAsNonRoot", err, runtimes.ReasonCreateContainerConfigError)
	}
	if cs, _ := r.ListContainers(context.Background(), sb.ID); len(cs) != 0 {
		t.Fatalf("the refused container was left behind: %+v", cs)
	}
	out := runOutput(t, r, sb, &runtimes.ContainerConfig{Name: "user", Args: []string{"status"}, Security: runtimes.Security{RunAsNonRoot: true, RunAsUser: i64(1000)}})
	if !strings.Contains(out, "Uid: 1000 1000 1000 1000") {
		t.Fatalf("runAsNonRoot with runAsUser 1000: %s", out)
	}
}

func TestDefaultPidsLimit(t *testing.T) {
	r, _ := newTestRuntime(t)
	sb := newSandbox(t, r, "pids")
	id := run(t, r, sb, &runtimes.ContainerConfig{Name: "pids"})
	b, err := os.ReadFile(filepath.Join(r.cgroupDir("pids", id), "pids.max"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.Itoa(DefaultPidsLimit) {
		t.Fatalf("pids.max = %q, want the default %d", got, DefaultPidsLimit)
	}
}

func isMountPoint(t *testing.T, path string) bool {
	t.Helper()
	var st, parent unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	if err := unix.Stat(filepath.Dir(path), &parent); err != nil {
		t.Fatal(err)
	}
	return st.Dev != parent.Dev
}

func TestEmptyDirMemory(t *testing.T) {
	r, _ := newTestRuntime(t)
	ctx := context.Background()
	sb, err := r.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "test", Name: "tmpfs", UID: "uid-tmpfs"})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "cache")
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	m := runtimes.Mount{HostPath: dir, ContainerPath: "/cache", Volume: "cache",
		EmptyDir: &runtimes.EmptyDir{Medium: runtimes.MediumMemory, SizeLimitBytes: 1 << 20, GID: i64(3000)}}
	logPath := filepath.Join(t.TempDir(), "fill.log")
	id := run(t, r, sb, &runtimes.ContainerConfig{Name: "fill", Args: []string{"fill", "/cache/f", "4"}, Mounts: []runtimes.Mount{m}, LogPath: logPath})
	testutil.Eventually(t, 20*time.Second, func() error {
		if b, _ := os.ReadFile(logPath); !strings.Contains(string(b), "filled") {
			return fmt.Errorf("output %q", b)
		}
		return nil
	})
	out, _ := os.ReadFile(logPath)
	if !strings.Contains(string(out), "no space left on device") {
		t.Errorf("writing 4 MiB into a 1 MiB tmpfs: %s", out)
	}
	var fs unix.Statfs_t
	if err := unix.Statfs(dir, &fs); err != nil {
		t.Fatal(err)
	}
	if fs.Type != unix.TMPFS_MAGIC || !isMountPoint(t, dir) {
		t.Fatalf("the emptyDir is not a tmpfs mount (type %#x)", fs.Type)
	}
	if total := int64(fs.Blocks) * fs.Bsize; total != 1<<20 {
		t.Errorf("tmpfs size %d, want 1 MiB", total)
	}
	var st syscall.Stat_t
	if err := syscall.Stat(dir, &st); err != nil {
		t.Fatal(err)
	}
	if st.Gid != 3000 || st.Mode&syscall.S_ISGID == 0 {
		t.Errorf("emptyDir gid %d mode %o, want fsGroup 3000 with setgid", st.Gid, st.Mode)
	}
	// A second container of the pod shares the same tmpfs.
	out2 := runOutput(t, r, sb, &runtimes.ContainerConfig{Name: "second", Args: []string{"write", "/cache/g"}, Mounts: []runtimes.Mount{m}})
	if !strings.Contains(out2, "no space left on device") {
		t.Errorf("second container: %s", out2)
	}
	_ = id
	if err := r.RemoveSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if isMountPoint(t, dir) {
		t.Fatal("the tmpfs is still mounted after RemoveSandbox")
	}
}

func TestEmptyDirSizeLimitOnDisk(t *testing.T) {
	r := newRuntimeWith(t, func(c *Config) { c.EmptyDirCheckInterval = 50 * time.Millisecond })
	sb := newSandbox(t, r, "disklimit")
	dir := t.TempDir()
	m := runtimes.Mount{HostPath: dir, ContainerPath: "/data", Volume: "data", EmptyDir: &runtimes.EmptyDir{SizeLimitBytes: 1 << 20}}
	small := run(t, r, sb, &runtimes.ContainerConfig{Name: "small", Args: []string{"sleep"}, Mounts: []runtimes.Mount{m}})
	big := run(t, r, sb, &runtimes.ContainerConfig{Name: "big", Args: []string{"fill", "/data/f", "3"}, Mounts: []runtimes.Mount{m}})
	for _, id := range []string{big, small} {
		res := waitExit(t, r, id, 30*time.Second)
		if res.Reason != runtimes.ReasonEmptyDirSizeLimit || !strings.Contains(res.Message, `EmptyDir volume "data" exceeds the limit 1048576 bytes`) {
			t.Fatalf("exit = %+v, want %s naming the volume", res, runtimes.ReasonEmptyDirSizeLimit)
		}
	}
	st, err := r.ContainerStatus(context.Background(), big)
	if err != nil || st.Reason != runtimes.ReasonEmptyDirSizeLimit {
		t.Fatalf("status = %+v, %v", st, err)
	}
}

// A host-network pod (in a privileged namespace) serves on the node's own
// port without a mapping; with hostPID it sees the node's processes.
func TestHostNetworkAndPID(t *testing.T) {
	r, _ := newTestRuntime(t)
	ctx := context.Background()
	sb, err := r.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "test", Name: "hostnet", UID: "uid-hostnet", HostNetwork: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.RemoveSandbox(ctx, sb.ID); err != nil {
			t.Errorf("RemoveSandbox: %v", err)
		}
	})
	if sb.IP != "" || sb.State != runtimes.SandboxReady {
		t.Fatalf("host-network sandbox = %+v, want ready with no IP of its own", sb)
	}
	port := freePort(t)
	run(t, r, sb, &runtimes.ContainerConfig{Name: "web", Args: []string{"serve", strconv.Itoa(int(port)), "from the host network"}})
	testutil.Eventually(t, 20*time.Second, func() error {
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "from the host network" {
			return fmt.Errorf("body %q", b)
		}
		return nil
	})
	own := runOutput(t, r, sb, &runtimes.ContainerConfig{Name: "ownpid", Args: []string{"status"}})
	host := runOutput(t, r, sb, &runtimes.ContainerConfig{Name: "hostpid", Args: []string{"status"}, Security: runtimes.Security{HostPID: true}})
	// In its own PID namespace the process is pid 1; in the node's it is not.
	if !strings.Contains(own, "NSpid: 1\n") || strings.Contains(host, "NSpid: 1\n") || !strings.Contains(host, "NSpid: ") {
		t.Fatalf("own PID namespace:\n%s\nhostPID:\n%s", own, host)
	}
	sbs, err := r.ListSandboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sbs {
		if s.ID == sb.ID && s.State != runtimes.SandboxReady {
			t.Fatalf("listed host-network sandbox %+v, want ready", s)
		}
	}
}
