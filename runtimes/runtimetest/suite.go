package runtimetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
)

// Harness is what a runtime supplies to the suite.
type Harness struct {
	// New builds a runtime keeping its state in stateDir. The suite calls
	// it a second time with the same directory to play an agent restart.
	// Required.
	New func(t *testing.T, stateDir string) runtimes.Runtime
	// Image references the test program (testprog) in the form the runtime
	// runs: a wasm module, an image whose entrypoint is testprog, or the
	// fake's "fake://prog". Required.
	Image string
	// Command is put before the program's verbs in ContainerConfig.Command
	// (e.g. ["/testprog"] for an image without an entrypoint); the verbs
	// go in Args. Usually nil.
	Command []string
	// ExecCommand is put before the program's verbs in an ExecSync command
	// (e.g. ["/testprog"] for an image whose entrypoint it is: an exec does
	// not go through the entrypoint). Usually nil.
	ExecCommand []string
	// Close, if set, is called on the first instance before the second is
	// built on the same state directory, to play the agent process ending
	// (for in-process runtimes: kill what runs, without recording exits).
	Close func(t *testing.T, rt runtimes.Runtime)
	// SurvivesRestart says containers keep running across an agent restart
	// (containerd). When false, a container running at the restart must be
	// reported exited by the new instance.
	SurvivesRestart bool
	// PrepareSandbox, if set, adjusts every sandbox config the suite makes
	// (e.g. to set PodCIDR).
	PrepareSandbox func(cfg *runtimes.SandboxConfig)
	// Timeout bounds each wait of the suite; 30s when zero.
	Timeout time.Duration
}

type suite struct {
	h  Harness
	rt runtimes.Runtime
}

// Run runs the conformance suite against the runtime that h builds, each
// case as a subtest. Most cases share one runtime instance; the restart
// case builds its own pair.
func Run(t *testing.T, h Harness) {
	if h.New == nil || h.Image == "" {
		t.Fatal("runtimetest: Harness.New and Harness.Image are required")
	}
	if h.Timeout == 0 {
		h.Timeout = 30 * time.Second
	}
	s := &suite{h: h, rt: h.New(t, t.TempDir())}
	ctx, cancel := context.WithTimeout(context.Background(), 5*h.Timeout)
	defer cancel()
	info, err := s.rt.Info(ctx)
	if err != nil {
		t.Fatalf("Info: %v", err)
	}
	if info.Name == "" {
		t.Fatalf("Info: empty runtime name")
	}
	img, err := s.rt.EnsureImage(ctx, h.Image, runtimes.PullIfNotPresent, nil)
	if err != nil {
		t.Fatalf("EnsureImage(%q): %v", h.Image, err)
	}
	if img.Digest == "" {
		t.Fatalf("EnsureImage(%q): empty digest", h.Image)
	}

	t.Run("ExitCodes", s.testExitCodes)
	t.Run("EnvAndArgs", s.testEnvAndArgs)
	t.Run("Logs", s.testLogs)
	t.Run("States", s.testStates)
	t.Run("StopSpinning", s.testStopSpinning)
	t.Run("StopIdempotent", s.testStopIdempotent)
	t.Run("NotFound", s.testNotFound)
	t.Run("Remove", s.testRemove)
	t.Run("Mounts", s.testMounts)
	t.Run("Concurrent", s.testConcurrent)
	t.Run("Restart", s.testRestart)
	if _, ok := s.rt.(runtimes.Execer); ok {
		t.Run("Exec", s.testExec)
	}
	if _, ok := s.rt.(runtimes.Attacher); ok {
		t.Run("Attach", s.testAttach)
	}
}

func (s *suite) ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*s.h.Timeout)
	t.Cleanup(cancel)
	return ctx
}

var seq struct {
	sync.Mutex
	n int
}

func uniq(prefix string) string {
	seq.Lock()
	defer seq.Unlock()
	seq.n++
	return fmt.Sprintf("%s-%d", prefix, seq.n)
}

func (s *suite) sandbox(t *testing.T, rt runtimes.Runtime) *runtimes.Sandbox {
	t.Helper()
	sb := s.sandboxNoCleanup(t, rt)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
		defer cancel()
		if err := rt.RemoveSandbox(ctx, sb.ID); err != nil {
			t.Errorf("cleanup: RemoveSandbox: %v", err)
		}
	})
	return sb
}

