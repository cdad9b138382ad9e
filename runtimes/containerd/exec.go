package containerd

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"time"

	cclient "github.com/containerd/containerd/v2/client"
	"github.com/containerd/containerd/v2/pkg/cio"

	"github.com/kybernetes/kybernetes/runtimes"
)

var _ runtimes.Execer = (*Runtime)(nil)

// ExecSync implements runtimes.Execer with containerd's task Exec: cmd runs
// as a new process in the running container's namespaces and cgroup, with
// the container's process spec (user, env, working directory,
// capabilities, seccomp), no terminal and no stdin. Its stdout and stderr
// are collected (the first MaxExecOutput bytes). Past timeout the process
// is killed and ExecSync returns an error wrapping
// context.DeadlineExceeded.
func (r *Runtime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*runtimes.ExecResult, error) {
	if len(cmd) == 0 {
		return nil, fmt.Errorf("exec in %s: empty command", id)
	}
	ctx = r.ns(ctx)
	c, err := r.load(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	task, err := c.Task(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, runtimes.NotFoundf("running container: %v", mapErr(err)))
	}
	st, err := task.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: task status: %w", id, mapErr(err))
	}
	if st.Status != cclient.Running {
		return nil, fmt.Errorf("exec in %s: %w", id, runtimes.NotFoundf("running container (it is %s)", st.Status))
	}
	spec, err := c.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: read spec: %w", id, mapErr(err))
	}
	if spec.Process == nil {
		return nil, fmt.Errorf("exec in %s: the container's spec has no process", id)
	}
	pspec := *spec.Process
	pspec.Args = append([]string(nil), cmd...)
	pspec.Terminal = false
	pspec.ConsoleSize = nil

	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	out := &execOutput{max: runtimes.MaxExecOutput}
	execID := "exec-" + newID()[:16]
	proc, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(cio.WithStreams(nil, out, out)))
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, mapErr(err))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mutateTimeout)
		defer cancel()
		_, _ = proc.Delete(dctx, cclient.WithProcessKill)
	}()
	// Wait before Start, so that a quick exit is not missed.
	statusC, err := proc.Wait(context.WithoutCancel(ctx))
	if err != nil {
		return nil, fmt.Errorf("exec in %s: wait: %w", id, mapErr(err))
	}
	if err := proc.Start(ctx); err != nil {
		return nil, fmt.Errorf("exec in %s: start %q: %w", id, cmd[0], mapErr(err))
	}
	select {
	case es := <-statusC:
		code, _, err := es.Result()
		if err != nil {
			return nil, fmt.Errorf("exec in %s: %w", id, mapErr(err))
		}
		if io := proc.IO(); io != nil {
			io.Wait()
		}
		return &runtimes.ExecResult{ExitCode: int32(code), Output: out.bytes()}, nil
	case <-ctx.Done():
		kctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), mutateTimeout)
		defer cancel()
		_ = proc.Kill(kctx, syscall.SIGKILL)
		select {
		case <-statusC:
		case <-kctx.Done():
		}
		return nil, fmt.Errorf("exec in %s: %q: %w", id, cmd[0], ctx.Err())
	}
}

// execOutput keeps the first max bytes of an exec's stdout and stderr.
type execOutput struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (o *execOutput) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if room := o.max - len(o.b); room > 0 {
		o.b = append(o.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}

func (o *execOutput) bytes() []byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]byte(nil), o.b...)
}
