package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// TestAgentClusterDNSFromServer runs `kyb server --service-cidr` of its own
// and agents as processes: an agent started without --cluster-dns takes the
// tenth address of the server's range (and, as root, serves the names of
// the cluster's Services on it), and one given an address outside the range refuses to
// start, naming both flags.
func TestAgentClusterDNSFromServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and agents as processes")
	}
	kyb := runtimetest.BuildGo(t, "./cmd/kyb", runtime.GOOS, runtime.GOARCH)
	dir := t.TempDir()
	// A range of this test's own: the agent binds the DNS IP on the node.
	x := os.Getpid()%200 + 20
	cidr := fmt.Sprintf("10.96.%d.0/24", x)
	dnsIP := fmt.Sprintf("10.96.%d.10", x)
	t.Cleanup(func() {
		_ = exec.Command("ip", "addr", "del", dnsIP+"/32", "dev", node.DNSInterface).Run()
		_ = exec.Command("ip", "addr", "del", dnsIP+"/32", "dev", "lo").Run()
	})
	natsPort := freePort(t)
	sdir := filepath.Join(dir, "server")
	server := startProc(t, kyb, filepath.Join(dir, "server.log"), "server", "--data-dir", sdir,
		"--listen", fmt.Sprintf("127.0.0.1:%d", natsPort), "--sync", "1s", "--http", "", "--metrics-listen", "off",
		"--cluster-cidr", "10.61.0.0/16", "--service-cidr", cidr)
	defer stopProc(t, server)
	cfgPath := filepath.Join(sdir, "kyb.config")
	var token string
	testutil.Eventually(t, 30*time.Second, func() error {
		out, err := exec.Command(kyb, "--config", cfgPath, "token", "create").CombinedOutput()
		if err != nil {
			return fmt.Errorf("kyb token create: %v: %s", err, out)
		}
		token = strings.TrimSpace(string(out))
		return nil
	})
	agentArgs := func(name string, extra ...string) []string {
		return append([]string{"agent", "--server", fmt.Sprintf("nats://127.0.0.1:%d", natsPort), "--token", token,
			"--name", name, "--data-dir", name, "--containerd", "off", "--wasm-host", "inproc",
			"--service-proxy=false", "--metrics-listen", "off"}, extra...)
	}

	// Outside the server's range: refused at start, naming both flags.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	bad := exec.CommandContext(ctx, kyb, agentArgs("dns-bad", "--cluster-dns", "10.43.0.10")...)
	bad.Dir = dir
	bad.Env = append(os.Environ(), "HOME="+dir, "KYB_CONFIG="+filepath.Join(dir, "no-config"))
	out, err := bad.CombinedOutput()
	if err == nil || ctx.Err() != nil {
		t.Fatalf("agent with --cluster-dns outside %s: %v (ctx %v); want a refusal\n%s", cidr, err, ctx.Err(), out)
	}
	for _, want := range []string{"--cluster-dns 10.43.0.10", "--service-cidr", cidr, dnsIP} {
		if !strings.Contains(string(out), want) {
			t.Fatalf("the refusal does not name %q:\n%s", want, out)
		}
	}

	// Without --cluster-dns: the server's.
	agent := startProc(t, kyb, filepath.Join(dir, "agent.log"), agentArgs("dns-auto")...)
	defer stopProc(t, agent)
	kept := filepath.Join(dir, "dns-auto", "agent", node.ClusterFile)
	testutil.Eventually(t, 30*time.Second, func() error {
		b, err := os.ReadFile(kept)
		if err != nil {
			return err
		}
		var cc api.NodeClusterConfig
		if err := json.Unmarshal(b, &cc); err != nil {
			return err
		}
		if cc.ServiceCIDR != cidr || cc.ClusterDNS != dnsIP {
			return fmt.Errorf("kept cluster configuration %+v; want %s, %s", cc, cidr, dnsIP)
		}
		return nil
	})
	if os.Geteuid() != 0 {
		t.Log("not root: the agent cannot bind the DNS IP; the answer of its DNS server is not checked")
		return
	}
	// A Service of the cluster, named by the agent's DNS server.
	svc := filepath.Join(dir, "svc.yaml")
	if err := os.WriteFile(svc, []byte("apiVersion: v1\nkind: Service\nmetadata: {name: web, namespace: default}\nspec: {selector: {app: web}, ports: [{port: 80}]}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(kyb, "--config", cfgPath, "apply", "-f", svc).CombinedOutput(); err != nil {
		t.Fatalf("kyb apply service: %v\n%s", err, out)
	}
	out, err = exec.Command(kyb, "--config", cfgPath, "get", "service", "web", "-o", "json").CombinedOutput()
	if err != nil {
		t.Fatalf("kyb get service: %v\n%s", err, out)
	}
	var web api.Service
	if err := json.Unmarshal(out, &web); err != nil {
		t.Fatalf("decode the service: %v\n%s", err, out)
	}
	if _, n, _ := net.ParseCIDR(cidr); !n.Contains(net.ParseIP(web.Spec.ClusterIP)) {
		t.Fatalf("service cluster IP %q not in %s", web.Spec.ClusterIP, cidr)
	}
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, net.JoinHostPort(dnsIP, "53"))
	}}
	testutil.Eventually(t, 30*time.Second, func() error {
		qctx, qcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer qcancel()
		addrs, err := r.LookupHost(qctx, "web.default.svc.cluster.local.")
		if err != nil {
			return err
		}
		if len(addrs) != 1 || addrs[0] != web.Spec.ClusterIP {
			return fmt.Errorf("web.default.svc.cluster.local = %v; want %s", addrs, web.Spec.ClusterIP)
		}
		return nil
	})
}
