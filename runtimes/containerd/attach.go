package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	cclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	"github.com/containerd/errdefs"

	"github.com/kybernetes/kybernetes/runtimes"
)

// Attach (runtimes.Attacher). A container created with Stdin gets a FIFO,
// StateDir/stdin/<id>, as its task's stdin. The runc shim opens it both
// ways when it creates the task: it reads it into the process's stdin (or
// its terminal), and it holds a writer of its own until CloseIO, so the
// process never reads end of input because an attachment (or the agent)
// went away: the stdin outlives the agent as the task does, and a new
// agent opens the FIFO again. A StdinOnce container's stdin is closed when
// its first attachment closes: CloseIO, as CRI does (a marker file
// remembers it). Output stays in the log file: attach follows it.
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

var _ runtimes.Attacher = (*Runtime)(nil)

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
	task, labels, err := r.runningTask(ctx, id)
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
		w.afterClose = func() error {
			if err := os.WriteFile(r.stdinClosedPath(id), nil, 0o600); err != nil {
				r.log.Warn("mark stdin closed", "id", id, "err", err)
			}
			// The shim's own writer: its close is the process's end of
			// input, once what is buffered is read.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mutateTimeout)
			defer cancel()
			if err := task.CloseIO(cctx, cclient.WithStdinCloser); err != nil && !errdefs.IsNotFound(err) {
				return fmt.Errorf("close the stdin of %s: %w", id, mapErr(err))
			}
			return nil
		}
	}
	return w, nil
}

// stdinWriter is one attachment's writer to a stdin FIFO.
type stdinWriter struct {
	f          *os.File
	once       sync.Once
	afterClose func() error
}

func (w *stdinWriter) Write(b []byte) (int, error) { return w.f.Write(b) }

func (w *stdinWriter) Close() error {
	var err error
	w.once.Do(func() {
		err = w.f.Close()
		if w.afterClose != nil {
			if aerr := w.afterClose(); err == nil {
				err = aerr
			}
		}
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
