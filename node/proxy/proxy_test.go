package proxy

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node/services"
	"github.com/kybernetes/kybernetes/runtimes"
)

func ptr[T any](v T) *T { return &v }

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

type ep struct {
	ip    string
	ready bool
	wasm  bool
	pod   string
	node  string
}

func service(name, clusterIP string, typ api.ServiceType, ports ...api.ServicePort) *api.Service {
	return &api.Service{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name},
		Spec: api.ServiceSpec{Type: typ, ClusterIP: clusterIP, Ports: ports}}
}

func endpoints(svc string, port int32, proto string, eps ...ep) *api.EndpointSlice {
	sl := &api.EndpointSlice{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: svc + "-" + strings.ToLower(proto),
		Labels: map[string]string{api.LabelServiceName: svc}}, AddressType: "IPv4",
		Ports: []api.EndpointPort{{Name: ptr(""), Port: ptr(port), Protocol: ptr(proto)}}}
	for _, e := range eps {
		x := api.Endpoint{Addresses: []string{e.ip}, Conditions: api.EndpointConditions{Ready: ptr(e.ready)}, NodeName: e.node}
		if e.wasm {
			x.Runtime = api.RuntimeWasm
			x.NodeName = "n1"
			x.TargetRef = &api.ObjectReference{Kind: "Pod", Namespace: "default", Name: e.pod}
		}
		sl.Endpoints = append(sl.Endpoints, x)
	}
	return sl
}

// seen fetches n times and counts the answers.
func seen(t testing.TB, n int, fetch func() (string, error)) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		s, err := fetch()
		if err != nil {
			got["error: "+err.Error()]++
			continue
		}
		got[s]++
	}
	return got
}

func nftList(t testing.TB, tp *topo) string {
	out, _ := exec.Command("ip", "netns", "exec", tp.prefix+"n", "nft", "list", "table", "ip", TableName).CombinedOutput()
	return string(out)
}

