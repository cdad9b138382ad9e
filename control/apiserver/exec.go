package apiserver

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/execwire"
)

// The apiserver relays exec, attach and port-forward sessions (api/exec.go
// has the protocol): users and nodes live in separate NATS accounts and
// reach only the control plane, which authorizes the session once (RBAC
// create on pods/exec, pods/attach or pods/portforward) and then each frame
// by its sender: a client frame counts only from the session's user, a
// node frame only from the session's node. It holds no data: each frame is
// forwarded as it arrives, and the end-to-end credit window bounds what is
// in flight.

// DefaultExecPing is how often the hops of an exec session ping.
const DefaultExecPing = 2 * time.Second

// maxExecSessionsPerServer bounds the sessions the apiserver relays.
const maxExecSessionsPerServer = 1024

// relaySession is one relayed session.
type relaySession struct {
	id, user, node, reply, kind string
	heardClient, heardNode      atomic.Int64 // unix nanos
	ended                       atomic.Bool
}

// execRelay holds the sessions the apiserver relays.
type execRelay struct {
	mu sync.Mutex
	m  map[string]*relaySession
}

func (r *execRelay) get(id string) *relaySession {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[id]
}

// take removes session id and returns it (nil when gone already).
func (r *execRelay) take(id string) *relaySession {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.m[id]
	delete(r.m, id)
	return s
}

// newSessionID returns 128 random bits in hex: unguessable.
func newSessionID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// execResource is the RBAC subresource of a session kind.
func execResource(kind string) string {
	switch kind {
	case api.SessionAttach:
		return "pods/attach"
	case api.SessionPortForward:
		return "pods/portforward"
	}
	return "pods/exec"
}

// checkExecRequest checks r's fields for kind, naming the field at fault.
func checkExecRequest(kind string, r *api.ExecRequest) error {
	var err error
	r.Namespace, err = checkPodRef(r.Namespace, r.Pod)
	if err == nil && r.Container != "" {
		err = checkLabel("container", r.Container)
	}
	if err != nil {
		return err
	}
	switch kind {
	case api.SessionExec:
		if len(r.Command) == 0 {
			return api.NewBadRequest("command: required (kyb exec POD -- COMMAND...)")
		}
		if len(r.Command) > api.MaxExecArgs {
			return api.NewBadRequest("command: %d arguments exceed the limit of %d", len(r.Command), api.MaxExecArgs)
		}
		n := 0
		for _, a := range r.Command {
			n += len(a)
		}
		if n > api.MaxExecArgBytes {
			return api.NewBadRequest("command: %d bytes exceed the limit of %d", n, api.MaxExecArgBytes)
		}
		if r.Command[0] == "" {
			return api.NewBadRequest("command[0]: must not be empty")
		}
		if r.Port != 0 {
			return api.NewBadRequest("port: only for port-forward")
		}
	case api.SessionPortForward:
		if r.Port < 1 || r.Port > 65535 {
			return api.NewBadRequest("port: %d is not a TCP port (1-65535)", r.Port)
		}
		if len(r.Command) > 0 || r.TTY || r.Size != nil {
			return api.NewBadRequest("command, tty, size: not for port-forward")
		}
	case api.SessionAttach:
		if len(r.Command) > 0 || r.Port != 0 {
			return api.NewBadRequest("command, port: not for attach")
		}
	}
	if r.Size != nil && (r.Size.Width == 0 || r.Size.Height == 0) {
		return api.NewBadRequest("size: width and height must be positive")
	}
	return nil
}

