package e2e

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/cmd/kyb/internal/cli"
	"github.com/kybernetes/kybernetes/control/controlplane"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/node"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// cluster is a running control plane for one test.
type cluster struct {
	t   testing.TB
	cfg controlplane.Config
	cp  *controlplane.ControlPlane
	url string
	c   *client.Client
	nc  *nats.Conn
	// config is a kyb config file with the admin's credentials, for the CLI.
	config string
	// statsInterval, when set, is the agents' usage sampling interval.
	statsInterval time.Duration
}

// writeAdminConfig writes the admin's credentials and a kyb config naming
// them, as `kyb up` does, and returns the config's path.
func writeAdminConfig(t testing.TB, cp *controlplane.ControlPlane) string {
	t.Helper()
	dir := t.TempDir()
	creds, err := cp.Authority().AdminCreds()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "admin.creds"), creds, 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "config")
	if err := client.WriteConfig(path, "", client.Config{Server: cp.ClientURL(), Creds: "admin.creds"}); err != nil {
		t.Fatal(err)
	}
	return path
}

func testLog(t testing.TB) *slog.Logger {
	if os.Getenv("KYB_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug})).With("test", t.Name())
	}
	return slog.New(slog.DiscardHandler)
}

func startCluster(t testing.TB) *cluster {
	t.Helper()
	cfg := controlplane.Config{
		DataDir:      t.TempDir(),
		Listen:       "127.0.0.1:0",
		Sync:         syncMode(),
		HeartbeatTTL: 2 * time.Second,
	}
	cfg.NodeLifecycle.Grace = 3 * time.Second
	cfg.Job.BackoffBase = 100 * time.Millisecond // Kubernetes' 10s would make failing Jobs slow
	cp, err := controlplane.Start(context.Background(), cfg, testLog(t))
	if err != nil {
		t.Fatalf("start control plane: %v", err)
	}
	c := &cluster{t: t, cfg: cfg, cp: cp, url: cp.ClientURL()}
	c.config = writeAdminConfig(t, cp)
	t.Cleanup(func() { c.cp.Shutdown() })
	admin, err := cp.Authority().AdminCreds()
	if err != nil {
		t.Fatal(err)
	}
	credsOpt, err := client.CredsOption(admin)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(cp.ClientURL(), credsOpt, nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	c.c, c.nc = client.New(nc), nc
	return c
}

// restart stops the control plane (the embedded NATS server with it) and
// starts it again on the same data and address, as after a crash or an
// upgrade; clients and agents reconnect by themselves.
func (c *cluster) restart() {
	c.t.Helper()
	if err := c.cp.Shutdown(); err != nil {
		c.t.Fatalf("stop control plane: %v", err)
	}
	cfg := c.cfg
	cfg.Listen = strings.TrimPrefix(c.url, "nats://")
	cp, err := controlplane.Start(context.Background(), cfg, testLog(c.t))
	if err != nil {
		c.t.Fatalf("restart control plane: %v", err)
	}
	c.cp = cp
}

// syncMode is the control plane's durability for tests and benchmarks:
// "always" unless KYB_BENCH_SYNC says otherwise (e.g. 1s), so benchmarks
// can report both modes.
func syncMode() string {
	if v := os.Getenv("KYB_BENCH_SYNC"); v != "" {
		return v
	}
	return "always"
}

// agent is a node agent run by a test.
type agent struct {
	name   string
	dir    string
	cancel context.CancelFunc
	done   chan struct{} // closed when Run returned
	rts    map[string]runtimes.Runtime
}

// stop stops the agent (its pods keep whatever the runtime does with them).
func (a *agent) stop(t testing.TB) {
	t.Helper()
	a.cancel()
	select {
	case <-a.done:
	case <-time.After(30 * time.Second):
		t.Fatalf("agent %s did not stop within 30s", a.name)
	}
}

var testAgentConfig = node.Config{
	HeartbeatInterval: 300 * time.Millisecond,
	StatusInterval:    time.Second,
	BackoffBase:       300 * time.Millisecond,
	BackoffMax:        3 * time.Second,
	BackoffReset:      time.Minute,
	LogPollInterval:   50 * time.Millisecond,
}

// startAgent runs an agent named name with the given runtimes; dir is its
// data dir ("" for a new one), so a test can restart an agent on the same state.
func (c *cluster) startAgent(name, dir string, labels map[string]string, rts map[string]runtimes.Runtime) *agent {
	c.t.Helper()
	return c.startAgentWith(name, dir, labels, rts, nil)
}

// startAgentWith is startAgent with tune applied to the agent's config.
func (c *cluster) startAgentWith(name, dir string, labels map[string]string, rts map[string]runtimes.Runtime, tune func(*node.Config)) *agent {
	t := c.t
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	nc := c.connectNode(name, dir)
	cfg := testAgentConfig
	cfg.Name = name
	cfg.DataDir = dir
	cfg.Labels = labels
	if tune != nil {
		tune(&cfg)
	}
	if c.statsInterval != 0 {
		cfg.StatsInterval = c.statsInterval
	}
	a, err := node.New(cfg, nc, rts, testLog(t).With("node", name))
	if err != nil {
		t.Fatalf("new agent %s: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ag := &agent{name: name, dir: dir, cancel: cancel, done: make(chan struct{}), rts: rts}
	go func() {
		defer close(ag.done)
		if err := a.Run(ctx); err != nil && ctx.Err() == nil {
			t.Errorf("agent %s: %v", name, err)
		}
		nc.Close()
	}()
	t.Cleanup(func() { cancel(); <-ag.done })
	testutil.Eventually(t, 20*time.Second, func() error {
		n, err := c.node(name)
		if err != nil {
			return err
		}
		if !n.IsReady() {
			return fmt.Errorf("node %s not ready", name)
		}
		return nil
	})
	return ag
}

// wasmRuntime returns a real wasm runtime with state in dir for node name,
// fetching kyb:// modules through that node's API as an agent does.
func (c *cluster) wasmRuntime(name, dir string) *wasm.Runtime {
	t := c.t
	t.Helper()
	nc := c.connectNode(name, dir)
	t.Cleanup(nc.Close)
	rt, err := wasm.New(wasm.Config{
		StateDir: filepath.Join(dir, "wasm"),
		CacheDir: wasmCacheDir(),
		Modules:  node.NewModules(nc, name, 0),
		HTTP:     wasm.HTTPConfig{DefaultHostIP: "127.0.0.1"},
	}, testLog(t).With("runtime", "wasm"))
	if err != nil {
		t.Fatalf("wasm runtime: %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// wasmCacheDir is the compilation cache shared with runtimes/wasm's tests
// (and later runs), so that each Go module compiles once.
func wasmCacheDir() string { return filepath.Join(os.TempDir(), "kyb-wasm-test-cache") }

// precompiled compiles the module at path into the shared cache once, out
// of the race detector's reach (see runtimetest.PrecompileWasm).
func precompiled(t testing.TB, path string) string {
	t.Helper()
	return runtimetest.PrecompileWasm(t, path, wasmCacheDir())
}

// kyb runs a kyb command in process against the cluster and returns its
// stdout; a failing command fails the test.
func (c *cluster) kyb(args ...string) string {
	c.t.Helper()
	out, errOut, err := c.kybErr(args...)
	if err != nil {
		c.t.Fatalf("kyb %s: %v\nstderr: %s", strings.Join(args, " "), err, errOut)
	}
	return out
}

// kybErr runs a kyb command and returns stdout, stderr and its error.
func (c *cluster) kybErr(args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	err := cli.Run(ctx, append([]string{"--server", c.url, "--config", c.config}, args...), cli.Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return out.String(), errOut.String(), err
}

// apply applies a manifest given as text.
func (c *cluster) apply(manifest string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.c.Apply(ctx, []byte(manifest)); err != nil {
		c.t.Fatalf("apply: %v\n%s", err, manifest)
	}
}

func (c *cluster) pod(name string) (*api.Pod, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o, err := c.c.Get(ctx, "Pod", "default", name)
	if err != nil {
		return nil, err
	}
	return o.(*api.Pod), nil
}

func (c *cluster) node(name string) (*api.Node, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	o, err := c.c.Get(ctx, "Node", "", name)
	if err != nil {
		return nil, err
	}
	return o.(*api.Node), nil
}

// waitPod polls until cond accepts the pod.
func (c *cluster) waitPod(name string, timeout time.Duration, cond func(p *api.Pod) error) *api.Pod {
	c.t.Helper()
	var last *api.Pod
	testutil.Eventually(c.t, timeout, func() error {
		p, err := c.pod(name)
		if err != nil {
			return err
		}
		last = p
		return cond(p)
	})
	return last
}

func phaseIs(want api.PodPhase) func(p *api.Pod) error {
	return func(p *api.Pod) error {
		if p.Status.Phase != want {
			return fmt.Errorf("pod %s phase %q (%s), want %q", p.Name, p.Status.Phase, statusText(p), want)
		}
		return nil
	}
}

func statusText(p *api.Pod) string {
	var parts []string
	for _, c := range p.Status.Conditions {
		if c.Status != api.ConditionTrue {
			parts = append(parts, fmt.Sprintf("%s=%s %s %s", c.Type, c.Status, c.Reason, c.Message))
		}
	}
	for _, cs := range p.Status.ContainerStatuses {
		switch {
		case cs.State.Waiting != nil:
			parts = append(parts, fmt.Sprintf("%s waiting %s: %s", cs.Name, cs.State.Waiting.Reason, cs.State.Waiting.Message))
		case cs.State.Terminated != nil:
			parts = append(parts, fmt.Sprintf("%s terminated %s (%d): %s", cs.Name, cs.State.Terminated.Reason, cs.State.Terminated.ExitCode, cs.State.Terminated.Message))
		case cs.State.Running != nil:
			parts = append(parts, cs.Name+" running")
		}
	}
	return strings.Join(parts, "; ")
}

// wasmPod is a wasm pod manifest for the conformance test program with args.
func wasmPod(name, image, restart string, args ...string) string {
	return podManifest(name, "  runtimeClassName: wasm\n", image, restart, 1, "", args...)
}

// podManifest is a one-container pod manifest: specExtra goes under spec,
// containerExtra under the container (both already indented).
func podManifest(name, specExtra, image, restart string, grace int, containerExtra string, args ...string) string {
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata:
  name: %s
spec:
%s  restartPolicy: %s
  terminationGracePeriodSeconds: %d
  containers:
  - name: main
    image: %s
    args: [%s]
%s`, name, specExtra, restart, grace, image, strings.Join(q, ", "), containerExtra)
}

// connectNode connects as node name the way an agent does: with the
// credentials kept in dir, or by joining with a new token first.
func (c *cluster) connectNode(name, dir string) *nats.Conn {
	t := c.t
	t.Helper()
	path := filepath.Join(dir, "node.creds")
	creds, err := os.ReadFile(path)
	if err != nil {
		tok, _, err := c.cp.Tokens().Create(context.Background(), time.Hour, "e2e")
		if err != nil {
			t.Fatalf("token for node %s: %v", name, err)
		}
		nc, err := client.Join(context.Background(), c.url, tok, name)
		if err != nil {
			t.Fatalf("join node %s: %v", name, err)
		}
		creds = nc.Creds
		if err := os.WriteFile(path, creds, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	credsOpt, err := client.CredsOption(creds)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(c.url, credsOpt, nats.CustomInboxPrefix(api.InboxPrefix(name)),
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond))
	if err != nil {
		t.Fatalf("connect node %s: %v", name, err)
	}
	return nc
}