// TestProxy: a ClusterIP spreads new connections over both ready endpoints
// for clients on other hosts and on the node itself, TCP and UDP; NodePort
// and LoadBalancer answer on the node's address; an endpoint that stops
// being ready gets no new connection once the rules are written (within 1 s
// of the change); sessionAffinity ClientIP keeps a client on one endpoint.
func TestProxy(t *testing.T) {
	tp := newTopo(t, 2)
	serveName(t, tp.pods[0], podIP(0)+":8080", "a")
	serveName(t, tp.pods[1], podIP(1)+":8080", "b")
	cache := services.NewCache()
	web := service("web", "10.43.0.20", api.ServiceTypeLoadBalancer,
		api.ServicePort{Port: 80, NodePort: 30080, Protocol: "TCP"})
	web.Spec.ExternalIPs = []string{"198.51.100.7"}
	dnsSvc := service("udp", "10.43.0.21", api.ServiceTypeClusterIP, api.ServicePort{Port: 53, Protocol: "UDP"})
	cache.Apply(api.EventAdded, web)
	cache.Apply(api.EventAdded, dnsSvc)
	cache.Apply(api.EventAdded, endpoints("web", 8080, "TCP", ep{ip: podIP(0), ready: true}, ep{ip: podIP(1), ready: true}))
	cache.Apply(api.EventAdded, endpoints("udp", 8080, "UDP", ep{ip: podIP(0), ready: true}, ep{ip: podIP(1), ready: true}))
	p := New(Config{NodeName: "n1", NetNS: tp.node}, cache, testLog(t))
	runProxy(t, p)
	markSynced(cache)
	testutil.Eventually(t, 5*time.Second, func() error {
		if p.Applied() == 0 {
			return fmt.Errorf("no rules written")
		}
		return nil
	})
	client, node := dialer{t, tp.client}, dialer{t, tp.node}
	for _, tc := range []struct {
		name  string
		fetch func() (string, error)
	}{
		{"ClusterIP from a client", func() (string, error) { return client.get("10.43.0.20:80") }},
		{"ClusterIP from the node", func() (string, error) { return node.get("10.43.0.20:80") }},
		{"NodePort from a client", func() (string, error) { return client.get(nodeIP + ":30080") }},
		{"NodePort from the node", func() (string, error) { return node.get(nodeIP + ":30080") }},
		{"LoadBalancer on the node's address", func() (string, error) { return client.get(nodeIP + ":80") }},
		{"external IP routed to the node", func() (string, error) { return client.get("198.51.100.7:80") }},
		{"UDP ClusterIP", func() (string, error) { return client.udp("10.43.0.21:53") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := seen(t, 40, tc.fetch)
			if got["a"] == 0 || got["b"] == 0 || got["a"]+got["b"] != 40 {
				t.Fatalf("answers %v, want both endpoints and nothing else\n%s", got, nftList(t, tp))
			}
		})
	}

	t.Run("an endpoint that stops being ready gets no new connections within 1s", func(t *testing.T) {
		before := p.Applied()
		start := time.Now()
		cache.Apply(api.EventModified, endpoints("web", 8080, "TCP", ep{ip: podIP(0), ready: true}, ep{ip: podIP(1), ready: false}))
		testutil.Eventually(t, time.Second, func() error {
			if p.Applied() == before {
				return fmt.Errorf("not written yet")
			}
			return nil
		})
		took := time.Since(start)
		if took > time.Second {
			t.Fatalf("rules written %v after the change, want <= 1s", took)
		}
		t.Logf("endpoint change to rules written: %v", took)
		if p.nft.updates.Load() == 0 {
			t.Errorf("a readiness change rewrote the whole table (%d full writes), want an update of its service's chains", p.nft.fulls.Load())
		}
		if got := seen(t, 30, func() (string, error) { return client.get("10.43.0.20:80") }); got["a"] != 30 {
			t.Fatalf("after b stopped being ready: %v, want a only", got)
		}
	})

	t.Run("Services come and go without rewriting the table", func(t *testing.T) {
		fulls := p.nft.fulls.Load()
		// A relist without the udp Service (deleted meanwhile) and with a
		// new one. (A SYN that met no rule keeps its untranslated
		// conntrack entry through its retransmissions: the first dial
		// may time out.)
		before := p.Applied()
		cache.BeginList()
		cache.Apply(api.EventAdded, web)
		cache.Apply(api.EventAdded, endpoints("web", 8080, "TCP", ep{ip: podIP(0), ready: true}, ep{ip: podIP(1), ready: false}))
		cache.Apply(api.EventAdded, service("new", "10.43.0.22", api.ServiceTypeNodePort, api.ServicePort{Port: 81, NodePort: 30081, Protocol: "TCP"}))
		cache.Apply(api.EventAdded, endpoints("new", 8080, "TCP", ep{ip: podIP(1), ready: true}))
		cache.EndList() // the udp Service and its slice are gone
		testutil.Eventually(t, 2*time.Second, func() error {
			if p.Applied() == before {
				return fmt.Errorf("not written")
			}
			return nil
		})
		testutil.Eventually(t, 5*time.Second, func() error {
			for _, addr := range []string{"10.43.0.22:81", nodeIP + ":30081"} {
				if s, err := client.get(addr); err != nil || s != "b" {
					return fmt.Errorf("%s: %q %v\n%s", addr, s, err, nftList(t, tp))
				}
			}
			return nil
		})
		if s, err := client.udp("10.43.0.21:53"); err == nil {
			t.Errorf("the deleted Service still answers: %q", s)
		}
		if got := seen(t, 20, func() (string, error) { return client.get("10.43.0.20:80") }); got["a"] != 20 {
			t.Errorf("the unchanged Service: %v", got)
		}
		if n := p.nft.fulls.Load(); n != fulls {
			t.Errorf("%d full writes for a Service added and one deleted, want updates only", n-fulls)
		}
		t.Logf("table:\n%s", nftList(t, tp))
	})

	t.Run("session affinity ClientIP", func(t *testing.T) {
		aff := service("web", "10.43.0.20", api.ServiceTypeClusterIP, api.ServicePort{Port: 80, Protocol: "TCP"})
		aff.Spec.SessionAffinity = api.SessionAffinityClientIP
		aff.Spec.SessionAffinityConfig = &api.SessionAffinityConfig{ClientIP: &api.ClientIPConfig{TimeoutSeconds: ptr(int32(60))}}
		cache.Apply(api.EventModified, aff)
		cache.Apply(api.EventModified, endpoints("web", 8080, "TCP", ep{ip: podIP(0), ready: true}, ep{ip: podIP(1), ready: true}))
		want := p.Applied() + 1
		testutil.Eventually(t, 2*time.Second, func() error {
			if p.Applied() < want {
				return fmt.Errorf("not written yet")
			}
			return nil
		})
		got := seen(t, 30, func() (string, error) { return client.get("10.43.0.20:80") })
		if len(got) != 1 {
			t.Fatalf("with ClientIP affinity one client saw %v, want one endpoint", got)
		}
	})
}

