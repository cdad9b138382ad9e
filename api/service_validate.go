package api

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ServiceTypeExternalName is a Service that is only a DNS alias
// (CNAME) of spec.externalName: no virtual IP, no endpoints.
const ServiceTypeExternalName ServiceType = "ExternalName"

// Traffic policies of a Service.
const (
	TrafficPolicyCluster = "Cluster"
	TrafficPolicyLocal   = "Local"
)

// IP families and family policies; only IPv4 single-stack is served.
const (
	IPv4Protocol                    = "IPv4"
	IPFamilyPolicySingleStack       = "SingleStack"
	IPFamilyPolicyPreferDual        = "PreferDualStack"
	IPFamilyPolicyRequireDual       = "RequireDualStack"
	AddressTypeIPv4                 = "IPv4"
	AddressTypeFQDN                 = "FQDN"
	DefaultClientIPTimeout    int32 = 10800
	// MaxClientIPTimeout is Kubernetes' bound on the ClientIP timeout (a day).
	MaxClientIPTimeout int32 = 86400
)

// Service address ranges, as Kubernetes' (k3s' CIDR).
const (
	// DefaultServiceCIDR is the range ClusterIPs are allocated from.
	DefaultServiceCIDR = "10.43.0.0/16"
	// DefaultNodePortRange is the range NodePorts are allocated from.
	DefaultNodePortRange = "30000-32767"
	// DefaultClusterCIDR is the range nodes' pod CIDRs are cut from.
	DefaultClusterCIDR = "10.42.0.0/16"
)

// CheckCIDRsDisjoint reports an error when the pod range cluster and the
// service range service are not both IPv4 prefixes or overlap: a pod IP
// that is also a cluster IP would be routed to the Service.
func CheckCIDRsDisjoint(cluster, service string) error {
	c, err := netip.ParsePrefix(cluster)
	if err != nil || !c.Addr().Is4() {
		return fmt.Errorf("cluster CIDR %q: not an IPv4 prefix such as %s", cluster, DefaultClusterCIDR)
	}
	s, err := netip.ParsePrefix(service)
	if err != nil || !s.Addr().Is4() {
		return fmt.Errorf("service CIDR %q: not an IPv4 prefix such as %s", service, DefaultServiceCIDR)
	}
	if c.Overlaps(s) {
		return fmt.Errorf("cluster CIDR %s overlaps the service CIDR %s", c.Masked(), s.Masked())
	}
	return nil
}

// MaxEndpointsPerSlice bounds the endpoints of one EndpointSlice, as
// Kubernetes (1000; its controller writes at most 100 per slice).
const MaxEndpointsPerSlice = 1000

// ClusterDNSIP returns the address of the cluster DNS Service in the
// service CIDR cidr: its tenth address (10.43.0.10 in 10.43.0.0/16), as
// k3s and kubeadm choose. The first address (.1) is the kubernetes
// Service's. Neither is handed out by automatic allocation.
func ClusterDNSIP(cidr string) (netip.Addr, error) {
	return nthServiceIP(cidr, 10)
}

// KubernetesServiceIP returns the first address of the service CIDR cidr
// (10.43.0.1), kept for a `kubernetes` Service as Kubernetes keeps it.
func KubernetesServiceIP(cidr string) (netip.Addr, error) {
	return nthServiceIP(cidr, 1)
}

func nthServiceIP(cidr string, n uint32) (netip.Addr, error) {
	p, err := netip.ParsePrefix(cidr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("service CIDR %q: %w", cidr, err)
	}
	p = p.Masked()
	if !p.Addr().Is4() || p.Bits() > 28 {
		return netip.Addr{}, fmt.Errorf("service CIDR %q: must be an IPv4 range of at least 16 addresses", cidr)
	}
	b := p.Addr().As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), nil
}

// NeedsNodePorts reports whether a Service of this spec gets a nodePort per
// port: NodePort, and LoadBalancer unless allocateLoadBalancerNodePorts is
// false.
func (s *ServiceSpec) NeedsNodePorts() bool {
	switch s.Type {
	case ServiceTypeNodePort:
		return true
	case ServiceTypeLoadBalancer:
		return s.AllocateLoadBalancerNodePorts == nil || *s.AllocateLoadBalancerNodePorts
	}
	return false
}

