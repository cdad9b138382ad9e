package wasmhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// Serve runs a wasm host: it takes Dir's lock (one host per directory),
// starts the wasm runtime on cfg's state (containers that were running when
// an earlier host ended are reported exited, reason AgentRestarted), serves
// the protocol on Dir/host.sock (mode 0600, peers of another uid refused)
// and writes Dir/host.pid. It returns when ctx ends or an agent calls
// Shutdown, after killing every module it runs. version is the kyb build.
func Serve(ctx context.Context, cfg *HostConfig, version string, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Dir == "" {
		return errors.New("wasm host: HostConfig.Dir is required")
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return fmt.Errorf("wasm host: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(cfg.Dir, LockName), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return fmt.Errorf("wasm host: open lock: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		return fmt.Errorf("wasm host: another host holds %s: %w", lock.Name(), err)
	}
	h := &host{cfg: cfg, version: version, log: log, started: time.Now(), hash: cfg.Hash()}
	rt, err := wasm.New(cfg.wasmConfig(h), log)
	if err != nil {
		return fmt.Errorf("wasm host: %w", err)
	}
	h.rt = rt
	sock := filepath.Join(cfg.Dir, SocketName)
	_ = os.Remove(sock) // a dead host's; we hold the lock
	old := syscall.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	syscall.Umask(old)
	if err != nil {
		rt.Close()
		return fmt.Errorf("wasm host: listen: %w", err)
	}
	ln.SetUnlinkOnClose(true)
	if err := os.Chmod(sock, 0o600); err != nil {
		ln.Close()
		rt.Close()
		return fmt.Errorf("wasm host: %w", err)
	}
	pidPath := filepath.Join(cfg.Dir, PIDName)
	if err := os.WriteFile(pidPath, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		ln.Close()
		rt.Close()
		return fmt.Errorf("wasm host: write pid: %w", err)
	}
	srv := rpc.NewServer()
	if err := srv.RegisterName(serviceName, &service{h: h}); err != nil {
		ln.Close()
		rt.Close()
		return fmt.Errorf("wasm host: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	h.shutdown = cancel
	log.Info("wasm host serving", "socket", sock, "pid", os.Getpid(), "version", version, "protocol", Protocol)

	var wg sync.WaitGroup
	wg.Go(func() { rotateLogLoop(ctx, filepath.Join(cfg.Dir, LogName), log) })
	var connsMu sync.Mutex
	conns := map[net.Conn]bool{}
	wg.Go(func() {
		for {
			conn, err := ln.AcceptUnix()
			if err != nil {
				if ctx.Err() == nil {
					log.Error("wasm host: accept", "err", err)
					cancel()
				}
				return
			}
			if err := checkPeer(conn); err != nil {
				log.Warn("wasm host: refusing a connection", "err", err)
				conn.Close()
				continue
			}
			connsMu.Lock()
			conns[conn] = true
			connsMu.Unlock()
			wg.Go(func() {
				defer func() {
					connsMu.Lock()
					delete(conns, conn)
					connsMu.Unlock()
					conn.Close()
				}()
				h.serveConn(srv, conn)
			})
		}
	})
	<-ctx.Done()
	log.Info("wasm host stopping: killing the modules it runs")
	ln.Close()
	rt.Close()
	os.Remove(pidPath)
	connsMu.Lock()
	for c := range conns {
		c.Close()
	}
	connsMu.Unlock()
	wg.Wait()
	return nil
}

// checkPeer refuses a peer that is not of this process's uid (the socket's
// mode already does, for all but root).
func checkPeer(conn *net.UnixConn) error {
	raw, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var cred *syscall.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = syscall.GetsockoptUcred(int(fd), syscall.SOL_SOCKET, syscall.SO_PEERCRED)
	}); err != nil {
		return err
	}
	if cerr != nil {
		return fmt.Errorf("peer credentials: %w", cerr)
	}
	if int(cred.Uid) != os.Getuid() {
		return fmt.Errorf("peer uid %d (pid %d) is not %d", cred.Uid, cred.Pid, os.Getuid())
	}
	return nil
}

// host is a running host's state besides the runtime's.
type host struct {
	cfg      *HostConfig
	rt       *wasm.Runtime
	version  string
	hash     string
	log      *slog.Logger
	started  time.Time
	shutdown func()

	mu      sync.Mutex
	modules *rpc.Client // the newest agent's module store

	execs atomic.Int64 // exec commands running
}

// serveConn serves one connection by its first byte.
func (h *host) serveConn(srv *rpc.Server, conn net.Conn) {
	var b [1]byte
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Read(b[:]); err != nil {
		return
	}
	_ = conn.SetReadDeadline(time.Time{})
	switch b[0] {
	case connControl:
		srv.ServeConn(conn)
	case connModules:
		nc := &notifyConn{Conn: conn, done: make(chan struct{})}
		// The ack tells the agent that calls from now on may fetch
		// through it; it is written under mu, before any request can be.
		h.mu.Lock()
		if _, err := conn.Write([]byte{connAck}); err != nil {
			h.mu.Unlock()
			return
		}
		c := rpc.NewClient(nc)
		old := h.modules
		h.modules = c
		h.mu.Unlock()
		if old != nil {
			old.Close()
		}
		<-nc.done // the client reads the connection until the agent goes
		h.mu.Lock()
		if h.modules == c {
			h.modules = nil
		}
		h.mu.Unlock()
	case connExec:
		h.serveExec(conn)
	default:
		h.log.Warn("wasm host: a connection began with an unknown byte", "byte", b[0])
	}
}

// modulesClient is the newest agent's module store, or an error wrapping
// ErrUnavailable.
func (h *host) modulesClient() (*rpc.Client, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.modules == nil {
		return nil, fmt.Errorf("no agent is connected to fetch kyb:// modules through: %w", runtimes.ErrUnavailable)
	}
	return h.modules, nil
}

// Info implements wasm.ModuleStore through the agent.
func (h *host) Info(ctx context.Context, name string) (wasm.ModuleInfo, error) {
	c, err := h.modulesClient()
	if err != nil {
		return wasm.ModuleInfo{}, err
	}
	var r ModuleInfoReply
	if err := callCtx(ctx, c, moduleService+".Info", ModuleArgs{Name: name}, &r); err != nil {
		return wasm.ModuleInfo{}, err
	}
	return r.Info, nil
}

// Open implements wasm.ModuleStore through the agent.
func (h *host) Open(ctx context.Context, name string) (_ readCloser, _ wasm.ModuleInfo, err error) {
	c, err := h.modulesClient()
	if err != nil {
		return nil, wasm.ModuleInfo{}, err
	}
	var r ModuleOpenReply
	if err := callCtx(ctx, c, moduleService+".Open", ModuleArgs{Name: name}, &r); err != nil {
		return nil, wasm.ModuleInfo{}, err
	}
	return nopCloser{bytes.NewReader(r.Bytes)}, r.Info, nil
}

// callCtx calls method on c, giving up when ctx ends, and decodes the
// reply's error.
func callCtx(ctx context.Context, c *rpc.Client, method string, args any, reply replyWithErr) error {
	call := c.Go(method, args, reply, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", method, ctx.Err())
	}
	if call.Error != nil {
		if errors.Is(call.Error, rpc.ErrShutdown) {
			return fmt.Errorf("%s: connection closed: %w", method, runtimes.ErrUnavailable)
		}
		return fmt.Errorf("%s: %w", method, call.Error)
	}
	return fromWire(reply.wireErr())
}

// service is the net/rpc face of a host.
type service struct{ h *host }

// Hello implements the protocol's Hello.
func (s *service) Hello(a HelloArgs, r *HelloReply) error {
	ctx, cancel := a.context()
	defer cancel()
	sbs, err := s.h.rt.ListSandboxes(ctx)
	r.Err = toWire(err)
	r.Protocol, r.MinProtocol = Protocol, MinProtocol
	r.Version, r.ConfigHash, r.PID, r.StartedAt, r.Sandboxes = s.h.version, s.h.hash, os.Getpid(), s.h.started, len(sbs)
	r.Execs = int(s.h.execs.Load())
	if a.Protocol < MinProtocol {
		r.Err = toWire(fmt.Errorf("agent protocol %d is older than this host's oldest, %d", a.Protocol, MinProtocol))
	}
	return nil
}

// Shutdown kills every module and ends the host, after replying.
func (s *service) Shutdown(a Call, r *Empty) error {
	s.h.log.Info("wasm host: shutdown asked by the agent")
	time.AfterFunc(10*time.Millisecond, s.h.shutdown)
	return nil
}

// Info implements runtimes.Runtime.Info.
func (s *service) Info(a Call, r *InfoReply) error {
	ctx, cancel := a.context()
	defer cancel()
	info, err := s.h.rt.Info(ctx)
	r.Info, r.Err = info, toWire(err)
	return nil
}

// EnsureImage implements runtimes.Runtime.EnsureImage (no progress: the
// host reports the end only, as the wasm runtime does).
func (s *service) EnsureImage(a EnsureImageArgs, r *ImageReply) error {
	ctx, cancel := a.context()
	defer cancel()
	var img *runtimes.Image
	var err error
	if len(a.Auth) > 0 {
		img, err = s.h.rt.EnsureImageWithAuth(ctx, a.Ref, a.Policy, a.Auth, nil)
	} else {
		img, err = s.h.rt.EnsureImage(ctx, a.Ref, a.Policy, nil)
	}
	r.Image, r.Err = img, toWire(err)
	return nil
}

// CreateSandbox implements runtimes.Runtime.CreateSandbox.
func (s *service) CreateSandbox(a CreateSandboxArgs, r *SandboxReply) error {
	ctx, cancel := a.context()
	defer cancel()
	var cfg runtimes.SandboxConfig
	if err := json.Unmarshal(a.Config, &cfg); err != nil {
		r.Err = toWire(fmt.Errorf("create sandbox: decode config: %w", err))
		return nil
	}
	sb, err := s.h.rt.CreateSandbox(ctx, &cfg)
	r.Sandbox, r.Err = sb, toWire(err)
	return nil
}

// RemoveSandbox implements runtimes.Runtime.RemoveSandbox.
func (s *service) RemoveSandbox(a IDArgs, r *Empty) error {
	ctx, cancel := a.context()
	defer cancel()
	r.Err = toWire(s.h.rt.RemoveSandbox(ctx, a.ID))
	return nil
}

// ListSandboxes implements runtimes.Runtime.ListSandboxes.
func (s *service) ListSandboxes(a Call, r *SandboxesReply) error {
	ctx, cancel := a.context()
	defer cancel()
	sbs, err := s.h.rt.ListSandboxes(ctx)
	r.Sandboxes, r.Err = sbs, toWire(err)
	return nil
}

// CreateContainer implements runtimes.Runtime.CreateContainer.
func (s *service) CreateContainer(a CreateContainerArgs, r *StringReply) error {
	ctx, cancel := a.context()
	defer cancel()
	var cfg runtimes.ContainerConfig
	if err := json.Unmarshal(a.Config, &cfg); err != nil {
		r.Err = toWire(fmt.Errorf("create container: decode config: %w", err))
		return nil
	}
	id, err := s.h.rt.CreateContainer(ctx, a.SandboxID, &cfg)
	r.Value, r.Err = id, toWire(err)
	return nil
}

// StartContainer implements runtimes.Runtime.StartContainer. The module
// runs on in the host, whatever becomes of the call's deadline.
func (s *service) StartContainer(a IDArgs, r *Empty) error {
	ctx, cancel := a.context()
	defer cancel()
	r.Err = toWire(s.h.rt.StartContainer(ctx, a.ID))
	return nil
}

// Wait waits at most a.MaxWait (DefaultWaitPoll when 0) for a container's
// end.
func (s *service) Wait(a WaitArgs, r *WaitReply) error {
	ctx, cancel := a.context()
	defer cancel()
	wait := a.MaxWait
	if wait <= 0 || wait > 5*time.Minute {
		wait = DefaultWaitPoll
	}
	ctx, cancelWait := context.WithTimeout(ctx, wait)
	defer cancelWait()
	ch, err := s.h.rt.WaitContainer(ctx, a.ID)
	if err != nil {
		r.Err = toWire(err)
		return nil
	}
	res := <-ch
	if res.Err != nil {
		return nil // not ended yet; the agent asks again
	}
	r.Done, r.ExitCode, r.Reason, r.Message, r.FinishedAt = true, res.ExitCode, res.Reason, res.Message, res.FinishedAt
	return nil
}

// StopContainer implements runtimes.Runtime.StopContainer.
func (s *service) StopContainer(a StopArgs, r *Empty) error {
	ctx, cancel := a.context()
	defer cancel()
	r.Err = toWire(s.h.rt.StopContainer(ctx, a.ID, a.Grace))
	return nil
}

// RemoveContainer implements runtimes.Runtime.RemoveContainer.
func (s *service) RemoveContainer(a IDArgs, r *Empty) error {
	ctx, cancel := a.context()
	defer cancel()
	r.Err = toWire(s.h.rt.RemoveContainer(ctx, a.ID))
	return nil
}

// ContainerStatus implements runtimes.Runtime.ContainerStatus.
func (s *service) ContainerStatus(a IDArgs, r *StatusReply) error {
	ctx, cancel := a.context()
	defer cancel()
	st, err := s.h.rt.ContainerStatus(ctx, a.ID)
	r.Status, r.Err = st, toWire(err)
	return nil
}

// ListContainers implements runtimes.Runtime.ListContainers.
func (s *service) ListContainers(a ListContainersArgs, r *StatusesReply) error {
	ctx, cancel := a.context()
	defer cancel()
	sts, err := s.h.rt.ListContainers(ctx, a.SandboxID)
	r.Statuses, r.Err = sts, toWire(err)
	return nil
}

// ContainerStats implements runtimes.StatsProvider.
func (s *service) ContainerStats(a IDArgs, r *StatsReply) error {
	ctx, cancel := a.context()
	defer cancel()
	st, err := s.h.rt.ContainerStats(ctx, a.ID)
	r.Stats, r.Err = st, toWire(err)
	return nil
}

// ListImages implements runtimes.ImageLister.
func (s *service) ListImages(a Call, r *ImagesReply) error {
	ctx, cancel := a.context()
	defer cancel()
	imgs, err := s.h.rt.ListImages(ctx)
	r.Images, r.Err = imgs, toWire(err)
	return nil
}

// ExecSync implements runtimes.Execer.
func (s *service) ExecSync(a ExecArgs, r *ExecReply) error {
	ctx, cancel := a.context()
	defer cancel()
	res, err := s.h.rt.ExecSync(ctx, a.ID, a.Cmd, a.Timeout)
	r.Exec, r.Err = res, toWire(err)
	return nil
}

// ServeHTTP serves a relayed Service request (runtimes.HTTPServer) and
// sends back the whole response, at most MaxServeBody bytes of it.
func (s *service) ServeHTTP(a ServeArgs, r *ServeReply) error {
	ctx, cancel := a.context()
	defer cancel()
	var srv runtimes.HTTPServer = s.h.rt
	if len(a.Body) > MaxServeBody {
		r.Err = toWire(fmt.Errorf("serve %s: a body of %d bytes is over %d", a.ID, len(a.Body), MaxServeBody))
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, a.Method, a.URL, bytes.NewReader(a.Body))
	if err != nil {
		r.Err = toWire(fmt.Errorf("serve %s: %w", a.ID, err))
		return nil
	}
	if a.Header != nil {
		req.Header = a.Header
	}
	req.Host, req.RemoteAddr, req.ContentLength = a.Host, a.RemoteAddr, int64(len(a.Body))
	w := &bufferedResponse{header: http.Header{}, max: MaxServeBody}
	if err := srv.ServeContainerHTTP(a.ID, a.Port, w, req); err != nil {
		r.Err = toWire(err)
		return nil
	}
	if w.code == 0 {
		w.code = http.StatusOK
	}
	r.Code, r.Header, r.Body = w.code, w.header, w.body.Bytes()
	if w.over {
		r.Code, r.Header, r.Body = http.StatusBadGateway, http.Header{}, []byte("wasm host: response over the relay's limit\n")
	}
	return nil
}

// bufferedResponse is an http.ResponseWriter that keeps the response.
type bufferedResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
	max    int
	over   bool
}

