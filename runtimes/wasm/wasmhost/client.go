package wasmhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/rpc"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// Options configure a Client.
type Options struct {
	// Host is the configuration of the host the client starts; its Dir
	// is where the client looks for a running one. Required.
	Host HostConfig
	// Command starts a host detached from the agent: the program and its
	// arguments, e.g. {os.Executable(), "wasm-host", "--dir", Host.Dir}.
	// Required.
	Command []string
	// Version is the agent's kyb build; a host of another build (or
	// another configuration) is kept while it holds pods and replaced
	// when it holds none.
	Version string
	// Modules serves kyb:// modules to the host; nil makes them
	// unsupported.
	Modules wasm.ModuleStore
	// StartTimeout bounds how long a new host may take to answer; 15s
	// when zero.
	StartTimeout time.Duration
	// WaitPoll is how long one Wait long poll lasts; DefaultWaitPoll when
	// zero.
	WaitPoll time.Duration
}

// Client is the wasm runtime of an agent whose modules run in a host
// process: it implements runtimes.Runtime (and the wasm runtime's optional
// interfaces) by calls to the host, which it finds (and adopts) or starts.
// When the host dies, the next call starts a new one, which reports the
// containers it ran as exited with reason AgentRestarted. Safe for
// concurrent use.
type Client struct {
	opts Options
	log  *slog.Logger
	mods *rpc.Server // the agent's module store, served to the host

	mu      sync.Mutex
	rc      *rpc.Client
	modConn net.Conn
	gen     uint64
	hello   HelloReply
	closed  bool
}

var (
	_ runtimes.Runtime       = (*Client)(nil)
	_ runtimes.ImageLister   = (*Client)(nil)
	_ runtimes.StatsProvider = (*Client)(nil)
	_ runtimes.Execer        = (*Client)(nil)
	_ runtimes.HTTPProber    = (*Client)(nil)
	_ runtimes.HTTPServer    = (*Client)(nil)
	_ runtimes.AuthPuller    = (*Client)(nil)
)

// Open returns a client of the host in opts.Host.Dir: it adopts a running
// host (what it runs keeps running) or starts one. log may be nil. Close
// the client when done; the host keeps running.
func Open(ctx context.Context, opts Options, log *slog.Logger) (*Client, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if opts.Host.Dir == "" || len(opts.Command) == 0 {
		return nil, errors.New("wasm host client: Options.Host.Dir and Options.Command are required")
	}
	if opts.StartTimeout <= 0 {
		opts.StartTimeout = 15 * time.Second
	}
	if opts.WaitPoll <= 0 {
		opts.WaitPoll = DefaultWaitPoll
	}
	if err := os.MkdirAll(opts.Host.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("wasm host client: %w", err)
	}
	if err := os.Chmod(opts.Host.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("wasm host client: %w", err)
	}
	c := &Client{opts: opts, log: log, mods: rpc.NewServer()}
	max := opts.Host.MaxModuleBytes
	if max <= 0 {
		max = wasm.DefaultMaxModuleBytes
	}
	if err := c.mods.RegisterName(moduleService, &moduleServer{store: opts.Modules, max: max}); err != nil {
		return nil, fmt.Errorf("wasm host client: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.connectLocked(ctx, true); err != nil {
		return nil, err
	}
	return c, nil
}

// errClosed is the error of a call on a closed client.
var errClosed = fmt.Errorf("wasm host client closed: %w", runtimes.ErrUnavailable)

// Connect returns a client of the host of dir that starts nothing and
// serves no module store: for tools and tests that look at what a host
// holds. Calls fail with ErrUnavailable while no host answers.
func Connect(ctx context.Context, dir string) (*Client, error) {
	c := &Client{opts: Options{Host: HostConfig{Dir: dir}, StartTimeout: 15 * time.Second, WaitPoll: DefaultWaitPoll}, log: slog.New(slog.DiscardHandler)}
	rc, hr, err := c.dial()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, runtimes.ErrUnavailable)
	}
	c.rc, c.hello, c.gen = rc, hr, 1
	return c, nil
}

