package wasm_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

func freePort(t testing.TB) int32 {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return int32(ln.Addr().(*net.TCPAddr).Port)
}

// serveModule starts a container serving ref on a free loopback port and
// returns its base URL, ID and log path.
func serveModule(t testing.TB, rt *wasm.Runtime, ref string, mod func(*runtimes.ContainerConfig)) (string, string, string) {
	t.Helper()
	ctx := ctxT(t)
	port := freePort(t)
	sb := sandbox(t, rt)
	cfg := &runtimes.ContainerConfig{
		Name:    "web",
		Image:   ref,
		Env:     []runtimes.EnvVar{{Name: "GREETING", Value: "hi"}},
		Ports:   []runtimes.PortMapping{{ContainerPort: 8080, HostPort: port, Protocol: "TCP"}},
		LogPath: filepath.Join(t.TempDir(), "log"),
	}
	if mod != nil {
		mod(cfg)
	}
	id, err := rt.CreateContainer(ctx, sb.ID, cfg)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", port), id, cfg.LogPath
}

func get(t testing.TB, c *http.Client, method, url, body string, hdr map[string]string) (int, http.Header, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestWAGIGoCGI(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	base, id, logPath := serveModule(t, rt, fileRef(cgiModule(t)), nil)
	c := &http.Client{Timeout: 30 * time.Second}
	ctx := ctxT(t)
	if st, _ := rt.ContainerStatus(ctx, id); st.State != runtimes.ContainerRunning {
		t.Fatalf("serving container: state %v, want running", st.State)
	}

	t.Run("echo", func(t *testing.T) {
		for _, tc := range []struct {
			method, path, body string
			want               []string
		}{
			{"GET", "/hello/world?a=1&b=two", "", []string{"method=GET", "path=/hello/world", "query=a=1&b=two", "header=yes", "env=hi", "args=web\n"}},
			{"POST", "/submit", "payload bytes", []string{"method=POST", "path=/submit", "body=payload bytes"}},
		} {
			code, hdr, body := get(t, c, tc.method, base+tc.path, tc.body, map[string]string{"X-Test": "yes", "Content-Type": "text/plain"})
			if code != 200 || hdr.Get("X-Method") != tc.method || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") {
				t.Errorf("%s %s: %d %v", tc.method, tc.path, code, hdr)
			}
			for _, w := range tc.want {
				if !strings.Contains(body, w) {
					t.Errorf("%s %s: body lacks %q:\n%s", tc.method, tc.path, w, body)
				}
			}
		}
	})
	t.Run("status", func(t *testing.T) {
		code, _, body := get(t, c, "GET", base+"/status/418", "", nil)
		if code != 418 || !strings.Contains(body, "status 418") {
			t.Errorf("got %d %q, want 418", code, body)
		}
	})
	t.Run("stderr to log", func(t *testing.T) {
		if code, _, _ := get(t, c, "GET", base+"/stderr", "", nil); code != 200 {
			t.Fatalf("status %d", code)
		}
		testutil.Eventually(t, 10*time.Second, func() error {
			b, _ := readFile(logPath)
			if !strings.Contains(b, "cgi module writes to stderr") {
				return fmt.Errorf("log lacks the module's stderr: %q", b)
			}
			return nil
		})
	})
	t.Run("stop", func(t *testing.T) {
		if err := rt.StopContainer(ctx, id, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		st, _ := rt.ContainerStatus(ctx, id)
		if st.State != runtimes.ContainerExited || st.ExitCode != 0 || st.Reason != runtimes.ReasonCompleted {
			t.Errorf("after stop: %v %d %q, want exited 0 Completed", st.State, st.ExitCode, st.Reason)
		}
		if _, err := c.Get(base + "/"); err == nil {
			t.Errorf("still serving after stop")
		}
	})
}

func readFile(p string) (string, error) {
	b, err := osReadFile(p)
	return string(b), err
}

func TestWAGIWat(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	base, _, _ := serveModule(t, rt, fileRef(wat(t, "hello")), nil)
	code, hdr, body := get(t, http.DefaultClient, "GET", base+"/", "", nil)
	if code != 200 || body != "hello from wat\n" || hdr.Get("Content-Type") != "text/plain" {
		t.Errorf("got %d %v %q", code, hdr, body)
	}
}

func TestWAGITimeout(t *testing.T) {
	rt := newRuntime(t, wasm.Config{HTTP: wasm.HTTPConfig{MaxConcurrent: 1, RequestTimeout: 2 * time.Second}})
	base, _, logPath := serveModule(t, rt, fileRef(cgiModule(t)), nil)
	c := &http.Client{Timeout: 30 * time.Second}
	start := time.Now()
	code, _, _ := get(t, c, "GET", base+"/sleep?d=60s", "", nil)
	if code != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504", code)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("timed-out request took %v", d)
	}
	if b, _ := readFile(logPath); !strings.Contains(b, "timed out") {
		t.Errorf("log lacks the timeout: %q", b)
	}
}