func (s *suite) sandboxNoCleanup(t *testing.T, rt runtimes.Runtime) *runtimes.Sandbox {
	t.Helper()
	name := uniq("pod")
	cfg := &runtimes.SandboxConfig{
		Namespace: "rtt",
		Name:      name,
		UID:       "uid-" + name,
		Hostname:  name,
		Labels:    map[string]string{"suite": "runtimetest", "pod": name},
	}
	if s.h.PrepareSandbox != nil {
		s.h.PrepareSandbox(cfg)
	}
	sb, err := rt.CreateSandbox(s.ctx(t), cfg)
	if err != nil {
		t.Fatalf("CreateSandbox: %v", err)
	}
	if sb.ID == "" || sb.Name != name || sb.Namespace != "rtt" || sb.UID != cfg.UID {
		t.Fatalf("CreateSandbox returned %+v, want ID set and name/namespace/uid as asked", sb)
	}
	if sb.State != runtimes.SandboxReady {
		t.Fatalf("CreateSandbox: state %v, want ready", sb.State)
	}
	return sb
}

// container creates (not starts) a container running the test program with
// the given verbs, logging to a fresh file.
func (s *suite) container(t *testing.T, rt runtimes.Runtime, sb *runtimes.Sandbox, mod func(*runtimes.ContainerConfig), verbs ...string) (string, *runtimes.ContainerConfig) {
	t.Helper()
	name := uniq("c")
	cfg := &runtimes.ContainerConfig{
		Name:    name,
		Image:   s.h.Image,
		Command: slices.Clone(s.h.Command),
		Args:    verbs,
		Labels:  map[string]string{"container": name},
		LogPath: filepath.Join(t.TempDir(), name+".log"),
	}
	if mod != nil {
		mod(cfg)
	}
	id, err := rt.CreateContainer(s.ctx(t), sb.ID, cfg)
	if err != nil {
		t.Fatalf("CreateContainer %s: %v", name, err)
	}
	if id == "" {
		t.Fatalf("CreateContainer %s: empty id", name)
	}
	return id, cfg
}

func (s *suite) start(t *testing.T, rt runtimes.Runtime, id string) {
	t.Helper()
	if err := rt.StartContainer(s.ctx(t), id); err != nil {
		t.Fatalf("StartContainer %s: %v", id, err)
	}
}

func (s *suite) wait(t *testing.T, rt runtimes.Runtime, id string) runtimes.ExitResult {
	t.Helper()
	ch, err := rt.WaitContainer(s.ctx(t), id)
	if err != nil {
		t.Fatalf("WaitContainer %s: %v", id, err)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			t.Fatalf("WaitContainer %s: result error %v", id, r.Err)
		}
		return r
	case <-time.After(s.h.Timeout):
		t.Fatalf("WaitContainer %s: no exit after %v", id, s.h.Timeout)
	}
	panic("unreachable")
}

func (s *suite) status(t *testing.T, rt runtimes.Runtime, id string) *runtimes.ContainerStatus {
	t.Helper()
	st, err := rt.ContainerStatus(s.ctx(t), id)
	if err != nil {
		t.Fatalf("ContainerStatus %s: %v", id, err)
	}
	return st
}

// run creates and starts a container and waits for it to exit.
func (s *suite) run(t *testing.T, sb *runtimes.Sandbox, mod func(*runtimes.ContainerConfig), verbs ...string) (runtimes.ExitResult, string, *runtimes.ContainerConfig) {
	t.Helper()
	id, cfg := s.container(t, s.rt, sb, mod, verbs...)
	s.start(t, s.rt, id)
	return s.wait(t, s.rt, id), id, cfg
}

// logHas waits until the log file holds every line in want.
func (s *suite) logHas(t *testing.T, path string, want ...string) {
	t.Helper()
	testutil.Eventually(t, s.h.Timeout, func() error {
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, w := range want {
			if !strings.Contains(string(b), w) {
				return fmt.Errorf("log %s lacks %q; it holds:\n%s", path, w, b)
			}
		}
		return nil
	})
}

