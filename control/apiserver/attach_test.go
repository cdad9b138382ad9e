package apiserver_test

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// attachSession is a running kyb attach -i: what it printed, its stdin,
// and its end.
type attachSession struct {
	out     *testutil.SyncBuffer
	in      *io.PipeWriter
	done    chan attachEnd
	started chan struct{} // closed once the session runs (its output starts there)
}

type attachEnd struct {
	code int32
	err  error
}

func startAttach(ctx context.Context, c *client.Client, req api.ExecRequest) *attachSession {
	pr, pw := io.Pipe()
	a := &attachSession{out: &testutil.SyncBuffer{}, in: pw, done: make(chan attachEnd, 1), started: make(chan struct{})}
	sio := client.ExecIO{Stdout: a.out, Stderr: a.out, Started: func() { close(a.started) }}
	if req.Stdin {
		sio.Stdin = pr
	}
	go func() {
		code, err := c.Exec(ctx, api.SessionAttach, req, sio)
		a.done <- attachEnd{code, err}
	}()
	return a
}

// echo sends line and waits until the output holds it.
func (a *attachSession) echo(t *testing.T, line string) {
	t.Helper()
	if _, err := io.WriteString(a.in, line+"\n"); err != nil {
		t.Fatalf("write %q: %v", line, err)
	}
	testutil.Eventually(t, 20*time.Second, func() error {
		if !strings.Contains(a.out.String(), line) {
			return fmt.Errorf("output %q; want %q", a.out.String(), line)
		}
		return nil
	})
}

func (a *attachSession) end(t *testing.T) attachEnd {
	t.Helper()
	select {
	case x := <-a.done:
		return x
	case <-time.After(30 * time.Second):
		t.Fatal("attach did not end within 30s")
	}
	return attachEnd{}
}

