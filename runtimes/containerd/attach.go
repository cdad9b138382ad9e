package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	cclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/kybernetes/kybernetes/runtimes"
)

// Attach (runtimes.Attacher). A container created with Stdin gets a FIFO,
// StateDir/stdin/<id>, as its task's stdin: the shim reads it and writes
// the process's stdin (or its terminal). The shim sees end of input when
// the FIFO's last writer closes, so a container whose stdin stays open
// (Stdin without StdinOnce) has a writer that outlives the agent: a holder
// process (the log driver binary run as [binary, StdinHoldArg, fifo], in
// its own session) that holds the FIFO open until the FIFO is removed with
// the container. With the "file" log driver there is no such binary and
// the runtime holds it, which an agent restart ends (the process then
// reads end of input). A StdinOnce container has no holder: the shim's
// open waits for the first attachment, and its end is the process's end
// of input (a marker file remembers it). Output stays in the log file:
// attach follows it.
//
// The runc shim copies stdin only for the "file" and "fifo" log schemes,
// and for a terminal: a container with stdin and no terminal therefore
// logs through the shim's file logging, and one with a terminal through
// the log driver binary (the shim's console copy sends the terminal to it).

// Labels of a container's stdin and terminal.
const (
	labelStdin = labelPrefix + "stdin" // stdinOpen or stdinOnce
	labelTTY   = labelPrefix + "tty"   // "true"
	stdinOpen  = "open"
	stdinOnce  = "once"
)

// StdinHoldArg is the first argument with which the runtime starts the log
// driver binary as a stdin holder (LogDriverMain); the second is the FIFO.
const StdinHoldArg = "kyb-containerd-stdin"

// holderPoll is how often a stdin holder checks that its FIFO still exists.
const holderPoll = 2 * time.Second

var _ runtimes.Attacher = (*Runtime)(nil)

// stdinHolders are what holds stdin FIFOs open for this runtime, by
// container id: the FIFO itself ("file" log driver) or a holder process.
type stdinHolders struct {
	mu sync.Mutex
	m  map[string]io.Closer
}

func (h *stdinHolders) put(id string, c io.Closer) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.m == nil {
		h.m = map[string]io.Closer{}
	}
	if old := h.m[id]; old != nil {
		old.Close()
	}
	h.m[id] = c
}

func (h *stdinHolders) drop(id string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if c := h.m[id]; c != nil {
		c.Close()
		delete(h.m, id)
	}
}

// closeAll lets go of the FIFOs the runtime holds itself; holder
// processes live on (they outlive the agent by design).
func (h *stdinHolders) closeAll() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for id, c := range h.m {
		if f, ok := c.(*os.File); ok {
			f.Close()
			delete(h.m, id)
		}
	}
}

// holderProc is a running stdin holder; Close kills it.
type holderProc struct{ p *os.Process }

func (h holderProc) Close() error { return h.p.Kill() }

// startHolder starts the log driver binary as the holder of FIFO path.
func (r *Runtime) startHolder(path string) (io.Closer, error) {
	cmd := exec.Command(r.cfg.LogDriver, StdinHoldArg, path)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start stdin holder: %w", err)
	}
	go func() { _ = cmd.Wait() }() // reaped while this agent runs
	return holderProc{cmd.Process}, nil
}

// holdStdin is what LogDriverMain does as a holder: hold path open for
// writing until it is removed.
func holdStdin(path string) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		os.Exit(1)
	}
	defer f.Close()
	for {
		time.Sleep(holderPoll)
		if _, err := os.Stat(path); err != nil {
			return
		}
	}
}

// stdinPath is the FIFO of container id's stdin.
func (r *Runtime) stdinPath(id string) string { return filepath.Join(r.cfg.StateDir, "stdin", id) }

// stdinClosedPath marks a StdinOnce container whose stdin was closed.
func (r *Runtime) stdinClosedPath(id string) string { return r.stdinPath(id) + ".closed" }

