package api

import (
	"net/netip"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// Limits of a pod's DNS configuration, as Kubernetes' (and glibc's).
const (
	// MaxDNSNameservers is how many nameservers a resolv.conf may name.
	MaxDNSNameservers = 3
	// MaxDNSSearches is how many search domains a pod may have.
	MaxDNSSearches = 32
	// MaxDNSSearchChars is the most characters of the search line.
	MaxDNSSearchChars = 2048
)

// validatePodDNS checks dnsPolicy and dnsConfig as Kubernetes does: a
// known policy, None only with nameservers, at most 3 nameservers (IP
// addresses), 32 search domains (DNS-1123 subdomains, a trailing dot
// allowed) of 2048 characters in all, and options with names.
func validatePodDNS(e *errs, s *PodSpec, p *field.Path) {
	switch s.DNSPolicy {
	case "", DNSClusterFirst, DNSClusterFirstWithHostNet, DNSDefault, DNSNone:
	default:
		e.unsupported(p.Child("dnsPolicy"), string(s.DNSPolicy), string(DNSClusterFirst), string(DNSClusterFirstWithHostNet), string(DNSDefault), string(DNSNone))
	}
	c := s.DNSConfig
	cp := p.Child("dnsConfig")
	if s.DNSPolicy == DNSNone && (c == nil || len(c.Nameservers) == 0) {
		e.add(cp.Child("nameservers"), "required: at least one nameserver when dnsPolicy is None")
	}
	if c == nil {
		return
	}
	if len(c.Nameservers) > MaxDNSNameservers {
		e.add(cp.Child("nameservers"), "too many: %d, must have at most %d", len(c.Nameservers), MaxDNSNameservers)
	}
	for i, ns := range c.Nameservers {
		if _, err := netip.ParseAddr(ns); err != nil {
			e.add(cp.Child("nameservers").Index(i), "must be a valid IP address, not %q", clip(ns))
		}
	}
	if len(c.Searches) > MaxDNSSearches {
		e.add(cp.Child("searches"), "too many: %d, must have at most %d", len(c.Searches), MaxDNSSearches)
	}
	chars := 0
	for i, d := range c.Searches {
		chars += len(d) + 1
		if len(d) > validation.DNS1123SubdomainMaxLength+1 {
			e.add(cp.Child("searches").Index(i), "must be no more than %d characters", validation.DNS1123SubdomainMaxLength)
			continue
		}
		e.addAll(cp.Child("searches").Index(i), validation.IsDNS1123Subdomain(strings.TrimSuffix(d, ".")))
	}
	if chars > MaxDNSSearchChars {
		e.add(cp.Child("searches"), "must be no more than %d characters in all", MaxDNSSearchChars)
	}
	for i, o := range c.Options {
		op := cp.Child("options").Index(i)
		if o.Name == "" {
			e.required(op.Child("name"))
		} else if len(o.Name) > 253 || strings.ContainsAny(o.Name, " \t\n:") {
			e.add(op.Child("name"), "must be a resolver option name (no spaces or colons)")
		}
		if o.Value != nil && (len(*o.Value) > 253 || strings.ContainsAny(*o.Value, " \t\n")) {
			e.add(op.Child("value"), "must hold no spaces")
		}
	}
}

// clip shortens a bad value quoted in a message.
func clip(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}
