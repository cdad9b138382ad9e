package node

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/execwire"
	"github.com/kybernetes/kybernetes/runtimes"
)

// Exec and port-forward sessions (api/exec.go has the protocol): the
// control plane publishes FrameStart and the client's frames on
// kyb.agent.<name>.exec; the agent answers on kyb.node.<name>.exec. A
// session runs only in a pod this agent runs (namespace, name and UID
// must match a pod worker of the agent): no frame can make it touch
// another node's pod.

// maxExecSessions bounds the sessions an agent runs at once.
const maxExecSessions = 128

// sessionIDRE is what the apiserver mints: 32 hex digits (128 random bits).
var sessionIDRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// execSessions are an agent's open sessions.
type execSessions struct {
	a  *Agent
	mu sync.Mutex
	m  map[string]*execSession
	wg sync.WaitGroup
}

// execSession is one open session on the agent.
type execSession struct {
	es     *execSessions
	start  api.ExecStart
	ctx    context.Context
	cancel context.CancelCauseFunc
	stdin  *execwire.Inbox
	window *execwire.Window // credit for stdout and stderr
	resize chan runtimes.TermSize
	heard  atomic.Int64 // unix nanos of the last frame from the control plane
}

// serveExec subscribes to the agent's exec subject until ctx ends; it
// returns a function that waits for the sessions to end.
func (a *Agent) serveExec(ctx context.Context) (func(), error) {
	es := &execSessions{a: a, m: map[string]*execSession{}}
	sub, err := a.nc.Subscribe(api.AgentSubject(a.cfg.Name, api.AgentVerbExec), func(m *nats.Msg) { es.onFrame(ctx, m) })
	if err != nil {
		return nil, fmt.Errorf("subscribe to exec sessions: %w", err)
	}
	_ = sub.SetPendingLimits(-1, 256<<20)
	return func() {
		_ = sub.Unsubscribe()
		es.mu.Lock()
		for _, s := range es.m {
			s.cancel(errors.New("the agent is stopping"))
		}
		es.mu.Unlock()
		es.wg.Wait()
	}, nil
}

// out publishes one frame of session id to the control plane.
func (es *execSessions) out(id, frame string, data []byte) error {
	return es.a.nc.PublishMsg(execwire.Msg(api.NodeSubject(es.a.cfg.Name, api.NodeVerbExec), id, frame, data))
}

// fail ends session id before it ran, with st.
func (es *execSessions) fail(id string, st *api.Status) {
	b, _ := json.Marshal(api.ExecExit{ExitCode: -1, Error: st})
	if err := es.out(id, api.FrameExit, b); err != nil {
		es.a.log.Debug("exec: send exit", "session", id, "err", err)
	}
}

func (es *execSessions) onFrame(ctx context.Context, m *nats.Msg) {
	id := m.Header.Get(api.ExecSessionHeader)
	if !sessionIDRE.MatchString(id) {
		es.a.log.Debug("exec: frame without a valid session id dropped")
		return
	}
	frame := m.Header.Get(api.ExecFrameHeader)
	if frame == api.FrameStart {
		es.begin(ctx, id, m.Data)
		return
	}
	es.mu.Lock()
	s := es.m[id]
	es.mu.Unlock()
	if s == nil {
		return // ended already, or never was
	}
	s.heard.Store(time.Now().UnixNano())
	switch frame {
	case api.FrameStdin:
		if err := s.stdin.Push(m.Data); err != nil && !errors.Is(err, execwire.ErrClosed) {
			s.cancel(err)
		}
	case api.FrameCredit:
		s.window.Give(execwire.Credit(m))
	case api.FrameResize:
		var sz api.TermSize
		if json.Unmarshal(m.Data, &sz) == nil && sz.Width > 0 && sz.Height > 0 {
			select {
			case s.resize <- runtimes.TermSize{Width: sz.Width, Height: sz.Height}:
			default: // a resize is waiting already; the next one will do
			}
		}
	case api.FrameClose:
		s.cancel(errors.New("closed by the client"))
	case api.FramePing:
	}
}