// NeedsClusterIP reports whether a Service of this spec has a virtual IP
// allocated: every type but ExternalName, unless headless.
func (s *ServiceSpec) NeedsClusterIP() bool {
	return s.Type != ServiceTypeExternalName && s.ClusterIP != ClusterIPNone
}

// IsHeadless reports whether the Service has no virtual IP (clusterIP None).
func (s *ServiceSpec) IsHeadless() bool { return s.ClusterIP == ClusterIPNone }

// defaultService sets Kubernetes' defaults: type ClusterIP, port protocol
// TCP, targetPort = port, sessionAffinity None (ClientIP: timeout 10800),
// for NodePort and LoadBalancer externalTrafficPolicy Cluster (Kubernetes
// leaves it empty, and refuses it, on other types), internalTrafficPolicy
// Cluster, ipFamilies [IPv4] and ipFamilyPolicy SingleStack, clusterIPs
// from clusterIP (and back), allocateLoadBalancerNodePorts true on
// LoadBalancer. ExternalName Services get none of the IP fields.
func defaultService(svc *Service) {
	s := &svc.Spec
	if s.Type == "" {
		s.Type = ServiceTypeClusterIP
	}
	for i := range s.Ports {
		p := &s.Ports[i]
		if p.Protocol == "" {
			p.Protocol = string(ProtocolTCP)
		}
		if !p.TargetPort.IsString && p.TargetPort.IntVal == 0 {
			p.TargetPort = FromInt(p.Port)
		}
	}
	if s.SessionAffinity == "" {
		s.SessionAffinity = SessionAffinityNone
	}
	if s.SessionAffinity == SessionAffinityClientIP {
		if s.SessionAffinityConfig == nil {
			s.SessionAffinityConfig = &SessionAffinityConfig{}
		}
		if s.SessionAffinityConfig.ClientIP == nil {
			s.SessionAffinityConfig.ClientIP = &ClientIPConfig{}
		}
		if s.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			t := DefaultClientIPTimeout
			s.SessionAffinityConfig.ClientIP.TimeoutSeconds = &t
		}
	}
	if s.Type == ServiceTypeExternalName {
		return
	}
	if (s.Type == ServiceTypeNodePort || s.Type == ServiceTypeLoadBalancer) && s.ExternalTrafficPolicy == "" {
		s.ExternalTrafficPolicy = TrafficPolicyCluster
	}
	if s.InternalTrafficPolicy == "" {
		s.InternalTrafficPolicy = TrafficPolicyCluster
	}
	if len(s.IPFamilies) == 0 {
		s.IPFamilies = []string{IPv4Protocol}
	}
	if s.IPFamilyPolicy == "" {
		s.IPFamilyPolicy = IPFamilyPolicySingleStack
	}
	if s.ClusterIP == "" && len(s.ClusterIPs) > 0 {
		s.ClusterIP = s.ClusterIPs[0]
	}
	if s.ClusterIP != "" && len(s.ClusterIPs) == 0 {
		s.ClusterIPs = []string{s.ClusterIP}
	}
	if s.Type == ServiceTypeLoadBalancer && s.AllocateLoadBalancerNodePorts == nil {
		t := true
		s.AllocateLoadBalancerNodePorts = &t
	}
}

var serviceTypes = []string{string(ServiceTypeClusterIP), string(ServiceTypeNodePort), string(ServiceTypeLoadBalancer), string(ServiceTypeExternalName)}

