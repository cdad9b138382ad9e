package wasmhost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/rpc"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm/wasmhost"
)

// execEnv is a host with a running test program container ("c", env
// GREETING=hi) and a running execsh container ("sh": a command named sh
// reads `-c SCRIPT`).
type execEnv struct {
	c        *wasmhost.Client
	dir      string
	prog, sh string
}

func newExecEnv(t *testing.T) *execEnv {
	t.Helper()
	dir := t.TempDir()
	c := open(t, dir)
	sb := sandbox(t, c)
	e := &execEnv{c: c, dir: filepath.Join(dir, "host")}
	e.prog = start(t, c, sb, runtimes.ContainerConfig{Name: "c", Image: "file://" + testProg(t),
		Env: []runtimes.EnvVar{{Name: "GREETING", Value: "hi"}}, Args: []string{"sleep", "forever"}})
	shMod := runtimetest.PrecompileWasm(t, runtimetest.BuildGo(t, "./runtimes/runtimetest/execsh", "wasip1", "wasm"), cacheDir)
	e.sh = start(t, c, sb, runtimes.ContainerConfig{Name: "sh", Image: "file://" + shMod, Args: []string{"-c", "sleep 100000"}})
	return e
}

func (e *execEnv) execs(t *testing.T) int {
	t.Helper()
	n, err := wasmhost.HostExecs(ctxT(t), e.c)
	if err != nil {
		t.Fatalf("HostExecs: %v", err)
	}
	return n
}

func (e *execEnv) noExecs(t *testing.T) {
	t.Helper()
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := e.execs(t); n != 0 {
			return fmt.Errorf("%d exec commands still run in the host", n)
		}
		return nil
	})
}

// TestExecStream: kyb exec into a wasm pod of a host process: argv, env,
// input, separated output, exit code, a TTY, and errors.
func TestExecStream(t *testing.T) {
	e := newExecEnv(t)
	big := strings.Repeat("0123456789abcdef", 20000) // 320 KB: many frames each way
	resize := make(chan runtimes.TermSize, 1)
	resize <- runtimes.TermSize{Width: 100, Height: 40}
	for _, tc := range []struct {
		name             string
		id               func() string
		opts             runtimes.ExecOptions
		code             int32
		stdout, stderr   string
		wantStartNotCall bool
	}{
		{name: "argv env output exit code", id: func() string { return e.prog },
			opts:   runtimes.ExecOptions{Cmd: []string{"args", "out", "hello", "env", "GREETING", "err", "oops", "exit", "3"}},
			code:   3,
			stdout: "args:args|out|hello|env|GREETING|err|oops|exit|3\nhello\nGREETING=hi\n", stderr: "oops\n"},
		{name: "stdin piped", id: func() string { return e.sh },
			opts:   runtimes.ExecOptions{Cmd: []string{"-c", "cat"}, Stdin: strings.NewReader(big)},
			stdout: big},
		{name: "no stdin reads an empty input", id: func() string { return e.sh },
			opts: runtimes.ExecOptions{Cmd: []string{"-c", "cat; echo done"}}, stdout: "done\n"},
		{name: "tty merges stderr", id: func() string { return e.prog },
			opts: runtimes.ExecOptions{Cmd: []string{"out", "a", "err", "b", "exit", "1"}, TTY: true,
				Size: &runtimes.TermSize{Width: 80, Height: 24}, Resize: resize},
			code: 1, stdout: "a\nb\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			var started atomic.Int32
			tc.opts.Stdout, tc.opts.Stderr, tc.opts.OnStart = &out, &errOut, func() { started.Add(1) }
			code, err := e.c.Exec(ctxT(t), tc.id(), tc.opts)
			if err != nil {
				t.Fatalf("Exec: %v", err)
			}
			if code != tc.code || out.String() != tc.stdout || errOut.String() != tc.stderr {
				t.Errorf("Exec: code %d stdout %.200q stderr %q; want %d %.200q %q", code, out.String(), errOut.String(), tc.code, tc.stdout, tc.stderr)
			}
			if started.Load() != 1 {
				t.Errorf("OnStart called %d times, want 1", started.Load())
			}
		})
	}
	t.Run("concurrent", func(t *testing.T) {
		closed := make(chan runtimes.TermSize)
		close(closed)
		errs := make(chan error, 4)
		for i := range 4 {
			go func() {
				var out bytes.Buffer
				want := fmt.Sprintf("n%d\n", i)
				code, err := e.c.Exec(ctxT(t), e.prog, runtimes.ExecOptions{Cmd: []string{"sleep", "20ms", "out", fmt.Sprintf("n%d", i)},
					Stdout: &out, TTY: true, Resize: closed})
				if err == nil && (code != 0 || out.String() != want) {
					err = fmt.Errorf("exec %d: code %d output %q, want 0 %q", i, code, out.String(), want)
				}
				errs <- err
			}()
		}
		for range 4 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	})
	t.Run("unknown container", func(t *testing.T) {
		var started atomic.Int32
		_, err := e.c.Exec(ctxT(t), "nope", runtimes.ExecOptions{Cmd: []string{"out", "x"}, OnStart: func() { started.Add(1) }})
		if !errors.Is(err, runtimes.ErrNotFound) {
			t.Errorf("Exec in an unknown container: %v, want ErrNotFound", err)
		}
		if started.Load() != 0 {
			t.Error("OnStart called for a command that did not start")
		}
	})
	t.Run("empty command", func(t *testing.T) {
		if _, err := e.c.Exec(ctxT(t), e.prog, runtimes.ExecOptions{}); err == nil {
			t.Error("Exec of no command: no error")
		}
	})
	e.noExecs(t)
}

