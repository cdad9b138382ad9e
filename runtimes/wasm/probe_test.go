package wasm_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// TestExecSyncRunsANewInstance: an exec probe's command runs as a new
// instance of the container's module, with the container's mounts and env,
// and its exit code and output come back; the container keeps running.
func TestExecSyncRunsANewInstance(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	ctx := ctxT(t)
	mod := precompiled(t, runtimetest.BuildTestProg(t, "wasip1", "wasm"))
	data := t.TempDir()
	sb := sandbox(t, rt)
	cfg := &runtimes.ContainerConfig{
		Name: "app", Image: fileRef(mod), Args: []string{"sleep", "forever"},
		Env:     []runtimes.EnvVar{{Name: "GREETING", Value: "hi"}},
		Mounts:  []runtimes.Mount{{HostPath: data, ContainerPath: "/data"}},
		LogPath: filepath.Join(t.TempDir(), "log"),
	}
	id, err := rt.CreateContainer(ctx, sb.ID, cfg)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	if err := os.WriteFile(filepath.Join(data, "healthy"), []byte("ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		cmd      []string
		before   func()
		code     int32
		output   string
		deadline bool
	}{
		{name: "file present", cmd: []string{"cat", "/data/healthy"}, code: 0, output: "ok"},
		{name: "argv and env", cmd: []string{"args", "env", "GREETING"}, code: 0, output: "args:args|env|GREETING\nGREETING=hi"},
		{name: "exit code", cmd: []string{"exit", "3"}, code: 3},
		{name: "file gone", cmd: []string{"cat", "/data/healthy"}, before: func() { os.Remove(filepath.Join(data, "healthy")) }, code: 1},
		{name: "timeout", cmd: []string{"sleep", "forever"}, deadline: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.before != nil {
				tc.before()
			}
			res, err := rt.ExecSync(ctx, id, tc.cmd, 200*time.Millisecond)
			if tc.deadline {
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("ExecSync past its timeout: %v, %+v; want DeadlineExceeded", err, res)
				}
				return
			}
			if err != nil {
				t.Fatalf("ExecSync: %v", err)
			}
			if res.ExitCode != tc.code || !strings.Contains(string(res.Output), tc.output) {
				t.Errorf("exit %d output %q, want %d containing %q", res.ExitCode, res.Output, tc.code, tc.output)
			}
		})
	}
	if st, err := rt.ContainerStatus(ctx, id); err != nil || st.State != runtimes.ContainerRunning {
		t.Errorf("the container after the execs: %+v %v, want running", st, err)
	}
	if _, err := rt.ExecSync(ctx, "nope", []string{"exit", "0"}, time.Second); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("ExecSync on an unknown container: %v, want ErrNotFound", err)
	}
	if err := rt.StopContainer(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.ExecSync(ctx, id, []string{"exit", "0"}, time.Second); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("ExecSync on an exited container: %v, want ErrNotFound", err)
	}
}

// TestProbeHTTPInProcess: an httpGet probe of a WAGI container is served by
// its handler without the network, with the module's status code.
func TestProbeHTTPInProcess(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	ctx := ctxT(t)
	_, id, _ := serveModule(t, rt, fileRef(cgiModule(t)), nil)
	for _, tc := range []struct {
		path string
		port int32
		code int
		err  error
	}{
		{"/status/200", 8080, 200, nil},
		{"/status/503", 8080, 503, nil},
		{"/", 8080, 200, nil},
		{"/", 9090, 0, runtimes.ErrNotFound},
	} {
		t.Run(tc.path, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, "http://10.0.0.1:8080"+tc.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			code, err := rt.ProbeHTTP(ctx, id, tc.port, req)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("ProbeHTTP port %d: %v, want %v", tc.port, err, tc.err)
				}
				return
			}
			if err != nil || code != tc.code {
				t.Errorf("ProbeHTTP %s: %d %v, want %d", tc.path, code, err, tc.code)
			}
		})
	}
	if err := rt.StopContainer(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://x/", nil)
	if _, err := rt.ProbeHTTP(ctx, id, 8080, req); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("ProbeHTTP on a stopped container: %v, want ErrNotFound", err)
	}
}