func TestWAGIChunkedBody(t *testing.T) {
	rt := newRuntime(t, wasm.Config{HTTP: wasm.HTTPConfig{MaxBodyBytes: 4 << 20}})
	base, _, _ := serveModule(t, rt, fileRef(cgiModule(t)), nil)
	chunked := func(t *testing.T, parts ...[]byte) (int, string) {
		pr, pw := io.Pipe()
		go func() {
			for _, p := range parts {
				pw.Write(p)
			}
			pw.Close()
		}()
		req, _ := http.NewRequest("POST", base+"/upload", pr)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	t.Run("small", func(t *testing.T) {
		if code, body := chunked(t, []byte("chunk one, "), []byte("chunk two")); code != 200 || !strings.Contains(body, "body=chunk one, chunk two") {
			t.Errorf("got %d %q", code, body)
		}
	})
	big := []byte(strings.Repeat("x", 3<<20/2))
	t.Run("over the part read before a slot", func(t *testing.T) {
		code, body := chunked(t, big, big)
		if code != 200 || strings.Count(body, "x") != 2*len(big) {
			t.Errorf("got %d with %d bytes of body, want 200 with %d", code, strings.Count(body, "x"), 2*len(big))
		}
	})
	t.Run("over MaxBodyBytes", func(t *testing.T) {
		if code, _ := chunked(t, big, big, big); code != http.StatusRequestEntityTooLarge {
			t.Errorf("got %d, want 413", code)
		}
	})
}

func TestWAGIOutOfMemory(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	base, _, logPath := serveModule(t, rt, fileRef(cgiModule(t)), func(c *runtimes.ContainerConfig) { c.MemoryLimitBytes = 32 << 20 })
	c := &http.Client{Timeout: 60 * time.Second}
	code, _, _ := get(t, c, "GET", base+"/alloc?mib=64", "", nil)
	if code != http.StatusBadGateway {
		t.Errorf("status %d, want 502", code)
	}
	if b, _ := readFile(logPath); !strings.Contains(b, runtimes.ReasonOOMKilled) {
		t.Errorf("log lacks OOMKilled: %q", b)
	}
	// The container still serves.
	if code, _, _ := get(t, c, "GET", base+"/", "", nil); code != 200 {
		t.Errorf("after an OOM request: %d, want 200", code)
	}
}

func TestWAGIPortInUse(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := int32(ln.Addr().(*net.TCPAddr).Port)
	sb := sandbox(t, rt)
	ctx := ctxT(t)
	id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "web", Image: fileRef(wat(t, "hello")),
		Ports: []runtimes.PortMapping{{HostPort: port, ContainerPort: 80}}, LogPath: filepath.Join(t.TempDir(), "log")})
	if err != nil {
		t.Fatal(err)
	}
	err = rt.StartContainer(ctx, id)
	wantReason(t, err, "HostPortUnavailable", true, "listen")
	if st, _ := rt.ContainerStatus(ctx, id); st.State != runtimes.ContainerExited {
		t.Errorf("after a failed start: %v, want exited", st.State)
	}
}

func TestWAGISandboxPorts(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	ctx := ctxT(t)
	port := freePort(t)
	sb, err := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "default", Name: "web",
		Ports: []runtimes.PortMapping{{ContainerPort: 8080, HostPort: port, HostIP: "127.0.0.1", Protocol: "TCP"}}})
	if err != nil {
		t.Fatal(err)
	}
	id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "web", Image: fileRef(wat(t, "hello")),
		Ports: []runtimes.PortMapping{{ContainerPort: 8080, Protocol: "TCP"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	code, _, body := get(t, http.DefaultClient, "GET", fmt.Sprintf("http://127.0.0.1:%d/", port), "", nil)
	if code != 200 || body != "hello from wat\n" {
		t.Errorf("got %d %q", code, body)
	}
}