// TestAttachThroughTheAPI: kyb attach -i to a wasm module with stdin
// echoes what the client sends, through the apiserver; the client's end of
// input detaches and leaves the module running, so a second attach
// reaches the same instance; with stdinOnce the module reads end of input
// when the first session ends and exits; attach is authorized as
// pods/attach (pods/exec alone is refused).
func TestAttachThroughTheAPI(t *testing.T) {
	e := newExecEnv(t)
	ref := wasmModuleRef(t, "./runtimes/runtimetest/testprog")
	e.runningWasmPod(t, "echo", ref, `    args: ["out", "ready", "stdin", "out", "input ended"]
    stdin: true
`)
	ctx, cancel := context.WithTimeout(e.ctx, 60*time.Second)
	defer cancel()

	t.Run("echo, detach and attach again", func(t *testing.T) {
		a := startAttach(ctx, e.admin, api.ExecRequest{Pod: "echo", Stdin: true})
		a.echo(t, "first")
		a.in.Close() // detach
		if x := a.end(t); x.err != nil || x.code != 0 {
			t.Fatalf("detach: code %d, %v", x.code, x.err)
		}
		b := startAttach(ctx, e.admin, api.ExecRequest{Pod: "echo", Stdin: true})
		b.echo(t, "second")
		if strings.Contains(b.out.String(), "first") || strings.Contains(b.out.String(), "input ended") {
			t.Errorf("second attach printed %q: want only what follows it, and the module still reading", b.out.String())
		}
		b.in.Close()
		b.end(t)
		p := e.pod(t, "default", "echo")
		if cs := p.Status.ContainerStatuses[0]; cs.State.Running == nil || cs.RestartCount != 0 {
			t.Errorf("after two attaches: %+v; want the same instance running", cs)
		}
	})
	t.Run("output only", func(t *testing.T) {
		actx, acancel := context.WithCancel(ctx)
		a := startAttach(actx, e.admin, api.ExecRequest{Pod: "echo"})
		select { // its output starts when it runs: only what is written after
		case <-a.started:
		case x := <-a.done:
			t.Fatalf("output-only attach ended: code %d, %v", x.code, x.err)
		}
		b := startAttach(ctx, e.admin, api.ExecRequest{Pod: "echo", Stdin: true})
		b.echo(t, "seen by both")
		testutil.Eventually(t, 20*time.Second, func() error {
			if !strings.Contains(a.out.String(), "seen by both") {
				return fmt.Errorf("output-only attach printed %q", a.out.String())
			}
			return nil
		})
		b.in.Close()
		b.end(t)
		acancel() // an output-only session ends with its client
		if x := a.end(t); x.err == nil {
			t.Errorf("output-only attach ended by its client: code %d, no error", x.code)
		}
	})
	t.Run("stdinOnce", func(t *testing.T) {
		e.runningWasmPod(t, "once", ref, `    args: ["stdin", "out", "input ended", "exit", "3"]
    stdin: true
    stdinOnce: true
`)
		a := startAttach(ctx, e.admin, api.ExecRequest{Pod: "once", Stdin: true})
		a.echo(t, "only once")
		a.in.Close() // the container's end of input: it exits
		x := a.end(t)
		if x.err != nil || x.code != 3 || !strings.Contains(a.out.String(), "input ended") {
			t.Errorf("stdinOnce: code %d, %v, output %q; want the module's exit 3 after its end of input", x.code, x.err, a.out.String())
		}
	})
	t.Run("pods/attach, not pods/exec", func(t *testing.T) {
		e.grantEventually(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata: {name: exec-only, namespace: default}
rules:
- apiGroups: [""]
  resources: ["pods/exec"]
  verbs: ["create"]
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["get"]
`+"---\n"+roleBindingYAML("default", "eve-exec", "Role", "exec-only", "eve"), func() error {
			_, _, _, err := e.exec(e.eve, api.SessionExec, api.ExecRequest{Pod: "echo", Command: []string{"out", "x"}}, "")
			return err
		})
		_, _, _, err := e.exec(e.eve, api.SessionAttach, api.ExecRequest{Pod: "echo"}, "")
		wantCode(t, "a user with pods/exec attaches", err, 403, `user "eve" cannot create resource "pods/attach"`)
	})
}

// BenchmarkAttachEcho: one kyb attach -i session to a wasm module that
// echoes its stdin (through the apiserver's relay, the agent, the module's
// stdin pipe, its log file and back); each iteration sends a line and
// waits for its echo: what a user typing into an attached process sees.
func BenchmarkAttachEcho(b *testing.B) {
	e := newExecEnv(b)
	e.runningWasmPod(b, "echo", wasmModuleRef(b, "./runtimes/runtimetest/testprog"), `    args: ["stdin"]
    stdin: true
`)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	pr, pw := io.Pipe()
	seen := make(chan struct{}, 1)
	out := &notifyWriter{b: &testutil.SyncBuffer{}, notify: seen}
	done := make(chan error, 1)
	go func() {
		_, err := e.admin.Exec(ctx, api.SessionAttach, api.ExecRequest{Pod: "echo", Stdin: true}, client.ExecIO{Stdin: pr, Stdout: out})
		done <- err
	}()
	wait := func(line string) {
		for !strings.Contains(out.b.String(), line) {
			select {
			case <-seen:
			case err := <-done:
				b.Fatalf("attach ended: %v", err)
			case <-time.After(30 * time.Second):
				b.Fatalf("no echo of %q", line)
			}
		}
	}
	fmt.Fprintln(pw, "warm-up")
	wait("warm-up")
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		line := fmt.Sprintf("line %d", i)
		fmt.Fprintln(pw, line)
		wait(line)
	}
	b.StopTimer()
	pw.Close()
	<-done
}

// notifyWriter writes to b and then signals notify (without blocking).
type notifyWriter struct {
	b      *testutil.SyncBuffer
	notify chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	n, err := w.b.Write(p)
	select {
	case w.notify <- struct{}{}:
	default:
	}
	return n, err
}
