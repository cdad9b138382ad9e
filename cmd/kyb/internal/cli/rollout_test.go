package cli

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/controllers/deployment"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/garbagecollector"
	"github.com/kybernetes/kybernetes/control/controllers/replicaset"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// startWorkloads runs the ReplicaSet and Deployment controllers against
// the last startCluster's store, and plays the node agents: every new pod
// becomes Ready.
func startWorkloads(t *testing.T) {
	t.Helper()
	runControllers(t, func(mgr *framework.Manager, st *store.Store, log *slog.Logger) {
		mgr.Add("replicaset", replicaset.New(mgr, st, replicaset.Config{}, log))
		mgr.Add("deployment", deployment.New(mgr, st, deployment.Config{}, log))
		mgr.Add("garbagecollector", garbagecollector.New(mgr, st, garbagecollector.Config{}, log))
	})
}

const deployYAML = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: app
        image: busybox:1
`

func podImages(t *testing.T, url string) map[string]int {
	t.Helper()
	c, nc, err := client.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	objs, _, err := c.List(context.Background(), api.ListRequest{Kind: "Pod", Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, o := range objs {
		p := o.(*api.Pod)
		if p.DeletionTimestamp == nil {
			out[p.Spec.Containers[0].Image]++
		}
	}
	return out
}

func TestRolloutVerbs(t *testing.T) {
	url := startCluster(t)
	startWorkloads(t)
	applyText(t, url, deployYAML)
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
	waitImages := func(want map[string]int) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, func() error {
			if got := podImages(t, url); fmt.Sprint(got) != fmt.Sprint(want) {
				return fmt.Errorf("pods %v, want %v", got, want)
			}
			return nil
		})
	}
	run(`deployment "web" successfully rolled out`, "rollout", "status", "deployment/web", "--timeout", "10s")
	waitImages(map[string]int{"busybox:1": 2})
	// Applying the same manifest again changes nothing (the controller's
	// revision annotation is kept).
	{
		c, nc, err := client.Dial(url)
		if err != nil {
			t.Fatal(err)
		}
		reply, err := c.Apply(context.Background(), []byte(deployYAML))
		nc.Close()
		if err != nil || reply.Results[0].Action != api.ActionUnchanged {
			t.Fatalf("re-apply: %+v %v, want unchanged", reply, err)
		}
	}

	run("deployment.apps/web image updated", "set", "image", "deploy/web", "app=busybox:2")
	run(`successfully rolled out`, "rollout", "status", "deploy/web", "--timeout", "10s")
	waitImages(map[string]int{"busybox:2": 2})
	if _, _, err := kybOut(url, "set", "image", "deploy/web", "nope=busybox:3"); err == nil || !strings.Contains(err.Error(), `container named "nope"`) {
		t.Errorf("set image of a missing container: %v", err)
	}

	out := run("REVISION", "rollout", "history", "deployment/web")
	if !strings.Contains(out, "\n1 ") || !strings.Contains(out, "\n2 ") {
		t.Errorf("history %q lacks revisions 1 and 2", out)
	}
	run("busybox:2", "rollout", "history", "deployment/web", "--revision", "2")

	run("deployment.apps/web rolled back", "rollout", "undo", "deployment/web")
	run(`successfully rolled out`, "rollout", "status", "deployment/web", "--timeout", "10s")
	waitImages(map[string]int{"busybox:1": 2})
	if _, _, err := kybOut(url, "rollout", "undo", "deployment/web", "--to-revision", "9"); err == nil || !strings.Contains(err.Error(), "revision 9") {
		t.Errorf("undo to a missing revision: %v", err)
	}
	run("rolled back", "rollout", "undo", "deployment/web", "--to-revision", "2")
	waitImages(map[string]int{"busybox:2": 2})

	run("deployment.apps/web scaled", "scale", "deploy/web", "--replicas", "3")
	waitImages(map[string]int{"busybox:2": 3})
	testutil.Eventually(t, 10*time.Second, func() error {
		out, _, err := kybOut(url, "get", "deployments")
		if err != nil || !strings.Contains(out, "UP-TO-DATE") || !regexp.MustCompile(`web\s+3/3\s+3\s+3\s`).MatchString(out) {
			return fmt.Errorf("get deployments: %q %v", out, err)
		}
		return nil
	})
	if out, _, err := kybOut(url, "get", "rs", "-o", "wide"); err != nil || !strings.Contains(out, "DESIRED") || !strings.Contains(out, "busybox:2") {
		t.Errorf("get rs -o wide: %q %v", out, err)
	}

	run("deployment.apps/web paused", "rollout", "pause", "deployment/web")
	run("already paused", "rollout", "pause", "deployment/web")
	if _, _, err := kybOut(url, "rollout", "restart", "deployment/web"); err == nil {
		t.Error("restart of a paused deployment succeeded")
	}
	run("deployment.apps/web resumed", "rollout", "resume", "deployment/web")
	before := podNames(t, url)
	run("deployment.apps/web restarted", "rollout", "restart", "deployment/web")
	run(`successfully rolled out`, "rollout", "status", "deployment/web", "--timeout", "10s")
	testutil.Eventually(t, 10*time.Second, func() error {
		for n := range podNames(t, url) {
			if before[n] {
				return fmt.Errorf("pod %s from before the restart still there", n)
			}
		}
		return nil
	})

	// A standalone ReplicaSet scales too.
	applyText(t, url, strings.NewReplacer("Deployment", "ReplicaSet", "name: web", "name: solo", "app: web", "app: solo").Replace(deployYAML))
	run("replicaset.apps/solo scaled", "scale", "rs/solo", "--replicas", "1")

	for _, bad := range []struct {
		args []string
		want string
	}{
		{[]string{"scale", "deploy/web"}, "--replicas"},
		{[]string{"scale", "pod/web", "--replicas", "2"}, "not supported"},
		{[]string{"rollout", "status", "rs/solo"}, "not supported"},
		{[]string{"rollout", "undo", "deployment/nope"}, "not found"},
		{[]string{"set", "image", "deploy/web"}, "CONTAINER=IMAGE"},
	} {
		if _, _, err := kybOut(url, bad.args...); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("kyb %s: %v, want an error containing %q", strings.Join(bad.args, " "), err, bad.want)
		}
	}
}

func podNames(t *testing.T, url string) map[string]bool {
	t.Helper()
	c, nc, err := client.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	objs, _, err := c.List(context.Background(), api.ListRequest{Kind: "Pod", Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, o := range objs {
		out[o.GetObjectMeta().Name] = true
	}
	return out
}

// Bad workloads are refused with 422 naming the field, and nothing is
// stored.
func TestApplyBadWorkloads(t *testing.T) {
	url := startCluster(t)
	for _, tc := range []struct {
		name, from, to, field string
	}{
		{"selector not matching", "matchLabels: {app: web}", "matchLabels: {app: db}", "spec.template.metadata.labels"},
		{"negative replicas", "replicas: 2", "replicas: -1", "spec.replicas"},
		{"surge and unavailable 0", "replicas: 2", "replicas: 2\n  strategy:\n    rollingUpdate: {maxSurge: 0, maxUnavailable: 0}", "spec.strategy.rollingUpdate.maxUnavailable"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, nc, err := client.Dial(url)
			if err != nil {
				t.Fatal(err)
			}
			defer nc.Close()
			_, err = c.Apply(context.Background(), []byte(strings.Replace(deployYAML, tc.from, tc.to, 1)))
			st, ok := err.(*api.Status)
			if !ok || st.Code != 422 {
				t.Fatalf("apply: %v, want a 422", err)
			}
			found := false
			for _, cause := range st.Causes {
				found = found || cause.Field == tc.field
			}
			if !found {
				t.Fatalf("causes %+v do not name %s", st.Causes, tc.field)
			}
			if _, err := c.Get(context.Background(), "Deployment", "default", "web"); !api.IsNotFound(err) {
				t.Fatalf("a refused deployment was stored: %v", err)
			}
		})
	}
}

func countKind(t *testing.T, url, kind string) (n int, owned int) {
	t.Helper()
	c, nc, err := client.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	objs, _, err := c.List(context.Background(), api.ListRequest{Kind: kind, Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if len(o.GetObjectMeta().OwnerReferences) > 0 {
			owned++
		}
	}
	return len(objs), owned
}

// kyb delete --cascade: background (the default) and foreground delete the
// deployment's replicasets and pods; orphan keeps them, unowned.
func TestDeleteCascade(t *testing.T) {
	url := startCluster(t)
	startWorkloads(t)
	for _, tc := range []struct {
		cascade          string
		wantRS, wantPods int
	}{
		{"orphan", 1, 2},
		{"foreground", 0, 0},
		{"background", 0, 0},
	} {
		t.Run(tc.cascade, func(t *testing.T) {
			// Left-overs of an earlier case go first (their pods with them).
			if _, _, err := kybOut(url, "delete", "replicasets", "--all"); err != nil {
				t.Fatal(err)
			}
			testutil.Eventually(t, 10*time.Second, func() error {
				if n, _ := countKind(t, url, "Pod"); n != 0 {
					return fmt.Errorf("%d pods left over", n)
				}
				return nil
			})
			applyText(t, url, deployYAML)
			testutil.Eventually(t, 10*time.Second, func() error {
				if n, _ := countKind(t, url, "Pod"); n != 2 {
					return fmt.Errorf("%d pods", n)
				}
				return nil
			})
			if out, errOut, err := kybOut(url, "delete", "deployment/web", "--cascade", tc.cascade); err != nil {
				t.Fatalf("delete: %v %s", err, errOut)
			} else if !strings.Contains(out, "deleted") {
				t.Fatalf("delete printed %q", out)
			}
			testutil.Eventually(t, 10*time.Second, func() error {
				if n, _ := countKind(t, url, "Deployment"); n != 0 {
					return fmt.Errorf("deployment still there")
				}
				rs, rsOwned := countKind(t, url, "ReplicaSet")
				pods, _ := countKind(t, url, "Pod")
				if rs != tc.wantRS || pods != tc.wantPods {
					return fmt.Errorf("%d replicasets and %d pods, want %d and %d", rs, pods, tc.wantRS, tc.wantPods)
				}
				if rsOwned != 0 {
					return fmt.Errorf("an orphaned replicaset still names its owner")
				}
				return nil
			})
		})
	}
	if _, _, err := kybOut(url, "delete", "deployment/web", "--cascade", "sideways"); err == nil || !strings.Contains(err.Error(), "--cascade") {
		t.Errorf("bad --cascade: %v", err)
	}
	c, nc, err := client.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_, err = c.Delete(context.Background(), api.DeleteRequest{Kind: "Pod", Name: "x", PropagationPolicy: "Orphan"})
	if st, ok := err.(*api.Status); !ok || st.Code != 400 || !strings.Contains(st.Message, "propagationPolicy") {
		t.Errorf("orphan delete of a pod: %v, want 400 naming propagationPolicy", err)
	}
	_, err = c.Delete(context.Background(), api.DeleteRequest{Kind: "Deployment", Name: "x", PropagationPolicy: "Sideways"})
	if st, ok := err.(*api.Status); !ok || st.Code != 400 || !strings.Contains(st.Message, "propagationPolicy") {
		t.Errorf("unknown policy: %v, want 400 naming propagationPolicy", err)
	}
}

// A workload's template is admitted by Pod Security as a pod would be: its
// controller creates pods without passing the API.
func TestApplyWorkloadPodSecurity(t *testing.T) {
	url := startCluster(t)
	c, nc, err := client.Dial(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ns := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: locked\n  labels: {pod-security.kubernetes.io/enforce: baseline}\n"
	if _, err := c.Apply(context.Background(), []byte(ns)); err != nil {
		t.Fatal(err)
	}
	m := strings.Replace(deployYAML, "name: web\n", "name: web\n  namespace: locked\n", 1) +
		"        securityContext: {privileged: true}\n"
	_, err = c.Apply(context.Background(), []byte(m))
	st, ok := err.(*api.Status)
	if !ok || st.Code != 403 || len(st.Causes) == 0 || st.Causes[0].Field != "spec.template.spec.containers[0].securityContext.privileged" {
		t.Fatalf("privileged template in a baseline namespace: %v (%+v), want 403 naming spec.template.spec.containers[0].securityContext.privileged", err, st)
	}
	if _, err := c.Get(context.Background(), "Deployment", "locked", "web"); !api.IsNotFound(err) {
		t.Fatalf("a refused deployment was stored: %v", err)
	}
}