// begin starts session id from an ExecStart.
func (es *execSessions) begin(ctx context.Context, id string, data []byte) {
	var st api.ExecStart
	if err := json.Unmarshal(data, &st); err != nil || st.Session != id {
		es.fail(id, api.NewBadRequest("malformed exec start"))
		return
	}
	if st.PingMillis <= 0 {
		st.PingMillis = 2000
	}
	es.mu.Lock()
	if _, dup := es.m[id]; dup {
		es.mu.Unlock()
		return
	}
	if len(es.m) >= maxExecSessions {
		es.mu.Unlock()
		es.fail(id, api.NewUnavailable("node %s runs %d exec sessions already; retry", es.a.cfg.Name, maxExecSessions))
		return
	}
	sctx, cancel := context.WithCancelCause(ctx)
	s := &execSession{es: es, start: st, ctx: sctx, cancel: cancel,
		window: execwire.NewWindow(api.ExecWindow), resize: make(chan runtimes.TermSize, 1)}
	s.stdin = execwire.NewInbox(func(n int) {
		_ = es.a.nc.PublishMsg(execwire.CreditMsg(api.NodeSubject(es.a.cfg.Name, api.NodeVerbExec), id, n))
	})
	if !st.Stdin && st.Kind != api.SessionPortForward {
		_ = s.stdin.Push(nil) // no input: EOF at once (later stdin frames are dropped)
	}
	s.heard.Store(time.Now().UnixNano())
	es.m[id] = s
	es.wg.Add(1)
	es.mu.Unlock()
	go s.run()
}

// run runs the session to its end and sends its exit.
func (s *execSession) run() {
	es := s.es
	defer es.wg.Done()
	defer func() {
		es.mu.Lock()
		delete(es.m, s.start.Session)
		es.mu.Unlock()
	}()
	defer s.stdin.Close()
	defer s.window.Close()
	go s.pings()

	code, err := s.exec()
	exit := api.ExecExit{ExitCode: code}
	if err != nil {
		if cause := context.Cause(s.ctx); cause != nil && s.ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, cause)
		}
		exit = api.ExecExit{ExitCode: -1, Error: execStatus(err)}
		es.a.log.Debug("exec session ended", "session", s.start.Session, "err", err)
	}
	s.cancel(nil)
	b, _ := json.Marshal(exit)
	if perr := es.out(s.start.Session, api.FrameExit, b); perr != nil {
		es.a.log.Debug("exec: send exit", "session", s.start.Session, "err", perr)
	}
}

// pings beats each interval and ends the session when the control plane
// (and so the client) went silent.
func (s *execSession) pings() {
	iv := time.Duration(s.start.PingMillis) * time.Millisecond
	t := time.NewTicker(iv)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
			if time.Since(time.Unix(0, s.heard.Load())) > ExecIdle(iv) {
				s.cancel(errors.New("the client went silent"))
				return
			}
			_ = s.es.out(s.start.Session, api.FramePing, nil)
		}
	}
}

// ExecIdle is how long a session's side waits without hearing the other
// before it ends the session.
func ExecIdle(ping time.Duration) time.Duration { return api.ExecIdlePings * ping }

// sender returns a writer of data frames of type frame within the
// session's window.
func (s *execSession) sender(frame string) io.Writer {
	return &execwire.Sender{Ctx: s.ctx, Window: s.window, Send: func(b []byte) error {
		return s.es.out(s.start.Session, frame, b)
	}}
}

// started tells the client the session runs.
func (s *execSession) started() {
	b, _ := json.Marshal(api.ExecStarted{Session: s.start.Session, PingMillis: s.start.PingMillis})
	_ = s.es.out(s.start.Session, api.FrameStarted, b)
}

