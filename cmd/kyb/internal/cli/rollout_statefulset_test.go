package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/statefulset"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

const statefulSetYAML = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  replicas: 2
  serviceName: web
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: a
        image: busybox:1
        volumeMounts: [{name: data, mountPath: /data}]
  volumeClaimTemplates:
  - metadata: {name: data}
    spec:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 1Gi}}
`

// TestRolloutAndScaleStatefulSet: kyb get, rollout status and restart,
// scale and set image of a StatefulSet, and kyb get of its claims.
func TestRolloutAndScaleStatefulSet(t *testing.T) {
	url := startCluster(t)
	runControllers(t, func(mgr *framework.Manager, st *store.Store, log *slog.Logger) {
		mgr.Add("statefulset", statefulset.New(mgr, st, statefulset.Config{}, log))
	}, "sts-n1")
	applyText(t, url, statefulSetYAML)
	run := func(want string, args ...string) string {
		t.Helper()
		out, errOut, err := kybOut(url, args...)
		if err != nil {
			t.Fatalf("kyb %s: %v\n%s", strings.Join(args, " "), err, errOut)
		}
		if !strings.Contains(out, want) {
			t.Fatalf("kyb %s printed %q, want %q", strings.Join(args, " "), out, want)
		}
		return out
	}
	run("statefulset rolling update complete 2 pods at revision", "rollout", "status", "sts/web", "--timeout", "10s")
	run("2/2", "get", "statefulsets")
	out := run("data-web-1", "get", "pvc")
	if !strings.Contains(out, "ACCESS MODES") || !strings.Contains(out, "Pending") {
		t.Fatalf("get pvc:\n%s", out)
	}
	run("statefulset.apps/web scaled", "scale", "statefulset/web", "--replicas=3")
	run("statefulset rolling update complete 3 pods at revision", "rollout", "status", "statefulset/web", "--timeout", "10s")
	c, nc, err := client.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	revisions := func() map[string]bool {
		objs, _, err := c.List(context.Background(), api.ListRequest{Kind: "Pod", Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		h := map[string]bool{}
		for _, o := range objs {
			if p := o.(*api.Pod); p.DeletionTimestamp == nil {
				h[p.Labels[api.LabelControllerRevisionHash]] = true
			}
		}
		return h
	}
	before := revisions()
	run("statefulset.apps/web restarted", "rollout", "restart", "statefulset/web")
	run("statefulset rolling update complete 3 pods at revision", "rollout", "status", "statefulset/web", "--timeout", "20s")
	testutil.Eventually(t, 10*time.Second, func() error {
		after := revisions()
		for h := range after {
			if before[h] {
				return fmt.Errorf("a pod of the old revision %s is still there (%v)", h, after)
			}
		}
		return nil
	})
	run("statefulset.apps/web image updated", "set", "image", "statefulset/web", "a=busybox:2")
	run("statefulset rolling update complete 3 pods at revision", "rollout", "status", "statefulset/web", "--timeout", "20s")
	// Three templates, three revisions, each owned by the set.
	out = run("statefulset.apps/web", "get", "controllerrevisions")
	if n := strings.Count(out, "statefulset.apps/web"); n != 3 || !strings.Contains(out, "REVISION") {
		t.Fatalf("get controllerrevisions (%d owned by web):\n%s", n, out)
	}
}
