package proxy

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/node/services"
)

// Frontend kinds.
const (
	frontClusterIP = iota
	frontNodePort
	frontLoadBalancer
	frontExternalIP
)

// frontend is where a service port is reached.
type frontend struct {
	kind int
	ip   netip.Addr // unset for NodePort and LoadBalancer: any local address
	port uint16
}

// backend is one endpoint of a service port.
type backend struct {
	ip    netip.Addr
	port  uint16
	wasm  bool
	local bool // on this node
}

// servicePort is one port of one Service as the rules serve it.
type servicePort struct {
	name      string // namespace/name:port/protocol, for messages and chain names
	proto     string // tcp or udp
	frontends []frontend
	backends  []backend
	affinity  time.Duration // ClientIP affinity's timeout; 0 for none
	// externalLocal and internalLocal are the traffic policies Local:
	// traffic from outside (NodePort, LoadBalancer, external IPs), or to
	// the ClusterIP, goes to this node's endpoints only (and is dropped
	// when there are none); outside traffic then keeps its source address.
	externalLocal, internalLocal bool
}

// localChain is the name of the chain spreading over local backends.
func (sp *servicePort) localChain() string { return "svl-" + hash(sp.name) }

// local returns the backends on this node.
func (sp *servicePort) local() []backend {
	var out []backend
	for _, b := range sp.backends {
		if b.local {
			out = append(out, b)
		}
	}
	return out
}

// chain is the name of the port's chain (hashed: names of any length).
func (sp *servicePort) chain() string { return "svc-" + hash(sp.name) }

// epChain is the name of an endpoint's chain.
func (sp *servicePort) epChain(b backend) string {
	return "ep-" + hash(fmt.Sprintf("%s>%s:%d", sp.name, b.ip, b.port))
}

func hash(s string) string {
	h := fnv.New64a()
	h.Write([]byte(s))
	return fmt.Sprintf("%016x", h.Sum64())
}

// plan is what the node serves.
type plan struct {
	ports []*servicePort
}

// planOptions are the node's facts a plan needs.
type planOptions struct {
	// Skip lists service IPs the node serves otherwise (its cluster DNS,
	// bound to the node): no rules are made for them.
	Skip []netip.Addr
	// Node is this node's name, for the traffic policies Local.
	Node string
}

// DefaultAffinityTimeout is Kubernetes' ClientIP affinity timeout (3 h).
const DefaultAffinityTimeout = 10800 * time.Second

// makePlan turns the state into the service ports to serve, in a stable
// order. A Service without a usable frontend or a port that names no
// endpoints is served with no backends (its traffic is not steered).
func makePlan(st *services.State, opt planOptions) *plan {
	p := &plan{}
	keys := make([]string, 0, len(st.Services))
	for k := range st.Services {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		svc := st.Services[k]
		if svc.Spec.ExternalName != "" {
			continue
		}
		cip, err := netip.ParseAddr(svc.Spec.ClusterIP)
		clusterIP := err == nil && cip.Is4() && !slices.Contains(opt.Skip, cip)
		var affinity time.Duration
		if svc.Spec.SessionAffinity == api.SessionAffinityClientIP {
			affinity = DefaultAffinityTimeout
			if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil && *c.ClientIP.TimeoutSeconds > 0 {
				affinity = time.Duration(*c.ClientIP.TimeoutSeconds) * time.Second
			}
		}
		for i := range svc.Spec.Ports {
			spec := &svc.Spec.Ports[i]
			proto := strings.ToLower(cmp.Or(spec.Protocol, "TCP"))
			if proto != "tcp" && proto != "udp" || spec.Port <= 0 || spec.Port > 65535 {
				continue
			}
			sp := &servicePort{name: fmt.Sprintf("%s:%d/%s", k, spec.Port, proto), proto: proto, affinity: affinity,
				externalLocal: svc.Spec.ExternalTrafficPolicy == "Local", internalLocal: svc.Spec.InternalTrafficPolicy == "Local"}
			if clusterIP {
				sp.frontends = append(sp.frontends, frontend{kind: frontClusterIP, ip: cip, port: uint16(spec.Port)})
				for _, e := range svc.Spec.ExternalIPs {
					if ip, err := netip.ParseAddr(e); err == nil && ip.Is4() {
						sp.frontends = append(sp.frontends, frontend{kind: frontExternalIP, ip: ip, port: uint16(spec.Port)})
					}
				}
			}
			switch svc.Spec.Type {
			case api.ServiceTypeNodePort, api.ServiceTypeLoadBalancer:
				if spec.NodePort > 0 && spec.NodePort <= 65535 {
					sp.frontends = append(sp.frontends, frontend{kind: frontNodePort, port: uint16(spec.NodePort)})
				}
				if svc.Spec.Type == api.ServiceTypeLoadBalancer {
					sp.frontends = append(sp.frontends, frontend{kind: frontLoadBalancer, port: uint16(spec.Port)})
				}
			}
			if len(sp.frontends) == 0 {
				continue
			}
			for _, ep := range st.Endpoints(k, svc, spec) {
				ip, err := netip.ParseAddr(ep.Address)
				if err != nil || !ip.Is4() {
					continue
				}
				if ep.Wasm && proto != "tcp" {
					continue // WAGI serves HTTP over TCP only
				}
				sp.backends = append(sp.backends, backend{ip: ip, port: uint16(ep.Port), wasm: ep.Wasm,
					local: opt.Node != "" && ep.NodeName == opt.Node})
			}
			p.ports = append(p.ports, sp)
		}
	}
	return p
}
