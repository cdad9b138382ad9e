// Package proxy is the node's service proxy (the kube-proxy role), built
// from the node's copy of the Services and EndpointSlices (node/services).
//
// Connections are steered by nftables rules in a table of the proxy's own
// (ip kyb): written whole by an agent's first write (dropping what an
// earlier run left), then changed by difference — map elements, the chains
// of changed service ports — each change one netlink transaction, so that
// a new connection meets the current endpoints and an open one keeps its
// endpoint (its conntrack entry) whatever changes. Frontends live in two
// verdict maps (daddr . proto . dport; proto . dport on the node's own
// addresses). Frontends:
// ClusterIP:port, NodePort on the node's addresses, LoadBalancer (the
// service port on the node's addresses, as k3s' ServiceLB) and externalIPs,
// TCP and UDP. A service port's chain spreads new connections evenly over
// its ready endpoints (numgen random, kube-proxy's iptables probabilities
// without their rounding) and, with sessionAffinity ClientIP, sends a client
// back to the endpoint it had (a dynamic set per endpoint, with the
// affinity's timeout). Traffic that entered from outside (NodePort,
// LoadBalancer, externalIPs) and hairpin traffic is masqueraded.
//
// A wasm endpoint is the address of the node that runs the pod with the
// pod's container port: connections are DNATed there, and the Gateway of
// that node (an HTTP listener on its address and the port) hands each
// request to the pod's WAGI handler through the runtime
// (runtimes.HTTPServer), spreading over the node's ready wasm endpoints of
// that port. docs/services-proxy.md says why nftables and not a proxy in
// the agent, with the measurements.
package proxy
