package proxy

import (
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/kybernetes/kybernetes/node/services"
	"github.com/kybernetes/kybernetes/runtimes"
)

// WasmLocator finds the running container of a wasm pod of this node that
// declares a port: the agent knows its pods, the runtime serves them.
type WasmLocator interface {
	// WasmContainer returns the ID of the running container of pod
	// namespace/name (uid, when set, must match) that declares
	// containerPort port, and the runtime that serves its HTTP.
	WasmContainer(namespace, name, uid string, port int32) (id string, srv runtimes.HTTPServer, ok bool)
}

// wasmTarget is one ready wasm pod of this node behind a port.
type wasmTarget struct {
	namespace, name, uid string
}

// Gateway serves the wasm endpoints of this node: an HTTP listener on the
// node's address and each port that a Service's wasm endpoints on this
// node name, handing each request to one of the ready pods' WAGI handlers
// (round robin). Connections reach it DNATed from any node's rules.
type Gateway struct {
	ip      netip.Addr
	node    string
	locator WasmLocator
	log     *slog.Logger

	listenFn func(network, addr string) (net.Listener, error)

	mu      sync.Mutex
	ports   map[uint16]*gatewayPort
	pending map[uint16]bool // ports whose listen failed, retried on the next update
}

type gatewayPort struct {
	srv     *http.Server
	targets atomic.Pointer[[]wasmTarget]
	next    atomic.Uint64
}

// NewGateway returns a gateway for node (its name and address).
func NewGateway(node string, ip netip.Addr, locator WasmLocator, log *slog.Logger) *Gateway {
	return &Gateway{ip: ip, node: node, locator: locator, log: log, listenFn: net.Listen, ports: map[uint16]*gatewayPort{}, pending: map[uint16]bool{}}
}

// local reports whether a wasm endpoint is served by this node.
func (g *Gateway) local(ep *services.Endpoint) bool {
	if ep.NodeName != "" {
		return ep.NodeName == g.node
	}
	return ep.Address == g.ip.String()
}

// update opens and closes listeners to match the ready wasm endpoints of
// this node in st.
func (g *Gateway) update(st *services.State) {
	want := map[uint16][]wasmTarget{}
	for k, svc := range st.Services {
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			if sp.Protocol != "" && sp.Protocol != "TCP" {
				continue
			}
			for _, ep := range st.Endpoints(k, svc, sp) {
				if !ep.Wasm || !g.local(&ep) || ep.TargetRef == nil || ep.Port <= 0 || ep.Port > 65535 {
					continue
				}
				t := wasmTarget{namespace: ep.TargetRef.Namespace, name: ep.TargetRef.Name, uid: ep.TargetRef.UID}
				if t.namespace == "" {
					t.namespace = svc.Namespace
				}
				if !slices.Contains(want[uint16(ep.Port)], t) {
					want[uint16(ep.Port)] = append(want[uint16(ep.Port)], t)
				}
			}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for port, gp := range g.ports {
		if _, ok := want[port]; !ok {
			gp.srv.Close()
			delete(g.ports, port)
		}
	}
	for port := range g.pending {
		if _, ok := want[port]; !ok {
			delete(g.pending, port)
		}
	}
	for port, targets := range want {
		slices.SortFunc(targets, func(a, b wasmTarget) int {
			return strings.Compare(a.namespace+"/"+a.name, b.namespace+"/"+b.name)
		})
		gp := g.ports[port]
		if gp == nil {
			var err error
			if gp, err = g.listen(port); err != nil {
				if !g.pending[port] {
					g.log.Warn("wasm gateway: cannot listen; the pods' own hostPort may serve it", "port", port, "err", err)
				}
				g.pending[port] = true
				continue
			}
			delete(g.pending, port)
			g.ports[port] = gp
		}
		gp.targets.Store(&targets)
	}
}

func (g *Gateway) listen(port uint16) (*gatewayPort, error) {
	addr := net.JoinHostPort(g.ip.String(), strconv.Itoa(int(port)))
	ln, err := g.listenFn("tcp", addr)
	if err != nil {
		return nil, err
	}
	gp := &gatewayPort{}
	gp.srv = &http.Server{
		Handler:           http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { g.serve(gp, int32(port), w, r) }),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
	}
	go func() {
		if err := gp.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			g.log.Warn("wasm gateway: serve", "addr", addr, "err", err)
		}
	}()
	g.log.Debug("wasm gateway listening", "addr", addr)
	return gp, nil
}

// serve hands a request to the next ready wasm pod of the port that runs.
func (g *Gateway) serve(gp *gatewayPort, port int32, w http.ResponseWriter, r *http.Request) {
	targets := *gp.targets.Load()
	start := gp.next.Add(1)
	for i := range targets {
		t := targets[(int(start)+i)%len(targets)]
		id, srv, ok := g.locator.WasmContainer(t.namespace, t.name, t.uid, port)
		if !ok {
			continue
		}
		err := srv.ServeContainerHTTP(id, port, w, r)
		if err == nil {
			return
		}
		if !errors.Is(err, runtimes.ErrNotFound) {
			g.log.Warn("wasm gateway: serve", "pod", t.namespace+"/"+t.name, "err", err)
			return
		}
	}
	w.Header().Set("Retry-After", "1")
	http.Error(w, "no ready wasm pod serves this port on this node", http.StatusServiceUnavailable)
}

// Close stops every listener.
func (g *Gateway) Close() {
	g.mu.Lock()
	defer g.mu.Unlock()
	for port, gp := range g.ports {
		gp.srv.Close()
		delete(g.ports, port)
	}
}

// Ports lists the ports the gateway listens on, sorted.
func (g *Gateway) Ports() []uint16 {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := make([]uint16, 0, len(g.ports))
	for p := range g.ports {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}
