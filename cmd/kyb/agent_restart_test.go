package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	cclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm/wasmhost"
)

const (
	restartWasmPods  = 20 // one of them serves HTTP on a hostPort
	restartCtrPods   = 5
	restartCycles    = 10
	restartNamespace = "kyb-restart-test" // containerd namespace of the agent under test
	restartTicks     = 15                 // lines a wasm pod prints, 400 ms apart
)

// TestAgentKill9KeepsPods runs a control plane and an agent as processes
// of the built kyb binary, with 20 wasm pods and (when containerd answers;
// always in CI) 5 container pods, kills the agent with SIGKILL 10 times and
// restarts it: every pod keeps running with the same container, restart
// counts do not move, the wasm host and containerd each hold exactly one
// running instance per pod, and a WAGI hostPort answers throughout. After
// the pods are deleted, neither holds anything of them.
func TestAgentKill9KeepsPods(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a control plane and an agent as processes")
	}
	kyb := runtimetest.BuildGo(t, "./cmd/kyb", runtime.GOOS, runtime.GOARCH)
	prog := runtimetest.BuildTestProg(t, "wasip1", "wasm")
	cgi := runtimetest.BuildGo(t, "./runtimes/wasm/testdata/cgi", "wasip1", "wasm")
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The control plane.
	natsPort := freePort(t)
	sdir := filepath.Join(dir, "server")
	server := startProc(t, kyb, filepath.Join(dir, "server.log"), "server", "--data-dir", sdir, "--listen", fmt.Sprintf("127.0.0.1:%d", natsPort), "--sync", "1s",
		"--http", "", "--metrics-listen", "off",
		// Pods on their own range: another package's agent may be using
		// 10.42.0.0/24 on its own bridge right now.
		"--cluster-cidr", "10.60.0.0/16")
	defer stopProc(t, server)
	cfgPath := filepath.Join(sdir, "kyb.config")
	var c *client.Client
	testutil.Eventually(t, 30*time.Second, func() error {
		cfg, err := client.LoadConfig(cfgPath)
		if err != nil {
			return err
		}
		opts, err := cfg.Options()
		if err != nil {
			return err
		}
		nc, err := nats.Connect(cfg.Server, opts...)
		if err != nil {
			return err
		}
		c = client.New(nc)
		return nil
	})
	defer c.Conn().Close()
	out, err := exec.Command(kyb, "--config", cfgPath, "token", "create").CombinedOutput()
	if err != nil {
		t.Fatalf("kyb token create: %v\n%s", err, out)
	}
	token := strings.TrimSpace(string(out))

	// Container pods when containerd answers.
	ctrd := os.Getenv("KYB_CONTAINERD_ADDRESS")
	if ctrd == "" {
		ctrd = "/run/containerd/containerd.sock"
	}
	var cc *cclient.Client
	ctrPods := 0
	if conn, err := net.DialTimeout("unix", ctrd, time.Second); err == nil && os.Geteuid() == 0 {
		conn.Close()
		if cc, err = cclient.New(ctrd, cclient.WithDefaultNamespace(restartNamespace)); err != nil {
			t.Fatalf("containerd client: %v", err)
		}
		defer cc.Close()
		ctrPods = restartCtrPods
	} else if os.Getenv("CI") == "true" {
		t.Fatalf("containerd is required in CI (%s): %v", ctrd, err)
	} else {
		t.Logf("no containerd at %s (or not root): wasm pods only", ctrd)
	}

	// The agent, with a relative --data-dir (its working directory is dir).
	adir := filepath.Join(dir, "agent")
	agentArgs := []string{"agent", "--server", fmt.Sprintf("nats://127.0.0.1:%d", natsPort), "--token", token, "--name", "n1",
		"--data-dir", "agent", "--module-dir", filepath.Dir(prog), "--module-dir", filepath.Dir(cgi), "--wasm-host-ip", "127.0.0.1",
		"--containerd-address", ctrd, "--containerd-namespace", restartNamespace,
		// The machine's nftables, DNS address and metrics port stay other tests'.
		"--service-proxy=false", "--cluster-dns", "", "--metrics-listen", "off"}
	if ctrPods == 0 {
		agentArgs = append(agentArgs, "--containerd", "off")
	}
	cycle := 0
	agentLog := func() string { return filepath.Join(dir, fmt.Sprintf("agent-%d.log", cycle)) }
	agent := startProc(t, kyb, agentLog(), agentArgs...)
	hostDir := filepath.Join(adir, "agent", "wasm-host")
	defer func() {
		stopProc(t, agent)
		sctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := wasmhost.StopHost(sctx, hostDir); err != nil {
			t.Errorf("stop the wasm host: %v", err)
		}
	}()

	// The pods.
	var manifests []string
	httpPort := freePort(t)
	for i := range restartWasmPods {
		// It prints a line every 400 ms for 6 s (while the agent is
		// killed and restarted), then sleeps.
		var ticks []string
		for j := range restartTicks {
			ticks = append(ticks, "out", fmt.Sprintf("tick-%d", j), "sleep", "400ms")
		}
		ctr := fmt.Sprintf("{name: main, image: 'file://%s', args: [%s, sleep, forever]}", prog, strings.Join(ticks, ", "))
		if i == 0 {
			ctr = fmt.Sprintf("{name: web, image: 'file://%s', ports: [{containerPort: 8080, hostPort: %d}]}", cgi, httpPort)
		}
		manifests = append(manifests, fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: w%d}\nspec:\n  runtimeClassName: wasm\n  containers: [%s]\n", i, ctr))
	}
	if ctrPods > 0 {
		image := runtimetest.BinaryImage(t, runtimetest.BuildTestProg(t, "linux", runtime.GOARCH), "app")
		for i := range ctrPods {
			manifests = append(manifests, fmt.Sprintf("apiVersion: v1\nkind: Pod\nmetadata: {name: c%d}\nspec:\n  terminationGracePeriodSeconds: 1\n  containers: [{name: main, image: '%s', args: [sleep, forever]}]\n", i, image))
		}
	}
	if _, err := c.Apply(ctx, []byte(strings.Join(manifests, "---\n"))); err != nil {
		t.Fatalf("apply: %v", err)
	}
	total := restartWasmPods + ctrPods
	var base map[string]podState
	testutil.Eventually(t, 60*time.Second, func() error {
		var err error
		base, err = podStates(ctx, c, total)
		return err
	})

	deleted := false
	var host *wasmhost.Client
	defer func() {
		if !deleted { // a failed run leaves nothing behind either
			pods := map[string]podState{}
			if objs, _, err := c.List(context.Background(), api.ListRequest{Kind: "Pod", Namespace: "default"}); err == nil {
				for _, o := range objs {
					pods[o.(*api.Pod).Name] = podState{UID: o.(*api.Pod).UID}
				}
			}
			if err := deleteAll(context.Background(), c, host, cc, pods, 30*time.Second); err != nil {
				t.Logf("cleanup: %v", err)
			}
		}
		if host != nil {
			host.Close()
		}
	}()

	// A WAGI client throughout.
	var okN, failN atomic.Int64
	var gapMu sync.Mutex
	var maxGap, slowest time.Duration
	stopHTTP := make(chan struct{})
	httpDone := make(chan struct{})
	go func() {
		defer close(httpDone)
		hc := &http.Client{Timeout: 2 * time.Second}
		var failSince time.Time
		for {
			select {
			case <-stopHTTP:
				return
			case <-time.After(20 * time.Millisecond):
			}
			t0 := time.Now()
			resp, err := hc.Get(fmt.Sprintf("http://127.0.0.1:%d/status/200", httpPort))
			gapMu.Lock()
			slowest = max(slowest, time.Since(t0))
			gapMu.Unlock()
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
			now := time.Now()
			if err != nil || resp.StatusCode != 200 {
				failN.Add(1)
				if failSince.IsZero() {
					failSince = now
				}
				continue
			}
			okN.Add(1)
			if !failSince.IsZero() {
				gapMu.Lock()
				maxGap = max(maxGap, now.Sub(failSince))
				gapMu.Unlock()
				failSince = time.Time{}
			}
		}
	}()

	host, err = wasmhost.Connect(ctx, hostDir)
	if err != nil {
		t.Fatalf("connect to the wasm host: %v", err)
	}
	hostPID := host.HostPID()
	baseIDs := checkInstances(t, ctx, host, cc, base, ctrPods)

	cyclesStart := time.Now()
	for cycle = 1; cycle <= restartCycles; cycle++ {
		if err := agent.Process.Kill(); err != nil {
			t.Fatal(err)
		}
		agent.Wait()
		agent = startProc(t, kyb, agentLog(), agentArgs...)
		// The new agent has adopted every pod's sandbox.
		testutil.Eventually(t, 30*time.Second, func() error {
			b, _ := os.ReadFile(agentLog())
			if n := bytes.Count(b, []byte("adopting sandbox")); n != total {
				return fmt.Errorf("cycle %d: %d sandboxes adopted, want %d", cycle, n, total)
			}
			return nil
		})
		if pid := host.HostPID(); pid != hostPID {
			t.Fatalf("cycle %d: wasm host pid %d, want the same host %d", cycle, pid, hostPID)
		}
		if ids := checkInstances(t, ctx, host, cc, base, ctrPods); !maps.Equal(ids, baseIDs) {
			t.Fatalf("cycle %d: the runtimes run containers %v, want the same as before the kills, %v", cycle, slices.Sorted(maps.Keys(ids)), slices.Sorted(maps.Keys(baseIDs)))
		}
		now, err := podStates(ctx, c, total)
		if err != nil {
			t.Fatalf("cycle %d: %v", cycle, err)
		}
		for name, st := range base {
			if now[name] != st {
				t.Fatalf("cycle %d: pod %s is %+v, was %+v (restarted or replaced)", cycle, name, now[name], st)
			}
		}
		if n := countHosts(hostDir); n != 1 {
			t.Fatalf("cycle %d: %d wasm host processes, want 1", cycle, n)
		}
	}
	close(stopHTTP)
	<-httpDone
	t.Logf("%d kill -9 and restart cycles of the agent took %v", restartCycles, time.Since(cyclesStart).Round(time.Millisecond))
	t.Logf("WAGI across %d agent kills: %d answered, %d failed, longest failure %v, slowest request %v", restartCycles, okN.Load(), failN.Load(), maxGap, slowest)
	if failN.Load() > 0 {
		t.Errorf("the WAGI hostPort failed %d times across agent restarts (longest %v), want never", failN.Load(), maxGap)
	}

	// The host wrote the module's output to the log file the agents tail,
	// before, during and after the kills: every line reaches the logs.
	testutil.Eventually(t, 20*time.Second, func() error {
		var lines []string
		err := c.Logs(ctx, api.LogsRequest{Namespace: "default", Pod: "w1"}, func(b []byte) error {
			lines = append(lines, string(b))
			return nil
		})
		all := strings.Join(lines, "\n")
		for j := range restartTicks {
			if err != nil || !strings.Contains(all, fmt.Sprintf("tick-%d", j)) {
				return fmt.Errorf("logs of w1: %q %v, want tick-0 to tick-%d", all, err, restartTicks-1)
			}
		}
		return nil
	})

	// Still the same instances and states, a while after the last restart.
	if ids := checkInstances(t, ctx, host, cc, base, ctrPods); !maps.Equal(ids, baseIDs) {
		t.Fatalf("after the kills: the runtimes run containers %v, want %v", slices.Sorted(maps.Keys(ids)), slices.Sorted(maps.Keys(baseIDs)))
	}
	if now, err := podStates(ctx, c, total); err != nil || !maps.Equal(now, base) {
		t.Fatalf("after the kills: pods %v (%v), want %v", now, err, base)
	}

	// The host itself dies: the agent starts a new one and every wasm pod
	// restarts once, with the reason saying so; container pods do not.
	killed := time.Now()
	if err := syscall.Kill(hostPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		now, err := podStates(ctx, c, total)
		if err != nil {
			return err
		}
		for name, st := range now {
			want := int32(0)
			if strings.HasPrefix(name, "w") {
				want = 1
			}
			if st.Restarts != want {
				return fmt.Errorf("pod %s: %d restarts, want %d", name, st.Restarts, want)
			}
		}
		return nil
	})
	t.Logf("the host's death: every wasm pod running again (restart count 1) after %v", time.Since(killed).Round(time.Millisecond))
	checkInstances(t, ctx, host, cc, base, ctrPods) // reconnects to the new host
	if pid := host.HostPID(); pid == hostPID || countHosts(hostDir) != 1 {
		t.Fatalf("after the host's death: pid %d (old %d), %d host processes; want one new host", pid, hostPID, countHosts(hostDir))
	}
	p, err := c.Get(ctx, "Pod", "default", "w1")
	if err != nil {
		t.Fatal(err)
	}
	if last := p.(*api.Pod).Status.ContainerStatuses[0].LastState.Terminated; last == nil || last.Reason != runtimes.ReasonAgentRestarted || !strings.Contains(last.Message, "wasm host") {
		t.Fatalf("w1's last state after the host died: %+v, want reason %s naming the wasm host", last, runtimes.ReasonAgentRestarted)
	}

	// Delete everything: nothing stays in the host or containerd.
	if err := deleteAll(ctx, c, host, cc, base, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	deleted = true
}

