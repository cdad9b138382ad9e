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

// The control plane allocates a NodePort Service's IP and port and runs
// the EndpointSlice controller: the Service gets its (empty) slice, owned
// by it, and deleting the Service takes the slice and frees the port.
func TestServiceThroughControlPlane(t *testing.T) {
	cp := startCP(t, "off")
	ctx := context.Background()
	nc, err := connectAs(t, cp, adminCreds(t, cp))
	if err != nil {
		t.Fatal(err)
	}
	admin := client.New(nc, client.WithTimeout(10*time.Second))
	manifest := "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec:\n  type: NodePort\n  selector: {app: web}\n  ports:\n  - port: 80\n    nodePort: 30080\n"
	if _, err := admin.Apply(ctx, []byte(manifest)); err != nil {
		t.Fatal(err)
	}
	obj, err := admin.Get(ctx, "Service", "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if svc := obj.(*api.Service); svc.Spec.ClusterIP == "" || svc.Spec.Ports[0].NodePort != 30080 {
		t.Fatalf("service %+v", svc.Spec)
	}
	slices := func() (int, error) {
		objs, _, err := admin.List(ctx, api.ListRequest{Kind: "EndpointSlice", Namespace: "default", LabelSelector: api.LabelServiceName + "=web"})
		return len(objs), err
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n, err := slices(); err != nil || n != 1 {
			return fmt.Errorf("%d slices, %v", n, err)
		}
		return nil
	})
	if _, err := admin.Delete(ctx, api.DeleteRequest{Kind: "Service", Name: "web"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		if n, err := slices(); err != nil || n != 0 {
			return fmt.Errorf("%d slices after the delete, %v", n, err)
		}
		return nil
	})
	other := "apiVersion: v1\nkind: Service\nmetadata:\n  name: other\nspec:\n  type: NodePort\n  ports:\n  - port: 80\n    nodePort: 30080\n"
	testutil.Eventually(t, 10*time.Second, func() error {
		_, err := admin.Apply(ctx, []byte(other))
		return err
	})
}
