package containerd

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"testing"
)

// TestClearStaleBridgeAddrs: a bridge left with an earlier pod CIDR's
// gateway loses it (CNI's bridge plugin would refuse every pod), keeps the
// current gateway, and a missing bridge is no error.
func TestClearStaleBridgeAddrs(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to make a bridge")
	}
	const br = "kybstale0"
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	_ = exec.Command("ip", "link", "del", br).Run()
	run("link", "add", br, "type", "bridge")
	t.Cleanup(func() { _ = exec.Command("ip", "link", "del", br).Run() })
	run("addr", "add", "10.61.0.1/24", "dev", br)
	run("addr", "add", "10.62.0.1/24", "dev", br)

	gw := gatewayOf(netip.MustParsePrefix("10.62.0.0/24"))
	if gw.String() != "10.62.0.1/24" {
		t.Fatalf("gatewayOf(10.62.0.0/24) = %s", gw)
	}
	if err := clearStaleBridgeAddrs(br, gw, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	ifc, err := net.InterfaceByName(br)
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := ifc.Addrs()
	var v4 []string
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
			v4 = append(v4, ipn.String())
		}
	}
	if len(v4) != 1 || v4[0] != "10.62.0.1/24" {
		t.Errorf("bridge addresses after clearing: %v; want only the gateway 10.62.0.1/24", v4)
	}
	if err := clearStaleBridgeAddrs("kybnosuch0", gw, testLogger(t)); err != nil {
		t.Errorf("a missing bridge: %v", err)
	}
}