// validateService checks a Service as Kubernetes' ValidateService does. The
// service CIDR and the NodePort range are the server's settings: the
// apiserver checks them when it allocates (control/apiserver/services.go).
func validateService(e *errs, svc *Service) {
	s := &svc.Spec
	sp := field.NewPath("spec")
	if !slices.Contains(serviceTypes, string(s.Type)) {
		e.unsupported(sp.Child("type"), string(s.Type), serviceTypes...)
		return
	}
	validateLabels(e, s.Selector, sp.Child("selector"))
	external := s.Type == ServiceTypeExternalName
	switch {
	case external:
		if s.ClusterIP != "" || len(s.ClusterIPs) > 0 {
			e.add(sp.Child("clusterIP"), "must be empty for type ExternalName")
		}
		name := strings.TrimSuffix(s.ExternalName, ".")
		if name == "" {
			e.required(sp.Child("externalName"))
		} else {
			for _, m := range validation.IsDNS1123Subdomain(strings.ToLower(name)) {
				e.add(sp.Child("externalName"), "invalid value %q: %s", clipValue(s.ExternalName), m)
			}
		}
	case s.ExternalName != "":
		e.add(sp.Child("externalName"), "may only be set when type is ExternalName")
	}
	if !external {
		validateClusterIP(e, s, sp)
	}
	if len(s.Ports) == 0 && !external && !s.IsHeadless() {
		e.required(sp.Child("ports"))
	}
	validateServicePorts(e, s, sp.Child("ports"))
	switch s.SessionAffinity {
	case SessionAffinityNone:
		if s.SessionAffinityConfig != nil {
			e.add(sp.Child("sessionAffinityConfig"), "must not be set when sessionAffinity is None")
		}
	case SessionAffinityClientIP:
		if s.SessionAffinityConfig == nil || s.SessionAffinityConfig.ClientIP == nil || s.SessionAffinityConfig.ClientIP.TimeoutSeconds == nil {
			e.required(sp.Child("sessionAffinityConfig", "clientIP", "timeoutSeconds"))
		} else if t := *s.SessionAffinityConfig.ClientIP.TimeoutSeconds; t <= 0 || t > MaxClientIPTimeout {
			e.add(sp.Child("sessionAffinityConfig", "clientIP", "timeoutSeconds"), "invalid value %d: must be greater than 0 and at most %d", t, MaxClientIPTimeout)
		}
	default:
		e.unsupported(sp.Child("sessionAffinity"), s.SessionAffinity, SessionAffinityNone, SessionAffinityClientIP)
	}
	if external && s.SessionAffinity == SessionAffinityClientIP {
		e.add(sp.Child("sessionAffinity"), "may not be ClientIP for type ExternalName")
	}
	switch s.ExternalTrafficPolicy {
	case "":
	case TrafficPolicyCluster, TrafficPolicyLocal:
		if s.Type != ServiceTypeNodePort && s.Type != ServiceTypeLoadBalancer && len(s.ExternalIPs) == 0 {
			e.add(sp.Child("externalTrafficPolicy"), "may only be set when type is NodePort or LoadBalancer (or externalIPs are set)")
		}
	default:
		e.unsupported(sp.Child("externalTrafficPolicy"), s.ExternalTrafficPolicy, TrafficPolicyCluster, TrafficPolicyLocal)
	}
	switch s.InternalTrafficPolicy {
	case "", TrafficPolicyCluster, TrafficPolicyLocal:
	default:
		e.unsupported(sp.Child("internalTrafficPolicy"), s.InternalTrafficPolicy, TrafficPolicyCluster, TrafficPolicyLocal)
	}
	for i, ip := range s.ExternalIPs {
		if a, err := netip.ParseAddr(ip); err != nil || !a.Is4() {
			e.add(sp.Child("externalIPs").Index(i), "invalid value %q: must be an IPv4 address", clipValue(ip))
		}
	}
	if s.AllocateLoadBalancerNodePorts != nil && s.Type != ServiceTypeLoadBalancer {
		e.add(sp.Child("allocateLoadBalancerNodePorts"), "may only be set when type is LoadBalancer")
	}
}

