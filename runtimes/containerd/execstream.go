package containerd

import (
	"context"
	"fmt"
	"io"
	"sync"
	"syscall"

	cclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/kybernetes/kybernetes/runtimes"
)

var _ runtimes.StreamExecer = (*Runtime)(nil)

// Exec implements runtimes.StreamExecer with containerd's task Exec: the
// command runs as a new process in the running container's namespaces and
// cgroup with the container's process spec (user, env, working directory,
// capabilities, seccomp), on a terminal when opts.TTY. When ctx ends first
// the process is killed (SIGKILL) and deleted before Exec returns.
func (r *Runtime) Exec(ctx context.Context, id string, opts runtimes.ExecOptions) (int32, error) {
	if len(opts.Cmd) == 0 {
		return -1, fmt.Errorf("exec in %s: empty command", id)
	}
	nctx := r.ns(ctx)
	c, err := r.load(nctx, id)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	task, err := c.Task(nctx, nil)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, runtimes.NotFoundf("running container: %v", mapErr(err)))
	}
	st, err := task.Status(nctx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: task status: %w", id, mapErr(err))
	}
	if st.Status != cclient.Running {
		return -1, fmt.Errorf("exec in %s: %w", id, runtimes.NotFoundf("running container (it is %s)", st.Status))
	}
	spec, err := c.Spec(nctx)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: read spec: %w", id, mapErr(err))
	}
	if spec.Process == nil {
		return -1, fmt.Errorf("exec in %s: the container's spec has no process", id)
	}
	pspec := *spec.Process
	pspec.Args = append([]string(nil), opts.Cmd...)
	pspec.Terminal = opts.TTY
	pspec.ConsoleSize = nil
	if opts.TTY && opts.Size != nil {
		pspec.ConsoleSize = &specs.Box{Width: uint(opts.Size.Width), Height: uint(opts.Size.Height)}
	}
	stdout, stderr := opts.Stdout, opts.Stderr
	if stdout == nil {
		stdout = io.Discard
	}
	if stderr == nil || opts.TTY {
		stderr = io.Discard
	}
	// When stdin ends the shim must close the process's stdin too
	// (CloseIO), or a command reading it never sees its end. Not on a
	// terminal: closing it hangs the terminal up (SIGHUP); there the
	// user's ^D is the end.
	var stdin io.Reader
	stdinDone := make(chan struct{})
	if opts.Stdin != nil && opts.TTY {
		stdin = opts.Stdin
	} else if opts.Stdin != nil {
		stdin = &eofNotifier{r: opts.Stdin, done: stdinDone}
	}
	copts := []cio.Opt{cio.WithStreams(stdin, stdout, stderr)}
	if opts.TTY {
		copts = append(copts, cio.WithTerminal)
	}
	execID := "exec-" + newID()[:16]
	proc, err := task.Exec(nctx, execID, &pspec, cio.NewCreator(copts...))
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, mapErr(err))
	}
	bg := context.WithoutCancel(nctx)
	exited := false
	defer func() {
		del := func() {
			dctx, cancel := context.WithTimeout(bg, mutateTimeout)
			defer cancel()
			_, _ = proc.Delete(dctx, cclient.WithProcessKill)
		}
		if exited {
			// It has exited: reaping its record need not hold up the exit
			// code (a round trip of containerd's).
			go del()
			return
		}
		del()
	}()
	statusC, err := proc.Wait(bg)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: wait: %w", id, mapErr(err))
	}
	if err := proc.Start(nctx); err != nil {
		return -1, fmt.Errorf("exec in %s: start %q: %w", id, opts.Cmd[0], mapErr(err))
	}
	if opts.OnStart != nil {
		opts.OnStart()
	}
	if stdin != nil && !opts.TTY {
		go func() {
			select {
			case <-stdinDone:
				_ = proc.CloseIO(nctx, cclient.WithStdinCloser)
			case <-nctx.Done():
			}
		}()
	}
	for {
		select {
		case sz := <-opts.Resize:
			if opts.TTY {
				_ = proc.Resize(nctx, uint32(sz.Width), uint32(sz.Height))
			}
		case es := <-statusC:
			code, _, err := es.Result()
			if err != nil {
				return -1, fmt.Errorf("exec in %s: %w", id, mapErr(err))
			}
			if pio := proc.IO(); pio != nil {
				pio.Wait()
			}
			exited = true
			return int32(code), nil
		case <-ctx.Done():
			kctx, cancel := context.WithTimeout(bg, mutateTimeout)
			_ = proc.Kill(kctx, syscall.SIGKILL)
			select {
			case <-statusC:
			case <-kctx.Done():
			}
			cancel()
			if pio := proc.IO(); pio != nil {
				pio.Cancel()
				pio.Close()
			}
			return -1, fmt.Errorf("exec in %s: %q: %w", id, opts.Cmd[0], ctx.Err())
		}
	}
}

// eofNotifier closes done when r ends (with io.EOF or an error).
type eofNotifier struct {
	r    io.Reader
	done chan struct{}
	once sync.Once
}

func (e *eofNotifier) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil {
		e.once.Do(func() { close(e.done) })
	}
	return n, err
}
