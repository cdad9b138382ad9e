package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node/services"
)

func serviceYAML(name string) string {
	return fmt.Sprintf("apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\n  namespace: default\nspec:\n  selector:\n    app: %s\n  ports:\n  - port: 80\n", name, name)
}

func sliceYAML(svc, ip string) string {
	return fmt.Sprintf("apiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: %s-1\n  namespace: default\n  labels:\n    kubernetes.io/service-name: %s\naddressType: IPv4\nendpoints:\n- addresses: [%q]\nports:\n- port: 8080\n", svc, svc, ip)
}

// TestNodeServicesWatch: an agent's services watch lists every Service and
// EndpointSlice then follows changes, and a cache that lists again after
// a broken watch drops what was deleted meanwhile (an agent restart).
func TestNodeServiceWatch(t *testing.T) {
	e := newEnv(t)
	e.apply(t, serviceYAML("web"))
	e.apply(t, serviceYAML("api"))
	e.apply(t, sliceYAML("web", "10.244.0.5"))
	cache := services.NewCache()
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan struct{})
	go func() { defer close(done); cache.Run(ctx, e.nc, "n1", 0, logger(t)) }()
	testutil.Eventually(t, 5*time.Second, func() error {
		st := cache.State()
		if !st.Synced || len(st.Services) != 2 || len(st.Slices["default/web"]) != 1 {
			return fmt.Errorf("state %+v", st)
		}
		return nil
	})
	e.apply(t, sliceYAML("web", "10.244.0.6"))
	testutil.Eventually(t, 5*time.Second, func() error {
		st := cache.State()
		svc := st.Services["default/web"]
		eps := st.Endpoints("default/web", svc, &svc.Spec.Ports[0])
		if len(eps) != 1 || eps[0].Address != "10.244.0.6" || eps[0].Port != 8080 {
			return fmt.Errorf("endpoints %+v", eps)
		}
		return nil
	})
	cancel()
	<-done
	if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "Service", Namespace: "default", Name: "api"}); err != nil {
		t.Fatal(err)
	}
	ctx2, cancel2 := context.WithCancel(e.ctx)
	defer cancel2()
	go cache.Run(ctx2, e.nc, "n1", 0, logger(t))
	testutil.Eventually(t, 5*time.Second, func() error {
		if st := cache.State(); len(st.Services) != 1 || st.Services["default/web"] == nil {
			return fmt.Errorf("services %v", st.Services)
		}
		return nil
	})
}

// TestNodeServicesBadRequest: a bad resume point is a 400, not a watch.
func TestNodeServiceWatchBadRequest(t *testing.T) {
	e := newEnv(t)
	body, _ := json.Marshal(api.ServicesWatchRequest{ResourceVersion: "not-a-number"})
	m, err := e.nc.Request(api.NodeSubject("n1", api.NodeVerbServiceWatch), body, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := client.ReplyError(m); api.ReasonOf(err) != api.ReasonBadRequest {
		t.Fatalf("reply error %v, want BadRequest", err)
	}
}
