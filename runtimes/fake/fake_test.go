package fake_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/fake"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

func TestConformance(t *testing.T) {
	runtimetest.Run(t, runtimetest.Harness{
		New: func(t *testing.T, stateDir string) runtimes.Runtime {
			rt, err := fake.New(fake.Config{StateDir: stateDir}, nil)
			if err != nil {
				t.Fatal(err)
			}
			return rt
		},
		Image: "fake://prog",
		Close: func(t *testing.T, rt runtimes.Runtime) { rt.(*fake.Runtime).Close() },
	})
}

func TestScripts(t *testing.T) {
	rt, err := fake.New(fake.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sb, err := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "default", Name: "p"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		image  string
		stop   bool
		code   int32
		reason string
	}{
		{"fake://exit/0", false, 0, runtimes.ReasonCompleted},
		{"fake://exit/7", false, 7, runtimes.ReasonFailed},
		{"fake://sleep/10ms", false, 0, runtimes.ReasonCompleted},
		{"fake://oom", false, 137, runtimes.ReasonOOMKilled},
		{"fake://run", true, 0, runtimes.ReasonCompleted},
		{"docker.io/library/nginx:1", true, 0, runtimes.ReasonCompleted},
		{"fake://hang", true, 137, runtimes.ReasonFailed},
	} {
		t.Run(tc.image, func(t *testing.T) {
			id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: tc.image, LogPath: filepath.Join(t.TempDir(), "log")})
			if err != nil {
				t.Fatal(err)
			}
			ch, err := rt.WaitContainer(ctx, id)
			if err != nil {
				t.Fatal(err)
			}
			if err := rt.StartContainer(ctx, id); err != nil {
				t.Fatal(err)
			}
			if tc.stop {
				if err := rt.StopContainer(ctx, id, 50*time.Millisecond); err != nil {
					t.Fatal(err)
				}
			}
			res := <-ch
			if res.ExitCode != tc.code || res.Reason != tc.reason {
				t.Errorf("exit %d %q, want %d %q", res.ExitCode, res.Reason, tc.code, tc.reason)
			}
		})
	}
}

func TestFailures(t *testing.T) {
	rt, err := fake.New(fake.Config{Name: "wasm"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if info, _ := rt.Info(ctx); info.Name != "wasm" {
		t.Errorf("Info name %q, want wasm", info.Name)
	}
	for _, tc := range []struct {
		ref       string
		reason    string
		retryable bool
	}{
		{"fake://pullerror", "ErrImagePull", true},
		{"fake://invalid", "InvalidImageName", false},
	} {
		_, err := rt.EnsureImage(ctx, tc.ref, runtimes.PullIfNotPresent, nil)
		var re *runtimes.ReasonError
		if !errors.As(err, &re) || re.Reason != tc.reason || re.Retryable != tc.retryable {
			t.Errorf("EnsureImage(%s): %v, want reason %s retryable %v", tc.ref, err, tc.reason, tc.retryable)
		}
	}
	boom := errors.New("boom")
	rt.SetHooks(fake.Hooks{StartContainer: func(ctx context.Context, id string) error { return boom }})
	sb, _ := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Name: "p"})
	id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: "fake://run", LogPath: filepath.Join(t.TempDir(), "log")})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, id); !errors.Is(err, boom) {
		t.Errorf("StartContainer with hook: %v, want boom", err)
	}
	calls := rt.Calls()
	if last := calls[len(calls)-1]; last != "StartContainer "+id {
		t.Errorf("last call %q", last)
	}
}

// BenchmarkLifecycle measures create+start+wait+remove of a fake://exit/0
// container, in memory: the runtime cost a hollow node pays per pod.
func BenchmarkLifecycle(b *testing.B) {
	rt, err := fake.New(fake.Config{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	sb, err := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Name: "p"})
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: "fake://exit/0"})
		if err != nil {
			b.Fatal(err)
		}
		ch, _ := rt.WaitContainer(ctx, id)
		if err := rt.StartContainer(ctx, id); err != nil {
			b.Fatal(err)
		}
		<-ch
		if err := rt.RemoveContainer(ctx, id); err != nil {
			b.Fatal(err)
		}
	}
}

func TestExit(t *testing.T) {
	rt, err := fake.New(fake.Config{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sb, _ := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Name: "p"})
	id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: "fake://run"})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Exit(ctx, id, 1, "", ""); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("Exit of a created container: %v, want ErrNotFound", err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := rt.Exit(ctx, id, 137, runtimes.ReasonOOMKilled, "boom"); err != nil {
		t.Fatal(err)
	}
	st, err := rt.ContainerStatus(ctx, id)
	if err != nil || st.State != runtimes.ContainerExited || st.ExitCode != 137 || st.Reason != runtimes.ReasonOOMKilled || st.Message != "boom" {
		t.Errorf("after Exit: %+v %v", st, err)
	}
}

// IDs and names that would become path elements are refused, so a bug in
// the agent cannot turn them into host paths (the fake stands in for real
// runtimes in the agent's tests, and must be as strict).
func TestRefusesPathsInIDs(t *testing.T) {
	ctx := context.Background()
	rt, err := fake.New(fake.Config{StateDir: t.TempDir()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rt.Close()
	if _, err := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "default", Name: "p", UID: "../../../victim"}); runtimes.ReasonOf(err, "") != "InvalidConfig" {
		t.Errorf("create sandbox with uid ../../../victim = %v, want InvalidConfig", err)
	}
	sb, err := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "default", Name: "p", UID: "uid-p"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "../c", Image: "fake://run"}); runtimes.ReasonOf(err, "") != "InvalidConfig" {
		t.Errorf("create container named ../c = %v, want InvalidConfig", err)
	}
	if _, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: "fake://run", LogPath: "relative.log"}); runtimes.ReasonOf(err, "") != "InvalidConfig" {
		t.Errorf("create container with a relative log path = %v, want InvalidConfig", err)
	}
	if sbs, _ := rt.ListSandboxes(ctx); len(sbs) != 1 {
		t.Errorf("%d sandboxes, want 1", len(sbs))
	}
}
