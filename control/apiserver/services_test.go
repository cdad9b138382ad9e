package apiserver_test

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

func svcYAML(name, typ, clusterIP string, nodePort int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "apiVersion: v1\nkind: Service\nmetadata:\n  name: %s\nspec:\n  selector:\n    app: %s\n", name, name)
	if typ != "" {
		fmt.Fprintf(&b, "  type: %s\n", typ)
	}
	if clusterIP != "" {
		fmt.Fprintf(&b, "  clusterIP: %s\n", clusterIP)
	}
	b.WriteString("  ports:\n  - name: http\n    port: 80\n    targetPort: 8080\n")
	if nodePort != 0 {
		fmt.Fprintf(&b, "    nodePort: %d\n", nodePort)
	}
	return b.String()
}

func (e *env) applySvc(t *testing.T, yaml string) (*api.Service, error) {
	t.Helper()
	rep, err := e.c.Apply(e.ctx, []byte(yaml))
	if err != nil {
		return nil, err
	}
	obj, err := e.st.Get(e.ctx, api.KindOf(&api.Service{}), "default", rep.Results[0].Name)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*api.Service), nil
}

// wantCause fails unless err is a 422 with a cause for field containing msg.
func wantCause(t *testing.T, err error, field, msg string) {
	t.Helper()
	st, ok := err.(*api.Status)
	if !ok || st.Code != 422 {
		t.Fatalf("want 422, got %v", err)
	}
	for _, c := range st.Causes {
		if c.Field == field && strings.Contains(c.Message, msg) {
			return
		}
	}
	t.Fatalf("want %s: %q in %v", field, msg, st.Causes)
}

func TestServiceAllocation(t *testing.T) {
	e := newEnv(t)
	cidr := netip.MustParsePrefix(api.DefaultServiceCIDR)

	a, err := e.applySvc(t, svcYAML("a", "", "", 0))
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr(a.Spec.ClusterIP)
	if !cidr.Contains(ip) || ip.String() == "10.43.0.1" || ip.String() == "10.43.0.10" || len(a.Spec.ClusterIPs) != 1 {
		t.Fatalf("clusterIP %s / %v", a.Spec.ClusterIP, a.Spec.ClusterIPs)
	}
	// A re-apply keeps the IP and changes nothing.
	rep, err := e.c.Apply(e.ctx, []byte(svcYAML("a", "", "", 0)))
	if err != nil || rep.Results[0].Action != api.ActionUnchanged {
		t.Fatalf("re-apply: %v %+v", err, rep)
	}

	t.Run("requested IP taken", func(t *testing.T) {
		_, err := e.applySvc(t, svcYAML("b", "", a.Spec.ClusterIP, 0))
		wantCause(t, err, "spec.clusterIP", "already allocated to Service default/a")
	})
	t.Run("IP outside the CIDR", func(t *testing.T) {
		_, err := e.applySvc(t, svcYAML("b", "", "10.99.0.5", 0))
		wantCause(t, err, "spec.clusterIP", "not in the service CIDR 10.43.0.0/16")
	})
	t.Run("nodePort outside the range", func(t *testing.T) {
		_, err := e.applySvc(t, svcYAML("b", "NodePort", "", 8080))
		wantCause(t, err, "spec.ports[0].nodePort", "outside the NodePort range 30000-32767")
	})
	t.Run("clusterIP immutable", func(t *testing.T) {
		_, err := e.applySvc(t, svcYAML("a", "", "10.43.7.7", 0))
		wantCause(t, err, "spec.clusterIP", "immutable")
	})

	// NodePort: allocated, kept on re-apply, released on a type change.
	np, err := e.applySvc(t, svcYAML("np", "NodePort", "", 0))
	if err != nil {
		t.Fatal(err)
	}
	port := np.Spec.Ports[0].NodePort
	if port < 30000 || port > 32767 {
		t.Fatalf("nodePort %d", port)
	}
	again, err := e.applySvc(t, svcYAML("np", "NodePort", "", 0))
	if err != nil || again.Spec.Ports[0].NodePort != port || again.Spec.ClusterIP != np.Spec.ClusterIP {
		t.Fatalf("re-apply changed the allocation: %v %+v", err, again.Spec)
	}
	if _, err := e.applySvc(t, svcYAML("other", "NodePort", "", int(port))); err == nil {
		t.Fatal("a taken nodePort was given twice")
	} else {
		wantCause(t, err, "spec.ports[0].nodePort", "already allocated to Service default/np")
	}
	back, err := e.applySvc(t, svcYAML("np", "ClusterIP", "", 0))
	if err != nil || back.Spec.Ports[0].NodePort != 0 || back.Spec.ClusterIP != np.Spec.ClusterIP {
		t.Fatalf("to ClusterIP: %v %+v", err, back.Spec)
	}
	if _, err := e.applySvc(t, svcYAML("other", "NodePort", "", int(port))); err != nil {
		t.Fatalf("the nodePort a type change released: %v", err)
	}

	// A delete releases the IP (the watch sees it, whoever deleted).
	if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "Service", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		_, err := e.applySvc(t, svcYAML("b", "", a.Spec.ClusterIP, 0))
		return err
	})
}

