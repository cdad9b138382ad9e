package node

import (
	"os"
	"slices"
	"strings"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// podDNS is the resolver configuration of a pod from its dnsPolicy and
// dnsConfig, as kubelet's dns.Configurer makes it:
//   - ClusterFirst (the default), and ClusterFirstWithHostNet: the cluster
//     DNS, search <ns>.svc.<domain> svc.<domain> <domain> then the node's
//     search domains, options ndots:5. A hostNetwork pod with ClusterFirst
//     gets the node's file (Kubernetes' rule), as does every pod when the
//     node serves no cluster DNS (clusterDNS "").
//   - Default: the node's resolv.conf.
//   - None: only dnsConfig.
//
// dnsConfig's nameservers and searches are appended (duplicates dropped; at
// most 3 nameservers and 32 searches kept), its options override those of
// the same name. hostResolv is the node's resolv.conf.
func podDNS(pod *api.Pod, clusterDNS, domain string, hostResolv *runtimes.DNSConfig) *runtimes.DNSConfig {
	host := func() *runtimes.DNSConfig {
		return &runtimes.DNSConfig{
			Servers:  slices.Clone(hostResolv.Servers),
			Searches: slices.Clone(hostResolv.Searches),
			Options:  slices.Clone(hostResolv.Options),
		}
	}
	var c *runtimes.DNSConfig
	switch policy := pod.Spec.DNSPolicy; {
	case policy == api.DNSNone:
		c = &runtimes.DNSConfig{}
	case policy == api.DNSDefault, clusterDNS == "",
		pod.Spec.HostNetwork && policy != api.DNSClusterFirstWithHostNet:
		c = host()
	default:
		c = &runtimes.DNSConfig{
			Servers: []string{clusterDNS},
			Searches: append([]string{pod.Namespace + ".svc." + domain, "svc." + domain, domain},
				hostResolv.Searches...),
			Options: []string{"ndots:5"},
		}
	}
	if dc := pod.Spec.DNSConfig; dc != nil {
		c.Servers = append(c.Servers, dc.Nameservers...)
		c.Searches = append(c.Searches, dc.Searches...)
		for _, o := range dc.Options {
			opt := o.Name
			if o.Value != nil {
				opt += ":" + *o.Value
			}
			c.Options = slices.DeleteFunc(c.Options, func(s string) bool {
				name, _, _ := strings.Cut(s, ":")
				return name == o.Name
			})
			c.Options = append(c.Options, opt)
		}
	}
	c.Servers = firstUnique(c.Servers, api.MaxDNSNameservers)
	c.Searches = firstUnique(c.Searches, api.MaxDNSSearches)
	return c
}

// firstUnique keeps the first n distinct values of s, in order.
func firstUnique(s []string, n int) []string {
	out := make([]string, 0, min(len(s), n))
	for _, v := range s {
		if len(out) == n {
			break
		}
		if v != "" && !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// readHostResolv reads the node's resolv.conf (path), empty when it cannot.
func readHostResolv(path string) *runtimes.DNSConfig {
	b, err := os.ReadFile(path)
	if err != nil {
		return &runtimes.DNSConfig{}
	}
	return runtimes.ParseResolvConf(b)
}