// validateClusterIP checks clusterIP, clusterIPs, ipFamilies and
// ipFamilyPolicy: IPv4 single-stack only.
func validateClusterIP(e *errs, s *ServiceSpec, sp *field.Path) {
	switch {
	case s.ClusterIP == "":
	case s.ClusterIP == ClusterIPNone:
		if s.Type == ServiceTypeNodePort || s.Type == ServiceTypeLoadBalancer {
			e.add(sp.Child("clusterIP"), "may not be None (headless) when type is %s", s.Type)
		}
	default:
		if a, err := netip.ParseAddr(s.ClusterIP); err != nil || !a.Is4() || a.Zone() != "" {
			e.add(sp.Child("clusterIP"), "invalid value %q: must be an IPv4 address, None, or empty (allocated)", clipValue(s.ClusterIP))
		}
	}
	if len(s.ClusterIPs) > 1 {
		e.add(sp.Child("clusterIPs"), "only one address may be given: kybernetes serves IPv4 single-stack Services")
	}
	if len(s.ClusterIPs) > 0 && s.ClusterIPs[0] != s.ClusterIP {
		e.add(sp.Child("clusterIPs").Index(0), "must be the same as spec.clusterIP (%q)", clipValue(s.ClusterIP))
	}
	for i, f := range s.IPFamilies {
		if f != IPv4Protocol {
			e.add(sp.Child("ipFamilies").Index(i), "unsupported value %q: only \"IPv4\" is served", clipValue(f))
		}
	}
	if len(s.IPFamilies) > 1 {
		e.add(sp.Child("ipFamilies"), "at most one family: kybernetes serves IPv4 single-stack Services")
	}
	switch s.IPFamilyPolicy {
	case "", IPFamilyPolicySingleStack, IPFamilyPolicyPreferDual:
	case IPFamilyPolicyRequireDual:
		e.add(sp.Child("ipFamilyPolicy"), "RequireDualStack is not supported: kybernetes serves IPv4 single-stack Services")
	default:
		e.unsupported(sp.Child("ipFamilyPolicy"), s.IPFamilyPolicy, IPFamilyPolicySingleStack, IPFamilyPolicyPreferDual)
	}
}

// validateServicePorts checks each port and the collisions between them:
// the same port and protocol twice, the same nodePort and protocol twice
// (Kubernetes lets one nodePort serve a TCP and a UDP port), names unique
// and required when there are several.
func validateServicePorts(e *errs, s *ServiceSpec, pp *field.Path) {
	type pk struct {
		port  int32
		proto string
	}
	ports, nodePorts, names := map[pk]int{}, map[pk]int{}, map[string]int{}
	for i, p := range s.Ports {
		ip := pp.Index(i)
		if p.Name == "" {
			if len(s.Ports) > 1 {
				e.add(ip.Child("name"), "required when the Service has more than one port")
			}
		} else {
			for _, m := range validation.IsDNS1123Label(p.Name) {
				e.add(ip.Child("name"), "invalid value %q: %s", clipValue(p.Name), m)
			}
			if j, dup := names[p.Name]; dup {
				e.add(ip.Child("name"), "duplicate value %q (also spec.ports[%d].name)", p.Name, j)
			} else {
				names[p.Name] = i
			}
		}
		proto := p.Protocol
		if proto == "" {
			proto = string(ProtocolTCP) // Default sets it
		}
		switch Protocol(proto) {
		case ProtocolTCP, ProtocolUDP:
		case ProtocolSCTP:
			e.add(ip.Child("protocol"), "SCTP is not supported: the node proxy serves TCP and UDP")
		default:
			e.unsupported(ip.Child("protocol"), p.Protocol, string(ProtocolTCP), string(ProtocolUDP))
		}
		if p.Port < 1 || p.Port > 65535 {
			e.add(ip.Child("port"), "invalid value %d: must be between 1 and 65535, inclusive", p.Port)
		}
		if p.TargetPort.IsString {
			for _, m := range validation.IsValidPortName(p.TargetPort.StrVal) {
				e.add(ip.Child("targetPort"), "invalid value %q: %s", clipValue(p.TargetPort.StrVal), m)
			}
		} else if t := p.TargetPort.IntVal; t < 1 || t > 65535 {
			e.add(ip.Child("targetPort"), "invalid value %d: must be between 1 and 65535, inclusive", t)
		}
		if p.AppProtocol != "" {
			for _, m := range validation.IsQualifiedName(p.AppProtocol) {
				e.add(ip.Child("appProtocol"), "invalid value %q: %s", clipValue(p.AppProtocol), m)
			}
		}
		k := pk{p.Port, proto}
		if j, dup := ports[k]; dup {
			e.add(ip, "duplicate port %d/%s (also spec.ports[%d])", p.Port, proto, j)
		} else {
			ports[k] = i
		}
		if p.NodePort != 0 {
			switch {
			case p.NodePort < 0 || p.NodePort > 65535:
				e.add(ip.Child("nodePort"), "invalid value %d: must be between 1 and 65535, inclusive", p.NodePort)
			case s.Type == ServiceTypeClusterIP || s.Type == ServiceTypeExternalName:
				e.add(ip.Child("nodePort"), "may not be used when type is %s", s.Type)
			case s.Type == ServiceTypeLoadBalancer && !s.NeedsNodePorts():
				e.add(ip.Child("nodePort"), "may not be used when allocateLoadBalancerNodePorts is false")
			}
			nk := pk{p.NodePort, proto}
			if j, dup := nodePorts[nk]; dup {
				e.add(ip.Child("nodePort"), "duplicate nodePort %d/%s (also spec.ports[%d].nodePort)", p.NodePort, proto, j)
			} else {
				nodePorts[nk] = i
			}
		}
	}
}

