package containerd

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/kybernetes/kybernetes/runtimes"
)

func TestPlainHTTPHosts(t *testing.T) {
	r := &Runtime{cfg: Config{InsecureRegistries: []string{"registry.lan:5000", "10.0.0.5"}}}
	tests := []struct {
		host  string
		plain bool
	}{
		{"localhost:5000", true},
		{"127.0.0.1:40000", true},
		{"registry.lan:5000", true},
		{"REGISTRY.lan:5000", true},
		{"10.0.0.5", true},
		{"registry.lan", false},
		{"docker.io", false},
	}
	for _, tc := range tests {
		t.Run(tc.host, func(t *testing.T) {
			if got, _ := r.plainHTTP(tc.host); got != tc.plain {
				t.Fatalf("plainHTTP(%q) = %v, want %v", tc.host, got, tc.plain)
			}
		})
	}
}

func TestCPUShares(t *testing.T) {
	for _, tc := range []struct {
		milli int64
		want  uint64
	}{{1, 2}, {100, 102}, {500, 512}, {1000, 1024}, {2500, 2560}} {
		if got := cpuShares(tc.milli); got != tc.want {
			t.Errorf("cpuShares(%d) = %d, want %d", tc.milli, got, tc.want)
		}
	}
}

func TestConflistUsesPodCIDR(t *testing.T) {
	n := newNetwork(Config{NetworkName: "kyb", BridgeName: "kyb0", IPAMDir: "/x"}.withDefaults(), nil)
	b, err := n.conflist("10.244.3.0/24")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"bridge": "kyb0"`, `"subnet": "10.244.3.0/24"`, `"type": "portmap"`, `"dataDir": "/x"`, `"ipMasq": true`} {
		if !contains(string(b), want) {
			t.Errorf("conflist lacks %s:\n%s", want, b)
		}
	}
	if err := n.setCIDR("not-a-cidr"); err == nil {
		t.Error("setCIDR accepted a bad CIDR")
	}
	if err := n.setCIDR("fd00::/64"); err == nil {
		t.Error("setCIDR accepted an IPv6 range")
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestSandboxErrors(t *testing.T) {
	r, e := newTestRuntime(t)
	ctx := context.Background()
	// A runtime without a pod CIDR cannot wire pods yet.
	cfg := testConfig(e)
	cfg.PodCIDR = ""
	cfg.StateDir = t.TempDir()
	bare, err := New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	_, err = bare.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "n", Name: "no-cidr"})
	if runtimes.ReasonOf(err, "") != "NetworkNotReady" {
		t.Fatalf("CreateSandbox without a pod CIDR = %v, want reason NetworkNotReady", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(cfg.StateDir, "netns")); len(ents) != 0 {
		t.Fatalf("failed CreateSandbox left network namespaces: %v", ents)
	}

	before := countLeaks(t, r)
	for _, tc := range []struct {
		name string
		cfg  runtimes.SandboxConfig
	}{
		{"no name", runtimes.SandboxConfig{Namespace: "n"}},
		{"no namespace", runtimes.SandboxConfig{Name: "x"}},
		{"bad port", runtimes.SandboxConfig{Namespace: "n", Name: "x", Ports: []runtimes.PortMapping{{ContainerPort: 0, HostPort: 80}}}},
		{"bad CIDR", runtimes.SandboxConfig{Namespace: "n", Name: "x", PodCIDR: "10.0.0.0/99"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg
			if _, err := r.CreateSandbox(ctx, &c); err == nil {
				t.Fatal("CreateSandbox succeeded")
			}
			if after := countLeaks(t, r); after != before {
				t.Fatalf("leaked: before %+v after %+v", before, after)
			}
		})
	}
	if err := r.RemoveSandbox(ctx, "no-such-sandbox"); err != nil {
		t.Fatalf("RemoveSandbox of an unknown id = %v, want nil", err)
	}
	if _, err := r.CreateContainer(ctx, "../etc", &runtimes.ContainerConfig{Name: "c", Image: e.image}); !errors.Is(err, runtimes.ErrNotFound) {
		t.Fatalf("CreateContainer in a path-like sandbox id = %v, want ErrNotFound", err)
	}
	// The sandbox IP lies in the pod CIDR.
	sb := newSandbox(t, r, "in-cidr")
	if !netip.MustParsePrefix(testCIDR).Contains(netip.MustParseAddr(sb.IP)) {
		t.Fatalf("sandbox IP %s outside %s", sb.IP, testCIDR)
	}
}

func TestResolveLogDriver(t *testing.T) {
	e := requireEnv(t)
	tests := []struct {
		name, configured, want string
	}{
		{"a binary that calls LogDriverMain", e.logDriver, e.logDriver},
		{"file logging asked for", "file", "file"},
		{"a binary that is no log driver", "/bin/true", "file"},
		{"a missing binary", "/nonexistent/kyb", "file"},
		{"the running Go test binary", "", "file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := resolveLogDriver(context.Background(), tc.configured, testLogger(t)); got != tc.want {
				t.Fatalf("resolveLogDriver(%q) = %q, want %q", tc.configured, got, tc.want)
			}
		})
	}
}

// TestSandboxWhoseNetNSIsGone plays a node reboot: the namespace's bind
// mount is gone. The sandbox lists as not ready and removal still releases
// its IP, host port rules and files.
func TestSandboxWhoseNetNSIsGone(t *testing.T) {
	r, _ := newTestRuntime(t)
	ctx := context.Background()
	before := countLeaks(t, r)
	sb, err := r.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "n", Name: "rebooted",
		Ports: []runtimes.PortMapping{{ContainerPort: 80, HostPort: freePort(t)}}})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := r.readSandbox(sb.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Unmount(rec.NetNS, unix.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	list, err := r.ListSandboxes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(list, func(s *runtimes.Sandbox) bool { return s.ID == sb.ID })
	if i < 0 || list[i].State != runtimes.SandboxNotReady {
		t.Fatalf("ListSandboxes = %+v, want %s not ready", list, sb.ID)
	}
	if err := r.RemoveSandbox(ctx, sb.ID); err != nil {
		t.Fatalf("RemoveSandbox: %v", err)
	}
	// The bridge plugin cannot find the masquerade rules of a vanished
	// interface; after a real reboot they are gone with the namespace.
	// Remove them as a reboot would.
	t.Cleanup(func() { deleteNATRulesOf(t, sb.ID) })
	after := countLeaks(t, r)
	after.NATRules, before.NATRules = 0, 0
	if after != before {
		t.Fatalf("leaked: before %+v after %+v", before, after)
	}
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "dnat name: \\\"kybtest\\\" id: \\\""+sb.ID) {
		t.Fatalf("host port rules of %s remain:\n%s", sb.ID, out)
	}
}

// deleteNATRulesOf deletes the nat rules and chains whose comment names the
// sandbox.
func deleteNATRulesOf(t *testing.T, id string) {
	out, err := exec.Command("iptables-save", "-t", "nat").Output()
	if err != nil {
		t.Error(err)
		return
	}
	var chains []string
	for _, line := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, id) {
			continue
		}
		f := strings.Fields(line)
		// -A CHAIN [-s SRC] ... -j TARGET: delete by the rule's match spec,
		// which these rules make unique with their comment.
		if f[len(f)-2] == "-j" && strings.HasPrefix(f[len(f)-1], "CNI-") {
			chains = append(chains, f[len(f)-1])
		}
		args := []string{"-t", "nat", "-D"}
		args = append(args, splitRule(line[3:])...)
		if out, err := exec.Command("iptables", args...).CombinedOutput(); err != nil {
			t.Errorf("iptables %v: %v: %s", args, err, out)
		}
	}
	for _, c := range chains {
		exec.Command("iptables", "-t", "nat", "-X", c).Run()
	}
}

// splitRule splits an iptables-save rule into arguments, honouring the
// double quotes (with \" escapes) of comments.
func splitRule(s string) []string {
	var args []string
	var cur strings.Builder
	inQuote, have := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' && inQuote && i+1 < len(s) && s[i+1] == '"':
			cur.WriteByte('"')
			i++
		case c == '"':
			inQuote, have = !inQuote, true
		case c == ' ' && !inQuote:
			if have {
				args = append(args, cur.String())
				cur.Reset()
				have = false
			}
		default:
			cur.WriteByte(c)
			have = true
		}
	}
	if have {
		args = append(args, cur.String())
	}
	return args
}