func (b *bufferedResponse) Header() http.Header { return b.header }

func (b *bufferedResponse) WriteHeader(code int) {
	if b.code == 0 {
		b.code = code
	}
}

func (b *bufferedResponse) Write(p []byte) (int, error) {
	if b.code == 0 {
		b.code = http.StatusOK
	}
	if b.body.Len()+len(p) > b.max {
		b.over = true
		return 0, fmt.Errorf("response over %d bytes", b.max)
	}
	return b.body.Write(p)
}

// ProbeHTTP implements runtimes.HTTPProber.
func (s *service) ProbeHTTP(a ProbeArgs, r *ProbeReply) error {
	ctx, cancel := a.context()
	defer cancel()
	if len(a.Body) > MaxProbeBody {
		r.Err = toWire(fmt.Errorf("probe %s: a body of %d bytes is over %d", a.ID, len(a.Body), MaxProbeBody))
		return nil
	}
	req, err := http.NewRequestWithContext(ctx, a.Method, a.URL, bytes.NewReader(a.Body))
	if err != nil {
		r.Err = toWire(fmt.Errorf("probe %s: %w", a.ID, err))
		return nil
	}
	if a.Header != nil {
		req.Header = a.Header
	}
	req.Host = a.Host
	req.RemoteAddr = "127.0.0.1:0"
	code, err := s.h.rt.ProbeHTTP(ctx, a.ID, a.Port, req)
	r.Code, r.Err = code, toWire(err)
	return nil
}