// TestProxyTrafficPolicyLocal: with externalTrafficPolicy Local, traffic
// from outside goes to this node's endpoints only (and is dropped when it
// has none), while the ClusterIP still spreads over all; with
// internalTrafficPolicy Local the ClusterIP takes only local endpoints.
func TestProxyTrafficPolicyLocal(t *testing.T) {
	tp := newTopo(t, 2)
	serveName(t, tp.pods[0], podIP(0)+":8080", "a")
	serveName(t, tp.pods[1], podIP(1)+":8080", "b")
	cache := services.NewCache()
	ext := service("ext", "10.43.0.60", api.ServiceTypeNodePort, api.ServicePort{Port: 80, NodePort: 30060, Protocol: "TCP"})
	ext.Spec.ExternalTrafficPolicy = "Local"
	in := service("in", "10.43.0.61", api.ServiceTypeClusterIP, api.ServicePort{Port: 80, Protocol: "TCP"})
	in.Spec.InternalTrafficPolicy = "Local"
	none := service("none", "10.43.0.62", api.ServiceTypeNodePort, api.ServicePort{Port: 80, NodePort: 30062, Protocol: "TCP"})
	none.Spec.ExternalTrafficPolicy = "Local"
	for _, s := range []*api.Service{ext, in, none} {
		cache.Apply(api.EventAdded, s)
	}
	both := []ep{{ip: podIP(0), ready: true, node: "n1"}, {ip: podIP(1), ready: true, node: "n2"}}
	cache.Apply(api.EventAdded, endpoints("ext", 8080, "TCP", both...))
	cache.Apply(api.EventAdded, endpoints("in", 8080, "TCP", both...))
	cache.Apply(api.EventAdded, endpoints("none", 8080, "TCP", ep{ip: podIP(1), ready: true, node: "n2"}))
	markSynced(cache)
	p := New(Config{NodeName: "n1", NetNS: tp.node}, cache, testLog(t))
	runProxy(t, p)
	client := dialer{t, tp.client}
	testutil.Eventually(t, 5*time.Second, func() error { _, err := client.get("10.43.0.60:80"); return err })
	for _, tc := range []struct {
		name, addr, want string
	}{
		{"external Local: NodePort to the local endpoint only", nodeIP + ":30060", "a"},
		{"external Local: the ClusterIP spreads over all", "10.43.0.60:80", "a+b"},
		{"internal Local: the ClusterIP to the local endpoint only", "10.43.0.61:80", "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := seen(t, 30, func() (string, error) { return client.get(tc.addr) })
			ok := got["a"] == 30
			if tc.want == "a+b" {
				ok = got["a"] > 0 && got["b"] > 0 && got["a"]+got["b"] == 30
			}
			if !ok {
				t.Fatalf("answers %v, want %s\n%s", got, tc.want, nftList(t, tp))
			}
		})
	}
	if s, err := client.get(nodeIP + ":30062"); err == nil {
		t.Fatalf("external Local without a local endpoint answered %q, want dropped", s)
	}
}

