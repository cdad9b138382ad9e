package containerd

import (
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/kybernetes/kybernetes/runtimes"
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

// An image in a registry behind basic auth is pulled with the login of a
// pod's imagePullSecrets (EnsureImageWithAuth through containerd's
// resolver), and refused without it.
func TestPullWithAuth(t *testing.T) {
	r, e := newTestRuntime(t)
	ctx := context.Background()
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	open := httptest.NewServer(reg)
	t.Cleanup(open.Close)
	private := httptest.NewServer(basicAuth("puller", "pull-pw", reg))
	t.Cleanup(private.Close)
	repo := "/kyb/private-" + strconv.FormatInt(time.Now().UnixNano(), 36) + ":v1"
	if err := pushImage(strings.TrimPrefix(open.URL, "http://")+repo, e.appImg); err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(private.URL, "http://")
	ref := host + repo
	_, err := r.EnsureImage(ctx, ref, runtimes.PullAlways, nil)
	if err == nil || runtimes.ReasonOf(err, "") != runtimes.ReasonErrImagePull {
		t.Fatalf("anonymous pull: %v, want ErrImagePull", err)
	}
	if _, err := r.EnsureImageWithAuth(ctx, ref, runtimes.PullAlways, []runtimes.RegistryAuth{{Server: host, Username: "puller", Password: "nope"}}, nil); err == nil {
		t.Fatal("wrong password: want an error")
	}
	img, err := r.EnsureImageWithAuth(ctx, ref, runtimes.PullAlways, []runtimes.RegistryAuth{{Server: "other.example", Username: "x", Password: "y"}, {Server: host, Username: "puller", Password: "pull-pw"}}, nil)
	if err != nil {
		t.Fatalf("pull with the login: %v", err)
	}
	t.Cleanup(func() { r.client.ImageService().Delete(r.ns(ctx), img.Ref) })
	if !strings.HasPrefix(img.Digest, "sha256:") {
		t.Fatalf("image %+v", img)
	}
}
