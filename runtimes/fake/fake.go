package fake

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/internal/inproc"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest/prog"
)

// Config configures a fake runtime.
type Config struct {
	// Name is the runtime class it advertises; "fake" when empty (set
	// "containerd" or "wasm" to stand in for one).
	Name    string
	Version string
	// StateDir keeps state files so a new instance lists the previous
	// containers; "" keeps everything in memory.
	StateDir string
}

// Hooks inject errors: a hook that returns an error makes the method fail
// with it before doing anything. Nil hooks do nothing.
type Hooks struct {
	Info            func(ctx context.Context) error
	EnsureImage     func(ctx context.Context, ref string) error
	CreateSandbox   func(ctx context.Context, cfg *runtimes.SandboxConfig) error
	RemoveSandbox   func(ctx context.Context, id string) error
	CreateContainer func(ctx context.Context, sandboxID string, cfg *runtimes.ContainerConfig) error
	StartContainer  func(ctx context.Context, id string) error
	StopContainer   func(ctx context.Context, id string) error
	RemoveContainer func(ctx context.Context, id string) error
}

// Runtime is the fake runtime. It is safe for concurrent use.
type Runtime struct {
	*inproc.Engine
	cfg Config

	mu     sync.Mutex
	hooks  Hooks
	calls  []string
	images map[string]*runtimes.Image
	procs  map[string]*proc // running containers by ID
}

var (
	_ runtimes.Runtime       = (*Runtime)(nil)
	_ runtimes.StatsProvider = (*Runtime)(nil)
	_ runtimes.ImageLister   = (*Runtime)(nil)
	_ runtimes.Execer        = (*Runtime)(nil)
)

// New returns a fake runtime, loading the state left in cfg.StateDir by a
// previous instance. log may be nil.
func New(cfg Config, log *slog.Logger) (*Runtime, error) {
	if cfg.Name == "" {
		cfg.Name = "fake"
	}
	if cfg.Version == "" {
		cfg.Version = "0.1.0"
	}
	r := &Runtime{cfg: cfg, images: map[string]*runtimes.Image{}, procs: map[string]*proc{}}
	e, err := inproc.New(inproc.Config{StateDir: cfg.StateDir, Prepare: r.prepare, Start: r.start, Log: log})
	if err != nil {
		return nil, fmt.Errorf("fake runtime: %w", err)
	}
	r.Engine = e
	return r, nil
}

// Exit ends a running container now, as if it had exited with code and
// reason ("" means Completed for 0, Error otherwise): a crash or an OOM kill
// in the middle of a run, for tests. It returns once the exit is recorded,
// or an error wrapping
// ErrNotFound when no container with that ID is running.
func (r *Runtime) Exit(ctx context.Context, id string, code int32, reason, message string) error {
	r.mu.Lock()
	p := r.procs[id]
	r.mu.Unlock()
	if p == nil {
		return runtimes.NotFoundf("running container %s", id)
	}
	select {
	case p.forced <- inproc.Exit{Code: code, Reason: reason, Message: message}:
	default: // already forced
	}
	// Return once the exit is recorded, so that ContainerStatus shows it.
	ch, err := r.Engine.WaitContainer(ctx, id)
	if err != nil {
		return fmt.Errorf("exit container %s: %w", id, err)
	}
	if res := <-ch; res.Err != nil {
		return fmt.Errorf("exit container %s: %w", id, res.Err)
	}
	return nil
}

// SetHooks replaces the error hooks.
func (r *Runtime) SetHooks(h Hooks) {
	r.mu.Lock()
	r.hooks = h
	r.mu.Unlock()
}

// Calls returns the calls made so far, each "Method arg" (e.g.
// "StartContainer 3f2a...", "EnsureImage fake://run").
func (r *Runtime) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.calls...)
}

func (r *Runtime) record(method, arg string) Hooks {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, method+" "+arg)
	return r.hooks
}

// Info implements runtimes.Runtime.
func (r *Runtime) Info(ctx context.Context) (runtimes.Info, error) {
	if h := r.record("Info", ""); h.Info != nil {
		if err := h.Info(ctx); err != nil {
			return runtimes.Info{}, err
		}
	}
	return runtimes.Info{Name: r.cfg.Name, Version: r.cfg.Version}, nil
}

func checkRef(ref string) error {
	switch ref {
	case "":
		return runtimes.WithReason("InvalidImageName", false, fmt.Errorf("empty image reference"))
	case "fake://pullerror":
		return runtimes.WithReason(runtimes.ReasonErrImagePull, true, runtimes.NotFoundf("pull %s", ref))
	case "fake://invalid":
		return runtimes.WithReason("InvalidImageName", false, fmt.Errorf("invalid image reference %q", ref))
	}
	return nil
}