// exec runs the session's command (or connection) and returns its exit
// code.
func (s *execSession) exec() (int32, error) {
	st := s.start
	t, err := s.es.a.execTarget(s.ctx, st.Namespace, st.Pod, st.UID, st.Container, st.Kind != api.SessionPortForward)
	if err != nil {
		return -1, err
	}
	switch st.Kind {
	case api.SessionPortForward:
		return s.portForward(t)
	case api.SessionAttach:
		return s.attach(t)
	case api.SessionExec:
	default:
		return -1, api.NewBadRequest("%q is not a session kind", st.Kind)
	}
	ex, ok := t.rt.(runtimes.StreamExecer)
	if !ok {
		return -1, api.NewBadRequest("exec: the %s runtime does not support exec", t.rtName)
	}
	var size *runtimes.TermSize
	if st.Size != nil {
		size = &runtimes.TermSize{Width: st.Size.Width, Height: st.Size.Height}
	}
	var stdin io.Reader
	if st.Stdin {
		stdin = s.stdin
	}
	return ex.Exec(s.ctx, t.id, runtimes.ExecOptions{
		Cmd: st.Command, Stdin: stdin, Stdout: s.sender(api.FrameStdout), Stderr: s.sender(api.FrameStderr),
		TTY: st.TTY, Size: size, Resize: s.resize, OnStart: s.started,
	})
}

// execTarget is the container (or pod) a session runs in.
type execTarget struct {
	rt     runtimes.Runtime
	rtName string
	id     string // the running container ("" for a pod-level target)
	ip     string // the pod's IP ("" for host network or wasm pods)
	// ports are the TCP containerPorts the container declares (a wasm
	// container serves exactly those).
	ports []int32
	// spec is the container's spec and logPath its log file (a container
	// target only).
	spec    api.Container
	logPath string
}

// execTarget finds pod ns/name with uid among the agent's pods and, when
// needContainer, its running container.
func (a *Agent) execTarget(ctx context.Context, ns, name, uid, container string, needContainer bool) (*execTarget, error) {
	a.mu.Lock()
	w := a.workers[uid]
	a.mu.Unlock()
	if w == nil {
		return nil, api.NewNotFound("Pod", name)
	}
	w.mu.Lock()
	p, gone := w.desired, w.gone
	w.mu.Unlock()
	if gone || p == nil || p.Namespace != ns || p.Name != name || p.UID != uid {
		return nil, api.NewNotFound("Pod", name)
	}
	t := &execTarget{rt: w.rt, rtName: w.rtName}
	if t.rt == nil {
		return nil, api.NewBadRequest("pod %s: runtime %q is not on this node", name, w.rtName)
	}
	sbs, err := t.rt.ListSandboxes(ctx)
	if err != nil {
		return nil, fmt.Errorf("list sandboxes: %w", err)
	}
	var sb *runtimes.Sandbox
	for _, x := range sbs {
		if x.UID == uid && x.State == runtimes.SandboxReady {
			sb = x
		}
	}
	if sb == nil {
		return nil, api.NewBadRequest("pod %s is not running on node %s", name, a.cfg.Name)
	}
	t.ip = sb.IP
	if !needContainer && container == "" {
		return t, nil
	}
	cs, err := t.rt.ListContainers(ctx, sb.ID)
	if err != nil {
		return nil, fmt.Errorf("list containers: %w", err)
	}
	var best *runtimes.ContainerStatus
	for _, c := range cs {
		if c.Name == container && c.State == runtimes.ContainerRunning && (best == nil || c.Attempt > best.Attempt) {
			best = c
		}
	}
	if best == nil {
		return nil, api.NewBadRequest("container %s of pod %s is not running", container, name)
	}
	t.id, t.logPath = best.ID, best.LogPath
	for _, c := range append(append([]api.Container(nil), p.Spec.InitContainers...), p.Spec.Containers...) {
		if c.Name == container {
			t.spec = c
			for _, cp := range c.Ports {
				if cp.Protocol == "" || cp.Protocol == "TCP" {
					t.ports = append(t.ports, cp.ContainerPort)
				}
			}
		}
	}
	return t, nil
}

// execStatus is the Status an error ends a session with.
func execStatus(err error) *api.Status {
	var st *api.Status
	switch {
	case errors.As(err, &st):
		return st
	case errors.Is(err, runtimes.ErrNotFound):
		return &api.Status{Code: 404, Reason: api.ReasonNotFound, Message: err.Error()}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return &api.Status{Code: 410, Reason: "Gone", Message: err.Error()}
	}
	return &api.Status{Code: 500, Reason: api.ReasonInternal, Message: err.Error()}
}