func (s *suite) testExitCodes(t *testing.T) {
	sb := s.sandbox(t, s.rt)
	for _, tc := range []struct {
		name   string
		verbs  []string
		code   int32
		reason string
	}{
		{"zero", []string{"out", "bye"}, 0, runtimes.ReasonCompleted},
		{"explicit zero", []string{"exit", "0"}, 0, runtimes.ReasonCompleted},
		{"three", []string{"exit", "3"}, 3, runtimes.ReasonFailed},
		{"one", []string{"err", "failing", "exit", "1"}, 1, runtimes.ReasonFailed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, id, cfg := s.run(t, sb, nil, tc.verbs...)
			if res.ExitCode != tc.code || res.Reason != tc.reason {
				t.Errorf("WaitContainer: exit %d reason %q, want %d %q (message %q)", res.ExitCode, res.Reason, tc.code, tc.reason, res.Message)
			}
			if res.FinishedAt.IsZero() {
				t.Errorf("WaitContainer: FinishedAt is zero")
			}
			st := s.status(t, s.rt, id)
			if st.State != runtimes.ContainerExited || st.ExitCode != tc.code || st.Reason != tc.reason {
				t.Errorf("ContainerStatus: state %v exit %d reason %q, want exited %d %q", st.State, st.ExitCode, st.Reason, tc.code, tc.reason)
			}
			if st.ID != id || st.SandboxID != sb.ID || st.Name != cfg.Name || st.Image != cfg.Image || st.LogPath != cfg.LogPath {
				t.Errorf("ContainerStatus: %+v does not match id %s sandbox %s config %+v", st, id, sb.ID, cfg)
			}
			if st.ImageRef == "" {
				t.Errorf("ContainerStatus: empty ImageRef")
			}
			if st.CreatedAt.IsZero() || st.StartedAt.IsZero() || st.FinishedAt.Before(st.StartedAt) {
				t.Errorf("ContainerStatus: times created %v started %v finished %v", st.CreatedAt, st.StartedAt, st.FinishedAt)
			}
			// A second wait on an exited container answers at once.
			if again := s.wait(t, s.rt, id); again.ExitCode != tc.code {
				t.Errorf("second WaitContainer: exit %d, want %d", again.ExitCode, tc.code)
			}
		})
	}
}

func (s *suite) testEnvAndArgs(t *testing.T) {
	sb := s.sandbox(t, s.rt)
	res, _, cfg := s.run(t, sb, func(c *runtimes.ContainerConfig) {
		c.Env = []runtimes.EnvVar{{Name: "GREETING", Value: "hello world"}, {Name: "EMPTY", Value: ""}}
	}, "env", "GREETING", "env", "EMPTY", "env", "ABSENT_VAR", "args", "with space")
	if res.ExitCode != 64 {
		// "with space" is not a verb: the program prints its args first,
		// then fails on it, proving the argument arrived whole.
		t.Errorf("exit %d, want 64 (unknown verb)", res.ExitCode)
	}
	s.logHas(t, cfg.LogPath,
		"GREETING=hello world\n",
		"EMPTY=\n",
		"ABSENT_VAR unset\n",
		"args:env|GREETING|env|EMPTY|env|ABSENT_VAR|args|with space\n",
		`unknown verb "with space"`)
}

func (s *suite) testLogs(t *testing.T) {
	sb := s.sandbox(t, s.rt)
	res, _, cfg := s.run(t, sb, nil, "out", "to stdout", "err", "to stderr", "out", "again")
	if res.ExitCode != 0 {
		t.Fatalf("exit %d, want 0", res.ExitCode)
	}
	s.logHas(t, cfg.LogPath, "to stdout\n", "to stderr\n", "again\n")
}

