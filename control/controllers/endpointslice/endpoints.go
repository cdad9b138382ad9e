package endpointslice

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/kybernetes/kybernetes/api"
)

// endpointOf is one pod's endpoint in a Service: the endpoint and the
// ports it serves the Service's ports on (in the Service's order).
type endpointOf struct {
	ep    api.Endpoint
	ports []api.EndpointPort
}

// nodeAddress returns the address a node is reached on: its InternalIP,
// else its first address ("" when it has none).
func nodeAddress(n *api.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == api.NodeInternalIP {
			return a.Address
		}
	}
	if len(n.Status.Addresses) > 0 {
		return n.Status.Addresses[0].Address
	}
	return ""
}

// ingressAddress is the address a LoadBalancer is reached on at a node:
// its ExternalIP, else its InternalIP, as k3s' ServiceLB.
func ingressAddress(n *api.Node) string {
	for _, a := range n.Status.Addresses {
		if a.Type == api.NodeExternalIP {
			return a.Address
		}
	}
	return nodeAddress(n)
}

// usableAddress reports whether an address an agent reported (a pod IP, a
// node address) can be an endpoint: a unicast IPv4 address, not loopback,
// unspecified, multicast or link-local, so a proxy is never sent to itself
// or to garbage.
func usableAddress(a string) bool {
	ip, err := netip.ParseAddr(a)
	return err == nil && ip.Is4() && ip.IsGlobalUnicast() && !ip.IsLinkLocalUnicast()
}

// podReady reports whether the pod's Ready condition is True.
func podReady(p *api.Pod) bool {
	c := p.Status.Condition(api.PodReady)
	return c != nil && c.Status == api.ConditionTrue
}

// podEndpoint returns the endpoint of pod in svc, and false when the pod is
// not listed: it finished, has no address yet (no pod IP; a wasm pod not
// bound or on a node without an address), or has none of the Service's
// ports. nodeOf looks a node up by name.
func podEndpoint(svc *api.Service, pod *api.Pod, nodeOf func(string) *api.Node) (endpointOf, bool) {
	if pod.Status.Phase == api.PodSucceeded || pod.Status.Phase == api.PodFailed {
		return endpointOf{}, false
	}
	var out endpointOf
	ep := &out.ep
	ep.NodeName = pod.Spec.NodeName
	var node *api.Node
	if pod.Spec.NodeName != "" {
		node = nodeOf(pod.Spec.NodeName)
	}
	if pod.Spec.RuntimeClass() == api.RuntimeWasm {
		if node == nil {
			return endpointOf{}, false
		}
		addr := nodeAddress(node)
		if !usableAddress(addr) {
			return endpointOf{}, false
		}
		ep.Addresses = []string{addr}
		ep.Runtime = api.RuntimeWasm
	} else {
		if !usableAddress(pod.Status.PodIP) {
			return endpointOf{}, false
		}
		ep.Addresses = []string{pod.Status.PodIP}
		ep.Runtime = api.RuntimeContainerd
	}
	if node != nil {
		ep.Zone = node.Labels[api.LabelTopologyZone]
	}
	terminating := pod.DeletionTimestamp != nil
	serving := podReady(pod) || svc.Spec.PublishNotReadyAddresses
	ready := serving && !terminating
	if svc.Spec.PublishNotReadyAddresses {
		ready = true // as Kubernetes: listed as ready whatever the pod says
	}
	ep.Conditions = api.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating}
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name {
		ep.Hostname = pod.Spec.Hostname
	}
	ep.TargetRef = &api.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}
	for _, sp := range svc.Spec.Ports {
		port, ok := targetPort(pod, sp)
		if !ok {
			continue
		}
		out.ports = append(out.ports, api.EndpointPort{
			Name: ptr(sp.Name), Protocol: ptr(sp.Protocol), Port: ptr(port), AppProtocol: optional(sp.AppProtocol),
		})
	}
	if len(svc.Spec.Ports) > 0 && len(out.ports) == 0 {
		return endpointOf{}, false
	}
	return out, true
}

// targetPort resolves a Service port's targetPort on pod: a number as is,
// a name through the pod's container ports of the same protocol.
func targetPort(pod *api.Pod, sp api.ServicePort) (int32, bool) {
	if !sp.TargetPort.IsString {
		if sp.TargetPort.IntVal == 0 {
			return sp.Port, true
		}
		return sp.TargetPort.IntVal, true
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			proto := cmp.Or(string(p.Protocol), string(api.ProtocolTCP))
			if p.Name == sp.TargetPort.StrVal && proto == sp.Protocol {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

// portsKey names a set of endpoint ports: pods whose ports differ go in
// different slices.
func portsKey(ports []api.EndpointPort) string {
	var b strings.Builder
	for _, p := range ports {
		b.WriteString(deref(p.Name))
		b.WriteByte('/')
		b.WriteString(deref(p.Protocol))
		b.WriteByte('/')
		if p.Port != nil {
			b.WriteString(strconv.Itoa(int(*p.Port)))
		}
		b.WriteByte('/')
		b.WriteString(deref(p.AppProtocol))
		b.WriteByte(';')
	}
	return b.String()
}

// endpointKey identifies an endpoint across reconciles: its pod (or its
// first address when it has no pod).
func endpointKey(ep *api.Endpoint) string {
	if ep.TargetRef != nil {
		return ep.TargetRef.Namespace + "/" + ep.TargetRef.Name
	}
	if len(ep.Addresses) > 0 {
		return ep.Addresses[0]
	}
	return ""
}

// sortEndpoints orders endpoints by address then pod, so a slice's content
// does not depend on the order the cache lists pods in.
func sortEndpoints(eps []api.Endpoint) {
	slices.SortFunc(eps, func(a, b api.Endpoint) int {
		return cmp.Or(cmp.Compare(strings.Join(a.Addresses, ","), strings.Join(b.Addresses, ",")), cmp.Compare(endpointKey(&a), endpointKey(&b)))
	})
}

func ptr[T any](v T) *T { return &v }

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
