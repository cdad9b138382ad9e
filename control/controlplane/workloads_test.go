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

// The control plane runs the workload controllers and the garbage
// collector: an applied Deployment gets a ReplicaSet and pods, with
// ScalingReplicaSet and SuccessfulCreate events; deleting it takes them
// away.
func TestDeploymentThroughControlPlane(t *testing.T) {
	cp := startCP(t, "off")
	ctx := context.Background()
	nc, err := connectAs(t, cp, adminCreds(t, cp))
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New(nc, client.WithTimeout(10*time.Second))
	manifest := "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  replicas: 3\n  selector:\n    matchLabels: {app: web}\n" +
		"  template:\n    metadata:\n      labels: {app: web}\n    spec:\n      containers:\n      - name: app\n        image: busybox:1\n"
	if _, err := admin.Apply(ctx, []byte(manifest)); err != nil {
		t.Fatal(err)
	}
	count := func(kind string) int {
		objs, _, err := admin.List(ctx, api.ListRequest{Kind: kind, Namespace: "default"})
		if err != nil {
			t.Fatal(err)
		}
		return len(objs)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n := count("Pod"); n != 3 {
			return fmt.Errorf("%d pods, want 3", n)
		}
		obj, err := admin.Get(ctx, "Deployment", "default", "web")
		if err != nil {
			return err
		}
		d := obj.(*api.Deployment)
		if d.Status.ObservedGeneration != d.Generation || d.Status.Replicas != 3 || d.Annotations[api.AnnotationRevision] != "1" {
			return fmt.Errorf("deployment status %+v", d.Status)
		}
		return nil
	})
	for _, want := range []struct{ kind, reason, component string }{
		{"Deployment", "ScalingReplicaSet", "deployment-controller"},
		{"ReplicaSet", "SuccessfulCreate", "replicaset-controller"},
	} {
		testutil.Eventually(t, 10*time.Second, func() error {
			evs, err := admin.Events(ctx, "default", false, "involvedObject.kind="+want.kind+",reason="+want.reason)
			if err != nil {
				return err
			}
			if len(evs) == 0 || evs[0].Source.Component != want.component {
				return fmt.Errorf("%s events about a %s: %+v", want.reason, want.kind, evs)
			}
			return nil
		})
	}
	if _, err := admin.Delete(ctx, api.DeleteRequest{Kind: "Deployment", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n, p := count("ReplicaSet"), count("Pod"); n != 0 || p != 0 {
			return fmt.Errorf("%d replicasets and %d pods left", n, p)
		}
		return nil
	})
}