func (s *suite) testStates(t *testing.T) {
	sb := s.sandbox(t, s.rt)
	id, _ := s.container(t, s.rt, sb, nil, "out", "up", "sleep", "forever")
	if st := s.status(t, s.rt, id); st.State != runtimes.ContainerCreated {
		t.Fatalf("after create: state %v, want created", st.State)
	}
	s.start(t, s.rt, id)
	testutil.Eventually(t, s.h.Timeout, func() error {
		if st := s.status(t, s.rt, id); st.State != runtimes.ContainerRunning {
			return fmt.Errorf("after start: state %v, want running", st.State)
		}
		return nil
	})
	if st := s.status(t, s.rt, id); st.StartedAt.IsZero() {
		t.Errorf("running: StartedAt is zero")
	}
	list, err := s.rt.ListContainers(s.ctx(t), sb.ID)
	if err != nil {
		t.Fatalf("ListContainers: %v", err)
	}
	if len(list) != 1 || list[0].ID != id || list[0].State != runtimes.ContainerRunning {
		t.Fatalf("ListContainers: %+v, want only %s running", list, id)
	}
	ch, err := s.rt.WaitContainer(s.ctx(t), id)
	if err != nil {
		t.Fatalf("WaitContainer: %v", err)
	}
	select {
	case r := <-ch:
		t.Fatalf("WaitContainer yielded %+v while the container runs", r)
	default:
	}
	grace := time.Second
	start := time.Now()
	if err := s.rt.StopContainer(s.ctx(t), id, grace); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if d := time.Since(start); d > grace+10*time.Second {
		t.Errorf("StopContainer took %v, want at most grace %v + 10s", d, grace)
	}
	st := s.status(t, s.rt, id)
	if st.State != runtimes.ContainerExited {
		t.Fatalf("after stop: state %v, want exited", st.State)
	}
	if st.Reason == runtimes.ReasonCompleted && st.ExitCode != 0 {
		t.Errorf("after stop: reason Completed with exit %d", st.ExitCode)
	}
	select {
	case r := <-ch:
		if r.Err != nil {
			t.Errorf("WaitContainer result: %v", r.Err)
		}
		if r.ExitCode != st.ExitCode {
			t.Errorf("WaitContainer exit %d, status exit %d", r.ExitCode, st.ExitCode)
		}
	case <-time.After(s.h.Timeout):
		t.Fatalf("WaitContainer: nothing after the container stopped")
	}
	if err := s.rt.StartContainer(s.ctx(t), id); err == nil {
		t.Errorf("StartContainer on an exited container: no error")
	}
}

func (s *suite) testStopSpinning(t *testing.T) {
	sb := s.sandbox(t, s.rt)
	id, _ := s.container(t, s.rt, sb, nil, "loop")
	s.start(t, s.rt, id)
	testutil.Eventually(t, s.h.Timeout, func() error {
		if st := s.status(t, s.rt, id); st.State != runtimes.ContainerRunning {
			return fmt.Errorf("state %v, want running", st.State)
		}
		return nil
	})
	grace := 500 * time.Millisecond
	start := time.Now()
	if err := s.rt.StopContainer(s.ctx(t), id, grace); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if d := time.Since(start); d > grace+10*time.Second {
		t.Errorf("StopContainer took %v, want at most grace %v + 10s", d, grace)
	}
	st := s.status(t, s.rt, id)
	if st.State != runtimes.ContainerExited || st.ExitCode == 0 || st.Reason == runtimes.ReasonCompleted {
		t.Errorf("after stop: state %v exit %d reason %q, want exited, non-zero, not Completed", st.State, st.ExitCode, st.Reason)
	}
}

func (s *suite) testStopIdempotent(t *testing.T) {
	sb := s.sandbox(t, s.rt)
	res, id, _ := s.run(t, sb, nil, "exit", "2")
	for i := range 2 {
		if err := s.rt.StopContainer(s.ctx(t), id, time.Second); err != nil {
			t.Fatalf("StopContainer #%d on exited container: %v", i, err)
		}
	}
	if st := s.status(t, s.rt, id); st.ExitCode != res.ExitCode || st.State != runtimes.ContainerExited {
		t.Errorf("stop changed an exited container: %+v", st)
	}
	created, _ := s.container(t, s.rt, sb, nil, "exit", "0")
	if err := s.rt.StopContainer(s.ctx(t), created, time.Second); err != nil {
		t.Fatalf("StopContainer on a created container: %v", err)
	}
	if err := s.rt.RemoveContainer(s.ctx(t), created); err != nil {
		t.Fatalf("RemoveContainer after stopping a created container: %v", err)
	}
}

