package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/node/services"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// relay is the alternative to rules: a proxy in the agent that accepts on
// addr and copies each connection to the backends in turn.
func relay(t testing.TB, ns, addr string, backends []string) {
	ln, err := listener(t, ns)("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var next atomic.Uint64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b := backends[next.Add(1)%uint64(len(backends))]
				var up net.Conn
				var err error
				in(t, ns, func() { up, err = net.Dial("tcp", b) })
				if err != nil {
					return
				}
				defer up.Close()
				go func() { io.Copy(up, c); up.(*net.TCPConn).CloseWrite() }()
				io.Copy(c, up)
			}()
		}
	}()
}

// load runs n requests to addr from 8 clients in the client namespace, on
// a new connection each (newConn) or on kept-alive ones, and returns the
// time it took and each request's latency.
func load(b *testing.B, d dialer, addr string, newConn bool, n int) (time.Duration, []time.Duration) {
	const clients = 8
	tr := &http.Transport{DisableKeepAlives: newConn, MaxIdleConnsPerHost: clients,
		DialContext: func(ctx context.Context, network, a string) (net.Conn, error) { return d.dial(network, a) }}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	do := func() error {
		resp, err := hc.Get("http://" + addr + "/")
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			return fmt.Errorf("status %d", resp.StatusCode)
		}
		return nil
	}
	for range clients {
		if err := do(); err != nil {
			b.Fatal(err)
		}
	}
	lat := make([]time.Duration, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(n) {
					return
				}
				t0 := time.Now()
				if err := do(); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat[i] = time.Since(t0)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	if err, _ := firstErr.Load().(error); err != nil {
		b.Fatal(err)
	}
	return el, lat
}

// path is one way to a backend.
type path struct{ name, addr string }

// compare runs b.N requests down each path, interleaved in 10 rounds so
// that the machine's other load falls on all of them alike, and reports
// each path's requests/s and p99 and its ratio to the first path's.
func compare(b *testing.B, d dialer, newConn bool, paths []path) {
	const rounds = 10
	per := max(b.N/rounds, 1)
	took := make([]time.Duration, len(paths))
	lats := make([][]time.Duration, len(paths))
	for range rounds {
		for i, p := range paths {
			el, lat := load(b, d, p.addr, newConn, per)
			took[i] += el
			lats[i] = append(lats[i], lat...)
		}
	}
	base := 0.0
	for i, p := range paths {
		rps := float64(per*rounds) / took[i].Seconds()
		if i == 0 {
			base = rps
		}
		slices.Sort(lats[i])
		b.ReportMetric(rps, p.name+"-req/s")
		b.ReportMetric(float64(lats[i][len(lats[i])*99/100].Microseconds()), p.name+"-p99-µs")
		if i > 0 {
			b.ReportMetric(rps/base, p.name+"/"+paths[0].name)
		}
	}
}

// BenchmarkProxyContainer compares, in one run, requests straight to a pod
// IP, through a ClusterIP (the nftables rules), and through a userspace
// relay (the alternative: a proxy in the agent), each with a new
// connection per request and with kept-alive connections.
func BenchmarkProxyContainer(b *testing.B) {
	tp := newTopo(b, 1)
	serveName(b, tp.pods[0], podIP(0)+":8080", "a")
	cache := services.NewCache()
	cache.BeginList()
	cache.Apply(api.EventAdded, service("web", "10.43.0.20", api.ServiceTypeClusterIP, api.ServicePort{Port: 80, Protocol: "TCP"}))
	cache.Apply(api.EventAdded, endpoints("web", 8080, "TCP", ep{ip: podIP(0), ready: true}))
	cache.EndList()
	p := New(Config{NodeName: "n1", NetNS: tp.node}, cache, slog0())
	runProxy(b, p)
	relay(b, tp.node, nodeIP+":9999", []string{podIP(0) + ":8080"})
	client := dialer{b, tp.client}
	waitFor(b, func() error { _, err := client.get("10.43.0.20:80"); return err })
	for _, conn := range []string{"new-conn", "keepalive"} {
		b.Run(conn, func(b *testing.B) {
			compare(b, client, conn == "new-conn", []path{{"direct", podIP(0) + ":8080"}, {"nftables", "10.43.0.20:80"}, {"relay", nodeIP + ":9999"}})
		})
	}
}