// deleteAll deletes the pods and waits until neither the wasm host nor
// containerd holds anything of them.
func deleteAll(ctx context.Context, c *client.Client, host *wasmhost.Client, cc *cclient.Client, pods map[string]podState, timeout time.Duration) error {
	for name := range pods {
		if _, err := c.Delete(ctx, api.DeleteRequest{Kind: "Pod", Namespace: "default", Name: name}); err != nil && !api.IsNotFound(err) {
			return fmt.Errorf("delete %s: %w", name, err)
		}
	}
	deadline := time.Now().Add(timeout)
	for {
		err := func() error {
			if host != nil {
				sbs, err := host.ListSandboxes(ctx)
				if err != nil {
					return err
				}
				ctrs, err := host.ListContainers(ctx, "")
				if err != nil {
					return err
				}
				if len(sbs)+len(ctrs) > 0 {
					return fmt.Errorf("the wasm host still holds %d sandboxes and %d containers", len(sbs), len(ctrs))
				}
			}
			if cc != nil {
				n, err := ctrdContainers(ctx, cc, pods)
				if err != nil {
					return err
				}
				if n > 0 {
					return fmt.Errorf("containerd still holds %d containers of the pods", n)
				}
			}
			return nil
		}()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type podState struct {
	UID, Phase, ContainerID string
	Restarts                int32
}

// podStates reads every pod and checks that all total are Running.
func podStates(ctx context.Context, c *client.Client, total int) (map[string]podState, error) {
	objs, _, err := c.List(ctx, api.ListRequest{Kind: "Pod", Namespace: "default"})
	if err != nil {
		return nil, err
	}
	out := map[string]podState{}
	for _, o := range objs {
		p := o.(*api.Pod)
		if p.Status.Phase != api.PodRunning || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
			b, _ := json.Marshal(p.Status)
			return nil, fmt.Errorf("pod %s not running: %s", p.Name, b)
		}
		cs := p.Status.ContainerStatuses[0]
		out[p.Name] = podState{UID: p.UID, Phase: string(p.Status.Phase), ContainerID: cs.ContainerID, Restarts: cs.RestartCount}
	}
	if len(out) != total {
		return nil, fmt.Errorf("%d pods running, want %d", len(out), total)
	}
	return out, nil
}

// checkInstances counts what the runtimes hold: exactly one running
// container per pod, in the wasm host and in containerd.
func checkInstances(t *testing.T, ctx context.Context, host *wasmhost.Client, cc *cclient.Client, pods map[string]podState, ctrPods int) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	sbs, err := host.ListSandboxes(ctx)
	if err != nil {
		t.Fatalf("wasm host: %v", err)
	}
	ctrs, err := host.ListContainers(ctx, "")
	if err != nil {
		t.Fatalf("wasm host: %v", err)
	}
	running := map[string]int{}
	for _, c := range ctrs {
		if c.State == runtimes.ContainerRunning {
			running[c.SandboxID]++
			ids[c.ID] = true
		}
	}
	if len(sbs) != restartWasmPods {
		t.Fatalf("the wasm host holds %d sandboxes, want %d", len(sbs), restartWasmPods)
	}
	for _, sb := range sbs {
		if running[sb.ID] != 1 {
			t.Fatalf("wasm sandbox of %s runs %d containers, want 1", sb.Name, running[sb.ID])
		}
	}
	if cc == nil {
		return ids
	}
	running2, err := ctrdRunning(ctx, cc, pods)
	if err != nil || len(running2) != ctrPods {
		t.Fatalf("containerd runs %d containers of the pods (%v), want %d", len(running2), err, ctrPods)
	}
	for _, id := range running2 {
		ids[id] = true
	}
	return ids
}

