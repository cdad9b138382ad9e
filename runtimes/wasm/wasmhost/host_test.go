package wasmhost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
	"github.com/kybernetes/kybernetes/runtimes/wasm/wasmhost"
)

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// options are a client's options on dir: the host in dir/host, the
// runtime's state in dir/wasm, this test binary as the host program.
func options(t testing.TB, dir, version string, modules wasm.ModuleStore) wasmhost.Options {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	hostDir := filepath.Join(dir, "host")
	return wasmhost.Options{
		Host: wasmhost.HostConfig{
			Dir: hostDir, StateDir: filepath.Join(dir, "wasm"), CacheDir: cacheDir,
			ModuleDirs: []string{os.TempDir()},
			HTTP:       wasm.HTTPConfig{DefaultHostIP: "127.0.0.1"},
		},
		Command: []string{exe, "wasm-host", hostDir},
		Version: version,
		Modules: modules,
	}
}

// open opens a client on dir (adopting or starting its host); the host is
// stopped when the test ends.
func open(t testing.TB, dir string) *wasmhost.Client {
	t.Helper()
	return openWith(t, options(t, dir, "test", nil))
}

func openWith(t testing.TB, opts wasmhost.Options) *wasmhost.Client {
	t.Helper()
	c, err := wasmhost.Open(ctxT(t), opts, nil)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := wasmhost.StopHost(ctx, opts.Host.Dir); err != nil {
			t.Errorf("StopHost: %v", err)
		}
	})
	return c
}

func testProg(t testing.TB) string {
	return runtimetest.PrecompileWasm(t, runtimetest.BuildTestProg(t, "wasip1", "wasm"), cacheDir)
}

func cgiModule(t testing.TB) string {
	return runtimetest.PrecompileWasm(t, runtimetest.BuildGo(t, "./runtimes/wasm/testdata/cgi", "wasip1", "wasm"), cacheDir)
}

// TestConformance runs the runtime suite through a host process: the
// "agent restart" closes the client, and the containers keep running in
// the host, which the next client adopts.
func TestConformance(t *testing.T) {
	runtimetest.Run(t, runtimetest.Harness{
		New: func(t *testing.T, stateDir string) runtimes.Runtime {
			return open(t, stateDir)
		},
		Image:           "file://" + testProg(t),
		Close:           func(t *testing.T, rt runtimes.Runtime) { rt.(*wasmhost.Client).Close() },
		SurvivesRestart: true,
	})
}

func sandbox(t testing.TB, rt runtimes.Runtime, ports ...runtimes.PortMapping) *runtimes.Sandbox {
	t.Helper()
	sb, err := rt.CreateSandbox(ctxT(t), &runtimes.SandboxConfig{Namespace: "default", Name: "pod", UID: "u1", Ports: ports})
	if err != nil {
		t.Fatalf("CreateSandbox: %v", err)
	}
	return sb
}

func start(t testing.TB, rt runtimes.Runtime, sb *runtimes.Sandbox, cfg runtimes.ContainerConfig) string {
	t.Helper()
	ctx := ctxT(t)
	if cfg.LogPath == "" {
		cfg.LogPath = filepath.Join(t.TempDir(), "log")
	}
	id, err := rt.CreateContainer(ctx, sb.ID, &cfg)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	return id
}

