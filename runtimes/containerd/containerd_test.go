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
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
)

func TestInfo(t *testing.T) {
	r, _ := newTestRuntime(t)
	info, err := r.Info(context.Background())
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Name != "containerd" || info.Version == "" {
		t.Fatalf("Info = %+v, want name containerd and a version", info)
	}

	dead, err := New(context.Background(), Config{Address: filepath.Join(t.TempDir(), "none.sock"), StateDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatalf("New on a missing socket: %v (want success, Info fails)", err)
	}
	defer dead.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := dead.Info(ctx); !errors.Is(err, runtimes.ErrUnavailable) {
		t.Fatalf("Info on a missing socket = %v, want ErrUnavailable", err)
	}
}

func TestPullWithProgress(t *testing.T) {
	r, e := newTestRuntime(t)
	ctx := context.Background()
	// A fresh tag of the same image in a fresh repository forces a real pull.
	ref := strings.TrimPrefix(e.registry.URL, "http://") + "/kyb/pull-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":v1"
	if err := pushImage(ref, e.appImg); err != nil {
		t.Fatal(err)
	}
	var reports []runtimes.PullProgress
	img, err := r.EnsureImage(ctx, ref, runtimes.PullAlways, func(p runtimes.PullProgress) { reports = append(reports, p) })
	if err != nil {
		t.Fatalf("EnsureImage: %v", err)
	}
	t.Cleanup(func() { r.client.ImageService().Delete(r.ns(ctx), img.Ref) })
	if img.Ref != ref || !strings.HasPrefix(img.Digest, "sha256:") || img.Size <= 0 {
		t.Fatalf("image = %+v", img)
	}
	if len(reports) == 0 {
		t.Fatal("no progress reported")
	}
	last := reports[len(reports)-1]
	if last.Layers != 1 || last.LayersDone != 1 || last.Total <= 0 || last.Done != last.Total || last.Ref == "" {
		t.Fatalf("last progress = %+v, want 1/1 layers and Done == Total > 0", last)
	}
	for _, p := range reports {
		if p.Done > p.Total && p.Total > 0 {
			t.Fatalf("progress Done > Total: %+v", p)
		}
	}

	again, err := r.EnsureImage(ctx, ref, runtimes.PullIfNotPresent, nil)
	if err != nil || again.Digest != img.Digest {
		t.Fatalf("EnsureImage IfNotPresent = %+v, %v; want digest %s", again, err, img.Digest)
	}
	never, err := r.EnsureImage(ctx, ref, runtimes.PullNever, nil)
	if err != nil || never.Digest != img.Digest {
		t.Fatalf("EnsureImage Never on a present image = %+v, %v", never, err)
	}
	list, err := r.ListImages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, i := range list {
		found = found || (i.Ref == ref && i.Digest == img.Digest)
	}
	if !found {
		t.Fatalf("ListImages does not hold %s: %+v", ref, list)
	}
}

func TestImageErrors(t *testing.T) {
	r, e := newTestRuntime(t)
	host := strings.TrimPrefix(e.registry.URL, "http://")
	tests := []struct {
		name      string
		ref       string
		policy    runtimes.PullPolicy
		reason    string
		retryable bool
		notFound  bool
	}{
		{name: "invalid reference", ref: "Bad//Image::x", reason: runtimes.ReasonInvalidImageName},
		{name: "empty reference", ref: "", reason: runtimes.ReasonInvalidImageName},
		{name: "unknown repository", ref: host + "/kyb/missing:v1", reason: runtimes.ReasonErrImagePull, retryable: true},
		{name: "unreachable registry", ref: "127.0.0.1:1/kyb/app:v1", reason: runtimes.ReasonErrImagePull, retryable: true},
		{name: "never pull an absent image", ref: host + "/kyb/absent:v1", policy: runtimes.PullNever, reason: runtimes.ReasonErrImageNeverPull, retryable: true, notFound: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			_, err := r.EnsureImage(ctx, tc.ref, tc.policy, nil)
			var re *runtimes.ReasonError
			if !errors.As(err, &re) {
				t.Fatalf("EnsureImage(%q) = %v, want a ReasonError", tc.ref, err)
			}
			if re.Reason != tc.reason || re.Retryable != tc.retryable {
				t.Fatalf("EnsureImage(%q) reason %s retryable %v, want %s %v (%v)", tc.ref, re.Reason, re.Retryable, tc.reason, tc.retryable, err)
			}
			if tc.notFound != errors.Is(err, runtimes.ErrNotFound) {
				t.Fatalf("errors.Is(%v, ErrNotFound) = %v, want %v", err, !tc.notFound, tc.notFound)
			}
		})
	}
}