// TestProxyUDPEndpointGone: a UDP flow (one client socket) stays on its
// endpoint while it is ready, and moves to another once it is removed:
// the flow's conntrack entry is flushed (UDP has no connection to end).
func TestProxyUDPEndpointGone(t *testing.T) {
	tp := newTopo(t, 2)
	serveName(t, tp.pods[0], podIP(0)+":5353", "a")
	serveName(t, tp.pods[1], podIP(1)+":5353", "b")
	cache := services.NewCache()
	cache.Apply(api.EventAdded, service("u", "10.43.0.70", api.ServiceTypeClusterIP, api.ServicePort{Port: 53, Protocol: "UDP"}))
	cache.Apply(api.EventAdded, endpoints("u", 5353, "UDP", ep{ip: podIP(0), ready: true}, ep{ip: podIP(1), ready: true}))
	markSynced(cache)
	p := New(Config{NodeName: "n1", NetNS: tp.node}, cache, testLog(t))
	runProxy(t, p)
	// The flow's first datagram must meet the rules: one that met none
	// would pin the flow untranslated.
	testutil.Eventually(t, 5*time.Second, func() error {
		if p.Applied() == 0 {
			return fmt.Errorf("no rules written")
		}
		return nil
	})
	conn, err := dialer{t, tp.client}.dial("udp", "10.43.0.70:53")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ask := func() (string, error) {
		conn.SetDeadline(time.Now().Add(time.Second))
		if _, err := conn.Write([]byte("who")); err != nil {
			return "", err
		}
		buf := make([]byte, 64)
		n, err := conn.Read(buf)
		return string(buf[:n]), err
	}
	var first string
	testutil.Eventually(t, 5*time.Second, func() error { var err error; first, err = ask(); return err })
	for range 5 {
		if s, err := ask(); err != nil || s != first {
			t.Fatalf("the flow moved while its endpoint is ready: %q %v, was %q", s, err, first)
		}
	}
	other, gone := "b", ep{ip: podIP(0), ready: false}
	keep := ep{ip: podIP(1), ready: true}
	if first == "b" {
		other, gone, keep = "a", ep{ip: podIP(1), ready: false}, ep{ip: podIP(0), ready: true}
	}
	cache.Apply(api.EventModified, endpoints("u", 5353, "UDP", gone, keep))
	testutil.Eventually(t, 2*time.Second, func() error {
		if s, err := ask(); err != nil || s != other {
			return fmt.Errorf("the flow answers %q %v, want %q", s, err, other)
		}
		return nil
	})
}

// markSynced marks a hand-fed cache as holding a full list (of what it
// holds).
func markSynced(c *services.Cache) {
	st := c.State()
	c.BeginList()
	for _, s := range st.Services {
		c.Apply(api.EventModified, s)
	}
	for _, ss := range st.Slices {
		for _, s := range ss {
			c.Apply(api.EventModified, s)
		}
	}
	c.EndList()
}

// TestProxyRestart: a new proxy (an agent restart) leaves the old rules in
// force until it has the state, then replaces them whole: a Service that
// was deleted meanwhile is no longer steered, a new one is.
func TestProxyRestart(t *testing.T) {
	tp := newTopo(t, 1)
	serveName(t, tp.pods[0], podIP(0)+":8080", "a")
	client := dialer{t, tp.client}
	old := services.NewCache()
	old.Apply(api.EventAdded, service("old", "10.43.0.30", api.ServiceTypeClusterIP, api.ServicePort{Port: 80, Protocol: "TCP"}))
	old.Apply(api.EventAdded, endpoints("old", 8080, "TCP", ep{ip: podIP(0), ready: true}))
	markSynced(old)
	p1 := New(Config{NodeName: "n1", NetNS: tp.node}, old, testLog(t))
	stop := runProxy(t, p1)
	testutil.Eventually(t, 5*time.Second, func() error { _, err := client.get("10.43.0.30:80"); return err })
	stop()

	fresh := services.NewCache() // the new agent's, not synced yet
	p2 := New(Config{NodeName: "n1", NetNS: tp.node}, fresh, testLog(t))
	runProxy(t, p2)
	if s, err := client.get("10.43.0.30:80"); err != nil || s != "a" {
		t.Fatalf("before the new proxy has the state, the old rules must serve: %q %v", s, err)
	}
	fresh.Apply(api.EventAdded, service("new", "10.43.0.31", api.ServiceTypeClusterIP, api.ServicePort{Port: 80, Protocol: "TCP"}))
	fresh.Apply(api.EventAdded, endpoints("new", 8080, "TCP", ep{ip: podIP(0), ready: true}))
	markSynced(fresh)
	testutil.Eventually(t, 5*time.Second, func() error { _, err := client.get("10.43.0.31:80"); return err })
	if s, err := client.get("10.43.0.30:80"); err == nil {
		t.Fatalf("the deleted Service still answers (%q): stale rules\n%s", s, nftList(t, tp))
	}
	if err := Cleanup(tp.node, ""); err != nil {
		t.Fatal(err)
	}
	if out := nftList(t, tp); !strings.Contains(out, "No such file") && strings.Contains(out, "table ip kyb") {
		t.Fatalf("Cleanup left the table:\n%s", out)
	}
}

// fakeWasm is the runtime boundary: pods that answer their name.
type fakeWasm struct{ pods map[string]bool }