func digestOf(ref string) string {
	sum := sha256.Sum256([]byte(ref))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// EnsureImage implements runtimes.Runtime. Every image is "present" at
// once, except the failing references.
func (r *Runtime) EnsureImage(ctx context.Context, ref string, policy runtimes.PullPolicy, progress func(runtimes.PullProgress)) (*runtimes.Image, error) {
	if h := r.record("EnsureImage", ref); h.EnsureImage != nil {
		if err := h.EnsureImage(ctx, ref); err != nil {
			return nil, err
		}
	}
	if err := checkRef(ref); err != nil {
		return nil, fmt.Errorf("ensure image: %w", err)
	}
	img := &runtimes.Image{Ref: ref, Digest: digestOf(ref), Size: int64(len(ref))}
	if progress != nil {
		progress(runtimes.PullProgress{Ref: ref, Done: img.Size, Total: img.Size, Layers: 1, LayersDone: 1})
	}
	r.mu.Lock()
	r.images[ref] = img
	r.mu.Unlock()
	c := *img
	return &c, nil
}

// ListImages implements runtimes.ImageLister: the images ensured so far.
func (r *Runtime) ListImages(ctx context.Context) ([]*runtimes.Image, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*runtimes.Image, 0, len(r.images))
	for _, img := range r.images {
		c := *img
		out = append(out, &c)
	}
	return out, nil
}

// ContainerStats implements runtimes.StatsProvider with zero usage.
func (r *Runtime) ContainerStats(ctx context.Context, id string) (*runtimes.Stats, error) {
	if _, err := r.ContainerStatus(ctx, id); err != nil {
		return nil, err
	}
	return &runtimes.Stats{Time: time.Now()}, nil
}

// CreateSandbox implements runtimes.Runtime.
func (r *Runtime) CreateSandbox(ctx context.Context, cfg *runtimes.SandboxConfig) (*runtimes.Sandbox, error) {
	name := ""
	if cfg != nil {
		name = cfg.Namespace + "/" + cfg.Name
	}
	if h := r.record("CreateSandbox", name); h.CreateSandbox != nil {
		if err := h.CreateSandbox(ctx, cfg); err != nil {
			return nil, err
		}
	}
	return r.Engine.CreateSandbox(ctx, cfg)
}

// RemoveSandbox implements runtimes.Runtime.
func (r *Runtime) RemoveSandbox(ctx context.Context, id string) error {
	if h := r.record("RemoveSandbox", id); h.RemoveSandbox != nil {
		if err := h.RemoveSandbox(ctx, id); err != nil {
			return err
		}
	}
	return r.Engine.RemoveSandbox(ctx, id)
}

// CreateContainer implements runtimes.Runtime.
func (r *Runtime) CreateContainer(ctx context.Context, sandboxID string, cfg *runtimes.ContainerConfig) (string, error) {
	name := ""
	if cfg != nil {
		name = cfg.Name
	}
	if h := r.record("CreateContainer", name); h.CreateContainer != nil {
		if err := h.CreateContainer(ctx, sandboxID, cfg); err != nil {
			return "", err
		}
	}
	return r.Engine.CreateContainer(ctx, sandboxID, cfg)
}

// StartContainer implements runtimes.Runtime.
func (r *Runtime) StartContainer(ctx context.Context, id string) error {
	if h := r.record("StartContainer", id); h.StartContainer != nil {
		if err := h.StartContainer(ctx, id); err != nil {
			return err
		}
	}
	return r.Engine.StartContainer(ctx, id)
}

// StopContainer implements runtimes.Runtime.
func (r *Runtime) StopContainer(ctx context.Context, id string, grace time.Duration) error {
	if h := r.record("StopContainer", id); h.StopContainer != nil {
		if err := h.StopContainer(ctx, id); err != nil {
			return err
		}
	}
	return r.Engine.StopContainer(ctx, id, grace)
}

// RemoveContainer implements runtimes.Runtime.
func (r *Runtime) RemoveContainer(ctx context.Context, id string) error {
	if h := r.record("RemoveContainer", id); h.RemoveContainer != nil {
		if err := h.RemoveContainer(ctx, id); err != nil {
			return err
		}
	}
	return r.Engine.RemoveContainer(ctx, id)
}

func (r *Runtime) prepare(ctx context.Context, sb *runtimes.SandboxConfig, cfg *runtimes.ContainerConfig) (string, error) {
	if err := checkRef(cfg.Image); err != nil {
		return "", err
	}
	return digestOf(cfg.Image), nil
}

// proc runs a script in a goroutine.
type proc struct {
	done       chan struct{}
	res        inproc.Exit
	term, kill context.CancelFunc
	forced     chan inproc.Exit // Exit's result, taken over the script's
}

func (p *proc) Done() <-chan struct{} { return p.done }
func (p *proc) Result() inproc.Exit   { return p.res }
func (p *proc) Term()                 { p.term() }
func (p *proc) Kill()                 { p.kill() }

