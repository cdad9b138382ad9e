package wasm_test

import (
	"io"
	"log"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// imagePullPolicy Never accepts a module already on the node, as
// Kubernetes does an image already present: a file:// module, and an OCI
// module fetched before, even by an earlier process (the agent restarted)
// and with its registry gone.
func TestPullNeverUsesWhatTheNodeHolds(t *testing.T) {
	prog, err := os.ReadFile(testProg(t))
	if err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	rt := newRuntime(t, wasm.Config{CacheDir: cache})
	if _, err := rt.EnsureImage(ctxT(t), "file://"+testProg(t), runtimes.PullNever, nil); err != nil {
		t.Errorf("file:// module with Never: %v", err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	ref := strings.TrimPrefix(srv.URL, "http://") + "/a/kept:v1"
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(prog, wasm.MediaTypeWasmLayer))
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}
	first, err := rt.EnsureImage(ctxT(t), ref, runtimes.PullIfNotPresent, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv.Close()
	again := newRuntime(t, wasm.Config{CacheDir: cache}) // the agent restarted
	got, err := again.EnsureImage(ctxT(t), ref, runtimes.PullNever, nil)
	if err != nil || got.Digest != first.Digest {
		t.Fatalf("Never after a restart: %v, %v; want %s", got, err, first.Digest)
	}
	_, err = again.EnsureImage(ctxT(t), strings.Replace(ref, "kept", "never-seen", 1), runtimes.PullNever, nil)
	wantReason(t, err, runtimes.ReasonErrImageNeverPull, false, "")
	// A module whose bytes are gone from the cache is not present.
	fresh := newRuntime(t, wasm.Config{CacheDir: t.TempDir()})
	_, err = fresh.EnsureImage(ctxT(t), ref, runtimes.PullNever, nil)
	wantReason(t, err, runtimes.ReasonErrImageNeverPull, false, "")
}
