package containerd

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/kybernetes/kybernetes/runtimes"
)

// TestSandboxResolvConf: a sandbox's resolv.conf is the DNS configuration
// the node passed, in both network modes, not a copy of the node's file.
func TestSandboxResolvConf(t *testing.T) {
	r, _ := newTestRuntime(t)
	dns := &runtimes.DNSConfig{
		Servers:  []string{"10.43.0.10"},
		Searches: []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"},
		Options:  []string{"ndots:5"},
	}
	want := "search default.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.43.0.10\noptions ndots:5\n"
	for _, hostNet := range []bool{false, true} {
		name := "dns"
		if hostNet {
			name = "dns-hostnet"
		}
		t.Run(name, func(t *testing.T) {
			sb, err := r.CreateSandbox(context.Background(), &runtimes.SandboxConfig{Namespace: "test", Name: name, UID: "uid-" + name, HostNetwork: hostNet, DNS: dns})
			if err != nil {
				t.Fatalf("CreateSandbox: %v", err)
			}
			t.Cleanup(func() { r.RemoveSandbox(context.Background(), sb.ID) })
			b, err := os.ReadFile(filepath.Join(r.sandboxDir(sb.ID), "resolv.conf"))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != want {
				t.Fatalf("resolv.conf:\n%s\nwant:\n%s", b, want)
			}
		})
	}
}
