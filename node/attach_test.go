package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/execwire"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes/containerd"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// attachPeer is one interactive attach session played against an agent.
type attachPeer struct {
	t       *testing.T
	nc      *nats.Conn
	to, id  string
	mu      sync.Mutex
	out     bytes.Buffer
	got     int // data bytes received
	exit    chan api.ExecExit
	stop    chan struct{}
	started chan struct{} // closed on the started frame
	credit  bool
}

// attachOpts shape an attachPeer.
type attachOpts struct {
	noCredit bool // never grant credit for output
	noPings  bool // never ping (a client that vanished)
	tty      bool // -t, with a first size
}

func startAttachPeer(t *testing.T, h *harness, p *api.Pod, container string, stdin bool, o attachOpts) *attachPeer {
	t.Helper()
	st := api.ExecStart{Session: newSessionID(t), Kind: api.SessionAttach, Namespace: p.Namespace, Pod: p.Name, UID: p.UID,
		Container: container, Stdin: stdin, PingMillis: 50}
	if o.tty {
		st.TTY, st.Size = true, &api.TermSize{Width: 100, Height: 30}
	}
	a := &attachPeer{t: t, nc: h.cp.nc, to: api.AgentSubject(h.cfg.Name, api.AgentVerbExec), id: st.Session,
		exit: make(chan api.ExecExit, 1), stop: make(chan struct{}), started: make(chan struct{}), credit: !o.noCredit}
	frames := make(chan *nats.Msg, 4096)
	sub, err := a.nc.ChanSubscribe(api.NodeSubject(h.cfg.Name, api.NodeVerbExec), frames)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(st)
	if err := a.nc.PublishMsg(execwire.Msg(a.to, st.Session, api.FrameStart, b)); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer sub.Unsubscribe()
		ping := time.NewTicker(50 * time.Millisecond)
		defer ping.Stop()
		for {
			select {
			case <-a.stop:
				return
			case <-ping.C:
				if !o.noPings {
					_ = a.nc.PublishMsg(execwire.Msg(a.to, a.id, api.FramePing, nil))
				}
			case m := <-frames:
				if m.Header.Get(api.ExecSessionHeader) != a.id {
					continue
				}
				switch m.Header.Get(api.ExecFrameHeader) {
				case api.FrameStarted:
					close(a.started)
				case api.FrameStdout, api.FrameStderr:
					a.mu.Lock()
					a.out.Write(m.Data)
					a.got += len(m.Data)
					a.mu.Unlock()
					if a.credit {
						_ = a.nc.PublishMsg(execwire.CreditMsg(a.to, a.id, execwire.Cost(len(m.Data))))
					}
				case api.FrameExit:
					var x api.ExecExit
					_ = json.Unmarshal(m.Data, &x)
					a.exit <- x
					return
				}
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-a.stop:
		default:
			close(a.stop)
		}
	})
	return a
}

// waitStarted waits until the session runs: its output starts there.
func (a *attachPeer) waitStarted() {
	a.t.Helper()
	select {
	case <-a.started:
	case x := <-a.exit:
		a.t.Fatalf("attach session %s ended before it ran: %+v", a.id, x)
	case <-time.After(30 * time.Second):
		a.t.Fatalf("attach session %s did not start within 30s", a.id)
	}
}

func (a *attachPeer) output() string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.out.String()
}

// send sends data as stdin frames (nil: end of input).
func (a *attachPeer) send(data []byte) {
	if data == nil {
		_ = a.nc.PublishMsg(execwire.Msg(a.to, a.id, api.FrameStdin, nil))
		return
	}
	for c := range execChunks(data) {
		_ = a.nc.PublishMsg(execwire.Msg(a.to, a.id, api.FrameStdin, c))
	}
}

// waitOutput waits until the output holds want.
func (a *attachPeer) waitOutput(want string) {
	a.t.Helper()
	testutil.Eventually(a.t, 30*time.Second, func() error {
		if !strings.Contains(a.output(), want) {
			return fmt.Errorf("attach output %q; want %q", a.output(), want)
		}
		return nil
	})
}

func (a *attachPeer) end() api.ExecExit {
	a.t.Helper()
	select {
	case x := <-a.exit:
		return x
	case <-time.After(60 * time.Second):
		a.t.Fatalf("attach session %s: no exit within 60s (output %q)", a.id, a.output())
	}
	return api.ExecExit{}
}

