package node

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"

	"github.com/kybernetes/kybernetes/api"
	nodedns "github.com/kybernetes/kybernetes/node/dns"
	"github.com/kybernetes/kybernetes/node/proxy"
	"github.com/kybernetes/kybernetes/node/services"
	"github.com/kybernetes/kybernetes/runtimes"
)

// DNSInterface is the dummy interface that holds the cluster DNS IP on
// every node, so that pods and the node reach the node's own DNS server
// at that address without DNAT (as NodeLocal DNSCache binds its address).
const DNSInterface = "kyb-dns"

// runServices runs the node's services cache (read by the service
// environment variables too, so always) and, as configured, the cluster
// DNS server and the service proxy, until ctx ends. A part that cannot
// start is logged and left out: pods keep running.
func (a *Agent) runServices(ctx context.Context) {
	log := a.log.With("component", "services")
	cache := a.svc
	var wg sync.WaitGroup
	wg.Go(func() { cache.Run(ctx, a.nc, a.cfg.Name, 0, log) })
	var skip []netip.Addr
	if a.cfg.ClusterDNS != "" {
		ip := netip.MustParseAddr(a.cfg.ClusterDNS) // checked by setDefaults
		skip = append(skip, ip)
		if err := a.startDNS(ctx, ip, cache); err != nil {
			log.Error("cluster DNS not served on this node", "err", err)
		}
	}
	if a.cfg.ServiceProxy && os.Geteuid() != 0 {
		log.Warn("the service proxy needs root (nftables); Services are not proxied on this node")
	} else if a.cfg.ServiceProxy {
		cfg := proxy.Config{NodeName: a.cfg.Name, Locator: &wasmLocator{a: a}, SkipIPs: skip, Table: a.cfg.ProxyTable}
		if ip, err := netip.ParseAddr(a.nodeIP); err == nil {
			cfg.NodeIP = ip
		}
		p := proxy.New(cfg, cache, log.With("part", "proxy"))
		wg.Go(func() {
			if err := p.Run(ctx); err != nil {
				log.Error("service proxy stopped", "err", err)
			}
		})
	}
	wg.Wait()
}

// startDNS binds the cluster DNS IP to the node (DNSInterface) and serves
// it, forwarding other names to the node's resolvers.
func (a *Agent) startDNS(ctx context.Context, ip netip.Addr, cache *services.Cache) error {
	if err := bindDNSAddress(DNSInterface, ip); err != nil {
		return err
	}
	var ups []string
	for _, s := range readHostResolv(a.cfg.ResolvConf).Servers {
		if s != ip.String() {
			ups = append(ups, s)
		}
	}
	srv, err := nodedns.New(nodedns.Config{Addr: net.JoinHostPort(ip.String(), "53"), Domain: a.cfg.ClusterDomain, Upstreams: ups},
		cache, a.log.With("component", "dns"))
	if err != nil {
		return err
	}
	return srv.Start(ctx)
}

// bindDNSAddress puts ip/32 on the dummy link ifname, making it if needed,
// or on the loopback link where the kernel has no dummy links ("lo" names
// the loopback link at once); idempotent.
func bindDNSAddress(ifname string, ip netip.Addr) error {
	if ifname != "lo" && exec.Command("ip", "link", "show", ifname).Run() != nil {
		if out, err := exec.Command("ip", "link", "add", ifname, "type", "dummy").CombinedOutput(); err != nil {
			if !strings.Contains(string(out), "Unknown device type") {
				return errors.New("add link " + ifname + ": " + strings.TrimSpace(string(out)))
			}
			ifname = "lo"
		}
	}
	if out, err := exec.Command("ip", "link", "set", ifname, "up").CombinedOutput(); err != nil {
		return errors.New("set " + ifname + " up: " + strings.TrimSpace(string(out)))
	}
	out, err := exec.Command("ip", "addr", "replace", ip.String()+"/32", "dev", ifname).CombinedOutput()
	if err != nil {
		return errors.New("add " + ip.String() + " to " + ifname + ": " + strings.TrimSpace(string(out)))
	}
	return nil
}

// wasmLocator finds the running container of one of the agent's wasm pods
// that declares a port, for the proxy's wasm gateway. It remembers what it
// found (checking that it still runs: a cheap status call) so that a
// request does not list every container.
type wasmLocator struct {
	a *Agent

	mu    sync.Mutex
	found map[wasmKey]string // container ID
}

type wasmKey struct {
	uid, ctr string
}

// WasmContainer implements proxy.WasmLocator.
func (l *wasmLocator) WasmContainer(namespace, name, uid string, port int32) (string, runtimes.HTTPServer, bool) {
	a := l.a
	rt := a.rts[api.RuntimeWasm]
	srv, ok := rt.(runtimes.HTTPServer)
	if !ok {
		return "", nil, false
	}
	// The pod's container that declares the port, from its spec.
	var ctrName string
	a.mu.Lock()
	for _, w := range a.workers {
		w.mu.Lock()
		p := w.desired
		if p != nil && p.Namespace == namespace && p.Name == name && (uid == "" || p.UID == uid) && !w.gone {
			uid = p.UID
			for _, c := range p.Spec.Containers {
				for _, cp := range c.Ports {
					if cp.ContainerPort == port && (cp.Protocol == "" || cp.Protocol == api.ProtocolTCP) {
						ctrName = c.Name
					}
				}
			}
		}
		w.mu.Unlock()
		if ctrName != "" {
			break
		}
	}
	a.mu.Unlock()
	if ctrName == "" {
		return "", nil, false
	}
	key := wasmKey{uid, ctrName}
	l.mu.Lock()
	id := l.found[key]
	l.mu.Unlock()
	if id != "" {
		if st, err := rt.ContainerStatus(a.ctx, id); err == nil && st.State == runtimes.ContainerRunning {
			return id, srv, true
		}
	}
	cs, err := rt.ListContainers(a.ctx, "")
	if err != nil {
		return "", nil, false
	}
	for _, c := range cs {
		if c.Labels[LabelPodUID] == uid && c.Labels[LabelContainer] == ctrName && c.State == runtimes.ContainerRunning {
			l.mu.Lock()
			if l.found == nil || len(l.found) > 4096 {
				l.found = map[wasmKey]string{} // forget pods long gone
			}
			l.found[key] = c.ID
			l.mu.Unlock()
			return c.ID, srv, true
		}
	}
	return "", nil, false
}