func TestImportArchive(t *testing.T) {
	r, e := newTestRuntime(t)
	ctx := context.Background()
	tag := "kyb.test/imported:" + strconv.FormatInt(time.Now().UnixNano(), 36)
	path := filepath.Join(t.TempDir(), "image.tar")
	if err := writeArchive(path, tag, e.appImg); err != nil {
		t.Fatal(err)
	}
	imgs, err := r.ImportImage(ctx, path)
	if err != nil {
		t.Fatalf("ImportImage: %v", err)
	}
	t.Cleanup(func() {
		for _, i := range imgs {
			r.client.ImageService().Delete(r.ns(ctx), i.Ref)
		}
	})
	if len(imgs) != 1 || imgs[0].Ref != tag || imgs[0].Digest == "" {
		t.Fatalf("imported %+v, want one image named %s", imgs, tag)
	}
	if _, err := r.EnsureImage(ctx, tag, runtimes.PullNever, nil); err != nil {
		t.Fatalf("EnsureImage Never after import: %v", err)
	}
	sb := newSandbox(t, r, "imported")
	id := run(t, r, sb, &runtimes.ContainerConfig{Name: "c", Image: tag, Args: []string{"exit", "0"}})
	if res := waitExit(t, r, id, 30*time.Second); res.ExitCode != 0 || res.Reason != runtimes.ReasonCompleted {
		t.Fatalf("container from imported image: %+v", res)
	}

	if _, err := r.ImportImage(ctx, filepath.Join(t.TempDir(), "missing.tar")); err == nil {
		t.Fatal("ImportImage of a missing file succeeded")
	}
}