func (r *Runtime) start(ctx context.Context, c *inproc.Container) (inproc.Proc, error) {
	logf, err := inproc.OpenLog(c.Config.LogPath)
	if err != nil {
		return nil, err
	}
	killCtx, kill := context.WithCancel(context.Background())
	termCtx, term := context.WithCancel(killCtx)
	p := &proc{done: make(chan struct{}), term: term, kill: kill, forced: make(chan inproc.Exit, 1)}
	scriptDone := make(chan inproc.Exit, 1)
	go func() {
		defer logf.Close()
		scriptDone <- run(termCtx, killCtx, c, logf)
	}()
	go func() {
		defer close(p.done)
		defer kill()
		select {
		case p.res = <-scriptDone:
		case p.res = <-p.forced:
			kill()
			<-scriptDone
		}
	}()
	r.mu.Lock()
	r.procs[c.ID] = p
	r.mu.Unlock()
	go func() {
		<-p.done
		r.mu.Lock()
		delete(r.procs, c.ID)
		r.mu.Unlock()
	}()
	return p, nil
}

var killed = inproc.Exit{Code: runtimes.ExitCodeKilled, Reason: runtimes.ReasonFailed, Message: "killed"}

func run(termCtx, killCtx context.Context, c *inproc.Container, log io.Writer) inproc.Exit {
	script, arg, _ := strings.Cut(strings.TrimPrefix(c.Config.Image, "fake://"), "/")
	if !strings.HasPrefix(c.Config.Image, "fake://") {
		script = "run"
	}
	if script != "prog" {
		fmt.Fprintf(log, "fake: %s started\n", c.Config.Name)
	}
	switch script {
	case "exit":
		n, err := strconv.Atoi(arg)
		if err != nil {
			return inproc.Exit{Code: 128, Message: fmt.Sprintf("bad exit code %q", arg)}
		}
		return inproc.Exit{Code: int32(n)}
	case "sleep":
		d, err := time.ParseDuration(arg)
		if err != nil {
			return inproc.Exit{Code: 128, Message: fmt.Sprintf("bad duration %q", arg)}
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-termCtx.Done():
		}
		return inproc.Exit{}
	case "hang":
		<-killCtx.Done()
		return killed
	case "oom":
		return inproc.Exit{Code: runtimes.ExitCodeKilled, Reason: runtimes.ReasonOOMKilled, Message: "fake out of memory"}
	case "prog":
		code := prog.Run(termCtx, append(append([]string{}, c.Config.Command...), c.Config.Args...), progSys(termCtx, c, log))
		if termCtx.Err() != nil {
			return killed
		}
		return inproc.Exit{Code: int32(code)}
	default:
		<-termCtx.Done()
		return inproc.Exit{}
	}
}

func progSys(ctx context.Context, c *inproc.Container, log io.Writer) prog.Sys {
	var mu sync.Mutex
	w := writerFunc(func(b []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return log.Write(b)
	})
	return prog.Sys{
		Getenv: func(name string) (string, bool) {
			for i := len(c.Config.Env) - 1; i >= 0; i-- {
				if c.Config.Env[i].Name == name {
					return c.Config.Env[i].Value, true
				}
			}
			return "", false
		},
		Stdout: w,
		Stderr: w,
		ReadFile: func(path string) ([]byte, error) {
			host, _, err := hostPath(c.Config.Mounts, path)
			if err != nil {
				return nil, err
			}
			return os.ReadFile(host)
		},
		WriteFile: func(path string, data []byte) error {
			host, ro, err := hostPath(c.Config.Mounts, path)
			if err != nil {
				return err
			}
			if ro {
				return fmt.Errorf("write %s: read-only file system", path)
			}
			return os.WriteFile(host, data, 0o644)
		},
		Sleep: func(d time.Duration) bool {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
				return true
			case <-ctx.Done():
				return false
			}
		},
	}
}

// hostPath maps a container path through the longest matching mount.
func hostPath(mounts []runtimes.Mount, p string) (string, bool, error) {
	p = filepath.Clean("/" + p)
	best := -1
	for i, m := range mounts {
		cp := filepath.Clean(m.ContainerPath)
		if (p == cp || strings.HasPrefix(p, cp+"/")) && (best < 0 || len(cp) > len(filepath.Clean(mounts[best].ContainerPath))) {
			best = i
		}
	}
	if best < 0 {
		return "", false, fmt.Errorf("open %s: no such file or directory", p)
	}
	m := mounts[best]
	rel := strings.TrimPrefix(p, filepath.Clean(m.ContainerPath))
	return filepath.Join(m.HostPath, rel), m.ReadOnly, nil
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(b []byte) (int, error) { return f(b) }

// ExecSync implements runtimes.Execer: cmd runs as the verbs of package
// prog (cat, exit, sleep, ...) against the running container's env and
// mounts, as the container's own program would. It returns an error
// wrapping ErrNotFound when no container with that ID is running, and one
// wrapping context.DeadlineExceeded when the command outlives timeout.
func (r *Runtime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*runtimes.ExecResult, error) {
	r.record("ExecSync", id+" "+strings.Join(cmd, " "))
	c, _, err := r.Running(id)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var out strings.Builder
	code := prog.Run(ctx, cmd, progSys(ctx, c, &out))
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	b := []byte(out.String())
	if len(b) > runtimes.MaxExecOutput {
		b = b[:runtimes.MaxExecOutput]
	}
	return &runtimes.ExecResult{ExitCode: int32(code), Output: b}, nil
}
