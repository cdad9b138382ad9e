package cli

import (
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/kybernetes/kybernetes/api"
)

// serviceColumns are the columns of `kyb get svc`, as kubectl's.
func serviceColumns(wide bool) []string {
	c := []string{"NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE"}
	if wide {
		c = append(c, "SELECTOR")
	}
	return c
}

func (p *printer) serviceRow(s *api.Service) []string {
	ip := s.Spec.ClusterIP
	if s.Spec.Type == api.ServiceTypeExternalName || ip == "" {
		ip = "<none>"
	}
	r := []string{s.Name, string(s.Spec.Type), ip, externalIPText(s), servicePortsText(s.Spec.Ports), p.age(s.CreationTimestamp)}
	if p.format == "wide" {
		sel := "<none>"
		if len(s.Spec.Selector) > 0 {
			sel = strings.ReplaceAll(mapText(s.Spec.Selector), "\n\t", ",")
		}
		r = append(r, sel)
	}
	return r
}

// externalIPText is the EXTERNAL-IP column: the externalName of an
// ExternalName Service, a LoadBalancer's ingress (<pending> before it has
// one) and the externalIPs, as kubectl prints them.
func externalIPText(s *api.Service) string {
	var ips []string
	switch s.Spec.Type {
	case api.ServiceTypeExternalName:
		return orNone(s.Spec.ExternalName)
	case api.ServiceTypeLoadBalancer:
		for _, in := range s.Status.LoadBalancer.Ingress {
			ips = append(ips, in.IP+in.Hostname)
		}
		ips = append(ips, s.Spec.ExternalIPs...)
		if len(ips) == 0 {
			return "<pending>"
		}
	default:
		ips = s.Spec.ExternalIPs
	}
	return orNone(strings.Join(ips, ","))
}

// servicePortsText is the PORT(S) column: 80/TCP, or 80:30080/TCP with a
// NodePort.
func servicePortsText(ports []api.ServicePort) string {
	parts := make([]string, len(ports))
	for i, p := range ports {
		if p.NodePort != 0 {
			parts[i] = fmt.Sprintf("%d:%d/%s", p.Port, p.NodePort, p.Protocol)
		} else {
			parts[i] = fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		}
	}
	return orNone(strings.Join(parts, ","))
}

// endpointSliceColumns are the columns of `kyb get endpointslices`.
func endpointSliceColumns() []string {
	return []string{"NAME", "ADDRESSTYPE", "PORTS", "ENDPOINTS", "AGE"}
}

func (p *printer) endpointSliceRow(s *api.EndpointSlice) []string {
	ports := make([]string, 0, len(s.Ports))
	for _, port := range s.Ports {
		if port.Port != nil {
			ports = append(ports, strconv.Itoa(int(*port.Port)))
		}
	}
	pt := strings.Join(ports, ",")
	if pt == "" {
		pt = "<unset>"
	}
	return []string{s.Name, s.AddressType, pt, endpointsText(s.Endpoints), p.age(s.CreationTimestamp)}
}

// endpointsText lists the first three addresses and how many more, as
// kubectl does ("<unset>" for none).
func endpointsText(eps []api.Endpoint) string {
	var addrs []string
	for _, ep := range eps {
		addrs = append(addrs, ep.Addresses...)
	}
	if len(addrs) == 0 {
		return "<unset>"
	}
	if len(addrs) <= 3 {
		return strings.Join(addrs, ",")
	}
	return fmt.Sprintf("%s + %d more...", strings.Join(addrs[:3], ","), len(addrs)-3)
}

// describeService writes a Service as kubectl describe does, with its
// endpoints from slices (ready ones, then the not-ready ones apart).
func describeService(w io.Writer, s *api.Service, slices []api.Object) {
	kv(w, "Name", s.Name)
	kv(w, "Namespace", s.Namespace)
	kv(w, "Labels", mapText(s.Labels))
	kv(w, "Annotations", mapText(s.Annotations))
	sel := "<none>"
	if len(s.Spec.Selector) > 0 {
		sel = strings.ReplaceAll(mapText(s.Spec.Selector), "\n\t", ",")
	}
	kv(w, "Selector", sel)
	kv(w, "Type", s.Spec.Type)
	if s.Spec.Type == api.ServiceTypeExternalName {
		kv(w, "External Name", s.Spec.ExternalName)
	} else {
		kv(w, "IP Family Policy", orNone(s.Spec.IPFamilyPolicy))
		kv(w, "IP Families", orNone(strings.Join(s.Spec.IPFamilies, ",")))
		kv(w, "IP", orNone(s.Spec.ClusterIP))
		kv(w, "IPs", orNone(strings.Join(s.Spec.ClusterIPs, ",")))
	}
	if len(s.Spec.ExternalIPs) > 0 {
		kv(w, "External IPs", strings.Join(s.Spec.ExternalIPs, ","))
	}
	if s.Spec.Type == api.ServiceTypeLoadBalancer {
		var in []string
		for _, i := range s.Status.LoadBalancer.Ingress {
			in = append(in, i.IP+i.Hostname)
		}
		kv(w, "LoadBalancer Ingress", orNone(strings.Join(in, ", ")))
	}
	ready, notReady := map[string][]string{}, map[string][]string{}
	for _, o := range slices {
		sl := o.(*api.EndpointSlice)
		for _, port := range sl.Ports {
			name := ""
			if port.Name != nil {
				name = *port.Name
			}
			for _, ep := range sl.Endpoints {
				for _, a := range ep.Addresses {
					addr := a
					if port.Port != nil {
						addr = fmt.Sprintf("%s:%d", a, *port.Port)
					}
					if ep.Runtime == api.RuntimeWasm {
						addr += " (wasm on " + ep.NodeName + ")"
					}
					if ep.Conditions.Ready == nil || *ep.Conditions.Ready {
						ready[name] = append(ready[name], addr)
					} else {
						notReady[name] = append(notReady[name], addr)
					}
				}
			}
		}
	}
	for _, p := range s.Spec.Ports {
		name := orUnset(p.Name)
		kv(w, "Port", fmt.Sprintf("%s  %d/%s", name, p.Port, p.Protocol))
		kv(w, "TargetPort", fmt.Sprintf("%s/%s", p.TargetPort.String(), p.Protocol))
		if p.NodePort != 0 {
			kv(w, "NodePort", fmt.Sprintf("%s  %d/%s", name, p.NodePort, p.Protocol))
		}
		sort.Strings(ready[p.Name])
		sort.Strings(notReady[p.Name])
		kv(w, "Endpoints", orNone(strings.Join(ready[p.Name], ",")))
		if len(notReady[p.Name]) > 0 {
			kv(w, "Not Ready Endpoints", strings.Join(notReady[p.Name], ","))
		}
	}
	kv(w, "Session Affinity", s.Spec.SessionAffinity)
	if c := s.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
		kv(w, "Session Affinity Timeout", fmt.Sprintf("%ds", *c.ClientIP.TimeoutSeconds))
	}
	if s.Spec.ExternalTrafficPolicy != "" {
		kv(w, "External Traffic Policy", s.Spec.ExternalTrafficPolicy)
	}
	if s.Spec.InternalTrafficPolicy != "" {
		kv(w, "Internal Traffic Policy", s.Spec.InternalTrafficPolicy)
	}
}

func orUnset(s string) string {
	if s == "" {
		return "<unset>"
	}
	return s
}