// validateServiceUpdate checks what may not change on a Service, as
// Kubernetes: clusterIP (and clusterIPs) once set, unless the type changes
// to or from ExternalName; ipFamilies.
func validateServiceUpdate(e *errs, old, new *Service) {
	sp := field.NewPath("spec")
	os, ns := &old.Spec, &new.Spec
	if os.Type != ServiceTypeExternalName && ns.Type != ServiceTypeExternalName && os.ClusterIP != "" && os.ClusterIP != ns.ClusterIP {
		e.add(sp.Child("clusterIP"), "field is immutable (was %q): delete the Service and create it again to change it", os.ClusterIP)
	}
}

// validateEndpointSlice checks a slice (one applied by hand for a Service
// without a selector, or the controller's): addressType, addresses of that
// type, ports.
func validateEndpointSlice(e *errs, sl *EndpointSlice) {
	switch sl.AddressType {
	case AddressTypeIPv4, AddressTypeFQDN:
	default:
		e.unsupported(field.NewPath("addressType"), sl.AddressType, AddressTypeIPv4, AddressTypeFQDN)
	}
	if len(sl.Endpoints) > MaxEndpointsPerSlice {
		e.add(field.NewPath("endpoints"), "too many: %d, at most %d", len(sl.Endpoints), MaxEndpointsPerSlice)
		return
	}
	for i, ep := range sl.Endpoints {
		p := field.NewPath("endpoints").Index(i)
		if len(ep.Addresses) == 0 {
			e.required(p.Child("addresses"))
		}
		for j, a := range ep.Addresses {
			ap := p.Child("addresses").Index(j)
			if sl.AddressType == AddressTypeIPv4 {
				if ip, err := netip.ParseAddr(a); err != nil || !ip.Is4() {
					e.add(ap, "invalid value %q: must be an IPv4 address", clipValue(a))
				}
			} else {
				e.addAll(ap, validation.IsDNS1123Subdomain(a))
			}
		}
		if ep.Hostname != "" {
			e.addAll(p.Child("hostname"), validation.IsDNS1123Label(ep.Hostname))
		}
	}
	for i, port := range sl.Ports {
		p := field.NewPath("ports").Index(i)
		if port.Name != nil && *port.Name != "" {
			e.addAll(p.Child("name"), validation.IsDNS1123Label(*port.Name))
		}
		if port.Port != nil && (*port.Port < 1 || *port.Port > 65535) {
			e.add(p.Child("port"), "invalid value %d: must be between 1 and 65535, inclusive", *port.Port)
		}
		if port.Protocol != nil && *port.Protocol != string(ProtocolTCP) && *port.Protocol != string(ProtocolUDP) {
			e.unsupported(p.Child("protocol"), *port.Protocol, string(ProtocolTCP), string(ProtocolUDP))
		}
	}
}

// clipValue shortens a bad value for an error message.
func clipValue(v string) string {
	if len(v) <= 80 {
		return v
	}
	return v[:64] + fmt.Sprintf("... (%d bytes)", len(v))
}