func (s *suite) testNotFound(t *testing.T) {
	ctx := s.ctx(t)
	const id = "no-such-id-0123456789"
	isNF := func(what string, err error) {
		t.Helper()
		if !errors.Is(err, runtimes.ErrNotFound) {
			t.Errorf("%s on unknown id: %v, want an error wrapping ErrNotFound", what, err)
		}
	}
	_, err := s.rt.ContainerStatus(ctx, id)
	isNF("ContainerStatus", err)
	isNF("StartContainer", s.rt.StartContainer(ctx, id))
	_, err = s.rt.WaitContainer(ctx, id)
	isNF("WaitContainer", err)
	_, err = s.rt.CreateContainer(ctx, id, &runtimes.ContainerConfig{Name: "x", Image: s.h.Image, LogPath: filepath.Join(t.TempDir(), "x.log")})
	isNF("CreateContainer in unknown sandbox", err)
	if list, err := s.rt.ListContainers(ctx, id); err != nil && !errors.Is(err, runtimes.ErrNotFound) || len(list) != 0 {
		t.Errorf("ListContainers of unknown sandbox: %v %v, want none (or ErrNotFound)", list, err)
	}
	if err := s.rt.StopContainer(ctx, id, time.Second); err != nil {
		t.Errorf("StopContainer on unknown id: %v, want nil (idempotent)", err)
	}
	if err := s.rt.RemoveContainer(ctx, id); err != nil {
		t.Errorf("RemoveContainer on unknown id: %v, want nil (idempotent)", err)
	}
	if err := s.rt.RemoveSandbox(ctx, id); err != nil {
		t.Errorf("RemoveSandbox on unknown id: %v, want nil (idempotent)", err)
	}
}

func (s *suite) testRemove(t *testing.T) {
	ctx := s.ctx(t)
	sb := s.sandbox(t, s.rt)
	_, done, _ := s.run(t, sb, nil, "exit", "0")
	if err := s.rt.RemoveContainer(ctx, done); err != nil {
		t.Fatalf("RemoveContainer: %v", err)
	}
	if _, err := s.rt.ContainerStatus(ctx, done); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("ContainerStatus after remove: %v, want ErrNotFound", err)
	}
	if err := s.rt.RemoveContainer(ctx, done); err != nil {
		t.Errorf("second RemoveContainer: %v", err)
	}
	running, _ := s.container(t, s.rt, sb, nil, "sleep", "forever")
	s.start(t, s.rt, running)
	created, _ := s.container(t, s.rt, sb, nil, "exit", "0")
	list, err := s.rt.ListContainers(ctx, sb.ID)
	if err != nil {
		t.Fatalf("ListContainers: %v", err)
	}
	if ids := statusIDs(list); !slices.Equal(ids, sortedIDs(running, created)) {
		t.Fatalf("ListContainers: %v, want %v", ids, sortedIDs(running, created))
	}
	if err := s.rt.RemoveSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("RemoveSandbox with a running container: %v", err)
	}
	for _, id := range []string{running, created} {
		if _, err := s.rt.ContainerStatus(ctx, id); !errors.Is(err, runtimes.ErrNotFound) {
			t.Errorf("ContainerStatus %s after RemoveSandbox: %v, want ErrNotFound", id, err)
		}
	}
	sbs, err := s.rt.ListSandboxes(ctx)
	if err != nil {
		t.Fatalf("ListSandboxes: %v", err)
	}
	for _, x := range sbs {
		if x.ID == sb.ID {
			t.Errorf("ListSandboxes still lists removed sandbox %s", sb.ID)
		}
	}
	all, err := s.rt.ListContainers(ctx, "")
	if err != nil {
		t.Fatalf("ListContainers(all): %v", err)
	}
	for _, c := range all {
		if c.SandboxID == sb.ID {
			t.Errorf("ListContainers still lists %s of removed sandbox", c.ID)
		}
	}
	if err := s.rt.RemoveSandbox(ctx, sb.ID); err != nil {
		t.Errorf("second RemoveSandbox: %v", err)
	}
}

func (s *suite) testMounts(t *testing.T) {
	sb := s.sandbox(t, s.rt)
	rw, ro := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "in.txt"), []byte("from the host"), 0o644); err != nil {
		t.Fatal(err)
	}
	mounts := func(c *runtimes.ContainerConfig) {
		c.Mounts = []runtimes.Mount{
			{HostPath: rw, ContainerPath: "/data"},
			{HostPath: ro, ContainerPath: "/config", ReadOnly: true},
		}
	}
	res, _, cfg := s.run(t, sb, mounts, "cat", "/config/in.txt", "write", "/data/out.txt", "from the container")
	if res.ExitCode != 0 {
		b, _ := os.ReadFile(cfg.LogPath)
		t.Fatalf("exit %d, want 0; log:\n%s", res.ExitCode, b)
	}
	s.logHas(t, cfg.LogPath, "from the host\n")
	b, err := os.ReadFile(filepath.Join(rw, "out.txt"))
	if err != nil || string(b) != "from the container" {
		t.Errorf("host file written through the mount: %q %v, want %q", b, err, "from the container")
	}
	res, _, _ = s.run(t, sb, mounts, "write", "/config/out.txt", "nope")
	if res.ExitCode == 0 {
		t.Errorf("write to a read-only mount: exit 0, want failure")
	}
	if _, err := os.Stat(filepath.Join(ro, "out.txt")); err == nil {
		t.Errorf("write to a read-only mount reached the host")
	}
}

