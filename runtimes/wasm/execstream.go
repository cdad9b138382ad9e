package wasm

import (
	"context"
	"fmt"
	"io"

	"github.com/kybernetes/kybernetes/runtimes"
)

var (
	_ runtimes.StreamExecer = (*Runtime)(nil)
)

// Exec implements runtimes.StreamExecer: a fresh instance of the running
// container's module with argv = the container's name followed by
// opts.Cmd, the container's env, working directory, mounts and memory
// limit, and opts' stdin, stdout and stderr. A module has no terminal:
// TTY only merges stderr into stdout. The instance is ended when ctx ends.
func (r *Runtime) Exec(ctx context.Context, id string, opts runtimes.ExecOptions) (int32, error) {
	if len(opts.Cmd) == 0 {
		return -1, fmt.Errorf("exec in %s: empty command", id)
	}
	c, _, err := r.Running(id)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	_, digest := splitPinned(c.ImageRef)
	m, err := r.module(ctx, digest)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	c.Config.Command, c.Config.Args = opts.Cmd, nil
	rc, closeMounts, err := moduleConfig(c)
	if err != nil {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer closeMounts()
	var stdout, stderr io.Writer = io.Discard, io.Discard
	if opts.Stdout != nil {
		stdout = opts.Stdout
	}
	if opts.Stderr != nil {
		stderr = opts.Stderr
	}
	if opts.TTY {
		stderr = stdout
	}
	var stdin io.Reader = eofReader{}
	if opts.Stdin != nil {
		stdin = opts.Stdin
	}
	mc := rc.build().WithStdout(&lockedWriter{w: stdout}).WithStderr(&lockedWriter{w: stderr}).WithStdin(stdin)
	if opts.OnStart != nil {
		opts.OnStart()
	}
	x := r.instance(ctx, m, mc, c.Config.MemoryLimitBytes, &usage{}, func() bool { return false })
	if err := ctx.Err(); err != nil && x.Code == runtimes.ExitCodeKilled {
		return -1, fmt.Errorf("exec in %s: %w", id, err)
	}
	if x.Reason == runtimes.ReasonOOMKilled || x.Code == ExitCodeTrap {
		fmt.Fprintf(stderr, "[kyb wasm] %s: %s\n", x.Reason, x.Message)
	}
	return x.Code, nil
}
