package apiserver_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/apiserver"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/containerd"
	"github.com/kybernetes/kybernetes/runtimes/containerd/containerdtest"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// containerExecEnv is an apiserver behind real accounts with the agent n1
// running containers on the containerd at $KYB_CONTAINERD_ADDRESS (skipped
// without one, failed with CI=true), and a running pod "sh" of the shell
// test image serving HTTP on 8080. It returns the admin's client and the
// pod.
func containerExecEnv(b testing.TB) (*client.Client, *api.Pod) {
	rt := containerdtest.Runtime(b, containerd.Config{
		Namespace: containerdtest.Namespace("kyb-exec-bench"), StateDir: b.TempDir(), IPAMDir: b.TempDir(),
		NetworkName: "kybexec", BridgeName: "kybexec0", PodCIDR: "10.127.0.0/24", LogDriver: "file",
	}, nil)
	ref := runtimetest.ShellImage(b)
	s := testutil.StartNATSConfig(b, execAccountsConfig)
	e := newEnvOn(b, s, apiserver.Config{})
	agent, err := node.New(node.Config{Name: "n1", DataDir: b.TempDir(), PodCIDR: "10.127.0.0/24", HeartbeatInterval: 200 * time.Millisecond, StatusFlushInterval: 20 * time.Millisecond},
		testutil.Connect(b, s, nats.UserInfo("system:node:n1", "n1")), map[string]runtimes.Runtime{api.RuntimeContainerd: rt}, logger(b))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		<-done
	})
	<-agent.Ready()
	e.apply(b, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: sh}
spec:
  containers:
  - name: app
    image: %s
    imagePullPolicy: IfNotPresent
    command: [/bin/sh, -c, serve 8080]
    ports: [{containerPort: 8080}]
`, ref))
	e.bind(b, "default", "sh", "n1")
	testutil.Eventually(b, 60*time.Second, func() error {
		p := e.pod(b, "default", "sh")
		if p.Status.Phase != api.PodRunning || p.Status.PodIP == "" {
			return fmt.Errorf("pod phase %q ip %q", p.Status.Phase, p.Status.PodIP)
		}
		return nil
	})
	admin := client.New(testutil.Connect(b, s, nats.UserInfo("admin", "admin")), client.WithTimeout(10*time.Second))
	return admin, e.pod(b, "default", "sh")
}

// BenchmarkExecRoundTrip: `kyb exec sh -- true` in a container, from the
// user's client through the apiserver and the agent to containerd and
// back (exit code), one after the other.
func BenchmarkExecRoundTrip(b *testing.B) {
	c, _ := containerExecEnv(b)
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		code, err := c.Exec(ctx, api.SessionExec, api.ExecRequest{Pod: "sh", Command: []string{"true"}}, client.ExecIO{})
		if err != nil || code != 0 {
			b.Fatalf("exec true: %d, %v", code, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/exec")
}

// BenchmarkPortForwardThroughput: 64 MiB from the pod's HTTP server
// through a port-forward session, against the same from the node
// straight to the pod's IP; reports both in MB/s and forward/direct.
func BenchmarkPortForwardThroughput(b *testing.B) {
	c, pod := containerExecEnv(b)
	const n = 64 << 20
	req := fmt.Sprintf("GET /bytes?n=%d HTTP/1.0\r\nHost: x\r\n\r\n", n)
	ctx := context.Background()
	var fwd, direct time.Duration
	b.SetBytes(n)
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		cw := &countWriter{}
		code, err := c.Exec(ctx, api.SessionPortForward, api.ExecRequest{Pod: "sh", Port: 8080},
			client.ExecIO{Stdin: strings.NewReader(req), Stdout: cw})
		if err != nil || code != 0 || cw.n < n {
			b.Fatalf("port-forward: %d bytes, code %d, %v", cw.n, code, err)
		}
		fwd += time.Since(t0)

		t0 = time.Now()
		resp, err := http.Get("http://" + net.JoinHostPort(pod.Status.PodIP, "8080") + fmt.Sprintf("/bytes?n=%d", n))
		if err != nil {
			b.Fatal(err)
		}
		k, _ := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if k != n {
			b.Fatalf("direct: %d bytes", k)
		}
		direct += time.Since(t0)
	}
	mbps := func(d time.Duration) float64 { return float64(n) * float64(b.N) / d.Seconds() / 1e6 }
	b.ReportMetric(mbps(fwd), "fwd-MB/s")
	b.ReportMetric(mbps(direct), "direct-MB/s")
	b.ReportMetric(mbps(fwd)/mbps(direct), "fwd/direct")
}

type countWriter struct{ n int }

func (w *countWriter) Write(p []byte) (int, error) { w.n += len(p); return len(p), nil }
