package controlplane_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// The control plane runs the DaemonSet controller: an applied DaemonSet
// gets one pod per node (a node applied later too), with SuccessfulCreate
// events; deleting it takes them away.
func TestDaemonSetThroughControlPlane(t *testing.T) {
	cp := startCP(t, "off")
	ctx := context.Background()
	nc, err := connectAs(t, cp, adminCreds(t, cp))
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New(nc, client.WithTimeout(10*time.Second))
	node := func(name string) []byte {
		return []byte("apiVersion: v1\nkind: Node\nmetadata:\n  name: " + name + "\n")
	}
	if _, err := admin.Apply(ctx, node("n1")); err != nil {
		t.Fatal(err)
	}
	manifest := "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: agent\nspec:\n  selector:\n    matchLabels: {app: agent}\n" +
		"  template:\n    metadata:\n      labels: {app: agent}\n    spec:\n      containers:\n      - name: a\n        image: busybox:1\n"
	if _, err := admin.Apply(ctx, []byte(manifest)); err != nil {
		t.Fatal(err)
	}
	live := func() map[string]int {
		objs, _, err := admin.List(ctx, api.ListRequest{Kind: "Pod", Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]int{}
		for _, o := range objs {
			if p := o.(*api.Pod); p.DeletionTimestamp == nil {
				out[p.Spec.NodeName]++
			}
		}
		return out
	}
	waitNodes := func(want string) {
		t.Helper()
		testutil.Eventually(t, 10*time.Second, func() error {
			if got := fmt.Sprint(live()); got != want {
				return fmt.Errorf("pods per node %s, want %s", got, want)
			}
			return nil
		})
	}
	waitNodes("map[n1:1]")
	if _, err := admin.Apply(ctx, node("n2")); err != nil {
		t.Fatal(err)
	}
	waitNodes("map[n1:1 n2:1]")
	testutil.Eventually(t, 10*time.Second, func() error {
		evs, err := admin.Events(ctx, "default", false, "involvedObject.kind=DaemonSet,reason=SuccessfulCreate")
		if err != nil {
			return err
		}
		if len(evs) == 0 || evs[0].Source.Component != "daemonset-controller" {
			return fmt.Errorf("SuccessfulCreate events about a DaemonSet: %+v", evs)
		}
		return nil
	})
	if _, err := admin.Delete(ctx, api.DeleteRequest{Kind: "DaemonSet", Name: "agent"}); err != nil {
		t.Fatal(err)
	}
	waitNodes("map[]")
}
