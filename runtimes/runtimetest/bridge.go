package runtimetest

import (
	"os"
	"os/exec"
	"testing"
)

// FreshBridge deletes the Linux bridge name, if it exists, before a test
// builds a containerd network on it, and again when the test ends. A test
// run that was killed leaves its pods' network namespaces behind still
// plugged into the bridge; the next run's fresh IPAM hands out the same
// addresses, and the stale namespace answers ARP for them (connection
// refused from a pod that does not exist). Deleting the bridge unplugs
// every stale veth. No-op when not root.
func FreshBridge(t testing.TB, name string) {
	t.Helper()
	if os.Geteuid() != 0 {
		return
	}
	del := func() { _ = exec.Command("ip", "link", "del", name, "type", "bridge").Run() }
	del()
	t.Cleanup(del)
}