// Close closes the connection to the host, which keeps running what it
// runs.
func (c *Client) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	c.dropLocked()
	return nil
}

// Shutdown asks the host to kill every module and exit, and waits until it
// has (it released its lock).
func (c *Client) Shutdown(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rc == nil {
		return StopHost(ctx, c.opts.Host.Dir)
	}
	return c.shutdownLocked(ctx)
}

// StopHost asks the host of dir, if one answers, to kill every module and
// exit, and waits until it has. It starts nothing.
func StopHost(ctx context.Context, dir string) error {
	conn, err := net.DialTimeout("unix", filepath.Join(dir, SocketName), 2*time.Second)
	if err != nil {
		return nil // none answers
	}
	defer conn.Close()
	if _, err := conn.Write([]byte{connControl}); err != nil {
		return fmt.Errorf("stop wasm host: %w", err)
	}
	rc := rpc.NewClient(conn)
	defer rc.Close()
	call := rc.Go(serviceName+".Shutdown", Call{}, &Empty{}, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case <-ctx.Done():
		return fmt.Errorf("stop wasm host: no answer: %w", ctx.Err())
	}
	if err := call.Error; err != nil && !connError(err) {
		return fmt.Errorf("stop wasm host: %w", err)
	}
	return waitUnlocked(ctx, dir, 15*time.Second)
}

func (c *Client) shutdownLocked(ctx context.Context) error {
	call := c.rc.Go(serviceName+".Shutdown", Call{}, &Empty{}, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case <-ctx.Done():
		return fmt.Errorf("wasm host: shutdown: no answer: %w", ctx.Err())
	case <-time.After(c.opts.StartTimeout):
		return fmt.Errorf("wasm host: shutdown: no answer within %v", c.opts.StartTimeout)
	}
	if err := call.Error; err != nil && !connError(err) {
		return fmt.Errorf("wasm host: shutdown: %w", err)
	}
	c.dropLocked()
	return waitUnlocked(ctx, c.opts.Host.Dir, c.opts.StartTimeout)
}

// HostPID is the process ID of the host the client talks to (0 when it
// has none now).
func (c *Client) HostPID() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rc == nil {
		return 0
	}
	return c.hello.PID
}

func (c *Client) dropLocked() {
	if c.rc != nil {
		c.rc.Close()
		c.rc = nil
	}
	if c.modConn != nil {
		c.modConn.Close()
		c.modConn = nil
	}
}

// lockHeld says whether a process holds dir's host lock.
func lockHeld(dir string) bool {
	f, err := os.OpenFile(filepath.Join(dir, LockName), os.O_RDWR, 0)
	if err != nil {
		return false
	}
	defer f.Close() // releases the lock if we got it
	return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) != nil
}

// killHung kills the host that holds the lock but does not answer (the pid
// of host.pid, if its command line is a wasm host of this directory) and
// waits until the lock is free.
func (c *Client) killHung(ctx context.Context) error {
	dir := c.opts.Host.Dir
	if !lockHeld(dir) {
		return nil
	}
	pid := ReadPID(dir)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	args := strings.Split(string(b), "\x00")
	if pid <= 0 || err != nil || !slices.Contains(args, "wasm-host") || !slices.Contains(args, dir) {
		return fmt.Errorf("wasm host: %s is locked by a process that does not answer, and %s names no wasm host of it (pid %d)", filepath.Join(dir, LockName), filepath.Join(dir, PIDName), pid)
	}
	c.log.Warn("killing a wasm host that holds its directory but does not answer; its pods restart", "pid", pid, "dir", dir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("wasm host: kill hung host %d: %w", pid, err)
	}
	return waitUnlocked(ctx, dir, c.opts.StartTimeout)
}