func (s *suite) testConcurrent(t *testing.T) {
	sb := s.sandbox(t, s.rt)
	const n = 8
	type made struct {
		id  string
		cfg *runtimes.ContainerConfig
	}
	var cs [n]made
	for i := range n {
		id, cfg := s.container(t, s.rt, sb, nil, "out", fmt.Sprintf("worker %d", i), "exit", fmt.Sprint(i%4))
		cs[i] = made{id, cfg}
	}
	var wg sync.WaitGroup
	results := make([]runtimes.ExitResult, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			ch, err := s.rt.WaitContainer(ctx, cs[i].id)
			if err != nil {
				errs[i] = err
				return
			}
			if err := s.rt.StartContainer(ctx, cs[i].id); err != nil {
				errs[i] = err
				return
			}
			select {
			case results[i] = <-ch:
			case <-time.After(s.h.Timeout):
				errs[i] = fmt.Errorf("no exit after %v", s.h.Timeout)
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("container %d: %v", i, errs[i])
			continue
		}
		if results[i].ExitCode != int32(i%4) {
			t.Errorf("container %d: exit %d, want %d", i, results[i].ExitCode, i%4)
		}
		s.logHas(t, cs[i].cfg.LogPath, fmt.Sprintf("worker %d\n", i))
	}
}