// attachContainerdHarness is execContainerdHarness with the log driver
// binary (as in production: a container with a terminal logs through it),
// and a restart that replaces the agent and its runtime by new ones on
// the same state.
func attachContainerdHarness(t *testing.T) (*harness, func()) {
	addr := os.Getenv("KYB_CONTAINERD_ADDRESS")
	if addr == "" {
		addr = containerd.DefaultAddress
	}
	h := newHarness(t)
	h.cfg.PodCIDR = "10.129.0.0/24"
	runtimetest.FreshBridge(t, "kybnattach0")
	cfg := containerd.Config{
		Address: addr, Namespace: fmt.Sprintf("kyb-node-attach-test-%d", os.Getpid()), StateDir: t.TempDir(), IPAMDir: t.TempDir(),
		NetworkName: "kybnodeattach", BridgeName: "kybnattach0", PodCIDR: h.cfg.PodCIDR,
	}
	newRT := func() *containerd.Runtime {
		rt, err := containerd.New(context.Background(), cfg, testLogger(t))
		if err == nil && os.Geteuid() != 0 {
			err = fmt.Errorf("the containerd tests need root")
		}
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			_, err = rt.Info(ctx)
			cancel()
		}
		if err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("containerd at %s: %v", addr, err)
			}
			t.Skipf("containerd at %s does not answer (set KYB_CONTAINERD_ADDRESS): %v", addr, err)
		}
		return rt
	}
	if os.Geteuid() == 0 {
		cfg.LogDriver = runtimetest.BuildGo(t, "./runtimes/containerd/testdata/logdriver", "linux", runtime.GOARCH)
	}
	rt := newRT()
	t.Cleanup(func() {
		sbs, _ := rt.ListSandboxes(context.Background())
		for _, sb := range sbs {
			_ = rt.RemoveSandbox(context.Background(), sb.ID)
		}
		rt.Close()
	})
	h.rts[api.RuntimeContainerd] = rt
	h.start()
	restart := func() {
		h.stop()
		rt.Close()
		rt = newRT()
		h.rts[api.RuntimeContainerd] = rt
		h.start()
	}
	return h, restart
}