// waitUnlocked waits until no process holds dir's host lock.
func waitUnlocked(ctx context.Context, dir string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		f, err := os.OpenFile(filepath.Join(dir, LockName), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return fmt.Errorf("wasm host: open lock: %w", err)
		}
		err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		f.Close() // releases the lock if we got it
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("wasm host: still holds its lock %s after %v", filepath.Join(dir, LockName), timeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// connectLocked connects to the host of Dir, starting one when none
// answers. first is the agent's first connection: a host that differs
// from what this agent would start is replaced then, if it holds no pods.
func (c *Client) connectLocked(ctx context.Context, first bool) error {
	rc, hr, err := c.dial()
	if err != nil && lockHeld(c.opts.Host.Dir) {
		// A host holds the directory but does not answer: it may be
		// starting; else it is hung, and is killed (its pods restart).
		deadline := time.Now().Add(c.opts.StartTimeout)
		for err != nil && lockHeld(c.opts.Host.Dir) && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
			rc, hr, err = c.dial()
		}
		if err != nil {
			if kerr := c.killHung(ctx); kerr != nil {
				return kerr
			}
		}
	}
	if err != nil {
		c.log.Info("no wasm host answers; starting one", "dir", c.opts.Host.Dir, "err", err)
		if rc, hr, err = c.spawn(ctx); err != nil {
			return err
		}
	} else {
		c.rc, c.hello = rc, hr
		replace := ""
		switch {
		case hr.Protocol < MinProtocol || hr.MinProtocol > Protocol:
			replace = fmt.Sprintf("it speaks protocol %d..%d, this agent %d..%d; its pods restart", hr.MinProtocol, hr.Protocol, MinProtocol, Protocol)
		case first && (hr.Version != c.opts.Version || hr.ConfigHash != c.opts.Host.Hash()):
			if hr.Sandboxes == 0 {
				replace = "it runs another build or configuration and holds no pods"
			} else {
				c.log.Warn("adopting a wasm host of another build or configuration: it keeps serving its pods (and new ones) until it holds none; drain the node and restart the agent to replace it now",
					"host_version", hr.Version, "agent_version", c.opts.Version, "host_config", hr.ConfigHash, "agent_config", c.opts.Host.Hash(), "sandboxes", hr.Sandboxes)
			}
		}
		if replace != "" {
			c.log.Warn("replacing the wasm host", "pid", hr.PID, "why", replace)
			if err := c.shutdownLocked(ctx); err != nil {
				return err
			}
			if rc, hr, err = c.spawn(ctx); err != nil {
				return err
			}
		} else {
			c.log.Info("adopted the wasm host", "pid", hr.PID, "version", hr.Version, "sandboxes", hr.Sandboxes, "since", hr.StartedAt)
		}
	}
	c.rc, c.hello = rc, hr
	c.gen++
	if err := c.serveModulesLocked(); err != nil {
		c.dropLocked()
		return err
	}
	return nil
}

// dial connects to the host's socket and says hello.
func (c *Client) dial() (*rpc.Client, HelloReply, error) {
	sock := filepath.Join(c.opts.Host.Dir, SocketName)
	conn, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		return nil, HelloReply{}, fmt.Errorf("dial wasm host: %w", err)
	}
	if _, err := conn.Write([]byte{connControl}); err != nil {
		conn.Close()
		return nil, HelloReply{}, fmt.Errorf("dial wasm host: %w", err)
	}
	rc := rpc.NewClient(conn)
	var hr HelloReply
	call := rc.Go(serviceName+".Hello", HelloArgs{Protocol: Protocol, AgentVersion: c.opts.Version}, &hr, make(chan *rpc.Call, 1))
	select {
	case <-call.Done:
	case <-time.After(c.opts.StartTimeout):
		rc.Close()
		return nil, HelloReply{}, errors.New("wasm host: no answer to hello")
	}
	if call.Error != nil {
		rc.Close()
		return nil, HelloReply{}, fmt.Errorf("wasm host: hello: %w", call.Error)
	}
	if err := fromWire(hr.Err); err != nil {
		rc.Close()
		return nil, HelloReply{}, fmt.Errorf("wasm host: hello: %w", err)
	}
	return rc, hr, nil
}