// TestHostOutlivesAgent: a module keeps running (same host, same
// container, still writing its log file) while no agent is connected and
// after a new one adopts the host.
func TestHostOutlivesAgent(t *testing.T) {
	dir := t.TempDir()
	prog := "file://" + testProg(t)
	first := open(t, dir)
	pid := first.HostPID()
	sb := sandbox(t, first)
	logPath := filepath.Join(t.TempDir(), "log")
	id := start(t, first, sb, runtimes.ContainerConfig{Name: "c", Attempt: 3, Image: prog, LogPath: logPath,
		Args: []string{"out", "one", "sleep", "300ms", "out", "two", "sleep", "forever"}})
	first.Close() // the agent goes

	second := open(t, dir)
	if got := second.HostPID(); got != pid || pid == 0 {
		t.Fatalf("host pid %d after the agent's restart, want the same %d", got, pid)
	}
	ctx := ctxT(t)
	testutil.Eventually(t, 10*time.Second, func() error {
		b, _ := os.ReadFile(logPath)
		if !bytes.Contains(b, []byte("two")) {
			return fmt.Errorf("log %q: want the output written after the agent left", b)
		}
		return nil
	})
	st, err := second.ContainerStatus(ctx, id)
	if err != nil || st.State != runtimes.ContainerRunning || st.Attempt != 3 {
		t.Fatalf("ContainerStatus after adoption: %+v %v, want running, attempt 3", st, err)
	}
	ch, err := second.WaitContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := second.StopContainer(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	if res := <-ch; res.Err != nil || res.ExitCode != runtimes.ExitCodeKilled {
		t.Fatalf("wait after stop: %+v, want exit %d", res, runtimes.ExitCodeKilled)
	}
	if err := second.RemoveSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if list, err := second.ListContainers(ctx, ""); err != nil || len(list) != 0 {
		t.Fatalf("ListContainers after RemoveSandbox: %d, %v; want none", len(list), err)
	}
}

// TestHostDeath: a host killed with SIGKILL is replaced at the next call;
// its running container is reported exited with reason AgentRestarted and
// a message naming the host, to a wait that was in flight.
func TestHostDeath(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	sb := sandbox(t, c)
	ctx := ctxT(t)
	id := start(t, c, sb, runtimes.ContainerConfig{Name: "c", Image: "file://" + testProg(t), Args: []string{"sleep", "forever"}})
	ch, err := c.WaitContainer(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	pid := c.HostPID()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var res runtimes.ExitResult
	select {
	case res = <-ch:
	case <-ctx.Done():
		t.Fatal("no exit reported after the host died")
	}
	if res.Err != nil || res.Reason != runtimes.ReasonAgentRestarted || res.ExitCode != runtimes.ExitCodeAgentRestarted || !strings.Contains(res.Message, "wasm host") {
		t.Fatalf("exit after the host died: %+v, want reason %s naming the wasm host", res, runtimes.ReasonAgentRestarted)
	}
	if got := c.HostPID(); got == pid || got == 0 {
		t.Fatalf("host pid %d, want a new host (old %d)", got, pid)
	}
	// The new host runs new containers of the sandbox, which it kept.
	id2 := start(t, c, sb, runtimes.ContainerConfig{Name: "c", Attempt: 1, Image: "file://" + testProg(t), Args: []string{"exit", "3"}})
	ch, err = c.WaitContainer(ctx, id2)
	if err != nil {
		t.Fatal(err)
	}
	if res := <-ch; res.ExitCode != 3 {
		t.Fatalf("exit on the new host: %+v, want 3", res)
	}
}

// TestWAGIThroughHost: the hostPort is served by the host, so it answers
// with no agent connected; probes reach the handler through the socket.
func TestWAGIThroughHost(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	port := freePort(t)
	pm := runtimes.PortMapping{ContainerPort: 8080, HostPort: port, Protocol: "TCP"}
	sb := sandbox(t, c, pm)
	id := start(t, c, sb, runtimes.ContainerConfig{Name: "web", Image: "file://" + cgiModule(t), Ports: []runtimes.PortMapping{pm}})
	url := fmt.Sprintf("http://127.0.0.1:%d/status/201", port)
	hc := &http.Client{Timeout: 20 * time.Second}
	getCode := func() int {
		t.Helper()
		resp, err := hc.Get(url)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := getCode(); code != 201 {
		t.Fatalf("GET: %d, want 201", code)
	}
	c.Close()
	if code := getCode(); code != 201 {
		t.Fatalf("GET with no agent: %d, want 201", code)
	}
	c = open(t, dir)
	ctx := ctxT(t)
	req, _ := http.NewRequest(http.MethodGet, "http://localhost/status/204", nil)
	req.Header.Set("X-Probe", "1")
	if code, err := c.ProbeHTTP(ctx, id, 8080, req); err != nil || code != 204 {
		t.Fatalf("ProbeHTTP: %d %v, want 204", code, err)
	}
	if _, err := c.ProbeHTTP(ctx, id, 9999, req); !errors.Is(err, runtimes.ErrNotFound) {
		t.Fatalf("ProbeHTTP of an unserved port: %v, want ErrNotFound", err)
	}
	// A Service's request through the node's gateway (runtimes.HTTPServer)
	// is relayed to the pod in the host, and its response back.
	rec := httptest.NewRecorder()
	sreq := httptest.NewRequest(http.MethodGet, "http://web.default.svc/status/202", nil)
	if err := c.ServeContainerHTTP(id, 8080, rec, sreq); err != nil || rec.Code != 202 {
		t.Fatalf("ServeContainerHTTP: %d %v, want 202", rec.Code, err)
	}
	if err := c.ServeContainerHTTP(id, 9999, httptest.NewRecorder(), sreq); !errors.Is(err, runtimes.ErrNotFound) {
		t.Fatalf("ServeContainerHTTP of an unserved port: %v, want ErrNotFound", err)
	}
	rec = httptest.NewRecorder()
	huge := httptest.NewRequest(http.MethodPost, "http://web/", bytes.NewReader(make([]byte, wasmhost.MaxServeBody+1)))
	if err := c.ServeContainerHTTP(id, 8080, rec, huge); err != nil || rec.Code != http.StatusRequestEntityTooLarge {
		t.Fatalf("ServeContainerHTTP with a body over MaxServeBody: %d %v, want 413", rec.Code, err)
	}
	big, _ := http.NewRequest(http.MethodPost, "http://localhost/", bytes.NewReader(make([]byte, wasmhost.MaxProbeBody+1)))
	if _, err := c.ProbeHTTP(ctx, id, 8080, big); err == nil {
		t.Fatal("ProbeHTTP with a body over MaxProbeBody: no error")
	}
	if err := c.RemoveSandbox(ctx, sb.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := hc.Get(url); err == nil {
		t.Fatal("the hostPort still answers after RemoveSandbox")
	}
}

func freePort(t testing.TB) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// TestErrorsKeepTheirClasses: what errors.Is and errors.As find in the
// host's errors, the agent finds too.
func TestErrorsKeepTheirClasses(t *testing.T) {
	c := open(t, t.TempDir())
	ctx := ctxT(t)
	if _, err := c.ContainerStatus(ctx, strings.Repeat("x", 4096)); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("ContainerStatus of a 4 KB id: %v, want ErrNotFound", err)
	}
	if _, err := c.WaitContainer(ctx, "nope"); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("WaitContainer of an unknown id: %v, want ErrNotFound", err)
	}
	notWasm := filepath.Join(t.TempDir(), "x.wasm")
	os.WriteFile(notWasm, []byte("not a module"), 0o644)
	_, err := c.EnsureImage(ctx, "file://"+notWasm, runtimes.PullIfNotPresent, nil)
	var re *runtimes.ReasonError
	if !errors.As(err, &re) || re.Reason != runtimes.ReasonInvalidModule || re.Retryable {
		t.Fatalf("EnsureImage of a file that is not wasm: %v, want reason %s, not retryable", err, runtimes.ReasonInvalidModule)
	}
	if !strings.HasPrefix(re.Error(), runtimes.ReasonInvalidModule+": module sha256:") || !strings.HasSuffix(err.Error(), re.Error()) {
		t.Errorf("the reason error %q is not the host's, the tail of %q", re, err)
	}
	sb := sandbox(t, c)
	id := start(t, c, sb, runtimes.ContainerConfig{Name: "c", Image: "file://" + testProg(t), Args: []string{"sleep", "forever"}})
	if _, err := c.ExecSync(ctx, id, []string{"sleep", "forever"}, 100*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("ExecSync past its timeout: %v, want DeadlineExceeded", err)
	}
	if r, err := c.ExecSync(ctx, id, []string{"out", "hi", "exit", "4"}, 10*time.Second); err != nil || r.ExitCode != 4 || string(r.Output) != "hi\n" {
		t.Errorf("ExecSync: %+v %v, want exit 4 and hi", r, err)
	}
	if _, err := c.ContainerStats(ctx, id); err != nil {
		t.Errorf("ContainerStats: %v", err)
	}
	if imgs, err := c.ListImages(ctx); err != nil || len(imgs) == 0 {
		t.Errorf("ListImages: %v %v", imgs, err)
	}
}

// modStore serves one module by name, as the agent's node.Modules does.
type modStore struct{ name, path string }

func (m modStore) Info(ctx context.Context, name string) (wasm.ModuleInfo, error) {
	_, info, err := m.Open(ctx, name)
	return info, err
}

func (m modStore) Open(ctx context.Context, name string) (io.ReadCloser, wasm.ModuleInfo, error) {
	if name != m.name {
		return nil, wasm.ModuleInfo{}, fmt.Errorf("module %s: %w", name, fs.ErrNotExist)
	}
	b, err := os.ReadFile(m.path)
	if err != nil {
		return nil, wasm.ModuleInfo{}, err
	}
	return io.NopCloser(bytes.NewReader(b)), wasm.ModuleInfo{Digest: "sha256:" + sha(b), Size: int64(len(b))}, nil
}

// TestModulesThroughAgent: the host fetches kyb:// modules through the
// agent's module store, over the socket.
func TestModulesThroughAgent(t *testing.T) {
	prog := testProg(t)
	dir := t.TempDir()
	c := openWith(t, options(t, dir, "test", modStore{name: "prog", path: prog}))
	ctx := ctxT(t)
	img, err := c.EnsureImage(ctx, "kyb://prog", runtimes.PullAlways, nil)
	b, _ := os.ReadFile(prog)
	if err != nil || img.Digest != "sha256:"+sha(b) {
		t.Fatalf("EnsureImage kyb://prog: %+v %v, want digest of the module", img, err)
	}
	_, err = c.EnsureImage(ctx, "kyb://other", runtimes.PullAlways, nil)
	var re *runtimes.ReasonError
	if !errors.As(err, &re) || re.Reason != runtimes.ReasonModuleNotFound {
		t.Fatalf("EnsureImage of a module the store lacks: %v, want %s", err, runtimes.ReasonModuleNotFound)
	}
}

// TestHostileConnections: a connection that begins with an unknown byte,
// or sends garbage, is dropped and the host serves on; the socket and its
// directory are its owner's only, and another uid cannot connect.
func TestHostileConnections(t *testing.T) {
	dir := t.TempDir()
	c := open(t, dir)
	sock := filepath.Join(dir, "host", wasmhost.SocketName)
	for _, junk := range [][]byte{[]byte("X"), append([]byte("C"), bytes.Repeat([]byte{0xff}, 4096)...), {}} {
		conn, err := net.Dial("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		conn.Write(junk)
		conn.Close()
	}
	if _, err := c.ListSandboxes(ctxT(t)); err != nil {
		t.Fatalf("ListSandboxes after hostile connections: %v", err)
	}
	for p, want := range map[string]os.FileMode{sock: 0o600, filepath.Dir(sock): 0o700} {
		fi, err := os.Stat(p)
		if err != nil || fi.Mode().Perm() != want {
			t.Errorf("%s: mode %v %v, want %v", p, fi.Mode().Perm(), err, want)
		}
	}
	if os.Getuid() == 0 {
		cmd := exec.Command("/bin/sh", "-c", "exec 3<>"+sock)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		if out, err := cmd.CombinedOutput(); err == nil {
			t.Errorf("uid 65534 opened the host's socket: %s", out)
		}
	}
}

// TestReplaceOtherBuild: a host of another build is kept while it holds
// pods (they keep running) and replaced when it holds none.
func TestReplaceOtherBuild(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("KYB_TEST_HOST_VERSION", "old")
	old := openWith(t, options(t, dir, "old", nil))
	pid := old.HostPID()
	sb := sandbox(t, old)
	old.Close()
	t.Setenv("KYB_TEST_HOST_VERSION", "new")
	kept := openWith(t, options(t, dir, "new", nil))
	if got := kept.HostPID(); got != pid {
		t.Fatalf("a host of another build holding a pod: pid %d, want it kept (%d)", got, pid)
	}
	if err := kept.RemoveSandbox(ctxT(t), sb.ID); err != nil {
		t.Fatal(err)
	}
	kept.Close()
	replaced := openWith(t, options(t, dir, "new", nil))
	if got := replaced.HostPID(); got == pid || got == 0 {
		t.Fatalf("a host of another build holding nothing: pid %d, want a new host", got)
	}
}
