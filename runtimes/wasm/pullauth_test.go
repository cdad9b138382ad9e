package wasm_test

import (
	"io"
	"log"
	"net/http"
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
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// basicAuth answers 401 with a Basic challenge unless the request carries
// user:pass.
func basicAuth(user, pass string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != user || p != pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="kyb-test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// An OCI wasm artifact in a registry behind basic auth is pulled with the
// login a pod's imagePullSecrets give (EnsureImageWithAuth), and refused
// without it or with a wrong password.
func TestOCIPullWithAuth(t *testing.T) {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	open := httptest.NewServer(reg)
	t.Cleanup(open.Close)
	private := httptest.NewServer(basicAuth("puller", "pull-pw", reg))
	t.Cleanup(private.Close)
	prog, err := os.ReadFile(testProg(t))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(prog, wasm.MediaTypeWasmLayer))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), "application/vnd.wasm.config.v0+json")
	pushRef, _ := name.ParseReference(strings.TrimPrefix(open.URL, "http://") + "/team/private:v1")
	if err := remote.Write(pushRef, img); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(private.URL, "http://")
	ref := host + "/team/private:v1"

	var rt runtimes.Runtime = newRuntime(t, wasm.Config{})
	if _, err := rt.EnsureImage(ctxT(t), ref, runtimes.PullAlways, nil); err == nil {
		t.Fatal("anonymous pull from a private registry: want an error")
	}
	ap, ok := rt.(runtimes.AuthPuller)
	if !ok {
		t.Fatal("the wasm runtime does not implement runtimes.AuthPuller")
	}
	if _, err := ap.EnsureImageWithAuth(ctxT(t), ref, runtimes.PullAlways, []runtimes.RegistryAuth{{Server: host, Username: "puller", Password: "wrong"}}, nil); err == nil {
		t.Fatal("wrong password: want an error")
	}
	other := []runtimes.RegistryAuth{{Server: "elsewhere.example", Username: "puller", Password: "pull-pw"}}
	if _, err := ap.EnsureImageWithAuth(ctxT(t), ref, runtimes.PullAlways, other, nil); err == nil {
		t.Fatal("a login for another registry was sent: want an error")
	}
	got, err := ap.EnsureImageWithAuth(ctxT(t), ref, runtimes.PullAlways, []runtimes.RegistryAuth{{Server: "http://" + host + "/", Username: "puller", Password: "pull-pw"}}, nil)
	if err != nil || got.Digest != sha(prog) {
		t.Fatalf("pull with the login: %+v %v", got, err)
	}
}
