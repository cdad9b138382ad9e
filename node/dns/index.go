package dns

import (
	"net/netip"
	"strings"

	"github.com/miekg/dns"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/node/services"
)

// TTL is the time to live of the cluster's records (CoreDNS' default).
const TTL = 5

// index holds the answers of the cluster domain, by lower-case FQDN and
// query type. names holds every name that exists (with any type, and the
// names above them in the domain), for NODATA against NXDOMAIN.
type index struct {
	rrs   map[key][]dns.RR
	names map[string]bool
}

type key struct {
	name  string
	qtype uint16
}

func (ix *index) add(rr dns.RR) {
	h := rr.Header()
	h.Name = strings.ToLower(h.Name)
	h.Class = dns.ClassINET
	h.Ttl = TTL
	k := key{h.Name, h.Rrtype}
	ix.rrs[k] = append(ix.rrs[k], rr)
	for n := h.Name; n != ""; {
		ix.names[n] = true
		i := strings.IndexByte(n, '.')
		if i < 0 || i == len(n)-1 {
			break
		}
		n = n[i+1:]
	}
}

// buildIndex makes the answers of domain (a FQDN with the trailing dot)
// from st.
func buildIndex(st *services.State, domain string) *index {
	ix := &index{rrs: map[key][]dns.RR{}, names: map[string]bool{domain: true}}
	for k, svc := range st.Services {
		base := svc.Name + "." + svc.Namespace + ".svc." + domain
		if svc.Spec.ExternalName != "" {
			ix.add(&dns.CNAME{Hdr: dns.RR_Header{Name: base, Rrtype: dns.TypeCNAME}, Target: dns.Fqdn(svc.Spec.ExternalName)})
			continue
		}
		headless := svc.Spec.ClusterIP == api.ClusterIPNone
		if !headless {
			ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
			if err != nil || !ip.Is4() {
				continue // not allocated yet
			}
			ix.add(&dns.A{Hdr: dns.RR_Header{Name: base, Rrtype: dns.TypeA}, A: ip.AsSlice()})
			ix.addPTR(ip, base)
			for i := range svc.Spec.Ports {
				sp := &svc.Spec.Ports[i]
				if sp.Name != "" {
					ix.add(srv(sp, base, base, sp.Port))
				}
			}
			continue
		}
		// Headless: the ready endpoints of every port, once per address.
		seen := map[string]bool{}
		ports := svc.Spec.Ports
		if len(ports) == 0 {
			// A headless Service without ports still names its endpoints.
			ports = []api.ServicePort{{}}
		}
		for i := range ports {
			sp := &ports[i]
			for _, ep := range st.Endpoints(k, svc, sp) {
				ip, err := netip.ParseAddr(ep.Address)
				if err != nil || !ip.Is4() {
					continue
				}
				host := ep.Hostname
				if host == "" {
					host = strings.ReplaceAll(ip.String(), ".", "-")
				}
				name := host + "." + base
				if !seen[ep.Address] {
					seen[ep.Address] = true
					ix.add(&dns.A{Hdr: dns.RR_Header{Name: base, Rrtype: dns.TypeA}, A: ip.AsSlice()})
					ix.add(&dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA}, A: ip.AsSlice()})
					if ep.Hostname != "" && !ep.Wasm {
						ix.addPTR(ip, name)
					}
				}
				if sp.Name != "" {
					ix.add(srv(sp, base, name, ep.Port))
				}
			}
		}
	}
	return ix
}

// srv is the SRV record _<port>._<proto>.<base> pointing at target.
func srv(sp *api.ServicePort, base, target string, port int32) dns.RR {
	proto := strings.ToLower(sp.Protocol)
	if proto == "" {
		proto = "tcp"
	}
	return &dns.SRV{Hdr: dns.RR_Header{Name: "_" + sp.Name + "._" + proto + "." + base, Rrtype: dns.TypeSRV},
		Priority: 0, Weight: 100, Port: uint16(port), Target: target}
}

func (ix *index) addPTR(ip netip.Addr, name string) {
	rev, err := dns.ReverseAddr(ip.String())
	if err != nil {
		return
	}
	ix.rrs[key{rev, dns.TypePTR}] = append(ix.rrs[key{rev, dns.TypePTR}],
		&dns.PTR{Hdr: dns.RR_Header{Name: rev, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: TTL}, Ptr: name})
}