// execPod checks that the pod exists, runs on a node and that the
// session's container is running; it returns the pod's node, UID and the
// container (picked when not named).
func (s *Server) execPod(kind string, r *api.ExecRequest) (node, uid, container string, err error) {
	e := s.cache.get(podKind, r.Namespace, r.Pod)
	if e == nil {
		return "", "", "", api.NewNotFound("Pod", r.Pod)
	}
	p := e.obj.(*api.Pod)
	if p.DeletionTimestamp != nil {
		return "", "", "", api.NewBadRequest("pod %s is being deleted", r.Pod)
	}
	switch p.Status.Phase {
	case api.PodSucceeded, api.PodFailed:
		return "", "", "", api.NewBadRequest("cannot %s into a container in a completed pod; current phase is %s", kind, p.Status.Phase)
	}
	if p.Spec.NodeName == "" {
		return "", "", "", api.NewBadRequest("pod %s is not scheduled to a node yet", r.Pod)
	}
	container = r.Container
	if kind == api.SessionPortForward && container == "" {
		// The container that declares the port (a wasm pod serves only
		// what it declares), else the first.
		for _, c := range p.Spec.Containers {
			for _, cp := range c.Ports {
				if cp.ContainerPort == r.Port && container == "" {
					container = c.Name
				}
			}
		}
		if container == "" && len(p.Spec.Containers) > 0 {
			container = p.Spec.Containers[0].Name
		}
	}
	if container, _, _, err = s.logContainer(r.Namespace, r.Pod, container); err != nil {
		return "", "", "", err
	}
	running := false
	for _, cs := range append(append([]api.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
		if cs.Name == container && cs.State.Running != nil {
			running = true
		}
	}
	if !running {
		return "", "", "", api.NewBadRequest("container %s of pod %s is not running", container, r.Pod)
	}
	if kind == api.SessionAttach {
		for _, c := range append(append([]api.Container(nil), p.Spec.InitContainers...), p.Spec.Containers...) {
			if c.Name != container {
				continue
			}
			if r.Stdin && !c.Stdin {
				return "", "", "", api.NewBadRequest("container %s was not created with stdin: true; attach without -i for its output", container)
			}
			// As kubectl: -t to a container without a terminal attaches
			// without one.
			r.TTY = r.TTY && c.TTY
			if !r.TTY {
				r.Size = nil
			}
		}
	}
	return p.Spec.NodeName, p.UID, container, nil
}

// handleSession opens a session of kind.
func (s *Server) handleSession(kind string) func(micro.Request) {
	return func(req micro.Request) {
		var r api.ExecRequest
		if err := decodeBody(req.Data(), &r, "ExecRequest"); err != nil {
			syncErr(req, err)
			return
		}
		err := checkExecRequest(kind, &r)
		if err == nil {
			err = s.authorize(req, api.VerbCreate, execResource(kind), r.Namespace, r.Pod)
		}
		if err == nil && req.Reply() == "" {
			err = api.NewBadRequest("%s is a streamed reply: send it as a request (with a reply subject)", kind)
		}
		var node, uid, container string
		if err == nil {
			node, uid, container, err = s.execPod(kind, &r)
		}
		var who string
		if err == nil {
			id, ierr := s.identify(req)
			err, who = ierr, id.Name
		}
		if err != nil {
			syncErr(req, err)
			return
		}
		if err := s.openSession(kind, who, node, uid, container, req.Reply(), &r); err != nil {
			syncErr(req, err)
		}
	}
}

// openSession registers the session and asks the node to start it.
func (s *Server) openSession(kind, user, node, uid, container, reply string, r *api.ExecRequest) error {
	id, err := newSessionID()
	if err != nil {
		return err
	}
	ping := s.cfg.ExecPing
	if ping <= 0 {
		ping = DefaultExecPing
	}
	rs := &relaySession{id: id, user: user, node: node, reply: reply, kind: kind}
	now := time.Now().UnixNano()
	rs.heardClient.Store(now)
	rs.heardNode.Store(now)
	s.execs.mu.Lock()
	if len(s.execs.m) >= maxExecSessionsPerServer {
		s.execs.mu.Unlock()
		return api.NewUnavailable("too many exec sessions open (%d); retry", maxExecSessionsPerServer)
	}
	s.execs.m[id] = rs
	s.execs.mu.Unlock()
	if !s.track() {
		s.execs.take(id)
		return api.NewUnavailable("apiserver is shutting down; retry")
	}
	start, _ := json.Marshal(api.ExecStart{
		Session: id, Kind: kind, Namespace: r.Namespace, Pod: r.Pod, UID: uid, Container: container,
		Command: r.Command, Stdin: r.Stdin, TTY: r.TTY, Size: r.Size, Port: r.Port,
		PingMillis: ping.Milliseconds(),
	})
	if err := s.nc.PublishMsg(execwire.Msg(api.AgentSubject(node, api.AgentVerbExec), id, api.FrameStart, start)); err != nil {
		s.execs.take(id)
		s.wg.Done()
		return api.NewUnavailable("reach node %s: %v", node, err)
	}
	go func() {
		defer s.wg.Done()
		s.watchSession(rs, ping)
	}()
	return nil
}

// watchSession ends a session whose client or node went silent.
func (s *Server) watchSession(rs *relaySession, ping time.Duration) {
	t := time.NewTicker(ping)
	defer t.Stop()
	idle := api.ExecIdlePings * ping
	for {
		select {
		case <-s.ctx.Done():
			s.endSession(rs.id, api.NewUnavailable("apiserver is shutting down"))
			return
		case <-t.C:
		}
		if rs.ended.Load() {
			return
		}
		now := time.Now()
		switch {
		case now.Sub(time.Unix(0, rs.heardNode.Load())) > idle:
			s.endSession(rs.id, api.NewUnavailable("node %s stopped answering for session %s", rs.node, rs.id))
			return
		case now.Sub(time.Unix(0, rs.heardClient.Load())) > idle:
			// The client is likely gone; if it is not, it learns why.
			s.endSession(rs.id, &api.Status{Code: 408, Reason: "Timeout",
				Message: fmt.Sprintf("session %s: the client went silent for %s", rs.id, idle)})
			return
		}
	}
}

// endSession removes session id, tells its node to close it and, with st,
// ends the client's stream with that error.
func (s *Server) endSession(id string, st *api.Status) {
	rs := s.execs.take(id)
	if rs == nil {
		return
	}
	rs.ended.Store(true)
	_ = s.nc.PublishMsg(execwire.Msg(api.AgentSubject(rs.node, api.AgentVerbExec), id, api.FrameClose, nil))
	if st != nil {
		b, _ := json.Marshal(api.ExecExit{ExitCode: -1, Error: st})
		_ = s.nc.PublishMsg(execwire.Msg(rs.reply, id, api.FrameExit, b))
	}
}

// clientFrames are what a client may send in a session.
var clientFrames = map[string]bool{
	api.FrameStdin: true, api.FrameResize: true, api.FrameCredit: true, api.FramePing: true, api.FrameClose: true,
}

// nodeFrames are what a node may send in a session.
var nodeFrames = map[string]bool{
	api.FrameStarted: true, api.FrameStdout: true, api.FrameStderr: true, api.FrameCredit: true,
	api.FramePing: true, api.FrameExit: true,
}

// handleExecInput relays a client's frame to the session's node. A frame
// of another user's session is treated as one of no session: 404, and
// nothing is relayed.
func (s *Server) handleExecInput(req micro.Request) {
	h := nats.Header(req.Headers())
	id, frame := h.Get(api.ExecSessionHeader), h.Get(api.ExecFrameHeader)
	fail := func(err error) {
		if req.Reply() != "" {
			syncErr(req, err)
		}
	}
	if !clientFrames[frame] {
		fail(api.NewBadRequest("%s: %q is not a client frame", api.ExecFrameHeader, frame))
		return
	}
	if len(req.Data()) > api.ExecChunk {
		fail(api.NewBadRequest("frame of %d bytes exceeds %d", len(req.Data()), api.ExecChunk))
		return
	}
	who, err := s.identify(req)
	if err != nil {
		fail(err)
		return
	}
	rs := s.execs.get(id)
	if rs == nil || rs.user != who.Name {
		fail(api.NewNotFound("ExecSession", truncID(id, 64)))
		return
	}
	rs.heardClient.Store(time.Now().UnixNano())
	m := execwire.Msg(api.AgentSubject(rs.node, api.AgentVerbExec), id, frame, req.Data())
	if frame == api.FrameCredit {
		m.Header.Set(api.ExecCreditHeader, h.Get(api.ExecCreditHeader))
	}
	if err := s.nc.PublishMsg(m); err != nil {
		fail(api.NewUnavailable("relay to node %s: %v", rs.node, err))
		return
	}
	if frame == api.FrameClose {
		if rs := s.execs.take(id); rs != nil {
			rs.ended.Store(true)
		}
	}
	if req.Reply() != "" {
		s.reply(req.Reply(), ackOK)
	}
}

// handleNodeExec relays a node's frame to the session's client; a node
// may speak only in its own sessions.
func (s *Server) handleNodeExec(req micro.Request) {
	node, err := nodeOf(req.Subject())
	if err != nil {
		return
	}
	h := nats.Header(req.Headers())
	id, frame := h.Get(api.ExecSessionHeader), h.Get(api.ExecFrameHeader)
	if !nodeFrames[frame] || len(req.Data()) > api.ExecChunk {
		return
	}
	rs := s.execs.get(id)
	if rs == nil {
		return
	}
	if rs.node != node {
		s.log.Warn("node frame of another node's exec session dropped", "node", node, "session_node", rs.node)
		return
	}
	rs.heardNode.Store(time.Now().UnixNano())
	m := execwire.Msg(rs.reply, id, frame, req.Data())
	if frame == api.FrameCredit {
		m.Header.Set(api.ExecCreditHeader, h.Get(api.ExecCreditHeader))
	}
	if frame == api.FrameExit {
		if s.execs.take(id) != nil {
			rs.ended.Store(true)
		}
	}
	if err := s.nc.PublishMsg(m); err != nil {
		s.log.Debug("exec: relay to client", "session", id, "err", err)
	}
}

func truncID(s string, n int) string {
	if len(s) > n {
		return s[:n] + "..."
	}
	return s
}