func (s *suite) testRestart(t *testing.T) {
	dir := t.TempDir()
	first := s.h.New(t, dir)
	sb := s.sandboxNoCleanup(t, first) // the second instance removes it
	ctx := s.ctx(t)
	attempt := func(c *runtimes.ContainerConfig) { c.Attempt = 2 }
	done, _ := s.container(t, first, sb, attempt, "exit", "5")
	s.start(t, first, done)
	s.wait(t, first, done)
	running, _ := s.container(t, first, sb, nil, "sleep", "forever")
	s.start(t, first, running)
	created, _ := s.container(t, first, sb, nil, "exit", "0")
	testutil.Eventually(t, s.h.Timeout, func() error {
		if st := s.status(t, first, running); st.State != runtimes.ContainerRunning {
			return fmt.Errorf("state %v, want running", st.State)
		}
		return nil
	})
	before, err := first.ListContainers(ctx, sb.ID)
	if err != nil {
		t.Fatalf("ListContainers: %v", err)
	}
	if s.h.Close != nil {
		s.h.Close(t, first)
	}

	second := s.h.New(t, dir)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), s.h.Timeout)
		defer cancel()
		if err := second.RemoveSandbox(ctx, sb.ID); err != nil {
			t.Errorf("cleanup: RemoveSandbox on the new instance: %v", err)
		}
	})
	sbs, err := second.ListSandboxes(ctx)
	if err != nil {
		t.Fatalf("ListSandboxes after restart: %v", err)
	}
	i := slices.IndexFunc(sbs, func(x *runtimes.Sandbox) bool { return x.ID == sb.ID })
	if i < 0 {
		t.Fatalf("ListSandboxes after restart: %s missing from %v", sb.ID, sbs)
	}
	if got := sbs[i]; got.Name != sb.Name || got.Namespace != sb.Namespace || got.UID != sb.UID || got.Labels["pod"] != sb.Name {
		t.Errorf("sandbox after restart: %+v, want like %+v", got, sb)
	}
	after, err := second.ListContainers(ctx, sb.ID)
	if err != nil {
		t.Fatalf("ListContainers after restart: %v", err)
	}
	if got, want := statusIDs(after), statusIDs(before); !slices.Equal(got, want) {
		t.Fatalf("ListContainers after restart: %v, want %v", got, want)
	}
	byID := map[string]*runtimes.ContainerStatus{}
	for _, c := range after {
		byID[c.ID] = c
	}
	for _, c := range before {
		got := byID[c.ID]
		if got.Name != c.Name || got.Labels["container"] != c.Name || got.Attempt != c.Attempt || got.SandboxID != sb.ID || got.Image != c.Image {
			t.Errorf("container after restart: %+v, want like %+v", got, c)
		}
	}
	if d := byID[done]; d.State != runtimes.ContainerExited || d.ExitCode != 5 || d.Reason != runtimes.ReasonFailed || d.Attempt != 2 {
		t.Errorf("exited container after restart: state %v exit %d reason %q attempt %d, want exited 5 Error 2", d.State, d.ExitCode, d.Reason, d.Attempt)
	}
	r := byID[running]
	switch {
	case s.h.SurvivesRestart:
		if r.State != runtimes.ContainerRunning {
			t.Errorf("running container after restart: state %v, want still running", r.State)
		}
	default:
		if r.State != runtimes.ContainerExited || r.ExitCode == 0 || r.Reason == "" || r.Reason == runtimes.ReasonCompleted {
			t.Errorf("running container after restart: state %v exit %d reason %q, want exited, non-zero, a reason other than Completed", r.State, r.ExitCode, r.Reason)
		}
		if res := s.wait(t, second, running); res.ExitCode != r.ExitCode {
			t.Errorf("WaitContainer after restart: exit %d, status says %d", res.ExitCode, r.ExitCode)
		}
	}
	if c := byID[created]; c.State != runtimes.ContainerCreated && c.State != runtimes.ContainerExited {
		t.Errorf("created container after restart: state %v, want created or exited", c.State)
	}
	if res := s.wait(t, second, done); res.ExitCode != 5 {
		t.Errorf("WaitContainer after restart: exit %d, want 5", res.ExitCode)
	}
	if err := second.StopContainer(ctx, running, time.Second); err != nil {
		t.Errorf("StopContainer after restart: %v", err)
	}
	if err := second.RemoveSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("RemoveSandbox after restart: %v", err)
	}
	if list, err := second.ListContainers(ctx, ""); err != nil || slices.ContainsFunc(list, func(c *runtimes.ContainerStatus) bool { return c.SandboxID == sb.ID }) {
		t.Errorf("ListContainers after RemoveSandbox: %v %v, want none of %s", statusIDs(list), err, sb.ID)
	}
	// A third instance sees the removal too.
	third := s.h.New(t, dir)
	sbs, err = third.ListSandboxes(ctx)
	if err != nil {
		t.Fatalf("ListSandboxes on a third instance: %v", err)
	}
	if slices.ContainsFunc(sbs, func(x *runtimes.Sandbox) bool { return x.ID == sb.ID }) {
		t.Errorf("third instance still lists removed sandbox %s", sb.ID)
	}
}

func statusIDs(list []*runtimes.ContainerStatus) []string {
	ids := make([]string, 0, len(list))
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	slices.Sort(ids)
	return ids
}

func sortedIDs(ids ...string) []string {
	slices.Sort(ids)
	return ids
}

