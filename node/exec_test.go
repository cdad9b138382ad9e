package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/execwire"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes/containerd"
	"github.com/kybernetes/kybernetes/runtimes/containerd/containerdtest"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// execPeer plays the control plane's (and client's) side of exec sessions
// against an agent: it starts sessions on kyb.agent.<node>.exec and reads
// the agent's frames on kyb.node.<node>.exec.
type execPeer struct {
	t    *testing.T
	nc   *nats.Conn
	node string
}

// execResult is what a session printed and how it ended.
type execResult struct {
	stdout, stderr string
	exit           api.ExecExit
}

func (r execResult) String() string {
	e := "<nil>"
	if r.exit.Error != nil {
		e = r.exit.Error.Error()
	}
	return fmt.Sprintf("exit %d, error %s, stdout %.300q, stderr %.300q", r.exit.ExitCode, e, r.stdout, r.stderr)
}

// sessionOpts shape one run of execPeer.
type sessionOpts struct {
	stdin []byte // sent after start, then EOF (nil: none)
	// ignoreCredit: stdin is sent at once, whatever the agent's credit.
	ignoreCredit bool
	// noPings: the peer never pings (a client that vanished).
	noPings bool
	// started is told when the session runs.
	started chan<- struct{}
}

func newSessionID(t testing.TB) string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