// serveModulesLocked opens the connection on which the host calls the
// agent's module store.
func (c *Client) serveModulesLocked() error {
	conn, err := net.DialTimeout("unix", filepath.Join(c.opts.Host.Dir, SocketName), 2*time.Second)
	if err != nil {
		return fmt.Errorf("wasm host: module connection: %w", err)
	}
	if _, err := conn.Write([]byte{connModules}); err != nil {
		conn.Close()
		return fmt.Errorf("wasm host: module connection: %w", err)
	}
	var ack [1]byte
	_ = conn.SetReadDeadline(time.Now().Add(c.opts.StartTimeout))
	if _, err := io.ReadFull(conn, ack[:]); err != nil || ack[0] != connAck {
		conn.Close()
		return fmt.Errorf("wasm host: module connection: no acknowledgement (%v)", err)
	}
	_ = conn.SetReadDeadline(time.Time{})
	c.modConn = conn
	go c.mods.ServeConn(conn)
	return nil
}

// spawn starts a host detached from the agent (its own session and process
// group, so that neither a signal to the agent's group nor the agent's
// death reaches it, as containerd starts its shims) and connects to it.
func (c *Client) spawn(ctx context.Context) (*rpc.Client, HelloReply, error) {
	h := c.opts.Host
	if err := h.write(); err != nil {
		return nil, HelloReply{}, err
	}
	logPath := filepath.Join(h.Dir, LogName)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, HelloReply{}, fmt.Errorf("start wasm host: %w", err)
	}
	cmd := exec.Command(c.opts.Command[0], c.opts.Command[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	logf.Close()
	if err != nil {
		return nil, HelloReply{}, fmt.Errorf("start wasm host %s: %w", c.opts.Command[0], err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reaps it if it dies while this agent lives
	deadline := time.Now().Add(c.opts.StartTimeout)
	for {
		rc, hr, err := c.dial()
		if err == nil {
			if hr.PID != cmd.Process.Pid {
				// Another agent's host took the directory first; ours
				// must not take it over later, when that one ends.
				c.log.Warn("another wasm host answered than the one started; stopping ours", "started", cmd.Process.Pid, "answered", hr.PID)
				_ = cmd.Process.Kill()
				if exited != nil {
					<-exited
				}
			}
			c.log.Info("started the wasm host", "pid", hr.PID, "log", logPath)
			return rc, hr, nil
		}
		select {
		case werr := <-exited:
			if !lockHeld(h.Dir) {
				return nil, HelloReply{}, fmt.Errorf("start wasm host: it exited (%v): %s", werr, tail(logPath))
			}
			// Another host took the directory first (another agent
			// started it at the same moment): talk to that one.
			exited = nil
		case <-ctx.Done():
			return nil, HelloReply{}, fmt.Errorf("start wasm host: %w", ctx.Err())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, HelloReply{}, fmt.Errorf("start wasm host: no answer on its socket within %v (pid %d): %w; log: %s", c.opts.StartTimeout, cmd.Process.Pid, err, tail(logPath))
		}
	}
}

// tail is the end of a log file, for an error message.
func tail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	if len(b) > 1024 {
		b = b[len(b)-1024:]
	}
	return strings.TrimSpace(string(b))
}

// conn returns the connection to the host, connecting (and starting a host)
// when there is none.
func (c *Client) conn(ctx context.Context) (*rpc.Client, uint64, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, 0, errClosed
	}
	if c.rc == nil && len(c.opts.Command) == 0 {
		rc, hr, err := c.dial()
		if err != nil {
			return nil, 0, fmt.Errorf("%w: %w", err, runtimes.ErrUnavailable)
		}
		c.rc, c.hello = rc, hr
		c.gen++
	}
	if c.rc == nil {
		if err := c.connectLocked(ctx, false); err != nil {
			return nil, 0, fmt.Errorf("%w: %w", err, runtimes.ErrUnavailable)
		}
	}
	return c.rc, c.gen, nil
}

// broken drops connection gen after a failure on it.
func (c *Client) broken(gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gen == gen && c.rc != nil {
		c.log.Warn("lost the wasm host connection", "pid", c.hello.PID)
		c.dropLocked()
	}
}

// connError says whether err ended a call because the connection did.
func connError(err error) bool {
	var se rpc.ServerError
	return err != nil && !errors.As(err, &se)
}

// call calls method on the host; a call that failed with its connection is
// tried once more on a new one when retry is set (for calls that may be
// repeated). The host's errors come back with their classes.
func (c *Client) call(ctx context.Context, method string, args any, reply replyWithErr, retry bool) error {
	for attempt := 0; ; attempt++ {
		rc, gen, err := c.conn(ctx)
		if err != nil {
			return fmt.Errorf("wasm host %s: %w", method, err)
		}
		call := rc.Go(serviceName+"."+method, args, reply, make(chan *rpc.Call, 1))
		select {
		case <-call.Done:
		case <-ctx.Done():
			return fmt.Errorf("wasm host %s: %w", method, ctx.Err())
		}
		if call.Error != nil {
			if connError(call.Error) {
				c.broken(gen)
				if retry && attempt == 0 {
					continue
				}
				return fmt.Errorf("wasm host %s: %v: %w", method, call.Error, runtimes.ErrUnavailable)
			}
			return fmt.Errorf("wasm host %s: %w", method, call.Error)
		}
		return fromWire(reply.wireErr())
	}
}

func callOf(ctx context.Context) Call {
	d, _ := ctx.Deadline()
	return Call{Deadline: d}
}

// Info implements runtimes.Runtime.
func (c *Client) Info(ctx context.Context) (runtimes.Info, error) {
	var r InfoReply
	err := c.call(ctx, "Info", callOf(ctx), &r, true)
	return r.Info, err
}

// EnsureImage implements runtimes.Runtime; progress hears the end only.
func (c *Client) EnsureImage(ctx context.Context, ref string, policy runtimes.PullPolicy, progress func(runtimes.PullProgress)) (*runtimes.Image, error) {
	return c.EnsureImageWithAuth(ctx, ref, policy, nil, progress)
}

// EnsureImageWithAuth implements runtimes.AuthPuller: the host pulls with
// the pod's pull secrets' logins.
func (c *Client) EnsureImageWithAuth(ctx context.Context, ref string, policy runtimes.PullPolicy, auth []runtimes.RegistryAuth, progress func(runtimes.PullProgress)) (*runtimes.Image, error) {
	var r ImageReply
	if err := c.call(ctx, "EnsureImage", EnsureImageArgs{Call: callOf(ctx), Ref: ref, Policy: policy, Auth: auth}, &r, true); err != nil {
		return nil, err
	}
	if progress != nil && r.Image != nil {
		progress(runtimes.PullProgress{Ref: ref, Done: r.Image.Size, Total: r.Image.Size, Layers: 1, LayersDone: 1})
	}
	return r.Image, nil
}

// CreateSandbox implements runtimes.Runtime.
func (c *Client) CreateSandbox(ctx context.Context, cfg *runtimes.SandboxConfig) (*runtimes.Sandbox, error) {
	if cfg == nil {
		return nil, errors.New("create sandbox: no config")
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return nil, fmt.Errorf("create sandbox: %w", err)
	}
	var r SandboxReply
	if err := c.call(ctx, "CreateSandbox", CreateSandboxArgs{Call: callOf(ctx), Config: b}, &r, false); err != nil {
		return nil, err
	}
	return r.Sandbox, nil
}

// RemoveSandbox implements runtimes.Runtime.
func (c *Client) RemoveSandbox(ctx context.Context, id string) error {
	return c.call(ctx, "RemoveSandbox", IDArgs{Call: callOf(ctx), ID: id}, &Empty{}, true)
}

// ListSandboxes implements runtimes.Runtime.
func (c *Client) ListSandboxes(ctx context.Context) ([]*runtimes.Sandbox, error) {
	var r SandboxesReply
	err := c.call(ctx, "ListSandboxes", callOf(ctx), &r, true)
	return r.Sandboxes, err
}

// CreateContainer implements runtimes.Runtime.
func (c *Client) CreateContainer(ctx context.Context, sandboxID string, cfg *runtimes.ContainerConfig) (string, error) {
	if cfg == nil {
		return "", errors.New("create container: no config")
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return "", fmt.Errorf("create container %s: %w", cfg.Name, err)
	}
	var r StringReply
	err = c.call(ctx, "CreateContainer", CreateContainerArgs{Call: callOf(ctx), SandboxID: sandboxID, Config: b}, &r, false)
	return r.Value, err
}

// StartContainer implements runtimes.Runtime.
func (c *Client) StartContainer(ctx context.Context, id string) error {
	return c.call(ctx, "StartContainer", IDArgs{Call: callOf(ctx), ID: id}, &Empty{}, false)
}

// WaitContainer implements runtimes.Runtime by long polls of the host.
// While the host cannot be reached the client keeps asking (starting a new
// host, which reports the container exited with reason AgentRestarted);
// the channel yields an error only when ctx ends or the container is gone.
func (c *Client) WaitContainer(ctx context.Context, id string) (<-chan runtimes.ExitResult, error) {
	if _, err := c.ContainerStatus(ctx, id); err != nil {
		return nil, fmt.Errorf("wait container: %w", err)
	}
	ch := make(chan runtimes.ExitResult, 1)
	go func() {
		back := 50 * time.Millisecond
		for {
			var r WaitReply
			err := c.call(ctx, "Wait", WaitArgs{ID: id, MaxWait: c.opts.WaitPoll}, &r, true)
			switch {
			case ctx.Err() != nil:
				ch <- runtimes.ExitResult{Err: fmt.Errorf("wait container %s: %w", id, ctx.Err())}
				return
			case errors.Is(err, errClosed):
				ch <- runtimes.ExitResult{Err: fmt.Errorf("wait container %s: %w", id, err)}
				return
			case err == nil && r.Done:
				ch <- runtimes.ExitResult{ExitCode: r.ExitCode, Reason: r.Reason, Message: r.Message, FinishedAt: r.FinishedAt}
				return
			case err == nil:
				back = 50 * time.Millisecond
				continue
			case !errors.Is(err, runtimes.ErrUnavailable):
				ch <- runtimes.ExitResult{Err: fmt.Errorf("wait container %s: %w", id, err)}
				return
			}
			t := time.NewTimer(back)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
			back = min(2*back, 2*time.Second)
		}
	}()
	return ch, nil
}

// StopContainer implements runtimes.Runtime.
func (c *Client) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	return c.call(ctx, "StopContainer", StopArgs{Call: callOf(ctx), ID: id, Grace: grace}, &Empty{}, true)
}

