package wasm_test

import (
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// serveCapped serves ref from a pod of its own whose WAGI cap is maxConc.
func serveCapped(t *testing.T, rt *wasm.Runtime, pod, ref string, maxConc int) string {
	t.Helper()
	ctx := ctxT(t)
	port := freePort(t)
	sb, err := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "default", Name: pod, UID: pod + "-uid", WAGIMaxConcurrency: maxConc})
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

func TestWAGIBoundedQueue(t *testing.T) {
	mod := fileRef(cgiModule(t))
	t.Run("beyond the queue: 503 at once, not after the wait", func(t *testing.T) {
		// One slot, one waiter, a long wait: the third request cannot
		// queue and must be refused without waiting 30 s.
		rt := newRuntime(t, wasm.Config{HTTP: wasm.HTTPConfig{MaxConcurrent: 1, QueueFactor: 1, QueueTimeout: 30 * time.Second}})
		addr := serveIn(t, rt, "a", mod)
		holder := hold(t, addr)
		// Two requests race for the one place in the queue: one waits,
		// the other is refused at once.
		codes := make(chan int, 2)
		for range 2 {
			go func() {
				resp, err := (&http.Client{Timeout: 60 * time.Second}).Get("http://" + addr + "/queued")
				if err != nil {
					codes <- -1
					return
				}
				resp.Body.Close()
				codes <- resp.StatusCode
			}()
		}
		select {
		case code := <-codes:
			if code != http.StatusServiceUnavailable {
				t.Fatalf("first answer %d while the slot is held, want 503", code)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("nobody refused within 20 s: the queue is not bounded")
		}
		holder.Close()
		if code := <-codes; code != 200 {
			t.Fatalf("the queued request: %d, want 200", code)
		}
	})
	t.Run("a pod's own cap replaces the runtime's", func(t *testing.T) {
		rt := newRuntime(t, wasm.Config{HTTP: wasm.HTTPConfig{MaxConcurrent: 1, QueueTimeout: 50 * time.Millisecond}})
		addr := serveCapped(t, rt, "b", mod, 2)
		hold(t, addr)
		// A second request has the pod's second slot.
		c := &http.Client{Timeout: 30 * time.Second}
		if code, _, body := get(t, c, "GET", "http://"+addr+"/", "", nil); code != 200 {
			t.Fatalf("second request with a cap of 2: %d %q", code, body)
		}
		hold(t, addr)
		want503(t, addr, "pod (2)")
	})
}
