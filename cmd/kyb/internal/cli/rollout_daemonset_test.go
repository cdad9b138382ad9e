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
	"github.com/kybernetes/kybernetes/control/controllers/daemonset"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// startDaemonSets runs the DaemonSet controller against the last
// startCluster's store with two Ready nodes, and plays their agents: every
// new pod becomes Ready.
func startDaemonSets(t *testing.T) {
	t.Helper()
	runControllers(t, func(mgr *framework.Manager, st *store.Store, log *slog.Logger) {
		mgr.Add("daemonset", daemonset.New(mgr, st, daemonset.Config{}, log))
	}, "ds-n1", "ds-n2")
}

const daemonSetYAML = `apiVersion: apps/v1
kind: DaemonSet
metadata:
  name: agent
spec:
  selector:
    matchLabels: {app: agent}
  template:
    metadata:
      labels: {app: agent}
    spec:
      containers:
      - name: a
        image: busybox:1
`

func TestRolloutDaemonSet(t *testing.T) {
	url := startCluster(t)
	startDaemonSets(t)
	applyText(t, url, daemonSetYAML)
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
	run(`daemon set "agent" successfully rolled out`, "rollout", "status", "ds/agent", "--timeout", "10s")
	out := run("agent", "get", "daemonsets")
	if !strings.Contains(out, "NODE SELECTOR") {
		t.Fatalf("get daemonsets:\n%s", out)
	}
	hashes := func() map[string]bool {
		c, nc, err := client.Dial(url)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
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
	before := hashes()
	run("daemonset.apps/agent restarted", "rollout", "restart", "daemonset/agent")
	run(`daemon set "agent" successfully rolled out`, "rollout", "status", "daemonset/agent", "--timeout", "10s")
	testutil.Eventually(t, 10*time.Second, func() error {
		after := hashes()
		for h := range after {
			if before[h] {
				return fmt.Errorf("a pod of the old revision %s is still there (%v)", h, after)
			}
		}
		if len(after) != 1 {
			return fmt.Errorf("revisions %v, want one", after)
		}
		return nil
	})
	// Bad input through the API: a 422 naming the field, and nothing
	// changed.
	c, nc, err := client.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	old, err := c.Get(context.Background(), "DaemonSet", "default", "agent")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ from, to, field string }{
		{"name: agent\nspec:", "name: agent\nspec:\n  updateStrategy: {type: Recreate}", "spec.updateStrategy.type"},
		{"name: agent\nspec:", "name: agent\nspec:\n  updateStrategy: {rollingUpdate: {maxUnavailable: 0}}", "spec.updateStrategy.rollingUpdate.maxUnavailable"},
		{"matchLabels: {app: agent}", "matchLabels: {app: other}", "spec.template.metadata.labels"},
		{"image: busybox:1", "image: ''", "spec.template.spec.containers[0].image"},
	} {
		_, err := c.Apply(context.Background(), []byte(strings.Replace(daemonSetYAML, tc.from, tc.to, 1)))
		st, ok := err.(*api.Status)
		if !ok || st.Code != 422 {
			t.Fatalf("apply %s: %v, want a 422", tc.to, err)
		}
		found := false
		for _, cause := range st.Causes {
			found = found || cause.Field == tc.field
		}
		if !found {
			t.Fatalf("causes %+v do not name %s", st.Causes, tc.field)
		}
	}
	now, err := c.Get(context.Background(), "DaemonSet", "default", "agent")
	if err != nil {
		t.Fatal(err)
	}
	if now.GetObjectMeta().ResourceVersion != old.GetObjectMeta().ResourceVersion {
		t.Fatal("a refused apply changed the DaemonSet")
	}
}

// Drain refuses a node with daemon pods (the controller would put them
// right back, so the drain would never end) unless --ignore-daemonsets,
// which drains the rest and leaves them running, as kubectl.
func TestDrainDaemonSetPods(t *testing.T) {
	url := startCluster(t)
	startDaemonSets(t)
	applyText(t, url, daemonSetYAML)
	if _, _, err := kybOut(url, "rollout", "status", "ds/agent", "--timeout", "10s"); err != nil {
		t.Fatal(err)
	}
	_, _, err := kybOut(url, "drain", "ds-n1", "--timeout", "5s")
	if err == nil || !strings.Contains(err.Error(), "DaemonSet-managed") {
		t.Fatalf("drain with a daemon pod: %v, want a refusal naming DaemonSet-managed pods", err)
	}
	out, errOut, err := kybOut(url, "drain", "ds-n1", "--ignore-daemonsets", "--timeout", "5s")
	if err != nil || !strings.Contains(out, "node/ds-n1 drained") || !strings.Contains(errOut, "ignoring DaemonSet-managed") {
		t.Fatalf("drain --ignore-daemonsets: %v\n%s\n%s", err, out, errOut)
	}
	c, nc, err := client.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	objs, _, err := c.List(context.Background(), api.ListRequest{Kind: "Pod", Namespace: "default", FieldSelector: "spec.nodeName=ds-n1"})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].GetObjectMeta().DeletionTimestamp != nil {
		t.Fatalf("the daemon pod on the drained node: %d pods, want 1 left running", len(objs))
	}
}
