package containerd

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
)

// TestExecSync: a command runs in a running container with its env and
// hostname, its exit code and output come back, a command past its timeout
// is killed, and the container keeps running.
func TestExecSync(t *testing.T) {
	r, _ := newTestRuntime(t)
	sb := newSandbox(t, r, "exec")
	id := run(t, r, sb, &runtimes.ContainerConfig{Name: "app", Args: []string{"sleep"},
		Env: []runtimes.EnvVar{{Name: "GREETING", Value: "hi"}}})
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		cmd      []string
		code     int32
		output   []string
		deadline bool
		err      bool
	}{
		{name: "exit code and both streams", cmd: []string{"/app", "exit", "3"}, code: 3, output: []string{"to stdout", "to stderr"}},
		{name: "the container's env and hostname", cmd: []string{"/app", "env"}, output: []string{"args=env", "env GREETING=hi", "hostname=exec"}},
		{name: "timeout", cmd: []string{"/app", "ignore-term"}, deadline: true},
		{name: "no such program", cmd: []string{"/nonexistent"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			timeout := 10 * time.Second
			if tc.deadline {
				timeout = 300 * time.Millisecond
			}
			res, err := r.ExecSync(ctx, id, tc.cmd, timeout)
			switch {
			case tc.deadline:
				if !errors.Is(err, context.DeadlineExceeded) {
					t.Fatalf("ExecSync past its timeout: %+v, %v; want DeadlineExceeded", res, err)
				}
				return
			case tc.err:
				if err == nil && res.ExitCode == 0 {
					t.Fatalf("ExecSync of a missing program succeeded: %+v", res)
				}
				return
			case err != nil:
				t.Fatalf("ExecSync: %v", err)
			}
			if res.ExitCode != tc.code {
				t.Errorf("exit code %d, want %d (output %q)", res.ExitCode, tc.code, res.Output)
			}
			for _, w := range tc.output {
				if !strings.Contains(string(res.Output), w) {
					t.Errorf("output %q lacks %q", res.Output, w)
				}
			}
		})
	}
	if st, err := r.ContainerStatus(ctx, id); err != nil || st.State != runtimes.ContainerRunning {
		t.Errorf("after the execs: %+v %v, want running", st, err)
	}
	if _, err := r.ExecSync(ctx, "nope", []string{"/app", "env"}, time.Second); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("ExecSync in an unknown container: %v, want ErrNotFound", err)
	}
	if err := r.StopContainer(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := r.ExecSync(ctx, id, []string{"/app", "env"}, time.Second); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("ExecSync in a stopped container: %v, want ErrNotFound", err)
	}
}