// TestExecCancelKills: when the agent's ctx ends, the command is killed in
// the host (nothing of it stays running there).
func TestExecCancelKills(t *testing.T) {
	e := newExecEnv(t)
	pr, pw := io.Pipe() // an input that never ends
	t.Cleanup(func() { pw.Close() })
	for _, tc := range []struct {
		name string
		opts runtimes.ExecOptions
	}{
		{"sleeping", runtimes.ExecOptions{Cmd: []string{"sleep", "forever"}}},
		{"reading an input that never ends", runtimes.ExecOptions{Cmd: []string{"-c", "cat"}, Stdin: pr}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(ctxT(t))
			id := e.prog
			if tc.opts.Stdin != nil {
				id = e.sh
			}
			started := make(chan struct{})
			tc.opts.OnStart = func() { close(started) }
			res := make(chan error, 1)
			go func() {
				_, err := e.c.Exec(ctx, id, tc.opts)
				res <- err
			}()
			select {
			case <-started:
			case err := <-res:
				t.Fatalf("Exec ended before it started: %v", err)
			}
			if n := e.execs(t); n != 1 {
				t.Errorf("%d exec commands in the host, want 1", n)
			}
			cancel()
			if err := <-res; !errors.Is(err, context.Canceled) {
				t.Errorf("Exec after cancel: %v, want context.Canceled", err)
			}
			e.noExecs(t)
		})
	}
}

// TestExecDroppedConnectionKills: an agent that goes away (its exec
// connection closes, with or without input queued that the command does
// not read) leaves nothing running in the host; a frame over the bound
// ends the command too.
func TestExecDroppedConnectionKills(t *testing.T) {
	e := newExecEnv(t)
	t.Run("idle", func(t *testing.T) {
		conn, err := wasmhost.StartRawExec(e.dir, e.prog, []string{"sleep", "forever"})
		if err != nil {
			t.Fatal(err)
		}
		if n := e.execs(t); n != 1 {
			t.Errorf("%d exec commands in the host, want 1", n)
		}
		conn.Close()
		e.noExecs(t)
	})
	t.Run("input queued and unread", func(t *testing.T) {
		conn, err := wasmhost.StartRawExec(e.dir, e.prog, []string{"sleep", "forever"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		var sent atomic.Int32
		chunk := make([]byte, 32<<10)
		go func() {
			for range 128 {
				if wasmhost.WriteRawFrame(conn, 'I', uint32(len(chunk)), chunk) != nil {
					return
				}
				sent.Add(1)
			}
		}()
		testutil.Eventually(t, 10*time.Second, func() error {
			if n := sent.Load(); n < 18 { // the host's queue (16) is full or nearly
				return fmt.Errorf("%d input frames sent", n)
			}
			return nil
		})
		conn.Close()
		e.noExecs(t)
	})
	t.Run("frame over the bound", func(t *testing.T) {
		conn, err := wasmhost.StartRawExec(e.dir, e.prog, []string{"sleep", "forever"})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if err := wasmhost.WriteRawFrame(conn, 'I', 64<<20, nil); err != nil {
			t.Fatal(err)
		}
		_ = conn.SetReadDeadline(time.Now().Add(20 * time.Second))
		if _, err := io.ReadAll(conn); err != nil {
			t.Errorf("the host did not end the connection: %v", err)
		}
		e.noExecs(t)
	})
}

// fakeOldHost answers Hello as a host of protocol 1 without exec.
type fakeOldHost struct{}

func (fakeOldHost) Hello(a wasmhost.HelloArgs, r *wasmhost.HelloReply) error {
	r.Protocol, r.MinProtocol, r.PID = 1, 1, 4242
	return nil
}

// TestExecOlderHost: a host that does not know the exec connection closes
// it (as an older build does with an unknown first byte): Exec says exec
// is not supported, at once, instead of hanging.
func TestExecOlderHost(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("unix", filepath.Join(dir, wasmhost.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := rpc.NewServer()
	if err := srv.RegisterName("Host", fakeOldHost{}); err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				var b [1]byte
				if _, err := conn.Read(b[:]); err != nil || b[0] != 'C' {
					conn.Close() // what an older host does with a byte it does not know
					return
				}
				srv.ServeConn(conn)
			}()
		}
	}()
	c, err := wasmhost.Connect(ctxT(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Exec(ctxT(t), "x", runtimes.ExecOptions{Cmd: []string{"out", "x"}})
	if !errors.Is(err, errors.ErrUnsupported) || !strings.Contains(err.Error(), "does not serve exec") {
		t.Errorf("Exec on an older host: %v, want ErrUnsupported", err)
	}
}