// taskIO returns the IO creator of container id's task: output to the log
// (lp, "" for none), and with stdin (stdinOpen or stdinOnce) a FIFO made
// now, with tty a terminal.
func (r *Runtime) taskIO(id, lp, stdin string, tty bool) (cio.Creator, error) {
	var base cio.Creator = cio.NullIO
	if lp != "" {
		if r.cfg.LogDriver == "file" || stdin != "" && !tty {
			base = cio.LogFile(lp)
		} else {
			base = cio.BinaryIO(r.cfg.LogDriver, map[string]string{LogDriverArg: lp})
		}
	}
	if stdin == "" && !tty {
		return base, nil
	}
	if stdin != "" {
		p := r.stdinPath(id)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return nil, fmt.Errorf("stdin dir: %w", err)
		}
		if err := syscall.Mkfifo(p, 0o600); err != nil && !errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("stdin fifo: %w", err)
		}
		if stdin == stdinOpen {
			var h io.Closer
			var err error
			if r.cfg.LogDriver != "file" {
				h, err = r.startHolder(p)
			} else {
				// O_RDWR never blocks and counts as a writer.
				h, err = os.OpenFile(p, os.O_RDWR, 0)
			}
			if err != nil {
				return nil, fmt.Errorf("stdin fifo: %w", err)
			}
			r.holders.put(id, h)
		}
	}
	return func(cid string) (cio.IO, error) {
		io, err := base(cid)
		if err != nil {
			return nil, err
		}
		cfg := io.Config()
		cfg.Terminal = tty
		if stdin != "" {
			cfg.Stdin = r.stdinPath(id)
		}
		return &configIO{IO: io, cfg: cfg}, nil
	}, nil
}

// configIO is an IO whose config is amended (stdin, terminal).
type configIO struct {
	cio.IO
	cfg cio.Config
}

func (c *configIO) Config() cio.Config { return c.cfg }

// removeStdin releases what container id's stdin held.
func (r *Runtime) removeStdin(id string) {
	r.holders.drop(id)
	for _, p := range []string{r.stdinPath(id), r.stdinClosedPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			r.log.Warn("remove container stdin", "id", id, "err", err)
		}
	}
}

// runningTask returns the running task of container id and its labels.
func (r *Runtime) runningTask(ctx context.Context, id string) (cclient.Task, map[string]string, error) {
	c, err := r.load(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	info, err := c.Info(ctx, cclient.WithoutRefreshedMetadata)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return nil, nil, mapErr(err)
	}
	if st.Status != cclient.Running && st.Status != cclient.Paused {
		return nil, nil, runtimes.NotFoundf("container %s is not running", id)
	}
	return task, info.Labels, nil
}

// AttachStdin implements runtimes.Attacher: a writer to the container's
// stdin FIFO.
func (r *Runtime) AttachStdin(ctx context.Context, id string) (io.WriteCloser, error) {
	ctx = r.ns(ctx)
	_, labels, err := r.runningTask(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("attach to %s: %w", id, err)
	}
	mode := labels[labelStdin]
	switch mode {
	case stdinOpen, stdinOnce:
	default:
		return nil, fmt.Errorf("attach to %s: %w", id, runtimes.ErrNoStdin)
	}
	if mode == stdinOnce {
		if _, err := os.Stat(r.stdinClosedPath(id)); err == nil {
			return nil, fmt.Errorf("attach to %s: %w", id, runtimes.ErrStdinClosed)
		}
	}
	// O_RDWR: the open never blocks (the shim's read side may not be open
	// yet); the file is pollable, so Close ends a blocked Write.
	f, err := os.OpenFile(r.stdinPath(id), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("attach to %s: open stdin: %w", id, err)
	}
	w := &stdinWriter{f: f}
	if mode == stdinOnce {
		w.onClose = func() {
			if err := os.WriteFile(r.stdinClosedPath(id), nil, 0o600); err != nil {
				r.log.Warn("mark stdin closed", "id", id, "err", err)
			}
		}
	}
	return w, nil
}

// stdinWriter is one attachment's writer to a stdin FIFO.
type stdinWriter struct {
	f       *os.File
	once    sync.Once
	onClose func()
}

func (w *stdinWriter) Write(b []byte) (int, error) { return w.f.Write(b) }

func (w *stdinWriter) Close() error {
	var err error
	w.once.Do(func() {
		if w.onClose != nil {
			w.onClose()
		}
		err = w.f.Close()
	})
	return err
}

// ResizeTTY implements runtimes.Attacher.
func (r *Runtime) ResizeTTY(ctx context.Context, id string, size runtimes.TermSize) error {
	ctx = r.ns(ctx)
	task, labels, err := r.runningTask(ctx, id)
	if err != nil {
		return fmt.Errorf("resize %s: %w", id, err)
	}
	if labels[labelTTY] != "true" {
		return fmt.Errorf("resize %s: %w", id, runtimes.ErrNoTTY)
	}
	if err := task.Resize(ctx, uint32(size.Width), uint32(size.Height)); err != nil && !errdefs.IsNotFound(err) {
		return fmt.Errorf("resize %s: %w", id, mapErr(err))
	}
	return nil
}
