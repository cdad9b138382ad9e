package dns

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node/services"
)

func ptr[T any](v T) *T { return &v }

func svc(name, clusterIP string, ports ...api.ServicePort) *api.Service {
	return &api.Service{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: name},
		Spec: api.ServiceSpec{ClusterIP: clusterIP, Ports: ports}}
}

func slice(svcName string, port int32, portName string, eps ...api.Endpoint) *api.EndpointSlice {
	return &api.EndpointSlice{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: svcName + "-x",
		Labels: map[string]string{api.LabelServiceName: svcName}},
		AddressType: "IPv4", Endpoints: eps,
		Ports: []api.EndpointPort{{Name: ptr(portName), Port: ptr(port), Protocol: ptr("TCP")}}}
}

// upstream is a resolver for names outside the cluster: example.com A.
func upstream(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "example.com." {
			rr, _ := dns.NewRR("example.com. 60 IN A 93.184.216.34")
			m.Answer = append(m.Answer, rr)
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func startServer(t testing.TB, cache *services.Cache, ups ...string) *Server {
	s, err := New(Config{Addr: "127.0.0.1:0", Upstreams: ups}, cache, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); s.Wait() })
	return s
}

func query(t testing.TB, addr, name string, qtype uint16, network string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(name, qtype)
	c := &dns.Client{Net: network, Timeout: 2 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("query %s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

// answers renders a reply as "RCODE rr-data..." for comparison.
func answers(r *dns.Msg) string {
	out := []string{dns.RcodeToString[r.Rcode]}
	for _, rr := range r.Answer {
		f := strings.Fields(rr.String())
		out = append(out, f[3]+" "+strings.Join(f[4:], " "))
	}
	slices.Sort(out[1:])
	return strings.Join(out, " | ")
}

func TestServeDNS(t *testing.T) {
	cache := services.NewCache()
	web := svc("web", "10.43.0.20", api.ServicePort{Name: "http", Port: 80}, api.ServicePort{Name: "dns", Protocol: "UDP", Port: 53})
	cache.Apply(api.EventAdded, web)
	db := svc("db", api.ClusterIPNone, api.ServicePort{Name: "pg", Port: 5432})
	cache.Apply(api.EventAdded, db)
	cache.Apply(api.EventAdded, slice("db", 5432, "pg",
		api.Endpoint{Addresses: []string{"10.244.0.7"}, Hostname: "db-0"},
		api.Endpoint{Addresses: []string{"10.244.1.8"}, Hostname: "db-1", Conditions: api.EndpointConditions{Ready: ptr(true)}},
		api.Endpoint{Addresses: []string{"10.244.1.9"}, Hostname: "db-2", Conditions: api.EndpointConditions{Ready: ptr(false)}},
	))
	ext := svc("search", "")
	ext.Spec.ExternalName = "example.com"
	cache.Apply(api.EventAdded, ext)
	s := startServer(t, cache, upstream(t))

	cases := []struct {
		name  string
		qtype uint16
		want  string
	}{
		{"web.default.svc.cluster.local.", dns.TypeA, "NOERROR | A 10.43.0.20"},
		{"WEB.Default.svc.cluster.local.", dns.TypeA, "NOERROR | A 10.43.0.20"},
		{"web.default.svc.cluster.local.", dns.TypeAAAA, "NOERROR"},
		{"_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, "NOERROR | SRV 0 100 80 web.default.svc.cluster.local."},
		{"_dns._udp.web.default.svc.cluster.local.", dns.TypeSRV, "NOERROR | SRV 0 100 53 web.default.svc.cluster.local."},
		{"_http._udp.web.default.svc.cluster.local.", dns.TypeSRV, "NXDOMAIN"},
		{"db.default.svc.cluster.local.", dns.TypeA, "NOERROR | A 10.244.0.7 | A 10.244.1.8"},
		{"db-1.db.default.svc.cluster.local.", dns.TypeA, "NOERROR | A 10.244.1.8"},
		{"db-2.db.default.svc.cluster.local.", dns.TypeA, "NXDOMAIN"},
		{"_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV, "NOERROR | SRV 0 100 5432 db-0.db.default.svc.cluster.local. | SRV 0 100 5432 db-1.db.default.svc.cluster.local."},
		{"search.default.svc.cluster.local.", dns.TypeA, "NOERROR | CNAME example.com."},
		{"20.0.43.10.in-addr.arpa.", dns.TypePTR, "NOERROR | PTR web.default.svc.cluster.local."},
		{"7.0.244.10.in-addr.arpa.", dns.TypePTR, "NOERROR | PTR db-0.db.default.svc.cluster.local."},
		{"nope.default.svc.cluster.local.", dns.TypeA, "NXDOMAIN"},
		{"web.other.svc.cluster.local.", dns.TypeA, "NXDOMAIN"},
		{"default.svc.cluster.local.", dns.TypeA, "NOERROR"},
		{strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + ".cluster.local.", dns.TypeA, "NXDOMAIN"},
		{"example.com.", dns.TypeA, "NOERROR | A 93.184.216.34"},
		{"nothing.example.", dns.TypeA, "NXDOMAIN"},
	}
	for _, network := range []string{"udp", "tcp"} {
		for _, tc := range cases {
			t.Run(network+"/"+tc.name+"/"+dns.TypeToString[tc.qtype], func(t *testing.T) {
				if got := answers(query(t, s.Addr(), tc.name, tc.qtype, network)); got != tc.want {
					t.Fatalf("got  %s\nwant %s", got, tc.want)
				}
			})
		}
	}
	// The SRV answer carries its targets' addresses.
	if r := query(t, s.Addr(), "_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV, "udp"); len(r.Extra) != 2 {
		t.Errorf("SRV extra = %v, want the 2 targets' A records", r.Extra)
	}

	// A change is served at once: an endpoint that stops being ready
	// leaves the headless answer.
	cache.Apply(api.EventModified, slice("db", 5432, "pg",
		api.Endpoint{Addresses: []string{"10.244.0.7"}, Hostname: "db-0", Conditions: api.EndpointConditions{Ready: ptr(false)}},
		api.Endpoint{Addresses: []string{"10.244.1.8"}, Hostname: "db-1"},
	))
	cache.Apply(api.EventDeleted, web)
	testutil.Eventually(t, 2*time.Second, func() error {
		if got := answers(query(t, s.Addr(), "db.default.svc.cluster.local.", dns.TypeA, "udp")); got != "NOERROR | A 10.244.1.8" {
			return fmt.Errorf("db: %s", got)
		}
		if got := answers(query(t, s.Addr(), "web.default.svc.cluster.local.", dns.TypeA, "udp")); got != "NXDOMAIN" {
			return fmt.Errorf("web: %s", got)
		}
		return nil
	})
}

// TestServeDNSHostile: malformed and hostile queries get an error answer
// (or none) and the server keeps serving.
func TestServeDNSHostile(t *testing.T) {
	cache := services.NewCache()
	cache.Apply(api.EventAdded, svc("web", "10.43.0.20"))
	s := startServer(t, cache) // no upstream: forwarded names fail
	conn, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, junk := range [][]byte{{}, {0, 1}, make([]byte, 4096), []byte(strings.Repeat("\xff", 512))} {
		conn.Write(junk)
	}
	m := new(dns.Msg)
	m.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	m.Question = append(m.Question, m.Question[0]) // two questions
	r, _, err := (&dns.Client{Timeout: 2 * time.Second}).Exchange(m, s.Addr())
	if err != nil || (r.Rcode != dns.RcodeNotImplemented && r.Rcode != dns.RcodeFormatError) {
		t.Fatalf("two questions: %v %v", r, err)
	}
	if got := answers(query(t, s.Addr(), "elsewhere.example.", dns.TypeA, "udp")); got != "SERVFAIL" {
		t.Fatalf("no upstream: %s", got)
	}
	if got := answers(query(t, s.Addr(), "web.default.svc.cluster.local.", dns.TypeA, "udp")); got != "NOERROR | A 10.43.0.20" {
		t.Fatalf("after junk: %s", got)
	}
}

// BenchmarkServeDNS measures one A query of a cluster name over UDP with
// 1,000 Services; p99 is reported.
func BenchmarkServeDNS(b *testing.B) {
	cache := services.NewCache()
	for i := range 1000 {
		cache.Apply(api.EventAdded, svc(fmt.Sprintf("svc%d", i), fmt.Sprintf("10.43.%d.%d", i/250+1, i%250+1)))
	}
	s := startServer(b, cache)
	c := &dns.Client{Timeout: 2 * time.Second}
	conn, err := c.Dial(s.Addr())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	m := new(dns.Msg)
	m.SetQuestion("svc500.default.svc.cluster.local.", dns.TypeA)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		r, _, err := c.ExchangeWithConn(m, conn)
		if err != nil || len(r.Answer) != 1 {
			b.Fatalf("%v %v", r, err)
		}
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}
