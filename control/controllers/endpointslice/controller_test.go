package endpointslice_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controllers/endpointslice"
	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/controllers/framework/frameworktest"
	"github.com/kybernetes/kybernetes/control/controllers/garbagecollector"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/retry"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var (
	podKind     = api.KindOf(&api.Pod{})
	nodeKind    = api.KindOf(&api.Node{})
	serviceKind = api.KindOf(&api.Service{})
	sliceKind   = api.KindOf(&api.EndpointSlice{})
)

// start runs the EndpointSlice controller and the garbage collector on a
// fresh store.
func start(t testing.TB) (context.Context, *store.Store) {
	t.Helper()
	ctx, st := frameworktest.OpenStore(t)
	frameworktest.Run(t, st, nil, func(mgr *framework.Manager) {
		mgr.Add("endpointslice", endpointslice.New(mgr, st, endpointslice.Config{}, slog.New(slog.DiscardHandler)))
		mgr.Add("garbagecollector", garbagecollector.New(mgr, st, garbagecollector.Config{}, slog.New(slog.DiscardHandler)))
	})
	return ctx, st
}

func create(t testing.TB, ctx context.Context, st *store.Store, obj api.Object) {
	t.Helper()
	api.Default(obj)
	if err := st.Create(ctx, obj); err != nil {
		t.Fatal(err)
	}
}

func node(name, ip string, ready bool) *api.Node {
	s := api.ConditionFalse
	if ready {
		s = api.ConditionTrue
	}
	return &api.Node{ObjectMeta: api.ObjectMeta{Name: name}, Status: api.NodeStatus{
		Addresses:  []api.NodeAddress{{Type: api.NodeHostName, Address: name}, {Type: api.NodeInternalIP, Address: ip}},
		Conditions: []api.NodeCondition{{Type: api.NodeReady, Status: s}},
	}}
}

type podOpt func(*api.Pod)

func wasm(p *api.Pod) { rc := api.RuntimeWasm; p.Spec.RuntimeClassName = &rc }

func ports(ps ...api.ContainerPort) podOpt {
	return func(p *api.Pod) { p.Spec.Containers[0].Ports = ps }
}

func pod(name, ip, nodeName string, ready bool, opts ...podOpt) *api.Pod {
	s := api.ConditionFalse
	if ready {
		s = api.ConditionTrue
	}
	p := &api.Pod{
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "web"}},
		Spec: api.PodSpec{NodeName: nodeName, Containers: []api.Container{{Name: "c", Image: "img:1",
			Ports: []api.ContainerPort{{Name: "http", ContainerPort: 8080}}}}},
		Status: api.PodStatus{Phase: api.PodRunning, PodIP: ip, Conditions: []api.PodCondition{{Type: api.PodReady, Status: s}}},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func service(name string, mut ...func(*api.Service)) *api.Service {
	s := &api.Service{ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default"}, Spec: api.ServiceSpec{
		Selector:  map[string]string{"app": "web"},
		ClusterIP: "10.43.0.20",
		Ports:     []api.ServicePort{{Name: "http", Port: 80, TargetPort: api.FromString("http")}},
	}}
	for _, m := range mut {
		m(s)
	}
	return s
}

// endpointsOf returns the endpoints of svc's slices, by pod name, and the
// slices.
func endpointsOf(ctx context.Context, st *store.Store, svc string) (map[string]api.Endpoint, []*api.EndpointSlice, error) {
	sel := labels.SelectorFromSet(labels.Set{api.LabelServiceName: svc})
	objs, _, err := st.List(ctx, sliceKind, store.ListOptions{Namespace: "default", Labels: sel})
	if err != nil {
		return nil, nil, err
	}
	out := map[string]api.Endpoint{}
	var sls []*api.EndpointSlice
	for _, o := range objs {
		s := o.(*api.EndpointSlice)
		sls = append(sls, s)
		for _, ep := range s.Endpoints {
			out[ep.TargetRef.Name] = ep
		}
	}
	return out, sls, nil
}

// waitFor waits until check accepts the endpoints of svc.
func waitFor(t *testing.T, ctx context.Context, st *store.Store, svc string, check func(map[string]api.Endpoint, []*api.EndpointSlice) error) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		eps, sls, err := endpointsOf(ctx, st, svc)
		if err != nil {
			return err
		}
		return check(eps, sls)
	})
}

func setReady(t *testing.T, ctx context.Context, st *store.Store, name string, ready bool) {
	t.Helper()
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, podKind, "default", name)
		if err != nil {
			return err
		}
		p := obj.(*api.Pod)
		s := api.ConditionFalse
		if ready {
			s = api.ConditionTrue
		}
		p.Status.SetCondition(api.PodCondition{Type: api.PodReady, Status: s})
		return st.Update(ctx, p)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func isTrue(b *bool) bool { return b != nil && *b }

