package cli

import (
	"bytes"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

func TestPrintServices(t *testing.T) {
	created := time.Now().Add(-5 * time.Minute)
	meta := func(name string) api.ObjectMeta {
		return api.ObjectMeta{Name: name, Namespace: "default", CreationTimestamp: created}
	}
	svcs := []api.Object{
		&api.Service{ObjectMeta: meta("web"), Spec: api.ServiceSpec{Type: api.ServiceTypeNodePort, ClusterIP: "10.43.0.20",
			Selector: map[string]string{"app": "web"},
			Ports:    []api.ServicePort{{Name: "http", Port: 80, NodePort: 30080, Protocol: "TCP"}, {Name: "dns", Port: 53, Protocol: "UDP"}}}},
		&api.Service{ObjectMeta: meta("lb"), Spec: api.ServiceSpec{Type: api.ServiceTypeLoadBalancer, ClusterIP: "10.43.0.21",
			Ports: []api.ServicePort{{Port: 443, NodePort: 31443, Protocol: "TCP"}}},
			Status: api.ServiceStatus{LoadBalancer: api.LoadBalancerStatus{Ingress: []api.LoadBalancerIngress{{IP: "192.168.1.1"}, {IP: "192.168.1.2"}}}}},
		&api.Service{ObjectMeta: meta("pending"), Spec: api.ServiceSpec{Type: api.ServiceTypeLoadBalancer, ClusterIP: "10.43.0.22",
			Ports: []api.ServicePort{{Port: 443, NodePort: 31444, Protocol: "TCP"}}}},
		&api.Service{ObjectMeta: meta("db"), Spec: api.ServiceSpec{Type: api.ServiceTypeClusterIP, ClusterIP: "None"}},
		&api.Service{ObjectMeta: meta("ext"), Spec: api.ServiceSpec{Type: api.ServiceTypeExternalName, ExternalName: "db.example.com"}},
	}
	want := [][]string{
		{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE", "SELECTOR"},
		{"web", "NodePort", "10.43.0.20", "<none>", "80:30080/TCP,53/UDP", "5m", "app=web"},
		{"lb", "LoadBalancer", "10.43.0.21", "192.168.1.1,192.168.1.2", "443:31443/TCP", "5m", "<none>"},
		{"pending", "LoadBalancer", "10.43.0.22", "<pending>", "443:31444/TCP", "5m", "<none>"},
		{"db", "ClusterIP", "None", "<none>", "<none>", "5m", "<none>"},
		{"ext", "ExternalName", "<none>", "db.example.com", "<none>", "5m", "<none>"},
	}
	checkTable(t, "svc", "wide", svcs, want)

	port := int32(8080)
	name, proto := "http", "TCP"
	tr, fa := true, false
	ep := func(addr string, ready *bool) api.Endpoint {
		return api.Endpoint{Addresses: []string{addr}, Conditions: api.EndpointConditions{Ready: ready}}
	}
	slices := []api.Object{
		&api.EndpointSlice{ObjectMeta: meta("web-abc"), AddressType: "IPv4",
			Ports:     []api.EndpointPort{{Name: &name, Protocol: &proto, Port: &port}},
			Endpoints: []api.Endpoint{ep("10.42.0.5", &tr), ep("10.42.0.6", &tr), ep("10.42.0.7", &fa), ep("192.168.1.2", &tr)}},
		&api.EndpointSlice{ObjectMeta: meta("empty"), AddressType: "IPv4"},
	}
	checkTable(t, "endpointslices", "", slices, [][]string{
		{"NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"},
		{"web-abc", "IPv4", "8080", "10.42.0.5,10.42.0.6,10.42.0.7 + 1 more...", "5m"},
		{"empty", "IPv4", "<unset>", "<unset>", "5m"},
	})

	// describe: ready and not-ready endpoints apart, wasm ones named.
	wasmEP := ep("192.168.1.2", &tr)
	wasmEP.Runtime, wasmEP.NodeName = api.RuntimeWasm, "n2"
	slices[0].(*api.EndpointSlice).Endpoints[3] = wasmEP
	var out bytes.Buffer
	w := tabwriter.NewWriter(&out, 0, 8, 2, ' ', 0)
	web := svcs[0].(*api.Service)
	web.Spec.Ports[0].TargetPort = api.FromString("http")
	api.Default(web)
	describeService(w, web, slices[:1])
	w.Flush()
	flat := strings.Join(strings.Fields(out.String()), " ")
	for _, line := range []string{
		"Selector: app=web",
		"NodePort: http 30080/TCP",
		"TargetPort: http/TCP",
		"Endpoints: 10.42.0.5:8080,10.42.0.6:8080,192.168.1.2:8080 (wasm on n2) Not Ready Endpoints: 10.42.0.7:8080 Port: dns 53/UDP",
		"Session Affinity: None",
	} {
		if !strings.Contains(flat, line) {
			t.Errorf("describe lacks %q:\n%s", line, out.String())
		}
	}
}

func checkTable(t *testing.T, kindName, format string, objs []api.Object, want [][]string) {
	t.Helper()
	var out bytes.Buffer
	p, err := newPrinter(&out, format, false)
	if err != nil {
		t.Fatal(err)
	}
	kind, err := api.LookupKind(kindName)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.print(kind, objs); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("table:\n%s", out.String())
	}
	for i, l := range lines {
		got := regexpSpaces(l)
		if strings.Join(got, "|") != strings.Join(want[i], "|") {
			t.Errorf("line %d: %q, want %q", i, got, want[i])
		}
	}
}

// regexpSpaces splits a table line on runs of two or more spaces.
func regexpSpaces(l string) []string {
	var out []string
	for _, f := range strings.Split(l, "  ") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