// An apply of several documents is all or nothing: a Service whose
// nodePort is taken fails it before the first document is written, and
// what the others claimed is released.
func TestServiceAllocationAllOrNothing(t *testing.T) {
	e := newEnv(t)
	if _, err := e.applySvc(t, svcYAML("holder", "NodePort", "", 30500)); err != nil {
		t.Fatal(err)
	}
	multi := svcYAML("first", "NodePort", "10.43.0.50", 30501) + "---\n" + svcYAML("second", "NodePort", "", 30500)
	_, err := e.c.Apply(e.ctx, []byte(multi))
	wantCause(t, err, "documents[1].spec.ports[0].nodePort", "already allocated to Service default/holder")
	if _, gerr := e.st.Get(e.ctx, api.KindOf(&api.Service{}), "default", "first"); !api.IsNotFound(gerr) {
		t.Fatalf("first document written: %v", gerr)
	}
	// Its IP and port are free again.
	if _, err := e.applySvc(t, svcYAML("third", "NodePort", "10.43.0.50", 30501)); err != nil {
		t.Fatalf("claims of the failed apply were kept: %v", err)
	}
}

// 16 creates asking for one nodePort at once, through two API servers on
// one JetStream: exactly one gets it.
func TestConcurrentNodePortClaims(t *testing.T) {
	s := testutil.StartNATS(t)
	envs := []*env{newEnvOn(t, s, apiserver.Config{}), newEnvOn(t, s, apiserver.Config{})}
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = envs[i%2].c.Apply(envs[i%2].ctx, []byte(svcYAML(fmt.Sprintf("s%d", i), "NodePort", "", 31000)))
		}()
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		if err == nil {
			ok++
			continue
		}
		wantCause(t, err, "spec.ports[0].nodePort", "31000 is already allocated to Service default/s")
	}
	if ok != 1 {
		t.Fatalf("%d of %d creates got nodePort 31000: %v", ok, n, errs)
	}
	// And concurrent automatic allocations never hand out one IP twice.
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = envs[i%2].c.Apply(envs[i%2].ctx, []byte(svcYAML(fmt.Sprintf("auto%d", i), "NodePort", "", 0)))
		}()
	}
	wg.Wait()
	objs, _, err := envs[0].st.List(envs[0].ctx, api.KindOf(&api.Service{}), store.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ips, ports := map[string]string{}, map[int32]string{}
	for _, o := range objs {
		svc := o.(*api.Service)
		if prev, dup := ips[svc.Spec.ClusterIP]; dup {
			t.Fatalf("%s given to %s and %s", svc.Spec.ClusterIP, prev, svc.Name)
		}
		ips[svc.Spec.ClusterIP] = svc.Name
		if prev, dup := ports[svc.Spec.Ports[0].NodePort]; dup {
			t.Fatalf("nodePort %d given to %s and %s", svc.Spec.Ports[0].NodePort, prev, svc.Name)
		}
		ports[svc.Spec.Ports[0].NodePort] = svc.Name
	}
	if len(objs) != n+1 {
		t.Fatalf("%d services, want %d: %v", len(objs), n+1, errs)
	}
}

func TestRepairAllocations(t *testing.T) {
	s := testutil.StartNATS(t)
	e := newEnvOn(t, s, apiserver.Config{AllocRepairGrace: time.Nanosecond, AllocRepairInterval: -1})
	svc, err := e.applySvc(t, svcYAML("kept", "NodePort", "", 0))
	if err != nil {
		t.Fatal(err)
	}
	alloc, err := store.OpenAllocations(e.ctx, e.js, 1)
	if err != nil {
		t.Fatal(err)
	}
	// A leak (an apply that died between claim and write) and a lost claim.
	if _, _, err := alloc.Claim(e.ctx, "ip.10.43.200.200", "default/ghost"); err != nil {
		t.Fatal(err)
	}
	if err := alloc.Release(e.ctx, fmt.Sprintf("nodeport.%d", svc.Spec.Ports[0].NodePort), "default/kept"); err != nil {
		t.Fatal(err)
	}
	released, restored, err := e.srv.RepairAllocations(e.ctx)
	if err != nil || released != 1 || restored != 1 {
		t.Fatalf("repair: released %d restored %d, %v", released, restored, err)
	}
	if _, err := e.applySvc(t, svcYAML("other", "NodePort", "", int(svc.Spec.Ports[0].NodePort))); err == nil {
		t.Fatal("a restored nodePort was given again")
	}
	if _, err := e.applySvc(t, svcYAML("ghost2", "", "10.43.200.200", 0)); err != nil {
		t.Fatalf("a released leak is still held: %v", err)
	}
}