// BenchmarkProxyWasm compares a wasm pod's hostPort (its own WAGI
// listener) with a ClusterIP whose endpoint is the pod on this node
// (DNAT to the node's gateway, then the runtime's WAGI handler).
func BenchmarkProxyWasm(b *testing.B) {
	tp := newTopo(b, 0)
	rt, err := wasm.New(wasm.Config{StateDir: b.TempDir(), CacheDir: filepath.Join(b.TempDir(), "cache"), ModuleDirs: []string{"/"}}, slog0())
	if err != nil {
		b.Fatal(err)
	}
	defer rt.Close()
	mod := "file://" + runtimetest.BuildGo(b, "./runtimes/wasm/testdata/cgi", "wasip1", "wasm")
	ctx := context.Background()
	sb, err := rt.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "default", Name: "w", UID: "w-uid"})
	if err != nil {
		b.Fatal(err)
	}
	if _, err := rt.EnsureImage(ctx, mod, runtimes.PullIfNotPresent, nil); err != nil {
		b.Fatal(err)
	}
	id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "web", Image: mod, LogPath: filepath.Join(b.TempDir(), "log"),
		Ports: []runtimes.PortMapping{{ContainerPort: 8080, HostPort: 18080, HostIP: nodeIP}}})
	if err != nil {
		b.Fatal(err)
	}
	in(b, tp.node, func() { err = rt.StartContainer(ctx, id) }) // the hostPort listener in the node's namespace
	if err != nil {
		b.Fatal(err)
	}
	cache := services.NewCache()
	cache.BeginList()
	cache.Apply(api.EventAdded, service("web", "10.43.0.50", api.ServiceTypeClusterIP, api.ServicePort{Port: 80, Protocol: "TCP"}))
	cache.Apply(api.EventAdded, endpoints("web", 8080, "TCP", ep{ip: nodeIP, ready: true, wasm: true, pod: "w"}))
	cache.EndList()
	p := New(Config{NodeName: "n1", NodeIP: netip.MustParseAddr(nodeIP), NetNS: tp.node, Listen: listener(b, tp.node),
		Locator: oneWasm{id: id, srv: rt}}, cache, slog0())
	runProxy(b, p)
	client := dialer{b, tp.client}
	waitFor(b, func() error { _, err := client.get("10.43.0.50:80"); return err })
	compare(b, client, false, []path{{"hostport", nodeIP + ":18080"}, {"gateway", "10.43.0.50:80"}})
}

type oneWasm struct {
	id  string
	srv runtimes.HTTPServer
}

func (o oneWasm) WasmContainer(ns, name, uid string, port int32) (string, runtimes.HTTPServer, bool) {
	return o.id, o.srv, true
}

