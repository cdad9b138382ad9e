package wasm_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// serveIn serves ref from a container of its own pod named pod.
func serveIn(t *testing.T, rt *wasm.Runtime, pod, ref string) string {
	t.Helper()
	ctx := ctxT(t)
	port := freePort(t)
	sb, err := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "default", Name: pod, UID: pod + "-uid"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "web", Image: ref,
		Ports: []runtimes.PortMapping{{ContainerPort: 8080, HostPort: port}}, LogPath: filepath.Join(t.TempDir(), "log")})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", port)
}

// raw sends a request as written and returns the response.
func raw(t *testing.T, addr, req string) (*http.Response, string) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.WriteString(conn, req); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

// hold starts a request that takes a slot and keeps it: its body, large
// enough to be streamed to the module, never arrives in full. Closing the
// connection lets it go.
func hold(t *testing.T, addr string) net.Conn {
	t.Helper()
	return startBody(t, addr, 64<<20)
}

// startBody sends a POST's headers, announcing size bytes, and one byte.
func startBody(t *testing.T, addr string, size int) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	if _, err := fmt.Fprintf(conn, "POST /hold HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\nx", size); err != nil {
		t.Fatal(err)
	}
	return conn
}

// want503 waits until a request to addr is refused 503 with Retry-After
// and a body that mentions scope.
func want503(t *testing.T, addr, scope string) {
	t.Helper()
	c := &http.Client{Timeout: 30 * time.Second}
	testutil.Eventually(t, 30*time.Second, func() error {
		code, hdr, body := get(t, c, "GET", "http://"+addr+"/", "", nil)
		if code != http.StatusServiceUnavailable || hdr.Get("Retry-After") == "" || !strings.Contains(body, scope) {
			return fmt.Errorf("got %d %q, want 503 naming the %s", code, body, scope)
		}
		return nil
	})
}

