package wasm

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
)

var (
	_ runtimes.Execer     = (*Runtime)(nil)
	_ runtimes.HTTPProber = (*Runtime)(nil)
	_ runtimes.HTTPServer = (*Runtime)(nil)
)

// ServeContainerHTTP implements runtimes.HTTPServer: req is served by the
// WAGI handler of the container's containerPort port, in process, with the
// same request slots, queue and limits as a request from its hostPort.
func (r *Runtime) ServeContainerHTTP(id string, port int32, w http.ResponseWriter, req *http.Request) error {
	_, proc, err := r.Running(id)
	if err != nil {
		return fmt.Errorf("serve %s: %w", id, err)
	}
	wp, _ := proc.(*wagiProc)
	var h http.Handler
	if wp != nil {
		h = wp.handlers[port]
	}
	if h == nil {
		return fmt.Errorf("serve %s: %w", id, runtimes.NotFoundf("HTTP on port %d (the container does not declare it)", port))
	}
	h.ServeHTTP(w, req)
	return nil
}

// ExecSync implements runtimes.Execer: it runs a new instance of the
// running container's module with argv = the container's name followed by
// cmd (so a Go module sees os.Args[1:] == cmd), the container's env,
// working directory, mounts and memory limit, no stdin, and collects its
// output. The instance is ended when timeout passes or ctx ends.
func (r *Runtime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (*runtimes.ExecResult, error) {
	if len(cmd) == 0 {
		return nil, fmt.Errorf("exec in %s: empty command", id)
	}
	c, _, err := r.Running(id)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	_, digest := splitPinned(c.ImageRef)
	m, err := r.module(ctx, digest)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	c.Config.Command, c.Config.Args = cmd, nil
	rc, closeMounts, err := moduleConfig(c)
	if err != nil {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	defer closeMounts()
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	out := &capBuffer{max: runtimes.MaxExecOutput}
	w := &lockedWriter{w: out}
	mc := rc.build().WithStdout(w).WithStderr(w).WithStdin(eofReader{})
	x := r.instance(ctx, m, mc, c.Config.MemoryLimitBytes, &usage{}, func() bool { return false })
	if err := ctx.Err(); err != nil && x.Code == runtimes.ExitCodeKilled {
		return nil, fmt.Errorf("exec in %s: %w", id, err)
	}
	return &runtimes.ExecResult{ExitCode: x.Code, Output: out.b}, nil
}

// ProbeHTTP implements runtimes.HTTPProber: req is served by the WAGI
// handler of the container's containerPort port, in process (the same
// request slots and limits as a request from the network).
func (r *Runtime) ProbeHTTP(ctx context.Context, id string, port int32, req *http.Request) (int, error) {
	_, proc, err := r.Running(id)
	if err != nil {
		return 0, fmt.Errorf("probe %s: %w", id, err)
	}
	wp, _ := proc.(*wagiProc)
	var h http.Handler
	if wp != nil {
		h = wp.handlers[port]
	}
	if h == nil {
		return 0, fmt.Errorf("probe %s: %w", id, runtimes.NotFoundf("HTTP on port %d (a wasm container serves the ports it declares with a hostPort)", port))
	}
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, req.WithContext(ctx))
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("probe %s: %w", id, err)
	}
	if rec.code == 0 {
		return http.StatusOK, nil
	}
	return rec.code, nil
}

// statusRecorder is the response writer of an in-process probe: it keeps
// the status and drops the body.
type statusRecorder struct {
	header http.Header
	code   int
}

func (s *statusRecorder) Header() http.Header { return s.header }

func (s *statusRecorder) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.WriteHeader(http.StatusOK)
	return len(b), nil
}

// capBuffer keeps the first max bytes written to it and drops the rest
// without failing (a probe's command must not fail because it talks).
type capBuffer struct {
	b   []byte
	max int
}

func (c *capBuffer) Write(p []byte) (int, error) {
	if room := c.max - len(c.b); room > 0 {
		c.b = append(c.b, p[:min(room, len(p))]...)
	}
	return len(p), nil
}