// RemoveContainer implements runtimes.Runtime.
func (c *Client) RemoveContainer(ctx context.Context, id string) error {
	return c.call(ctx, "RemoveContainer", IDArgs{Call: callOf(ctx), ID: id}, &Empty{}, true)
}

// ContainerStatus implements runtimes.Runtime.
func (c *Client) ContainerStatus(ctx context.Context, id string) (*runtimes.ContainerStatus, error) {
	var r StatusReply
	if err := c.call(ctx, "ContainerStatus", IDArgs{Call: callOf(ctx), ID: id}, &r, true); err != nil {
		return nil, err
	}
	return r.Status, nil
}

// ListContainers implements runtimes.Runtime.
func (c *Client) ListContainers(ctx context.Context, sandboxID string) ([]*runtimes.ContainerStatus, error) {
	var r StatusesReply
	err := c.call(ctx, "ListContainers", ListContainersArgs{Call: callOf(ctx), SandboxID: sandboxID}, &r, true)
	return r.Statuses, err
}

// ContainerStats implements runtimes.StatsProvider.
func (c *Client) ContainerStats(ctx context.Context, id string) (*runtimes.Stats, error) {
	var r StatsReply
	if err := c.call(ctx, "ContainerStats", IDArgs{Call: callOf(ctx), ID: id}, &r, true); err != nil {
		return nil, err
	}
	return r.Stats, nil
}

