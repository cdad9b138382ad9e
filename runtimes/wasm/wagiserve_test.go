package wasm_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// TestServeContainerHTTP: a wasm container that declares a containerPort
// without a hostPort is served in process (for Services), keeps running,
// and stops when asked; an undeclared port is ErrNotFound.
func TestServeContainerHTTP(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	ctx := ctxT(t)
	sb, err := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "default", Name: "svc", UID: "svc-uid"})
	if err != nil {
		t.Fatal(err)
	}
	id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "web", Image: fileRef(cgiModule(t)),
		Ports: []runtimes.PortMapping{{ContainerPort: 8080}}, LogPath: filepath.Join(t.TempDir(), "log")})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		rec := httptest.NewRecorder()
		if err := rt.ServeContainerHTTP(id, 8080, rec, httptest.NewRequest("GET", "/env?n=REQUEST_METHOD", nil)); err != nil {
			t.Fatal(err)
		}
		if rec.Code != http.StatusOK || rec.Body.String() != "REQUEST_METHOD=\"GET\"\n" {
			t.Fatalf("served %d %q", rec.Code, rec.Body.String())
		}
	}
	if st, err := rt.ContainerStatus(ctx, id); err != nil || st.State != runtimes.ContainerRunning {
		t.Fatalf("status %+v %v, want running", st, err)
	}
	if err := rt.ServeContainerHTTP(id, 9999, httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)); !errors.Is(err, runtimes.ErrNotFound) {
		t.Fatalf("undeclared port: %v, want ErrNotFound", err)
	}
	if err := rt.StopContainer(ctx, id, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := rt.ServeContainerHTTP(id, 8080, httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil)); !errors.Is(err, runtimes.ErrNotFound) {
		t.Fatalf("stopped container: %v, want ErrNotFound", err)
	}
}