// testExec: a runtime that implements runtimes.Execer runs a command in a
// running container, with its env and mounts, returns its exit code and
// output, kills it past its timeout, and refuses a container that is not
// running; the container runs on.
func (s *suite) testExec(t *testing.T) {
	ex := s.rt.(runtimes.Execer)
	sb := s.sandbox(t, s.rt)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "probe"), []byte("healthy\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	id, _ := s.container(t, s.rt, sb, func(c *runtimes.ContainerConfig) {
		c.Env = []runtimes.EnvVar{{Name: "GREETING", Value: "hi"}}
		c.Mounts = []runtimes.Mount{{HostPath: dir, ContainerPath: "/data"}}
	}, "sleep", "forever")
	s.start(t, s.rt, id)
	ctx := s.ctx(t)
	cmd := func(verbs ...string) []string { return append(slices.Clone(s.h.ExecCommand), verbs...) }
	for _, tc := range []struct {
		name   string
		cmd    []string
		code   int32
		output string
	}{
		{"cat a mounted file", cmd("cat", "/data/probe"), 0, "healthy"},
		{"env", cmd("env", "GREETING"), 0, "GREETING=hi"},
		{"exit code", cmd("exit", "7"), 7, ""},
		{"missing file", cmd("cat", "/data/nope"), 1, ""},
	} {
		res, err := ex.ExecSync(ctx, id, tc.cmd, s.h.Timeout)
		if err != nil {
			t.Errorf("%s: ExecSync: %v", tc.name, err)
			continue
		}
		if res.ExitCode != tc.code || !strings.Contains(string(res.Output), tc.output) {
			t.Errorf("%s: exit %d output %q, want %d containing %q", tc.name, res.ExitCode, res.Output, tc.code, tc.output)
		}
	}
	if res, err := ex.ExecSync(ctx, id, cmd("sleep", "forever"), 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ExecSync past its timeout: %+v, %v; want DeadlineExceeded", res, err)
	}
	if st := s.status(t, s.rt, id); st.State != runtimes.ContainerRunning {
		t.Errorf("after the execs the container is %v, want running", st.State)
	}
	if err := s.rt.StopContainer(ctx, id, 0); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if _, err := ex.ExecSync(ctx, id, cmd("exit", "0"), s.h.Timeout); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("ExecSync in an exited container: %v, want ErrNotFound", err)
	}
	if _, err := ex.ExecSync(ctx, "no-such-container", cmd("exit", "0"), s.h.Timeout); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("ExecSync in an unknown container: %v, want ErrNotFound", err)
	}
}

// testAttach: a runtime that implements runtimes.Attacher writes to a
// running container's own stdin: the program echoes it into its log; a
// closed attachment (a detach) leaves stdin open, and a second one reaches
// the same process; with StdinOnce the first Close is the program's end of
// input (it exits); a container created without Stdin is ErrNoStdin (and
// read end of input at once); an unknown container is ErrNotFound.
func (s *suite) testAttach(t *testing.T) {
	att := s.rt.(runtimes.Attacher)
	sb := s.sandbox(t, s.rt)
	ctx := s.ctx(t)
	write := func(id, text string) runtimes.ExitResult {
		t.Helper()
		w, err := att.AttachStdin(ctx, id)
		if err != nil {
			t.Fatalf("AttachStdin %s: %v", id, err)
		}
		if _, err := w.Write([]byte(text)); err != nil {
			t.Fatalf("write stdin of %s: %v", id, err)
		}
		return runtimes.ExitResult{Err: w.Close()}
	}

	id, cfg := s.container(t, s.rt, sb, func(c *runtimes.ContainerConfig) { c.Stdin = true }, "stdin", "out", "input ended")
	s.start(t, s.rt, id)
	write(id, "first line\n")
	s.logHas(t, cfg.LogPath, "first line")
	write(id, "second line\n")
	s.logHas(t, cfg.LogPath, "second line")
	if st := s.status(t, s.rt, id); st.State != runtimes.ContainerRunning {
		t.Errorf("after two detached attachments the container is %v, want running", st.State)
	}
	if err := s.rt.StopContainer(ctx, id, 0); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if _, err := att.AttachStdin(ctx, id); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("AttachStdin of an exited container: %v, want ErrNotFound", err)
	}

	once, ocfg := s.container(t, s.rt, sb, func(c *runtimes.ContainerConfig) { c.Stdin, c.StdinOnce = true, true },
		"stdin", "out", "input ended", "exit", "3")
	s.start(t, s.rt, once)
	write(once, "only once\n")
	if r := s.wait(t, s.rt, once); r.ExitCode != 3 {
		t.Errorf("StdinOnce: exit %d after the first attachment closed, want 3", r.ExitCode)
	}
	s.logHas(t, ocfg.LogPath, "only once", "input ended")

	none, ncfg := s.container(t, s.rt, sb, nil, "stdin", "out", "no input", "sleep", "forever")
	s.start(t, s.rt, none)
	s.logHas(t, ncfg.LogPath, "no input")
	if _, err := att.AttachStdin(ctx, none); !errors.Is(err, runtimes.ErrNoStdin) {
		t.Errorf("AttachStdin of a container without stdin: %v, want ErrNoStdin", err)
	}
	if err := s.rt.StopContainer(ctx, none, 0); err != nil {
		t.Fatalf("StopContainer: %v", err)
	}
	if _, err := att.AttachStdin(ctx, "no-such-container"); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("AttachStdin of an unknown container: %v, want ErrNotFound", err)
	}
}
