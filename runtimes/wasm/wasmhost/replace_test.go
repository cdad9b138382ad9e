package wasmhost_test

import (
	"context"
	"fmt"
	"net"
	"net/rpc"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm/wasmhost"
)

// TestHungHostIsReplaced: a host that holds its directory but does not
// answer (stopped) is killed and replaced; its pods are reported ended.
func TestHungHostIsReplaced(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	sb := sandbox(t, c)
	id := start(t, c, sb, runtimes.ContainerConfig{Name: "c", Image: "file://" + testProg(t), Args: []string{"sleep", "forever"}})
	pid := c.HostPID()
	c.Close()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) }) // if the test fails before it is replaced
	testutil.Eventually(t, 5*time.Second, func() error {     // the stop is delivered asynchronously
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if f := strings.Fields(string(b)); err != nil || len(f) < 3 || f[2] != "T" {
			return fmt.Errorf("host %d not stopped yet: %q %v", pid, b, err)
		}
		return nil
	})
	opts := options(t, dir, "test", nil)
	opts.StartTimeout = 3 * time.Second
	c = openWith(t, opts)
	if got := c.HostPID(); got == pid || got == 0 {
		t.Fatalf("host pid %d, want a new host (the hung one was %d)", got, pid)
	}
	if err := syscall.Kill(pid, 0); err == nil {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(pid, &ws, syscall.WNOHANG, nil); err != nil { // not our child: it may linger as a zombie of init
			t.Logf("old host %d: %v", pid, err)
		}
	}
	st, err := c.ContainerStatus(ctxT(t), id)
	if err != nil || st.State != runtimes.ContainerExited || st.Reason != runtimes.ReasonAgentRestarted {
		t.Fatalf("container of the hung host: %+v %v, want exited, reason %s", st, err, runtimes.ReasonAgentRestarted)
	}
}

// fakeHost speaks protocol 0, which this build does not.
type fakeHost struct {
	shutdown func()
	calls    atomic.Int32
}

func (f *fakeHost) Hello(a wasmhost.HelloArgs, r *wasmhost.HelloReply) error {
	r.Protocol, r.MinProtocol, r.PID, r.Version, r.Sandboxes = 0, 0, os.Getpid(), "ancient", 3
	return nil
}

func (f *fakeHost) Shutdown(a wasmhost.Call, r *wasmhost.Empty) error {
	f.calls.Add(1)
	time.AfterFunc(10*time.Millisecond, f.shutdown)
	return nil
}

// TestOtherProtocolIsReplaced: a host of a protocol this agent cannot
// speak is shut down (even holding pods) and a new host started.
func TestOtherProtocolIsReplaced(t *testing.T) {
	dir := t.TempDir()
	hostDir := filepath.Join(dir, "host")
	os.MkdirAll(hostDir, 0o700)
	lock, err := os.OpenFile(filepath.Join(hostDir, wasmhost.LockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(hostDir, wasmhost.PIDName), []byte(strconv.Itoa(os.Getpid())), 0o600)
	ln, err := net.Listen("unix", filepath.Join(hostDir, wasmhost.SocketName))
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeHost{shutdown: func() { ln.Close(); lock.Close() }}
	srv := rpc.NewServer()
	if err := srv.RegisterName("Host", fake); err != nil {
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
				if _, err := conn.Read(b[:]); err == nil && b[0] == 'C' {
					srv.ServeConn(conn)
				}
				conn.Close()
			}()
		}
	}()
	c := open(t, dir)
	if fake.calls.Load() != 1 {
		t.Fatalf("the old host was asked to shut down %d times, want 1", fake.calls.Load())
	}
	if pid := c.HostPID(); pid == os.Getpid() || pid == 0 {
		t.Fatalf("host pid %d: want a new host", pid)
	}
	if _, err := c.ListSandboxes(ctxT(t)); err != nil {
		t.Fatalf("the new host: %v", err)
	}
}

// TestConcurrentStartsMakeOneHost: two agents starting at once on one
// directory end up on the same host; the second host started exits (the
// lock), and no module runs twice.
func TestConcurrentStartsMakeOneHost(t *testing.T) {
	dir := t.TempDir()
	opts := options(t, dir, "test", nil)
	pids := make(chan int, 2)
	for range 2 {
		go func() {
			c, err := wasmhost.Open(ctxT(t), opts, nil)
			if err != nil {
				t.Errorf("Open: %v", err)
				pids <- 0
				return
			}
			t.Cleanup(func() { c.Close() })
			pids <- c.HostPID()
		}()
	}
	a, b := <-pids, <-pids
	t.Cleanup(func() {
		if err := wasmhost.StopHost(context.Background(), opts.Host.Dir); err != nil {
			t.Error(err)
		}
	})
	if a == 0 || a != b {
		t.Fatalf("two agents on one directory talk to hosts %d and %d, want one", a, b)
	}
	if got := wasmhost.ReadPID(opts.Host.Dir); got != a {
		t.Fatalf("host.pid says %d, the host is %d", got, a)
	}
}
