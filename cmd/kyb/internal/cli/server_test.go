package cli

import (
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/controlplane"
)

// TestServerFlagsAddressRanges: --cluster-cidr reaches the API server; a
// pod range that overlaps the service range, or is not IPv4, is refused
// naming the flag before anything starts.
func TestServerFlagsAddressRanges(t *testing.T) {
	base := func() serverFlags {
		return serverFlags{dataDir: t.TempDir(), listen: "127.0.0.1:0", sync: "always", tls: "auto",
			leaseDuration: controlplane.DefaultLeaseDuration, renew: controlplane.DefaultRenewInterval,
			serviceCIDR: api.DefaultServiceCIDR, nodePorts: api.DefaultNodePortRange, clusterCIDR: api.DefaultClusterCIDR}
	}
	f := base()
	f.clusterCIDR = "10.60.0.0/16"
	cfg, err := f.config()
	if err != nil || cfg.APIServer.ClusterCIDR != "10.60.0.0/16" {
		t.Fatalf("--cluster-cidr 10.60.0.0/16: %v, APIServer.ClusterCIDR %q", err, cfg.APIServer.ClusterCIDR)
	}
	for _, c := range []struct{ cluster, service, want string }{
		{"10.43.0.0/16", api.DefaultServiceCIDR, "overlaps"},
		{"10.0.0.0/8", api.DefaultServiceCIDR, "overlaps"},
		{"10.42.0.0/16", "10.42.128.0/20", "overlaps"},
		{"fd00::/48", api.DefaultServiceCIDR, "IPv4"},
		{"10.42.0.0", api.DefaultServiceCIDR, "IPv4"},
	} {
		f := base()
		f.clusterCIDR, f.serviceCIDR = c.cluster, c.service
		_, err := f.config()
		if err == nil || !strings.Contains(err.Error(), "--cluster-cidr") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("--cluster-cidr %s --service-cidr %s: %v; want an error naming --cluster-cidr and %q", c.cluster, c.service, err, c.want)
		}
	}
}