func TestReadinessFlip(t *testing.T) {
	ctx, st := start(t)
	create(t, ctx, st, node("n1", "192.168.1.1", true))
	create(t, ctx, st, service("web"))
	create(t, ctx, st, pod("a", "10.42.0.5", "n1", true))
	create(t, ctx, st, pod("b", "10.42.0.6", "n1", false))
	waitFor(t, ctx, st, "web", func(eps map[string]api.Endpoint, sls []*api.EndpointSlice) error {
		a, b := eps["a"], eps["b"]
		if len(eps) != 2 || !isTrue(a.Conditions.Ready) || isTrue(b.Conditions.Ready) {
			return fmt.Errorf("endpoints %+v", eps)
		}
		if a.Addresses[0] != "10.42.0.5" || a.Runtime != api.RuntimeContainerd || a.NodeName != "n1" {
			return fmt.Errorf("endpoint a %+v", a)
		}
		if len(sls) != 1 {
			return fmt.Errorf("%d slices", len(sls))
		}
		s := sls[0]
		if *s.Ports[0].Port != 8080 || *s.Ports[0].Name != "http" || s.AddressType != "IPv4" || s.Labels[api.LabelManagedBy] != endpointslice.ManagedBy {
			return fmt.Errorf("slice %+v", s)
		}
		if ref := api.ControllerOf(s); ref == nil || ref.Kind != "Service" || ref.Name != "web" {
			return fmt.Errorf("owner %+v", s.OwnerReferences)
		}
		return nil
	})
	setReady(t, ctx, st, "a", false)
	setReady(t, ctx, st, "b", true)
	waitFor(t, ctx, st, "web", func(eps map[string]api.Endpoint, _ []*api.EndpointSlice) error {
		if isTrue(eps["a"].Conditions.Ready) || !isTrue(eps["b"].Conditions.Ready) {
			return fmt.Errorf("after the flip: %+v", eps)
		}
		return nil
	})
	// Terminating: listed, not ready, terminating.
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, podKind, "default", "b")
		if err != nil {
			return err
		}
		now := time.Now().UTC()
		obj.GetObjectMeta().DeletionTimestamp = &now
		return st.Update(ctx, obj)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, st, "web", func(eps map[string]api.Endpoint, _ []*api.EndpointSlice) error {
		b := eps["b"]
		if isTrue(b.Conditions.Ready) || !isTrue(b.Conditions.Terminating) || !isTrue(b.Conditions.Serving) {
			return fmt.Errorf("terminating b: %+v", b.Conditions)
		}
		return nil
	})
	// Gone pods leave one empty slice behind.
	for _, n := range []string{"a", "b"} {
		if _, err := st.Delete(ctx, podKind, "default", n, ""); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, ctx, st, "web", func(eps map[string]api.Endpoint, sls []*api.EndpointSlice) error {
		if len(eps) != 0 || len(sls) != 1 {
			return fmt.Errorf("%d endpoints in %d slices", len(eps), len(sls))
		}
		return nil
	})
}

func TestWasmPodByNodeAddress(t *testing.T) {
	ctx, st := start(t)
	create(t, ctx, st, node("n1", "192.168.1.1", true))
	create(t, ctx, st, node("n2", "192.168.1.2", true))
	create(t, ctx, st, service("web"))
	create(t, ctx, st, pod("c", "10.42.0.5", "n1", true))
	create(t, ctx, st, pod("w", "", "n2", true, wasm))
	create(t, ctx, st, pod("unbound", "", "", true, wasm))
	// Addresses an agent made up are left out.
	for i, bad := range []string{"127.0.0.1", "0.0.0.0", "224.0.0.1", "169.254.1.1", "fd00::1", "10.42.0.300", "not-an-ip"} {
		create(t, ctx, st, pod(fmt.Sprintf("bad%d", i), bad, "n1", true))
	}
	waitFor(t, ctx, st, "web", func(eps map[string]api.Endpoint, sls []*api.EndpointSlice) error {
		w, ok := eps["w"]
		if !ok || len(eps) != 2 {
			return fmt.Errorf("endpoints %+v", eps)
		}
		if w.Addresses[0] != "192.168.1.2" || w.Runtime != api.RuntimeWasm || w.NodeName != "n2" || !isTrue(w.Conditions.Ready) {
			return fmt.Errorf("wasm endpoint %+v", w)
		}
		if eps["c"].Addresses[0] != "10.42.0.5" {
			return fmt.Errorf("container endpoint %+v", eps["c"])
		}
		if len(sls) != 1 {
			return fmt.Errorf("%d slices: both pods serve 8080", len(sls))
		}
		return nil
	})
	// The node's address changes: so does the endpoint.
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, nodeKind, "", "n2")
		if err != nil {
			return err
		}
		n := obj.(*api.Node)
		n.Status.Addresses[1].Address = "192.168.1.22"
		return st.Update(ctx, n)
	})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, st, "web", func(eps map[string]api.Endpoint, _ []*api.EndpointSlice) error {
		if eps["w"].Addresses[0] != "192.168.1.22" {
			return fmt.Errorf("wasm endpoint %+v", eps["w"])
		}
		return nil
	})
}

