package containerd

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

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
