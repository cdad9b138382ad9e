package api

import (
	"strings"
	"testing"
)

func TestValidatePodDNS(t *testing.T) {
	s := func(v string) *string { return &v }
	many := func(n int, v string) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	cases := []struct {
		name   string
		policy DNSPolicy
		cfg    *PodDNSConfig
		want   string // a field path in the error; "" for valid
	}{
		{"default", "", nil, ""},
		{"cluster first", DNSClusterFirst, nil, ""},
		{"host net", DNSClusterFirstWithHostNet, nil, ""},
		{"node's", DNSDefault, nil, ""},
		{"none with servers", DNSNone, &PodDNSConfig{Nameservers: []string{"1.1.1.1"}, Searches: []string{"example.com."}, Options: []PodDNSConfigOption{{Name: "ndots", Value: s("2")}}}, ""},
		{"unknown policy", "Cluster", nil, "spec.dnsPolicy"},
		{"none without config", DNSNone, nil, "spec.dnsConfig.nameservers"},
		{"none without servers", DNSNone, &PodDNSConfig{Searches: []string{"a.b"}}, "spec.dnsConfig.nameservers"},
		{"four servers", DNSClusterFirst, &PodDNSConfig{Nameservers: many(4, "10.0.0.1")}, "spec.dnsConfig.nameservers"},
		{"server not an IP", DNSClusterFirst, &PodDNSConfig{Nameservers: []string{"dns.example.com"}}, "spec.dnsConfig.nameservers[0]"},
		{"33 searches", DNSClusterFirst, &PodDNSConfig{Searches: many(33, "a.example")}, "spec.dnsConfig.searches"},
		{"bad search", DNSClusterFirst, &PodDNSConfig{Searches: []string{"Not_A_Domain"}}, "spec.dnsConfig.searches[0]"},
		{"4 KB search", DNSClusterFirst, &PodDNSConfig{Searches: []string{strings.Repeat("a", 4096)}}, "spec.dnsConfig.searches[0]"},
		{"searches too long in all", DNSClusterFirst, &PodDNSConfig{Searches: many(30, strings.Repeat("a", 63)+"."+strings.Repeat("b", 63))}, "spec.dnsConfig.searches"},
		{"option without name", DNSClusterFirst, &PodDNSConfig{Options: []PodDNSConfigOption{{Value: s("1")}}}, "spec.dnsConfig.options[0].name"},
		{"option injecting a line", DNSClusterFirst, &PodDNSConfig{Options: []PodDNSConfigOption{{Name: "ndots", Value: s("1\nnameserver 6.6.6.6")}}}, "spec.dnsConfig.options[0].value"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := validPod()
			p.Spec.DNSPolicy, p.Spec.DNSConfig = tc.policy, tc.cfg
			err := Validate(p)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want+":") {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