func TestNamedTargetPort(t *testing.T) {
	ctx, st := start(t)
	create(t, ctx, st, node("n1", "192.168.1.1", true))
	create(t, ctx, st, service("web"))
	create(t, ctx, st, pod("p8080", "10.42.0.5", "n1", true))
	create(t, ctx, st, pod("p9090", "10.42.0.6", "n1", true, ports(api.ContainerPort{Name: "http", ContainerPort: 9090})))
	create(t, ctx, st, pod("nohttp", "10.42.0.7", "n1", true, ports(api.ContainerPort{Name: "metrics", ContainerPort: 9100})))
	create(t, ctx, st, pod("udp", "10.42.0.8", "n1", true, ports(api.ContainerPort{Name: "http", ContainerPort: 53, Protocol: api.ProtocolUDP})))
	waitFor(t, ctx, st, "web", func(eps map[string]api.Endpoint, sls []*api.EndpointSlice) error {
		if len(eps) != 2 || len(sls) != 2 {
			return fmt.Errorf("%d endpoints in %d slices: %v", len(eps), len(sls), eps)
		}
		for _, s := range sls {
			want := map[string]int32{"p8080": 8080, "p9090": 9090}[s.Endpoints[0].TargetRef.Name]
			if len(s.Endpoints) != 1 || *s.Ports[0].Port != want {
				return fmt.Errorf("slice %s: port %d for %v", s.Name, *s.Ports[0].Port, s.Endpoints)
			}
		}
		return nil
	})
}

func TestHostnameAndPublishNotReady(t *testing.T) {
	ctx, st := start(t)
	create(t, ctx, st, node("n1", "192.168.1.1", true))
	create(t, ctx, st, service("db", func(s *api.Service) {
		s.Spec.ClusterIP = api.ClusterIPNone
		s.Spec.PublishNotReadyAddresses = true
	}))
	create(t, ctx, st, pod("db-0", "10.42.0.5", "n1", false, func(p *api.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "db-0", "db" }))
	create(t, ctx, st, pod("other", "10.42.0.6", "n1", false, func(p *api.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "other", "elsewhere" }))
	waitFor(t, ctx, st, "db", func(eps map[string]api.Endpoint, _ []*api.EndpointSlice) error {
		if eps["db-0"].Hostname != "db-0" || eps["other"].Hostname != "" {
			return fmt.Errorf("hostnames %q %q", eps["db-0"].Hostname, eps["other"].Hostname)
		}
		if !isTrue(eps["db-0"].Conditions.Ready) {
			return fmt.Errorf("publishNotReadyAddresses: %+v", eps["db-0"].Conditions)
		}
		return nil
	})
}

func TestManySlicesAndGC(t *testing.T) {
	ctx, st := start(t)
	create(t, ctx, st, node("n1", "192.168.1.1", true))
	for i := range 150 {
		create(t, ctx, st, pod(fmt.Sprintf("p%03d", i), fmt.Sprintf("10.42.%d.%d", i/200, i%200+1), "n1", true))
	}
	create(t, ctx, st, service("web"))
	waitFor(t, ctx, st, "web", func(eps map[string]api.Endpoint, sls []*api.EndpointSlice) error {
		if len(eps) != 150 || len(sls) != 2 {
			return fmt.Errorf("%d endpoints in %d slices", len(eps), len(sls))
		}
		for _, s := range sls {
			if len(s.Endpoints) > endpointslice.MaxEndpoints {
				return fmt.Errorf("slice %s holds %d", s.Name, len(s.Endpoints))
			}
		}
		return nil
	})
	// A slice deleted by hand comes back.
	_, sls, _ := endpointsOf(ctx, st, "web")
	if _, err := st.Delete(ctx, sliceKind, "default", sls[0].Name, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, st, "web", func(eps map[string]api.Endpoint, sls []*api.EndpointSlice) error {
		if len(eps) != 150 {
			return fmt.Errorf("%d endpoints after a slice was deleted", len(eps))
		}
		return nil
	})
	// The Service goes: its slices go with it (owner reference).
	if _, err := st.Delete(ctx, serviceKind, "default", "web", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, st, "web", func(eps map[string]api.Endpoint, sls []*api.EndpointSlice) error {
		if len(sls) != 0 {
			return fmt.Errorf("%d slices left", len(sls))
		}
		return nil
	})
}