func (f *fakeWasm) WasmContainer(ns, name, uid string, port int32) (string, runtimes.HTTPServer, bool) {
	if !f.pods[name] || port != 8080 {
		return "", nil, false
	}
	return name, f, true
}

func (f *fakeWasm) ServeContainerHTTP(id string, port int32, w http.ResponseWriter, r *http.Request) error {
	fmt.Fprint(w, "wasm-"+id)
	return nil
}

// TestProxyWasm: a Service with a container endpoint and a wasm endpoint
// (on this node: its address and the pod's port) answers from both; the
// gateway hands the wasm pod's connections to the runtime.
func TestProxyWasm(t *testing.T) {
	tp := newTopo(t, 1)
	serveName(t, tp.pods[0], podIP(0)+":8080", "a")
	cache := services.NewCache()
	cache.Apply(api.EventAdded, service("web", "10.43.0.40", api.ServiceTypeClusterIP, api.ServicePort{Port: 80, Protocol: "TCP"}))
	cache.Apply(api.EventAdded, endpoints("web", 8080, "TCP", ep{ip: podIP(0), ready: true}, ep{ip: nodeIP, ready: true, wasm: true, pod: "w"}))
	markSynced(cache)
	p := New(Config{NodeName: "n1", NodeIP: netip.MustParseAddr(nodeIP), NetNS: tp.node,
		Locator: &fakeWasm{pods: map[string]bool{"w": true}}, Listen: listener(t, tp.node)}, cache, testLog(t))
	runProxy(t, p)
	client := dialer{t, tp.client}
	testutil.Eventually(t, 5*time.Second, func() error {
		got := seen(t, 40, func() (string, error) { return client.get("10.43.0.40:80") })
		if got["a"] == 0 || got["wasm-w"] == 0 || got["a"]+got["wasm-w"] != 40 {
			return fmt.Errorf("answers %v, want the container pod and the wasm pod", got)
		}
		return nil
	})
	// Another node's rules DNAT to this node's address and the pod's port:
	// the gateway answers there.
	if s, err := client.get(nodeIP + ":8080"); err != nil || s != "wasm-w" {
		t.Fatalf("from another node (the node's address and the pod's port): %q %v", s, err)
	}
	// The wasm pod stops being ready: the gateway stops listening.
	cache.Apply(api.EventModified, endpoints("web", 8080, "TCP", ep{ip: podIP(0), ready: true}, ep{ip: nodeIP, ready: false, wasm: true, pod: "w"}))
	testutil.Eventually(t, time.Second, func() error {
		if ports := p.Gateway().Ports(); len(ports) != 0 {
			return fmt.Errorf("gateway ports %v", ports)
		}
		return nil
	})
}

func slog0() *slog.Logger { return slog.New(slog.DiscardHandler) }

// TestWriteManyServices: 1,000 Services' frontends all reach the maps (a
// netlink attribute holds at most 64 KiB: elements go in chunks), and a
// Service among them can be deleted by an update.
func TestWriteManyServices(t *testing.T) {
	tp := newTopo(t, 0)
	cache := services.NewCache()
	for i := range 1000 {
		name := fmt.Sprintf("s%d", i)
		cache.Apply(api.EventAdded, service(name, fmt.Sprintf("10.43.%d.%d", i/250+1, i%250+1), api.ServiceTypeNodePort,
			api.ServicePort{Port: 80, NodePort: int32(30000 + i), Protocol: "TCP"}))
		cache.Apply(api.EventAdded, endpoints(name, 8080, "TCP", ep{ip: "10.244.0.1", ready: true}))
	}
	pl := makePlan(cache.State(), planOptions{})
	f, err := os.Open(tp.node)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	nw := &nftWriter{netnsFd: int(f.Fd()), table: TableName}
	if err := nw.write(pl); err != nil {
		t.Fatal(err)
	}
	out := nftList(t, tp)
	for _, want := range []string{"10.43.4.250 . tcp . 80 : goto", "10.43.1.1 . tcp . 80 : goto", "tcp . 30999 : goto"} {
		if !strings.Contains(out, want) {
			t.Fatalf("the table lacks %q", want)
		}
	}
	if err := nw.write(&plan{ports: append(append([]*servicePort{}, pl.ports[:700]...), pl.ports[701:]...)}); err != nil || nw.updates.Load() != 1 {
		t.Fatalf("delete one Service by an update: %v (%d updates)", err, nw.updates.Load())
	}
}