// TestWAGIParallel: 8 clients at once on one pod are all served under the
// default settings (they were refused 503 beyond 2×GOMAXPROCS before), and
// each request sees its own headers only (concurrent requests once shared
// wazero's environment slice).
func TestWAGIParallel(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	base, _, _ := serveModule(t, rt, fileRef(cgiModule(t)), nil)
	c := &http.Client{Timeout: 60 * time.Second}
	var wg sync.WaitGroup
	errs := make(chan error, 8*3)
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 3 {
				id := fmt.Sprintf("%d-%d", i, j)
				req, _ := http.NewRequest("GET", base+"/env?n=HTTP_X_ID", nil)
				req.Header.Set("X-Id", id)
				resp, err := c.Do(req)
				if err != nil {
					errs <- err
					continue
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK || string(b) != fmt.Sprintf("HTTP_X_ID=%q\n", id) {
					errs <- fmt.Errorf("request %s: %d %q", id, resp.StatusCode, b)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestWAGIQueue(t *testing.T) {
	mod := fileRef(cgiModule(t))
	t.Run("over the pod's cap after the wait: 503", func(t *testing.T) {
		rt := newRuntime(t, wasm.Config{HTTP: wasm.HTTPConfig{MaxConcurrent: 1, QueueTimeout: 50 * time.Millisecond}})
		addr := serveIn(t, rt, "a", mod)
		conn := hold(t, addr)
		want503(t, addr, "pod")
		conn.Close()
		testutil.Eventually(t, 30*time.Second, func() error {
			if code, _, _ := get(t, http.DefaultClient, "GET", "http://"+addr+"/", "", nil); code != 200 {
				return fmt.Errorf("after the slot was freed: %d", code)
			}
			return nil
		})
	})
	t.Run("over the node's cap after the wait: 503", func(t *testing.T) {
		rt := newRuntime(t, wasm.Config{HTTP: wasm.HTTPConfig{MaxConcurrent: 4, MaxConcurrentPerNode: 1, QueueTimeout: 50 * time.Millisecond}})
		a, b := serveIn(t, rt, "a", mod), serveIn(t, rt, "b", mod)
		hold(t, a)
		want503(t, b, "node")
	})
	t.Run("a client that trickles a small body does not hold a slot", func(t *testing.T) {
		rt := newRuntime(t, wasm.Config{HTTP: wasm.HTTPConfig{MaxConcurrent: 1, QueueTimeout: 50 * time.Millisecond}})
		addr := serveIn(t, rt, "a", mod)
		for range 4 {
			startBody(t, addr, 1000)
		}
		if code, _, body := get(t, http.DefaultClient, "GET", "http://"+addr+"/", "", nil); code != 200 {
			t.Errorf("while small bodies trickle in: %d %q, want 200", code, body)
		}
	})
	t.Run("a client that reads its response slowly does not hold a slot", func(t *testing.T) {
		// RequestTimeout (which also bounds writing the response) is long,
		// so that only the early release can free the slot in time.
		rt := newRuntime(t, wasm.Config{HTTP: wasm.HTTPConfig{MaxConcurrent: 1, QueueTimeout: 50 * time.Millisecond, RequestTimeout: 5 * time.Minute}})
		addr := serveIn(t, rt, "a", mod)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		// 16 MiB is more than the socket buffers hold: the response
		// cannot be written while nobody reads it.
		if _, err := io.WriteString(conn, "GET /big?mib=16 HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		testutil.Eventually(t, 20*time.Second, func() error {
			if code, _, _ := get(t, http.DefaultClient, "GET", "http://"+addr+"/", "", nil); code != 200 {
				return fmt.Errorf("while another client reads slowly: %d", code)
			}
			return nil
		})
	})
	t.Run("a queued request is served when a slot frees within the wait", func(t *testing.T) {
		rt := newRuntime(t, wasm.Config{HTTP: wasm.HTTPConfig{MaxConcurrent: 1, QueueTimeout: 30 * time.Second}})
		addr := serveIn(t, rt, "a", mod)
		conn := hold(t, addr)
		got := make(chan int, 1)
		go func() {
			resp, err := http.Get("http://" + addr + "/queued")
			if err != nil {
				got <- -1
				return
			}
			resp.Body.Close()
			got <- resp.StatusCode
		}()
		select {
		case code := <-got:
			t.Fatalf("answered %d while the only slot is held", code)
		case <-time.After(100 * time.Millisecond):
		}
		conn.Close()
		if code := <-got; code != 200 {
			t.Errorf("queued request: %d, want 200", code)
		}
	})
}

// TestWAGISlowBody: a client that sends its headers and then trickles its
// body is cut off with 408 when BodyReadTimeout passes, whether the body is
// small (read before the module runs) or large (streamed to it).
func TestWAGISlowBody(t *testing.T) {
	rt := newRuntime(t, wasm.Config{HTTP: wasm.HTTPConfig{BodyReadTimeout: 300 * time.Millisecond}})
	base, _, logPath := serveModule(t, rt, fileRef(cgiModule(t)), nil)
	for _, size := range []int{10_000, 8 << 20} {
		t.Run(fmt.Sprintf("%d bytes", size), func(t *testing.T) {
			conn := startBody(t, strings.TrimPrefix(base, "http://"), size)
			conn.SetDeadline(time.Now().Add(60 * time.Second))
			stop := make(chan struct{})
			defer close(stop)
			go func() {
				tick := time.NewTicker(20 * time.Millisecond)
				defer tick.Stop()
				for {
					select {
					case <-stop:
						return
					case <-tick.C:
						if _, err := conn.Write([]byte("a")); err != nil {
							return
						}
					}
				}
			}()
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("no response to a trickled body: %v", err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusRequestTimeout {
				t.Errorf("trickled body: %d, want 408", resp.StatusCode)
			}
		})
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if b, _ := readFile(logPath); strings.Count(b, "not received within") < 2 {
			return fmt.Errorf("log lacks the body timeouts: %q", b)
		}
		return nil
	})
	// A body that arrives in time is still served.
	code, _, body := get(t, http.DefaultClient, "POST", base+"/upload", "on time", nil)
	if code != 200 || !strings.Contains(body, "body=on time") {
		t.Errorf("body on time: %d %q", code, body)
	}
}

// TestWAGIHeaderSmuggling: each CGI variable has one value, from the
// header it names or from the request itself, never from a look-alike.
func TestWAGIHeaderSmuggling(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	base, _, _ := serveModule(t, rt, fileRef(cgiModule(t)), nil)
	vars := []string{"HTTP_X_TEST", "HTTP_PROXY", "HTTP_X_DUP", "CONTENT_TYPE", "CONTENT_LENGTH", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "HTTP_X_DOT", "HTTP_X_REAL"}
	resp, body := raw(t, strings.TrimPrefix(base, "http://"), "GET /env?n="+strings.Join(vars, "&n=")+" HTTP/1.1\r\n"+
		"Host: x\r\n"+
		"X_Test: smuggled\r\n"+
		"Proxy: http://evil.example:3128\r\n"+
		"X-Dup: one\r\n"+
		"X-Dup: two\r\n"+
		"Content-Type: text/plain\r\n"+
		"Content_Type: evil/type\r\n"+
		"Content_Length: 999\r\n"+
		"X.Dot: bad\r\n"+
		"X-Real: yes\r\n"+
		"Connection: close\r\n\r\n")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{
		"HTTP_X_TEST unset",         // X_Test does not pose as X-Test
		"HTTP_PROXY unset",          // httpoxy
		`HTTP_X_DUP="one, two"`,     // one value
		`CONTENT_TYPE="text/plain"`, // the real one
		"CONTENT_LENGTH unset",      // no body, whatever Content_Length says
		"HTTP_CONTENT_TYPE unset",
		"HTTP_CONTENT_LENGTH unset",
		"HTTP_X_DOT unset",
		`HTTP_X_REAL="yes"`,
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("module env lacks %s:\n%s", want, body)
		}
	}
}