func httpGet(url string) (string, error) {
	c := http.Client{Timeout: 2 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

func TestHTTPServerByPodIPAndHostPort(t *testing.T) {
	r, _ := newTestRuntime(t)
	hostPort := freePort(t)
	sb := newSandbox(t, r, "web", runtimes.PortMapping{Name: "http", ContainerPort: 8080, HostPort: hostPort, Protocol: "TCP"})
	if sb.IP == "" || sb.State != runtimes.SandboxReady {
		t.Fatalf("sandbox = %+v, want an IP and ready", sb)
	}
	run(t, r, sb, &runtimes.ContainerConfig{Name: "web", Args: []string{"serve", "8080", "hello from the pod"}})
	for _, url := range []string{
		fmt.Sprintf("http://%s:8080/", sb.IP),
		fmt.Sprintf("http://127.0.0.1:%d/", hostPort),
	} {
		testutil.Eventually(t, 20*time.Second, func() error {
			body, err := httpGet(url)
			if err != nil {
				return err
			}
			if body != "hello from the pod" {
				return fmt.Errorf("GET %s = %q", url, body)
			}
			return nil
		})
	}
}

func TestContainersOfAPodShareLocalhost(t *testing.T) {
	r, _ := newTestRuntime(t)
	sb := newSandbox(t, r, "pair")
	run(t, r, sb, &runtimes.ContainerConfig{Name: "server", Args: []string{"serve", "8081", "over localhost"}})
	logPath := filepath.Join(t.TempDir(), "client.log")
	id := run(t, r, sb, &runtimes.ContainerConfig{Name: "client", Args: []string{"get", "http://127.0.0.1:8081/"}, LogPath: logPath})
	res := waitExit(t, r, id, 30*time.Second)
	out, _ := os.ReadFile(logPath)
	if res.ExitCode != 0 || !strings.Contains(string(out), "over localhost") {
		t.Fatalf("client exited %+v with log %q, want 0 and the server's text", res, out)
	}
}

func TestOOMKilled(t *testing.T) {
	r, _ := newTestRuntime(t)
	sb := newSandbox(t, r, "oom")
	id := run(t, r, sb, &runtimes.ContainerConfig{Name: "hog", Args: []string{"alloc", "256"}, MemoryLimitBytes: 32 << 20})
	res := waitExit(t, r, id, 60*time.Second)
	if res.ExitCode != 137 || res.Reason != runtimes.ReasonOOMKilled {
		t.Fatalf("exit = %+v, want 137 OOMKilled", res)
	}
	st, err := r.ContainerStatus(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runtimes.ContainerExited || st.ExitCode != 137 || st.Reason != runtimes.ReasonOOMKilled {
		t.Fatalf("status = %+v, want exited 137 OOMKilled", st)
	}
}

func TestExitCodesAndLogs(t *testing.T) {
	r, _ := newTestRuntime(t)
	sb := newSandbox(t, r, "exits")
	tests := []struct {
		code   int
		reason string
	}{
		{0, runtimes.ReasonCompleted},
		{3, runtimes.ReasonFailed},
	}
	for _, tc := range tests {
		t.Run(strconv.Itoa(tc.code), func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "logs", "c.log")
			id := run(t, r, sb, &runtimes.ContainerConfig{Name: "exit" + strconv.Itoa(tc.code), Args: []string{"exit", strconv.Itoa(tc.code)}, LogPath: logPath})
			res := waitExit(t, r, id, 30*time.Second)
			if int(res.ExitCode) != tc.code || res.Reason != tc.reason || res.FinishedAt.IsZero() {
				t.Fatalf("exit = %+v, want %d %s", res, tc.code, tc.reason)
			}
			st, err := r.ContainerStatus(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			if st.State != runtimes.ContainerExited || int(st.ExitCode) != tc.code || st.Reason != tc.reason || st.StartedAt.IsZero() || st.FinishedAt.IsZero() {
				t.Fatalf("status = %+v", st)
			}
			// A second wait on an exited container answers at once.
			if again := waitExit(t, r, id, 10*time.Second); again.ExitCode != res.ExitCode {
				t.Fatalf("second wait = %+v", again)
			}
			out, _ := os.ReadFile(logPath)
			if !strings.Contains(string(out), "to stdout") || !strings.Contains(string(out), "to stderr") {
				t.Fatalf("log = %q, want stdout and stderr", out)
			}
			if err := r.RemoveContainer(context.Background(), id); err != nil {
				t.Fatal(err)
			}
			if _, err := r.ContainerStatus(context.Background(), id); !errors.Is(err, runtimes.ErrNotFound) {
				t.Fatalf("status after remove = %v, want ErrNotFound", err)
			}
		})
	}
}

func TestCommandArgsEnvWorkingDir(t *testing.T) {
	r, _ := newTestRuntime(t)
	sb := newSandbox(t, r, "argv")
	tests := []struct {
		name string
		cfg  runtimes.ContainerConfig
		want []string
	}{
		{
			name: "args replace CMD",
			cfg:  runtimes.ContainerConfig{Args: []string{"env", "a"}},
			want: []string{"args=env a\n", "wd=/work\n", "env FROM_IMAGE=image\n", "hostname=argv\n"},
		},
		{
			name: "command replaces ENTRYPOINT and CMD",
			cfg:  runtimes.ContainerConfig{Command: []string{"/app", "env"}},
			want: []string{"args=env\n"},
		},
		{
			name: "command and args",
			cfg:  runtimes.ContainerConfig{Command: []string{"/app"}, Args: []string{"env", "b", "c"}},
			want: []string{"args=env b c\n"},
		},
		{
			name: "env and workingDir override the image",
			cfg: runtimes.ContainerConfig{Args: []string{"env"}, WorkingDir: "/tmp",
				Env: []runtimes.EnvVar{{Name: "FROM_IMAGE", Value: "pod"}, {Name: "EXTRA", Value: "x=y"}}},
			want: []string{"wd=/tmp\n", "env FROM_IMAGE=pod\n", "env EXTRA=x=y\n", "env PATH=/\n"},
		},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Name = "argv" + strconv.Itoa(i)
			cfg.LogPath = filepath.Join(t.TempDir(), "c.log")
			id := run(t, r, sb, &cfg)
			if res := waitExit(t, r, id, 30*time.Second); res.ExitCode != 0 {
				t.Fatalf("exit = %+v", res)
			}
			// The log copier may still be writing when the exit is seen.
			out := waitLogHas(t, cfg.LogPath, tc.want...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// waitLogHas reads a container's log file until it holds every one of want
// (with none, anything) — the log copier can lag the container's exit
// event — for at most 10 s, and returns what it last read.
func waitLogHas(t testing.TB, path string, want ...string) string {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; {
		b, _ := os.ReadFile(path)
		all := len(b) > 0
		for _, w := range want {
			all = all && strings.Contains(string(b), w)
		}
		if all || time.Now().After(deadline) {
			return string(b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCPULimitInCgroup(t *testing.T) {
	r, _ := newTestRuntime(t)
	sb := newSandbox(t, r, "cpu")
	id := run(t, r, sb, &runtimes.ContainerConfig{Name: "cpu", CPULimitMilli: 250, CPURequestMilli: 500, PidsLimit: 64})
	read := func(controller, file string) string {
		b, err := os.ReadFile(filepath.Join(r.cgroupDir(controller, id), file))
		if err != nil {
			t.Fatalf("read cgroup file: %v", err)
		}
		return strings.TrimSpace(string(b))
	}
	if cgroupV2() {
		if got := read("", "cpu.max"); got != "25000 100000" {
			t.Fatalf("cpu.max = %q, want 25000 100000", got)
		}
		if got := read("", "pids.max"); got != "64" {
			t.Fatalf("pids.max = %q, want 64", got)
		}
	} else {
		if got := read("cpu", "cpu.cfs_quota_us"); got != "25000" {
			t.Fatalf("cpu.cfs_quota_us = %q, want 25000", got)
		}
		if got := read("cpu", "cpu.cfs_period_us"); got != "100000" {
			t.Fatalf("cpu.cfs_period_us = %q, want 100000", got)
		}
		if got := read("cpu", "cpu.shares"); got != "512" {
			t.Fatalf("cpu.shares = %q, want 512", got)
		}
		if got := read("pids", "pids.max"); got != "64" {
			t.Fatalf("pids.max = %q, want 64", got)
		}
	}
	st, err := r.ContainerStats(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if st.MemoryUsageBytes == 0 && st.CPUUsageNanos == 0 {
		t.Fatalf("stats = %+v, want usage", st)
	}
}

func TestStopWithinGrace(t *testing.T) {
	r, _ := newTestRuntime(t)
	sb := newSandbox(t, r, "stop")
	tests := []struct {
		name  string
		args  []string
		grace time.Duration
		code  int32
	}{
		{name: "SIGTERM ends a cooperative program", args: []string{"sleep"}, grace: 30 * time.Second, code: 0},
		{name: "SIGKILL after grace", args: []string{"ignore-term"}, grace: time.Second, code: 137},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "c.log")
			id := run(t, r, sb, &runtimes.ContainerConfig{Name: "stop" + strconv.Itoa(i), Args: tc.args, LogPath: logPath})
			// Wait until the program has set up its signal handling.
			testutil.Eventually(t, 10*time.Second, func() error {
				b, _ := os.ReadFile(logPath)
				if len(b) == 0 {
					return errors.New("no output yet")
				}
				return nil
			})
			ch, err := r.WaitContainer(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			if err := r.StopContainer(context.Background(), id, tc.grace); err != nil {
				t.Fatalf("StopContainer: %v", err)
			}
			if took := time.Since(start); took > tc.grace+5*time.Second {
				t.Fatalf("stop took %v, grace %v", took, tc.grace)
			}
			select {
			case res := <-ch:
				if res.ExitCode != tc.code {
					t.Fatalf("exit = %+v, want code %d", res, tc.code)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no exit after StopContainer returned")
			}
			// Stop is idempotent.
			if err := r.StopContainer(context.Background(), id, tc.grace); err != nil {
				t.Fatalf("second StopContainer: %v", err)
			}
		})
	}
	if err := r.StopContainer(context.Background(), "no-such-container", time.Second); err != nil {
		t.Fatalf("StopContainer of an unknown id = %v, want nil", err)
	}
}

func TestAdoptionAfterRestart(t *testing.T) {
	r1, e := newTestRuntime(t)
	ctx := context.Background()
	sb, err := r1.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "test", Name: "adopt", Labels: map[string]string{"app": "adopt"}})
	if err != nil {
		t.Fatal(err)
	}
	id := run(t, r1, sb, &runtimes.ContainerConfig{Name: "long", Attempt: 3, Args: []string{"sleep"}, Labels: map[string]string{"team": "a"}})
	r1.Close()

	r2, err := New(ctx, testConfig(e), testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	defer func() {
		if err := r2.RemoveSandbox(ctx, sb.ID); err != nil {
			t.Errorf("RemoveSandbox via the new runtime: %v", err)
		}
	}()
	sbs, err := r2.ListSandboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var found *runtimes.Sandbox
	for _, s := range sbs {
		if s.ID == sb.ID {
			found = s
		}
	}
	if found == nil || found.Name != "adopt" || found.IP != sb.IP || found.State != runtimes.SandboxReady || found.Labels["app"] != "adopt" {
		t.Fatalf("ListSandboxes after restart = %+v, want %+v", found, sb)
	}
	cs, err := r2.ListContainers(ctx, sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(cs) != 1 || cs[0].ID != id || cs[0].Name != "long" || cs[0].Attempt != 3 || cs[0].State != runtimes.ContainerRunning ||
		cs[0].SandboxID != sb.ID || cs[0].Labels["team"] != "a" || cs[0].Image != e.image || cs[0].StartedAt.IsZero() {
		t.Fatalf("ListContainers after restart = %+v", cs)
	}
	ch, err := r2.WaitContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.StopContainer(ctx, id, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if res := <-ch; res.Err != nil || res.ExitCode != 0 {
		t.Fatalf("wait via the new runtime = %+v", res)
	}
}

func TestFailedCreateLeavesNothing(t *testing.T) {
	r, e := newTestRuntime(t)
	ctx := context.Background()
	// An image with neither ENTRYPOINT nor CMD cannot run without a command.
	bare, err := buildImage(e.appBin, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	bareRef := strings.TrimPrefix(e.registry.URL, "http://") + "/kyb/bare:v1"
	if err := pushImage(bareRef, bare); err != nil {
		t.Fatal(err)
	}
	if _, err := r.EnsureImage(ctx, bareRef, runtimes.PullIfNotPresent, nil); err != nil {
		t.Fatal(err)
	}
	sb := newSandbox(t, r, "failing")
	before := countLeaks(t, r)
	tests := []struct {
		name string
		sb   string
		cfg  runtimes.ContainerConfig
		is   error
	}{
		{name: "no command", sb: sb.ID, cfg: runtimes.ContainerConfig{Name: "c", Image: bareRef}},
		{name: "image not present", sb: sb.ID, cfg: runtimes.ContainerConfig{Name: "c", Image: "kyb.test/never-pulled:v1"}, is: runtimes.ErrNotFound},
		{name: "unknown sandbox", sb: "nope", cfg: runtimes.ContainerConfig{Name: "c", Image: e.image}, is: runtimes.ErrNotFound},
		{name: "relative mount", sb: sb.ID, cfg: runtimes.ContainerConfig{Name: "c", Image: e.image, Mounts: []runtimes.Mount{{HostPath: "rel", ContainerPath: "/x"}}}},
		{name: "bad env name", sb: sb.ID, cfg: runtimes.ContainerConfig{Name: "c", Image: e.image, Env: []runtimes.EnvVar{{Name: "A=B"}}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			id, err := r.CreateContainer(ctx, tc.sb, &cfg)
			if err == nil {
				t.Fatalf("CreateContainer succeeded with id %s", id)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("err = %v, want %v", err, tc.is)
			}
			if after := countLeaks(t, r); after != before {
				t.Fatalf("leaked: before %+v after %+v", before, after)
			}
		})
	}
}