// run runs one session to its end.
func (p *execPeer) run(st api.ExecStart, o sessionOpts) execResult {
	p.t.Helper()
	if st.Session == "" {
		st.Session = newSessionID(p.t)
	}
	if st.PingMillis == 0 {
		st.PingMillis = 50
	}
	frames := make(chan *nats.Msg, 4096)
	sub, err := p.nc.ChanSubscribe(api.NodeSubject(p.node, api.NodeVerbExec), frames)
	if err != nil {
		p.t.Fatal(err)
	}
	defer sub.Unsubscribe()
	to := api.AgentSubject(p.node, api.AgentVerbExec)
	b, _ := json.Marshal(st)
	if err := p.nc.PublishMsg(execwire.Msg(to, st.Session, api.FrameStart, b)); err != nil {
		p.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	window := execwire.NewWindow(api.ExecWindow)
	defer window.Close()
	ping := time.NewTicker(time.Duration(st.PingMillis) * time.Millisecond)
	defer ping.Stop()
	deadline := time.After(60 * time.Second)
	var out, errOut bytes.Buffer
	for {
		select {
		case <-deadline:
			p.t.Fatalf("session %s: no exit within 60s (stdout %q)", st.Session, out.String())
		case <-ping.C:
			if !o.noPings {
				_ = p.nc.PublishMsg(execwire.Msg(to, st.Session, api.FramePing, nil))
			}
		case m := <-frames:
			if m.Header.Get(api.ExecSessionHeader) != st.Session {
				continue
			}
			switch m.Header.Get(api.ExecFrameHeader) {
			case api.FrameStarted:
				if o.started != nil {
					close(o.started)
				}
				if o.stdin != nil {
					send := func(b []byte) error { return p.nc.PublishMsg(execwire.Msg(to, st.Session, api.FrameStdin, b)) }
					go func() {
						if !o.ignoreCredit {
							sw := &execwire.Sender{Ctx: ctx, Window: window, Send: send}
							if _, err := sw.Write(o.stdin); err != nil {
								return
							}
						} else {
							for c := range execChunks(o.stdin) {
								_ = send(c)
							}
						}
						_ = send(nil)
					}()
				}
			case api.FrameCredit:
				window.Give(execwire.Credit(m))
			case api.FrameStdout, api.FrameStderr:
				if m.Header.Get(api.ExecFrameHeader) == api.FrameStdout {
					out.Write(m.Data)
				} else {
					errOut.Write(m.Data)
				}
				_ = p.nc.PublishMsg(execwire.CreditMsg(to, st.Session, execwire.Cost(len(m.Data))))
			case api.FrameExit:
				r := execResult{stdout: out.String(), stderr: errOut.String()}
				if err := json.Unmarshal(m.Data, &r.exit); err != nil {
					p.t.Fatalf("exit frame %q: %v", m.Data, err)
				}
				return r
			}
		}
	}
}

func execChunks(b []byte) func(func([]byte) bool) {
	return func(yield func([]byte) bool) {
		for len(b) > 0 {
			n := min(len(b), api.ExecChunk)
			if !yield(b[:n]) {
				return
			}
			b = b[n:]
		}
	}
}

// execContainerdHarness is a harness whose agent runs containers on the
// containerd at $KYB_CONTAINERD_ADDRESS (skipped without one, failed with
// CI=true) in a namespace, bridge and pod CIDR of this test's own: test
// processes of other packages running beside it on the shared bridges
// reconfigure them.
func execContainerdHarness(t *testing.T) *harness {
	h := newHarness(t)
	h.cfg.PodCIDR = "10.128.0.0/24"
	rt := containerdtest.Runtime(t, containerd.Config{
		Namespace: containerdtest.Namespace("kyb-node-exec-test"), StateDir: t.TempDir(), IPAMDir: t.TempDir(),
		NetworkName: "kybnodeexec", BridgeName: "kybnexec0", PodCIDR: h.cfg.PodCIDR, LogDriver: "file",
	}, testLogger(t))
	h.rts[api.RuntimeContainerd] = rt
	h.start()
	return h
}

// waitExecRunning waits until the pod's first container runs and is
// ready: a container with a readiness probe on its port is then known to
// listen (Running alone says only that the process started).
func waitExecRunning(t *testing.T, h *harness, uid string) {
	t.Helper()
	testutil.Eventually(t, 60*time.Second, func() error {
		st, cs, err := containerStatus(t, h.cp, uid)
		if err != nil {
			return err
		}
		if cs.State.Running == nil || !cs.Ready {
			return fmt.Errorf("%s; want running and ready (events %v)", describe(st.ContainerStatuses), h.cp.eventsOf(uid))
		}
		return nil
	})
}

func startOf(p *api.Pod, kind string, cmd ...string) api.ExecStart {
	return api.ExecStart{Kind: kind, Namespace: p.Namespace, Pod: p.Name, UID: p.UID, Container: p.Spec.Containers[0].Name, Command: cmd}
}

// TestContainerdExec: exec in a container runs the command in the pod
// (its host name), with stdin piped, and its exit code comes back;
// port-forward reaches the container's port; a port nobody listens on and
// a container that is not there are quick, clear errors; a client that
// goes silent mid-exec leaves no process behind in the container.
func TestContainerdExec(t *testing.T) {
	h := execContainerdHarness(t)
	ref := runtimetest.ShellImage(t)
	pod := mkpod("ctr-exec", api.RestartPolicyAlways, ref)
	pod.Spec.Containers[0].ImagePullPolicy = api.PullIfNotPresent
	pod.Spec.Containers[0].Command = []string{"/bin/sh", "-c", "serve 8080"}
	pod.Spec.Containers[0].Ports = []api.ContainerPort{{Name: "http", ContainerPort: 8080}}
	// Ready only once serve listens, so port-forward never races its bind.
	pod.Spec.Containers[0].ReadinessProbe = &api.Probe{
		ProbeHandler:  api.ProbeHandler{TCPSocket: &api.TCPSocketAction{Port: api.FromString("http")}},
		PeriodSeconds: 1, TimeoutSeconds: 1, FailureThreshold: 3, SuccessThreshold: 1}
	pod.Spec.Hostname = "exec-host"
	api.Default(pod)
	p := h.cp.assign(pod)
	waitExecRunning(t, h, p.UID)
	peer := &execPeer{t: t, nc: h.cp.nc, node: h.cfg.Name}

	t.Run("hostname", func(t *testing.T) {
		r := peer.run(startOf(p, api.SessionExec, "sh", "-c", "echo $HOSTNAME"), sessionOpts{})
		if r.exit.Error != nil || r.exit.ExitCode != 0 || strings.TrimSpace(r.stdout) != "exec-host" {
			t.Errorf("echo $HOSTNAME: %v; want exec-host and exit 0", r)
		}
	})
	t.Run("exit code", func(t *testing.T) {
		r := peer.run(startOf(p, api.SessionExec, "sh", "-c", "echo bye; exit 7"), sessionOpts{})
		if r.exit.ExitCode != 7 || r.stdout != "bye\n" {
			t.Errorf("exit 7: %v", r)
		}
	})
	t.Run("stdin piped", func(t *testing.T) {
		in := bytes.Repeat([]byte("0123456789abcdef"), 40<<10) // 640 KiB: several windows
		st := startOf(p, api.SessionExec, "sh", "-c", "cat")
		st.Stdin = true
		r := peer.run(st, sessionOpts{stdin: in})
		if r.exit.ExitCode != 0 || r.stdout != string(in) {
			t.Errorf("cat: %s; %d bytes back, want %d", r.exit.Error, len(r.stdout), len(in))
		}
	})
	t.Run("stdin beyond the credit window", func(t *testing.T) {
		st := startOf(p, api.SessionExec, "sh", "-c", "sleep 5; cat")
		st.Stdin = true
		r := peer.run(st, sessionOpts{stdin: make([]byte, 2*api.ExecWindow), ignoreCredit: true})
		if r.exit.Error == nil || !strings.Contains(r.exit.Error.Message, "credit window") {
			t.Errorf("a flood of stdin: %v; want the session ended for overrunning the window", r)
		}
	})
	t.Run("tty", func(t *testing.T) {
		st := startOf(p, api.SessionExec, "sh", "-c", "echo on a terminal")
		st.TTY, st.Size = true, &api.TermSize{Width: 100, Height: 30}
		r := peer.run(st, sessionOpts{})
		if r.exit.Error != nil || r.exit.ExitCode != 0 || r.stdout != "on a terminal\r\n" {
			t.Errorf("exec -t: %v; want the line with the terminal's CRLF", r)
		}
	})
	t.Run("not found command", func(t *testing.T) {
		r := peer.run(startOf(p, api.SessionExec, "/no/such"), sessionOpts{})
		if r.exit.Error == nil && r.exit.ExitCode == 0 {
			t.Errorf("exec of a missing binary: %v; want an error", r)
		}
	})
	t.Run("port-forward", func(t *testing.T) {
		st := startOf(p, api.SessionPortForward)
		st.Port = 8080
		r := peer.run(st, sessionOpts{stdin: []byte("GET / HTTP/1.0\r\nHost: x\r\n\r\n")})
		if r.exit.Error != nil || !strings.Contains(r.stdout, "200 OK") || !strings.Contains(r.stdout, "hello from exec-host") {
			t.Errorf("port-forward to 8080: %v", r)
		}
	})
	t.Run("port nobody listens on", func(t *testing.T) {
		st := startOf(p, api.SessionPortForward)
		st.Port = 8081
		start := time.Now()
		r := peer.run(st, sessionOpts{stdin: []byte{}})
		if r.exit.Error == nil || !strings.Contains(r.exit.Error.Message, "refused") || time.Since(start) > 10*time.Second {
			t.Errorf("port-forward to 8081: %v after %v; want connection refused, fast", r, time.Since(start))
		}
	})
	t.Run("client vanishes: no process left", func(t *testing.T) {
		count := func() int {
			r := peer.run(startOf(p, api.SessionExec, "sh", "-c", "procs"), sessionOpts{})
			n, err := strconv.Atoi(strings.TrimSpace(r.stdout))
			if err != nil {
				t.Fatalf("procs: %v", r)
			}
			return n
		}
		base := count()
		started := make(chan struct{})
		done := make(chan execResult, 1)
		go func() {
			done <- peer.run(startOf(p, api.SessionExec, "sh", "-c", "sleep 600"), sessionOpts{noPings: true, started: started})
		}()
		<-started
		if n := count(); n != base+1 {
			t.Errorf("%d processes while sleeping, want %d", n, base+1)
		}
		r := <-done // the agent hears nothing for 5 pings and kills it
		if r.exit.Error == nil || !strings.Contains(r.exit.Error.Message, "silent") {
			t.Errorf("abandoned session: %v; want it ended as silent", r)
		}
		testutil.Eventually(t, 10*time.Second, func() error {
			if n := count(); n != base {
				return fmt.Errorf("%d processes, want %d", n, base)
			}
			return nil
		})
	})
	t.Run("container that is not there", func(t *testing.T) {
		st := startOf(p, api.SessionExec, "true")
		st.Container = "nope"
		r := peer.run(st, sessionOpts{})
		if r.exit.Error == nil || !strings.Contains(r.exit.Error.Message, "not running") {
			t.Errorf("exec in a missing container: %v", r)
		}
	})
}

// TestExecOnlyInOwnPods: a start naming a pod the agent does not run, or
// one of its pods under another UID or name, runs nothing: NotFound. A
// malformed session id gets no answer at all.
func TestExecOnlyInOwnPods(t *testing.T) {
	h := newHarness(t)
	h.start()
	p := h.cp.assign(probePod("mine", func(*api.Container) {}))
	waitExecRunning(t, h, p.UID)
	peer := &execPeer{t: t, nc: h.cp.nc, node: h.cfg.Name}
	for _, tc := range []struct {
		name string
		edit func(*api.ExecStart)
	}{
		{"another node's pod", func(s *api.ExecStart) { s.UID = "0f0f0f0f-aaaa-bbbb-cccc-000000000000"; s.Pod = "theirs" }},
		{"right uid, other name", func(s *api.ExecStart) { s.Pod = "other" }},
		{"right uid, other namespace", func(s *api.ExecStart) { s.Namespace = "kube-system" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := startOf(p, api.SessionExec, "true")
			tc.edit(&st)
			r := peer.run(st, sessionOpts{})
			if r.exit.Error == nil || r.exit.Error.Code != 404 {
				t.Errorf("%v; want 404", r)
			}
		})
	}
	// The fake runtime has no streamed exec: a clear error, not a hang.
	r := peer.run(startOf(p, api.SessionExec, "true"), sessionOpts{})
	if r.exit.Error == nil || !strings.Contains(r.exit.Error.Message, "does not support exec") {
		t.Errorf("exec on the fake runtime: %v", r)
	}
	// A frame with a bad session id is dropped unanswered.
	frames := make(chan *nats.Msg, 4)
	sub, _ := h.cp.nc.ChanSubscribe(api.NodeSubject(h.cfg.Name, api.NodeVerbExec), frames)
	defer sub.Unsubscribe()
	b, _ := json.Marshal(startOf(p, api.SessionExec, "true"))
	_ = h.cp.nc.PublishMsg(execwire.Msg(api.AgentSubject(h.cfg.Name, api.AgentVerbExec), strings.Repeat("x", 4096), api.FrameStart, b))
	_ = h.cp.nc.Flush()
	select {
	case m := <-frames:
		t.Errorf("answered a bad session id: %q", m.Data)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestWasmExec: exec in a wasm pod runs a fresh instance of the module with
// the command as its arguments and the pod's env; its exit code comes
// back; port-forward reaches the pod's WAGI handler.
func TestWasmExec(t *testing.T) {
	h := wasmProbeHarness(t)
	peer := &execPeer{t: t, nc: h.cp.nc, node: h.cfg.Name}
	t.Run("command", func(t *testing.T) {
		pod := mkpod("wasm-exec", api.RestartPolicyAlways, wasmModule(t, "./runtimes/runtimetest/testprog"))
		pod.Spec.RuntimeClassName = ptr(api.RuntimeWasm)
		pod.Spec.Containers[0].Args = []string{"sleep", "forever"}
		pod.Spec.Containers[0].Env = []api.EnvVar{{Name: "GREETING", Value: "hi"}}
		pod.Spec.Containers[0].Resources.Limits = api.ResourceList{api.ResourceMemory: resource.MustParse("32Mi")}
		api.Default(pod)
		p := h.cp.assign(pod)
		waitExecRunning(t, h, p.UID)
		r := peer.run(startOf(p, api.SessionExec, "out", "hello", "env", "GREETING", "err", "oops", "exit", "3"), sessionOpts{})
		if r.exit.Error != nil || r.exit.ExitCode != 3 || r.stdout != "hello\nGREETING=hi\n" || r.stderr != "oops\n" {
			t.Errorf("wasm exec: %v", r)
		}
		// The pod's memory limit holds for the exec'd instance.
		r = peer.run(startOf(p, api.SessionExec, "alloc", "64", "out", "survived"), sessionOpts{})
		if r.exit.ExitCode == 0 || strings.Contains(r.stdout, "survived") || !strings.Contains(r.stderr, "OOMKilled") {
			t.Errorf("exec past the memory limit: %v", r)
		}
		// A client that vanishes ends a spinning instance.
		r = peer.run(startOf(p, api.SessionExec, "loop"), sessionOpts{noPings: true})
		if r.exit.Error == nil || !strings.Contains(r.exit.Error.Message, "silent") {
			t.Errorf("abandoned wasm exec: %v", r)
		}
	})
	t.Run("port-forward to WAGI", func(t *testing.T) {
		pod := mkpod("wasm-pf", api.RestartPolicyAlways, wasmModule(t, "./runtimes/wasm/testdata/cgi"))
		pod.Spec.RuntimeClassName = ptr(api.RuntimeWasm)
		pod.Spec.Containers[0].Ports = []api.ContainerPort{{Name: "http", ContainerPort: 8080, HostPort: freeTCPPort(t)}}
		api.Default(pod)
		p := h.cp.assign(pod)
		waitExecRunning(t, h, p.UID)
		st := startOf(p, api.SessionPortForward)
		st.Port = 8080
		r := peer.run(st, sessionOpts{stdin: []byte("GET /status/201 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")})
		if r.exit.Error != nil || !strings.Contains(r.stdout, "201 Created") || !strings.Contains(r.stdout, "status 201") {
			t.Errorf("port-forward to WAGI: %v", r)
		}
		st.Port = 9999
		r = peer.run(st, sessionOpts{stdin: []byte{}})
		if r.exit.Error == nil || !strings.Contains(r.exit.Error.Message, "port 9999") {
			t.Errorf("port-forward to a port the module does not serve: %v", r)
		}
	})
}
