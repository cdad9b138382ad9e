package runtimes

import (
	"bufio"
	"bytes"
	"strings"
)

// DNSConfig is a pod's resolver configuration, as the node computed it from
// the pod's dnsPolicy and dnsConfig (CRI's DNSConfig): the runtime writes it
// as the pod's /etc/resolv.conf.
type DNSConfig struct {
	// Servers are nameserver IP addresses, in order.
	Servers []string
	// Searches are the search domains, in order.
	Searches []string
	// Options are resolver options, "name" or "name:value" (ndots:5).
	Options []string
}

// ResolvConf renders c in resolv.conf(5) form. Values are written as they
// are: the node validated them (no spaces or newlines).
func (c *DNSConfig) ResolvConf() []byte {
	var b bytes.Buffer
	if len(c.Searches) > 0 {
		b.WriteString("search " + strings.Join(c.Searches, " ") + "\n")
	}
	for _, s := range c.Servers {
		b.WriteString("nameserver " + s + "\n")
	}
	if len(c.Options) > 0 {
		b.WriteString("options " + strings.Join(c.Options, " ") + "\n")
	}
	return b.Bytes()
}

// ParseResolvConf reads the nameservers, search domains and options of a
// resolv.conf(5) file; comments and other lines are skipped. A later
// "search" or "domain" line replaces an earlier one, as glibc reads them.
func ParseResolvConf(data []byte) *DNSConfig {
	c := &DNSConfig{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := sc.Text()
		if i := strings.IndexAny(line, "#;"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "nameserver":
			c.Servers = append(c.Servers, f[1])
		case "search", "domain":
			c.Searches = append([]string(nil), f[1:]...)
		case "options":
			c.Options = append(c.Options, f[1:]...)
		}
	}
	return c
}