// ListImages implements runtimes.ImageLister.
func (c *Client) ListImages(ctx context.Context) ([]*runtimes.Image, error) {
	var r ImagesReply
	err := c.call(ctx, "ListImages", callOf(ctx), &r, true)
	return r.Images, err
}

// ExecSync implements runtimes.Execer.
func (c *Client) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*runtimes.ExecResult, error) {
	var r ExecReply
	if err := c.call(ctx, "ExecSync", ExecArgs{Call: callOf(ctx), ID: id, Cmd: cmd, Timeout: timeout}, &r, false); err != nil {
		return nil, err
	}
	return r.Exec, nil
}

// ProbeHTTP implements runtimes.HTTPProber: the request (its body at most
// MaxProbeBody bytes) is served by the container's handler in the host.
func (c *Client) ProbeHTTP(ctx context.Context, id string, port int32, req *http.Request) (int, error) {
	a := ProbeArgs{Call: callOf(ctx), ID: id, Port: port, Method: req.Method, URL: req.URL.String(), Host: req.Host, Header: req.Header}
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(req.Body, MaxProbeBody+1))
		if err != nil {
			return 0, fmt.Errorf("probe %s: read body: %w", id, err)
		}
		if len(b) > MaxProbeBody {
			return 0, fmt.Errorf("probe %s: a body over %d bytes", id, MaxProbeBody)
		}
		a.Body = b
	}
	var r ProbeReply
	if err := c.call(ctx, "ProbeHTTP", a, &r, true); err != nil {
		return 0, err
	}
	return r.Code, nil
}

