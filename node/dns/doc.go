// Package dns is the cluster DNS server every node agent runs (the role of
// CoreDNS's kubernetes plugin), built on github.com/miekg/dns from the
// node's copy of the Services and EndpointSlices (node/services):
//
//   - <svc>.<ns>.svc.<domain> A: the ClusterIP; for a headless Service
//     (clusterIP None) the addresses of its ready endpoints;
//   - <hostname>.<svc>.<ns>.svc.<domain> A for the endpoints of a headless
//     Service (Endpoint.Hostname, else the address with dashes);
//   - _<port>._<proto>.<svc>.<ns>.svc.<domain> SRV for named ports (one
//     record per endpoint for a headless Service);
//   - ExternalName Services as a CNAME;
//   - PTR for ClusterIPs and headless endpoints;
//   - NXDOMAIN for other names in the cluster domain, NODATA for a name
//     that exists with another type;
//   - every other name forwarded to the node's resolvers (resolv.conf).
//
// Answers come from an index rebuilt whenever the state changes, so a query
// is one map look-up. The server listens on UDP and TCP; the agent binds it
// to the cluster DNS IP (see docs/services-proxy.md for why no DNAT).
package dns