func TestLoadBalancerIngressFollowsNodes(t *testing.T) {
	ctx, st := start(t)
	create(t, ctx, st, node("n1", "192.168.1.1", true))
	create(t, ctx, st, service("lb", func(s *api.Service) { s.Spec.Type = api.ServiceTypeLoadBalancer }))
	ingress := func() []string {
		obj, err := st.Get(ctx, serviceKind, "default", "lb")
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, in := range obj.(*api.Service).Status.LoadBalancer.Ingress {
			out = append(out, in.IP)
		}
		return out
	}
	want := func(ips ...string) {
		t.Helper()
		testutil.Eventually(t, 5*time.Second, func() error {
			if got := ingress(); !slices.Equal(got, ips) {
				return fmt.Errorf("ingress %v, want %v", got, ips)
			}
			return nil
		})
	}
	want("192.168.1.1")
	create(t, ctx, st, node("n2", "192.168.1.2", true))
	want("192.168.1.1", "192.168.1.2")
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, nodeKind, "", "n1")
		if err != nil {
			return err
		}
		n := obj.(*api.Node)
		n.Status.Conditions[0].Status = api.ConditionUnknown
		return st.Update(ctx, n)
	})
	if err != nil {
		t.Fatal(err)
	}
	want("192.168.1.2")
	if _, err := st.Delete(ctx, nodeKind, "", "n2", ""); err != nil {
		t.Fatal(err)
	}
	want()
}

func TestNoSelectorNoSlices(t *testing.T) {
	ctx, st := start(t)
	create(t, ctx, st, pod("a", "10.42.0.5", "", true))
	create(t, ctx, st, service("manual", func(s *api.Service) { s.Spec.Selector = nil }))
	create(t, ctx, st, service("marker"))
	// The Service with a selector is reconciled after (one worker queue,
	// same informer): by then the other has had its turn.
	waitFor(t, ctx, st, "marker", func(eps map[string]api.Endpoint, _ []*api.EndpointSlice) error {
		if len(eps) != 1 {
			return fmt.Errorf("marker: %v", eps)
		}
		return nil
	})
	_, sls, err := endpointsOf(ctx, st, "manual")
	if err != nil || len(sls) != 0 {
		t.Fatalf("a Service without a selector got slices: %v %v", sls, err)
	}
}

// A reconcile of a Service whose slices are right writes nothing: no
// revision moves while nothing changes (a write that compared unequal
// every time would loop through its own watch event).
func TestSteadyStateWritesNothing(t *testing.T) {
	ctx, st := start(t)
	create(t, ctx, st, node("n1", "192.168.1.1", true))
	create(t, ctx, st, service("web", func(s *api.Service) { s.Spec.Type = api.ServiceTypeLoadBalancer }))
	create(t, ctx, st, pod("a", "10.42.0.5", "n1", true, func(p *api.Pod) { p.Spec.Hostname, p.Spec.Subdomain = "a", "web" }))
	create(t, ctx, st, pod("w", "", "n1", false, wasm))
	var revs string
	waitFor(t, ctx, st, "web", func(eps map[string]api.Endpoint, sls []*api.EndpointSlice) error {
		if len(eps) != 2 || len(sls) != 1 {
			return fmt.Errorf("%d endpoints in %d slices", len(eps), len(sls))
		}
		revs = sls[0].ResourceVersion
		return nil
	})
	svcRev := func() string {
		obj, err := st.Get(ctx, serviceKind, "default", "web")
		if err != nil {
			t.Fatal(err)
		}
		return obj.GetObjectMeta().ResourceVersion
	}
	before := svcRev()
	// Nudge the controller: a pod change that changes no endpoint.
	err := retry.RetryOnConflict(ctx, retry.DefaultRetry, func() error {
		obj, err := st.Get(ctx, podKind, "default", "a")
		if err != nil {
			return err
		}
		obj.GetObjectMeta().Annotations = map[string]string{"touched": "yes"}
		return st.Update(ctx, obj)
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	_, sls, err := endpointsOf(ctx, st, "web")
	if err != nil {
		t.Fatal(err)
	}
	if sls[0].ResourceVersion != revs || svcRev() != before {
		t.Fatalf("a steady reconcile wrote: slice %s -> %s, service %s -> %s", revs, sls[0].ResourceVersion, before, svcRev())
	}
}
