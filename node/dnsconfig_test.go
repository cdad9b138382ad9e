package node

import (
	"testing"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

func TestPodDNS(t *testing.T) {
	host := &runtimes.DNSConfig{Servers: []string{"192.168.1.1"}, Searches: []string{"lan"}, Options: []string{"edns0"}}
	two := "2"
	cases := []struct {
		name    string
		policy  api.DNSPolicy
		hostNet bool
		cfg     *api.PodDNSConfig
		cluster string
		want    string
	}{
		{"cluster first", "", false, nil, "10.43.0.10",
			"search shop.svc.cluster.local svc.cluster.local cluster.local lan\nnameserver 10.43.0.10\noptions ndots:5\n"},
		{"no cluster dns", api.DNSClusterFirst, false, nil, "",
			"search lan\nnameserver 192.168.1.1\noptions edns0\n"},
		{"host network falls back to the node's", api.DNSClusterFirst, true, nil, "10.43.0.10",
			"search lan\nnameserver 192.168.1.1\noptions edns0\n"},
		{"cluster first with host net", api.DNSClusterFirstWithHostNet, true, nil, "10.43.0.10",
			"search shop.svc.cluster.local svc.cluster.local cluster.local lan\nnameserver 10.43.0.10\noptions ndots:5\n"},
		{"default", api.DNSDefault, false, &api.PodDNSConfig{Nameservers: []string{"9.9.9.9"}}, "10.43.0.10",
			"search lan\nnameserver 192.168.1.1\nnameserver 9.9.9.9\noptions edns0\n"},
		{"none", api.DNSNone, false, &api.PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"x.example"}, Options: []api.PodDNSConfigOption{{Name: "ndots", Value: &two}}}, "10.43.0.10",
			"search x.example\nnameserver 1.1.1.1\noptions ndots:2\n"},
		{"options override and servers capped", "", false, &api.PodDNSConfig{Nameservers: []string{"1.1.1.1", "10.43.0.10", "2.2.2.2", "3.3.3.3"}, Options: []api.PodDNSConfigOption{{Name: "ndots", Value: &two}, {Name: "rotate"}}}, "10.43.0.10",
			"search shop.svc.cluster.local svc.cluster.local cluster.local lan\nnameserver 10.43.0.10\nnameserver 1.1.1.1\nnameserver 2.2.2.2\noptions ndots:2 rotate\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			pod := &api.Pod{ObjectMeta: api.ObjectMeta{Namespace: "shop", Name: "p"}}
			pod.Spec.DNSPolicy, pod.Spec.HostNetwork, pod.Spec.DNSConfig = tc.policy, tc.hostNet, tc.cfg
			got := string(podDNS(pod, tc.cluster, "cluster.local", host).ResolvConf())
			if got != tc.want {
				t.Fatalf("resolv.conf:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
	if len(host.Servers) != 1 || len(host.Searches) != 1 || len(host.Options) != 1 {
		t.Fatalf("the node's config was changed: %+v", host)
	}
}
