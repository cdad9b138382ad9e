package services

import (
	"slices"
	"strings"

	"github.com/kybernetes/kybernetes/api"
)

// State is an immutable snapshot of the Services and EndpointSlices a node
// knows. Callers must not change what it holds.
type State struct {
	// Services by "<namespace>/<name>".
	Services map[string]*api.Service
	// Slices of each Service, by the Service's "<namespace>/<name>" (from
	// the kubernetes.io/service-name label), in name order.
	Slices map[string][]*api.EndpointSlice
	// Synced is true once a full list has arrived.
	Synced bool
}

// Key is the "<namespace>/<name>" key of an object.
func Key(ns, name string) string { return ns + "/" + name }

// Endpoint is one ready (or serving) backend address of a Service port.
type Endpoint struct {
	// Address is the pod IP, or for a wasm pod the address of its node.
	Address string
	// Port is the pods' port for the Service port.
	Port int32
	// Wasm says the address is a node whose proxy hands the connection to
	// the pod's WAGI handler.
	Wasm bool
	// NodeName, Hostname and TargetRef are the endpoint's.
	NodeName  string
	Hostname  string
	TargetRef *api.ObjectReference
}

// Ready reports whether an endpoint takes new connections: Kubernetes'
// rule, where a missing ready condition means ready.
func Ready(e *api.Endpoint) bool {
	if e.Conditions.Ready != nil {
		return *e.Conditions.Ready
	}
	return true
}

// Endpoints returns the ready endpoints of Service port sp of the Service
// at key, matched to the slices' ports by name (as kube-proxy does), in a
// stable order. A Service that publishes not-ready addresses gets every
// endpoint that is not terminating.
func (s *State) Endpoints(key string, svc *api.Service, sp *api.ServicePort) []Endpoint {
	var out []Endpoint
	proto := protocolOf(sp.Protocol)
	for _, sl := range s.Slices[key] {
		if sl.AddressType != "" && sl.AddressType != "IPv4" {
			continue
		}
		var port int32
		found := false
		for _, p := range sl.Ports {
			name := ""
			if p.Name != nil {
				name = *p.Name
			}
			pp := "TCP"
			if p.Protocol != nil {
				pp = protocolOf(*p.Protocol)
			}
			if name == sp.Name && pp == proto && p.Port != nil {
				port, found = *p.Port, true
				break
			}
		}
		if !found || port <= 0 || port > 65535 {
			continue
		}
		for i := range sl.Endpoints {
			e := &sl.Endpoints[i]
			ok := Ready(e)
			if svc.Spec.PublishNotReadyAddresses {
				ok = e.Conditions.Terminating == nil || !*e.Conditions.Terminating
			}
			if !ok {
				continue
			}
			for _, a := range e.Addresses {
				out = append(out, Endpoint{Address: a, Port: port, Wasm: e.Runtime == api.RuntimeWasm,
					NodeName: e.NodeName, Hostname: e.Hostname, TargetRef: e.TargetRef})
			}
		}
	}
	slices.SortFunc(out, func(a, b Endpoint) int {
		if c := strings.Compare(a.Address, b.Address); c != 0 {
			return c
		}
		return int(a.Port - b.Port)
	})
	return slices.CompactFunc(out, func(a, b Endpoint) bool { return a.Address == b.Address && a.Port == b.Port })
}

// protocolOf is the protocol of a port, TCP when unset.
func protocolOf(p string) string {
	if p == "" {
		return "TCP"
	}
	return p
}
