package containerd

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os/exec"
	"strings"
)

// clearStaleBridgeAddrs removes from the Linux bridge name every IPv4
// address that is not gateway: the addresses a bridge keeps from an
// earlier pod CIDR (the node joined another cluster, or the cluster's
// --cluster-cidr changed). CNI's bridge plugin refuses to attach any pod
// to a bridge that has an address other than the gateway it would set
// ("already has an IP address different from"), the error Kubernetes
// users clear by hand with `ip link delete cni0`. A pod still attached
// under the old range cannot reach anything through the new gateway
// anyway. A missing bridge is left to the plugin, which creates it.
func clearStaleBridgeAddrs(name string, gateway netip.Prefix, log *slog.Logger) error {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return nil // not there yet
	}
	addrs, err := ifc.Addrs()
	if err != nil {
		return fmt.Errorf("addresses of bridge %s: %w", name, err)
	}
	for _, a := range addrs {
		ipn, ok := a.(*net.IPNet)
		if !ok || ipn.IP.To4() == nil {
			continue
		}
		ones, _ := ipn.Mask.Size()
		addr, _ := netip.AddrFromSlice(ipn.IP.To4())
		p := netip.PrefixFrom(addr, ones)
		if p == gateway {
			continue
		}
		out, err := exec.Command("ip", "addr", "del", p.String(), "dev", name).CombinedOutput()
		if err != nil {
			return fmt.Errorf("remove %s (from an earlier pod CIDR) from bridge %s: %v: %s", p, name, err, strings.TrimSpace(string(out)))
		}
		log.Warn("removed an earlier pod CIDR's gateway from the pod bridge", "bridge", name, "address", p, "gateway", gateway)
	}
	return nil
}

// gatewayOf is the address CNI's bridge plugin gives the bridge for a pod
// CIDR: its first address, with the CIDR's length.
func gatewayOf(cidr netip.Prefix) netip.Prefix {
	return netip.PrefixFrom(cidr.Masked().Addr().Next(), cidr.Bits())
}