// ctrdContainers counts the containers containerd holds of the pods.
func ctrdContainers(ctx context.Context, cc *cclient.Client, pods map[string]podState) (int, error) {
	ids, err := ctrdRunning(ctx, cc, pods)
	return len(ids), err
}

// ctrdRunning returns the IDs of the containers containerd holds of the
// pods (running, or without a task).
func ctrdRunning(ctx context.Context, cc *cclient.Client, pods map[string]podState) ([]string, error) {
	ctx = namespaces.WithNamespace(ctx, restartNamespace)
	uids := map[string]bool{}
	for _, p := range pods {
		uids[p.UID] = true
	}
	list, err := cc.Containers(ctx)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, c := range list {
		labels, err := c.Labels(ctx)
		if err != nil || !uids[labels["kyb.dev/pod-uid"]] || labels["kyb.dev/container-name"] == "" {
			continue
		}
		task, err := c.Task(ctx, nil)
		if err != nil {
			ids = append(ids, c.ID()) // a container without a task is still held
			continue
		}
		if st, err := task.Status(ctx); err == nil && st.Status == cclient.Running {
			ids = append(ids, c.ID())
		}
	}
	return ids, nil
}

// countHosts counts the wasm host processes serving dir.
func countHosts(dir string) int {
	ents, _ := os.ReadDir("/proc")
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) > 3 && args[1] == "wasm-host" && args[3] == dir {
			n++
		}
	}
	return n
}

func startProc(t *testing.T, bin, logPath string, args ...string) *exec.Cmd {
	t.Helper()
	logf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(bin, args...)
	cmd.Dir = filepath.Dir(logPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server writes ~/.kyb/config when there is none: not this user's.
	cmd.Env = append(os.Environ(), "HOME="+filepath.Dir(logPath), "KYB_CONFIG="+filepath.Join(filepath.Dir(logPath), "no-config"))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

func stopProc(t *testing.T, cmd *exec.Cmd) {
	cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		<-done
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