// ServeContainerHTTP implements runtimes.HTTPServer: the request of a
// Service for a wasm pod's port is relayed to the host whole (a body of at
// most MaxServeBody bytes), and the pod's response back.
func (c *Client) ServeContainerHTTP(id string, port int32, w http.ResponseWriter, req *http.Request) error {
	a := ServeArgs{Call: callOf(req.Context()), ID: id, Port: port, Method: req.Method, URL: req.URL.String(),
		Host: req.Host, RemoteAddr: req.RemoteAddr, Header: req.Header}
	if req.Body != nil && req.Body != http.NoBody {
		b, err := io.ReadAll(io.LimitReader(req.Body, MaxServeBody+1))
		if err != nil {
			return fmt.Errorf("serve %s: read body: %w", id, err)
		}
		if len(b) > MaxServeBody {
			http.Error(w, fmt.Sprintf("request body over %d bytes", MaxServeBody), http.StatusRequestEntityTooLarge)
			return nil
		}
		a.Body = b
	}
	var r ServeReply
	if err := c.call(req.Context(), "ServeHTTP", a, &r, true); err != nil {
		return err
	}
	for k, v := range r.Header {
		w.Header()[k] = v
	}
	w.WriteHeader(r.Code)
	_, _ = w.Write(r.Body)
	return nil
}

// moduleServer serves the agent's module store to the host.
type moduleServer struct {
	store wasm.ModuleStore
	max   int64
}

// moduleTimeout bounds the agent's work for one module call of the host.
const moduleTimeout = 10 * time.Minute

// Info answers the host's ModuleStore.Info.
func (m *moduleServer) Info(a ModuleArgs, r *ModuleInfoReply) error {
	if m.store == nil {
		r.Err = toWire(fmt.Errorf("kyb:// module %s: this agent has no module store: %w", a.Name, runtimes.ErrUnavailable))
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), moduleTimeout)
	defer cancel()
	info, err := m.store.Info(ctx, a.Name)
	r.Info, r.Err = info, toWire(err)
	return nil
}

// Open answers the host's ModuleStore.Open with the module's bytes (at most
// the host's module size cap and one byte, so that the host says it is too
// large).
func (m *moduleServer) Open(a ModuleArgs, r *ModuleOpenReply) error {
	if m.store == nil {
		r.Err = toWire(fmt.Errorf("kyb:// module %s: this agent has no module store: %w", a.Name, runtimes.ErrUnavailable))
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), moduleTimeout)
	defer cancel()
	rd, info, err := m.store.Open(ctx, a.Name)
	if err != nil {
		r.Err = toWire(err)
		return nil
	}
	defer rd.Close()
	b, err := io.ReadAll(io.LimitReader(rd, m.max+1))
	r.Info, r.Bytes, r.Err = info, b, toWire(err)
	return nil
}

// ReadPID returns the pid the host of dir wrote, or 0.
func ReadPID(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, PIDName))
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}
