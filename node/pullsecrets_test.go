package node

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// A wasm pod whose module is an OCI artifact in a registry behind basic
// auth runs with a kubernetes.io/dockerconfigjson imagePullSecret; without
// the secret it fails with ErrImagePull and an event saying the secret
// could not be read, and it runs once the secret exists.
func TestImagePullSecretsWasm(t *testing.T) {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	open := httptest.NewServer(reg)
	t.Cleanup(open.Close)
	private := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "puller" || p != "pull-pw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="kyb-test"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(private.Close)
	mod, err := os.ReadFile(runtimetest.BuildGo(t, "./runtimes/runtimetest/testprog", "wasip1", "wasm"))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, static.NewLayer(mod, wasm.MediaTypeWasmLayer))
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), "application/vnd.wasm.config.v0+json")
	pushRef, _ := name.ParseReference(strings.TrimPrefix(open.URL, "http://") + "/team/app:v1")
	if err := remote.Write(pushRef, img); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(private.URL, "http://")

	h := newHarness(t)
	h.cfg.BackoffBase, h.cfg.BackoffMax = time.Hour, time.Hour // the notice, not the back-off, retries the pull
	rt, err := wasm.New(wasm.Config{StateDir: t.TempDir(), CacheDir: wasmCacheDir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	h.rts[api.RuntimeWasm] = rt
	srv := serveConfigs(t, h)
	h.start()

	p := mkpod("private", api.RestartPolicyAlways, host+"/team/app:v1")
	p.Spec.RuntimeClassName = ptr(api.RuntimeWasm)
	p.Spec.ImagePullSecrets = []api.LocalObjectReference{{Name: "regcred"}}
	p.Spec.Containers[0].Args = []string{"out", "pulled-with-auth", "sleep", "forever"}
	api.Default(p)
	p.Spec.Containers[0].ImagePullPolicy = api.PullAlways
	p = h.cp.assign(p)
	testutil.Eventually(t, 10*time.Second, func() error {
		_, cs, err := containerStatus(t, h.cp, p.UID)
		if err != nil {
			return err
		}
		if w := cs.State.Waiting; w == nil || (w.Reason != runtimes.ReasonErrImagePull && w.Reason != runtimes.ReasonImagePullBackOff) {
			return fmt.Errorf("state %+v, want a failed pull", cs.State)
		}
		for _, ev := range h.cp.eventsSnapshot() {
			if ev.Reason == ReasonFailedToRetrieveImagePullSecret && strings.Contains(ev.Message, "regcred") {
				return nil
			}
		}
		return fmt.Errorf("no %s event", ReasonFailedToRetrieveImagePullSecret)
	})
	cfg := fmt.Sprintf(`{"auths":{%q:{"auth":"cHVsbGVyOnB1bGwtcHc="}}}`, "http://"+host)
	srv.put(&api.Secret{ObjectMeta: api.ObjectMeta{Name: "regcred"}, Type: api.SecretTypeDockerConfigJSON,
		Data: map[string][]byte{api.DockerConfigJSONKey: []byte(cfg)}})
	h.cp.waitPhase(t, p.UID, api.PodRunning)
	testutil.Eventually(t, 10*time.Second, func() error {
		if got := strings.Join(h.logLines("default", "private", "c0"), "\n"); !strings.Contains(got, "pulled-with-auth") {
			return fmt.Errorf("output %q", got)
		}
		return nil
	})
}

func TestParseDockerConfig(t *testing.T) {
	for _, tc := range []struct {
		name string
		s    api.Secret
		want string
		err  string
	}{
		{"auths with auth", api.Secret{Type: api.SecretTypeDockerConfigJSON, Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"r.example":{"auth":"dTpw"},"a.example":{"username":"x","password":"y"}}}`)}}, "a.example x y|r.example u p", ""},
		{"dockercfg", api.Secret{Type: api.SecretTypeDockercfg, Data: map[string][]byte{".dockercfg": []byte(`{"r.example":{"username":"u","password":"p"}}`)}}, "r.example u p", ""},
		{"opaque", api.Secret{Type: api.SecretTypeOpaque}, "", "is not kubernetes.io/dockerconfigjson"},
		{"bad json", api.Secret{Type: api.SecretTypeDockerConfigJSON, Data: map[string][]byte{".dockerconfigjson": []byte(`{`)}}, "", ".dockerconfigjson"},
		{"bad auth", api.Secret{Type: api.SecretTypeDockerConfigJSON, Data: map[string][]byte{".dockerconfigjson": []byte(`{"auths":{"r":{"auth":"%%%"}}}`)}}, "", "auths[r].auth"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseDockerConfig(&tc.s)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want %q", err, tc.err)
				}
				return
			}
			var parts []string
			for _, a := range got {
				parts = append(parts, a.Server+" "+a.Username+" "+a.Password)
			}
			if err != nil || strings.Join(parts, "|") != tc.want {
				t.Fatalf("got %q %v, want %q", parts, err, tc.want)
			}
		})
	}
}