// BenchmarkEndpointShift measures, per iteration, the time from an
// endpoint becoming not ready in the node's state to the point where new
// connections no longer reach it (20 in a row go to the other endpoint).
func BenchmarkEndpointShift(b *testing.B) {
	tp := newTopo(b, 2)
	serveName(b, tp.pods[0], podIP(0)+":8080", "a")
	serveName(b, tp.pods[1], podIP(1)+":8080", "b")
	cache := services.NewCache()
	cache.BeginList()
	cache.Apply(api.EventAdded, service("web", "10.43.0.20", api.ServiceTypeClusterIP, api.ServicePort{Port: 80, Protocol: "TCP"}))
	cache.Apply(api.EventAdded, endpoints("web", 8080, "TCP", ep{ip: podIP(0), ready: true}, ep{ip: podIP(1), ready: true}))
	cache.EndList()
	p := New(Config{NodeName: "n1", NetNS: tp.node}, cache, slog0())
	runProxy(b, p)
	client := dialer{b, tp.client}
	waitFor(b, func() error { _, err := client.get("10.43.0.20:80"); return err })
	var worst, total time.Duration
	for i := range b.N {
		gone := i%2 == 0 // b leaves, then comes back
		cache.Apply(api.EventModified, endpoints("web", 8080, "TCP", ep{ip: podIP(0), ready: true}, ep{ip: podIP(1), ready: !gone}))
		t0 := time.Now()
		streak := 0
		for streak < 20 {
			s, err := client.get("10.43.0.20:80")
			switch {
			case err != nil:
				b.Fatal(err)
			case gone && s == "a", !gone && s == "b":
				streak++ // with b back, seeing b once is the shift
				if !gone {
					streak = 20
				}
			default:
				streak = 0
			}
			if time.Since(t0) > 10*time.Second {
				b.Fatal("no shift within 10 s")
			}
		}
		d := time.Since(t0)
		total += d
		worst = max(worst, d)
	}
	b.ReportMetric(float64(total.Microseconds())/float64(b.N)/1000, "shift-ms")
	b.ReportMetric(float64(worst.Microseconds())/1000, "worst-shift-ms")
}

func waitFor(b testing.TB, f func() error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			b.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkWriteRules measures one write of the whole table (what every
// change costs) with 1,000 Services of 2 ports and 3 endpoints each.
func BenchmarkWriteRules(b *testing.B) {
	tp := newTopo(b, 0)
	cache := services.NewCache()
	for i := range 1000 {
		name := fmt.Sprintf("s%d", i)
		ip := fmt.Sprintf("10.43.%d.%d", i/250+1, i%250+1)
		cache.Apply(api.EventAdded, service(name, ip, api.ServiceTypeNodePort,
			api.ServicePort{Name: "", Port: 80, NodePort: int32(30000 + i), Protocol: "TCP"}))
		cache.Apply(api.EventAdded, endpoints(name, 8080, "TCP", ep{ip: "10.244.0.1", ready: true}, ep{ip: "10.244.0.2", ready: true}, ep{ip: "10.244.0.3", ready: true}))
	}
	pl := makePlan(cache.State(), planOptions{})
	f, err := os.Open(tp.node)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	b.Run("full", func(b *testing.B) {
		nw := &nftWriter{netnsFd: int(f.Fd()), table: TableName}
		for range b.N {
			if err := nw.full(pl); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(pl.ports)), "service-ports")
	})
	// One endpoint of one Service turns not ready and back, in turn: what
	// a readiness change costs.
	b.Run("one-endpoint-change", func(b *testing.B) {
		nw := &nftWriter{netnsFd: int(f.Fd()), table: TableName}
		if err := nw.write(pl); err != nil {
			b.Fatal(err)
		}
		all := pl.ports[500].backends
		for i := range b.N {
			if i%2 == 0 {
				pl.ports[500].backends = all[:2]
			} else {
				pl.ports[500].backends = all
			}
			if err := nw.write(pl); err != nil {
				b.Fatal(err)
			}
		}
		if nw.updates.Load() != int64(b.N) {
			b.Fatalf("%d updates of %d writes", nw.updates.Load(), b.N)
		}
	})
	// One Service is deleted and created again, in turn.
	b.Run("one-service-change", func(b *testing.B) {
		nw := &nftWriter{netnsFd: int(f.Fd()), table: TableName}
		if err := nw.write(pl); err != nil {
			b.Fatal(err)
		}
		all := pl.ports
		without := append(append([]*servicePort{}, all[:700]...), all[701:]...)
		for i := range b.N {
			q := &plan{ports: all}
			if i%2 == 0 {
				q.ports = without
			}
			if err := nw.write(q); err != nil {
				b.Fatal(err)
			}
		}
		if nw.updates.Load() != int64(b.N) {
			b.Fatalf("%d updates of %d writes", nw.updates.Load(), b.N)
		}
	})
}
