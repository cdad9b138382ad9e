package cli

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/endpointslice"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

const webPodYAML = `apiVersion: v1
kind: Pod
metadata:
  name: web
  labels:
    app: web
spec:
  containers:
  - name: app
    image: busybox:1
    ports:
    - name: http
      containerPort: 8080
`

// kyb expose, get svc, get endpointslices and describe svc against an
// apiserver and the EndpointSlice controller.
func TestServiceVerbs(t *testing.T) {
	url := startCluster(t)
	var st *store.Store
	runControllers(t, func(mgr *framework.Manager, s *store.Store, log *slog.Logger) {
		st = s
		mgr.Add("endpointslice", endpointslice.New(mgr, s, endpointslice.Config{}, log))
	}, "n1")
	applyText(t, url, webPodYAML)
	// The agent's part: the pod gets an IP (runControllers makes it ready).
	ctx := context.Background()
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, api.KindOf(&api.Pod{}), "default", "web")
		if err != nil {
			return err
		}
		p := obj.(*api.Pod)
		p.Spec.NodeName = "n1"
		p.Status.PodIP = "10.42.0.9"
		return st.Update(ctx, p)
	})
	if err != nil {
		t.Fatal(err)
	}
	run := func(want string, args ...string) string {
		t.Helper()
		var out string
		testutil.Eventually(t, 5*time.Second, func() error {
			o, errOut, err := kybOut(url, args...)
			if err != nil {
				return testutil.Errorf("kyb %s: %v %s", strings.Join(args, " "), err, errOut)
			}
			if !strings.Contains(strings.Join(strings.Fields(o), " "), want) {
				return testutil.Errorf("kyb %s printed %q, want %q", strings.Join(args, " "), o, want)
			}
			out = o
			return nil
		})
		return out
	}
	run("service/web exposed", "expose", "pod/web", "--port", "80", "--target-port", "http", "--type", "NodePort")
	out := run("NodePort", "get", "svc", "web")
	if !strings.Contains(out, "80:3") || !strings.Contains(out, "/TCP") || !strings.Contains(out, "10.43.") {
		t.Fatalf("get svc: %s", out)
	}
	run("IPv4 8080 10.42.0.9", "get", "endpointslices")
	run("Endpoints: 10.42.0.9:8080", "describe", "svc", "web")
	run("Selector: app=web", "describe", "svc/web")
	out = run("IPv4", "get", "svc,endpointslices")
	if !strings.Contains(out, "web") || !strings.Contains(out, "CLUSTER-IP") || !strings.Contains(out, "ADDRESSTYPE") {
		t.Fatalf("get svc,endpointslices: %s", out)
	}
	if _, _, err := kybOut(url, "expose", "pod/web", "--name", "bad", "--port", "80", "--type", "Ingress"); err == nil || !strings.Contains(err.Error(), "spec.type") {
		t.Fatalf("expose with a bad type: %v", err)
	}
}