// TestContainerdAttach: kyb attach -i to a container running cat echoes
// what is sent; the client's end of input detaches and leaves cat running,
// and a new agent (and runtime) on the same state reaches the same process
// (restart count unchanged); output-only attach sees what another
// session's input makes; -i to a container without stdin is a 400;
// stdinOnce: the container reads end of input when the first session ends
// and exits; a client flooding stdin, never granting credit or vanishing
// is handled as for exec.
func TestContainerdAttach(t *testing.T) {
	h, restart := attachContainerdHarness(t)
	ref := runtimetest.ShellImage(t)
	pod := mkpod("ctr-attach", api.RestartPolicyAlways, ref, ref, ref, ref)
	for i, c := range []struct {
		name, script     string
		stdin, once, tty bool
	}{
		{"cat", "cat", true, false, false},
		{"once", "cat; echo input ended; exit 4", true, true, false},
		{"plain", "sleep 600", false, false, false},
		{"term", "cat", true, false, true},
	} {
		pc := &pod.Spec.Containers[i]
		pc.Name, pc.ImagePullPolicy = c.name, api.PullIfNotPresent
		pc.Command = []string{"/bin/sh", "-c", c.script}
		pc.Stdin, pc.StdinOnce, pc.TTY = c.stdin, c.once, c.tty
	}
	pod.Spec.RestartPolicy = api.RestartPolicyNever
	api.Default(pod)
	p := h.cp.assign(pod)
	testutil.Eventually(t, 60*time.Second, func() error {
		u := h.cp.last(p.UID)
		if u == nil || len(u.Status.ContainerStatuses) != 4 {
			return fmt.Errorf("no status yet")
		}
		for _, cs := range u.Status.ContainerStatuses {
			if cs.State.Running == nil {
				return fmt.Errorf("%s", describe(u.Status.ContainerStatuses))
			}
		}
		return nil
	})
	catStatus := func() api.ContainerStatus {
		for _, cs := range h.cp.last(p.UID).Status.ContainerStatuses {
			if cs.Name == "cat" {
				return cs
			}
		}
		t.Fatal("no status of container cat")
		return api.ContainerStatus{}
	}

	t.Run("echo and detach", func(t *testing.T) {
		a := startAttachPeer(t, h, p, "cat", true, attachOpts{})
		a.send([]byte("hello attach\n"))
		a.waitOutput("hello attach")
		a.send(nil)
		if x := a.end(); x.Error != nil || x.ExitCode != 0 {
			t.Errorf("detach: %+v", x)
		}
	})
	t.Run("output only", func(t *testing.T) {
		o := startAttachPeer(t, h, p, "cat", false, attachOpts{})
		o.waitStarted()
		a := startAttachPeer(t, h, p, "cat", true, attachOpts{})
		a.send([]byte("for both\n"))
		a.waitOutput("for both")
		o.waitOutput("for both")
		a.send(nil)
		a.end()
		_ = h.cp.nc.PublishMsg(execwire.Msg(o.to, o.id, api.FrameClose, nil))
		o.end()
	})
	t.Run("-i without stdin", func(t *testing.T) {
		x := startAttachPeer(t, h, p, "plain", true, attachOpts{}).end()
		if x.Error == nil || x.Error.Code != 400 || !strings.Contains(x.Error.Message, "container plain was not created with stdin: true") {
			t.Errorf("attach -i to plain: %+v; want the 400", x)
		}
	})
	t.Run("flood beyond the credit window", func(t *testing.T) {
		a := startAttachPeer(t, h, p, "cat", true, attachOpts{})
		a.send(make([]byte, 2*api.ExecWindow))
		x := a.end()
		if x.Error == nil || !strings.Contains(x.Error.Message, "credit window") {
			t.Errorf("a flood of stdin: %+v; want the session ended for overrunning the window", x)
		}
	})
	t.Run("no credit: output held at the window", func(t *testing.T) {
		o := startAttachPeer(t, h, p, "cat", false, attachOpts{noCredit: true})
		o.waitStarted()
		a := startAttachPeer(t, h, p, "cat", true, attachOpts{})
		line := bytes.Repeat([]byte("x"), 1023)
		big := bytes.Repeat(append(line, '\n'), 3*api.ExecWindow/1024)
		// In pieces of half a window, each sent once the last is echoed
		// (and so consumed): the writer stays within its credit.
		for sent := 0; sent < len(big); {
			n := min(len(big)-sent, api.ExecWindow/2)
			a.send(big[sent : sent+n])
			sent += n
			testutil.Eventually(t, 30*time.Second, func() error {
				if got := len(a.output()); got < sent {
					return fmt.Errorf("%d bytes echoed of %d sent", got, sent)
				}
				return nil
			})
		}
		o.mu.Lock()
		got := o.got
		o.mu.Unlock()
		if got == 0 || got > api.ExecWindow {
			t.Errorf("a client that never grants credit was sent %d bytes; want some, and at most the window of %d", got, api.ExecWindow)
		}
		a.send(nil)
		a.end()
		_ = h.cp.nc.PublishMsg(execwire.Msg(o.to, o.id, api.FrameClose, nil))
		o.end()
	})
	t.Run("client vanishes", func(t *testing.T) {
		x := startAttachPeer(t, h, p, "cat", true, attachOpts{noPings: true}).end()
		if x.Error == nil || !strings.Contains(x.Error.Message, "silent") {
			t.Errorf("abandoned attach: %+v; want it ended as silent", x)
		}
	})
	t.Run("terminal", func(t *testing.T) {
		a := startAttachPeer(t, h, p, "term", true, attachOpts{tty: true})
		b, _ := json.Marshal(api.TermSize{Width: 132, Height: 43})
		_ = h.cp.nc.PublishMsg(execwire.Msg(a.to, a.id, api.FrameResize, b))
		a.send([]byte("typed on a terminal\n"))
		// The terminal's echo and cat's copy, each with the terminal's CRLF.
		testutil.Eventually(t, 30*time.Second, func() error {
			if n := strings.Count(a.output(), "typed on a terminal\r\n"); n < 2 {
				return fmt.Errorf("output %q: want the line twice (echo and cat), with CRLF", a.output())
			}
			return nil
		})
		a.send(nil)
		if x := a.end(); x.Error != nil || x.ExitCode != 0 {
			t.Errorf("detach from the terminal: %+v", x)
		}
	})
	t.Run("after an agent restart, the same process", func(t *testing.T) {
		before := catStatus()
		restart()
		a := startAttachPeer(t, h, p, "cat", true, attachOpts{})
		a.send([]byte("after restart\n"))
		a.waitOutput("after restart")
		a.send(nil)
		if x := a.end(); x.Error != nil {
			t.Errorf("attach after restart: %+v", x)
		}
		after := catStatus()
		if after.RestartCount != before.RestartCount || after.State.Running == nil || after.ContainerID != before.ContainerID {
			t.Errorf("cat before the restart %+v, after %+v; want the same process", before, after)
		}
	})
	t.Run("stdinOnce", func(t *testing.T) {
		a := startAttachPeer(t, h, p, "once", true, attachOpts{})
		a.send([]byte("just once\n"))
		a.waitOutput("just once")
		a.send(nil) // end of input: cat ends, the script exits 4
		x := a.end()
		if x.Error != nil || x.ExitCode != 4 || !strings.Contains(a.output(), "input ended") {
			t.Errorf("stdinOnce: %+v, output %q; want the container's exit 4 after its end of input", x, a.output())
		}
	})
}
