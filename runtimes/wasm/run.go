package wasm

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/experimental"
	"github.com/tetratelabs/wazero/experimental/sysfs"
	"github.com/tetratelabs/wazero/sys"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/internal/inproc"
	"github.com/kybernetes/kybernetes/runtimes/wasm/internal/rootfs"
)

// runConfig is the part of a module's configuration every run of a
// container shares: argv, env, mounts. Each mount is a rootfs.FS (paths
// resolve beneath its directory, symlinks included), shared by the runs.
type runConfig struct {
	args []string
	env  [][2]string
	fsc  wazero.FSConfig
}

// moduleConfig returns the runConfig of a container; call closeMounts when
// no run uses it any more. It fails when a mount's host directory cannot
// be opened.
func moduleConfig(c *inproc.Container) (rc *runConfig, closeMounts func(), err error) {
	rc = &runConfig{args: append(append([]string{c.Config.Name}, c.Config.Command...), c.Config.Args...)}
	for _, e := range c.Config.Env {
		rc.env = append(rc.env, [2]string{e.Name, e.Value})
	}
	if c.Config.WorkingDir != "" {
		rc.env = append(rc.env, [2]string{"PWD", c.Config.WorkingDir})
	}
	fsc := wazero.NewFSConfig()
	var roots []*rootfs.FS
	closeMounts = func() {
		for _, r := range roots {
			r.Close()
		}
	}
	for _, m := range c.Config.Mounts {
		r, err := rootfs.Open(m.HostPath, m.ReadOnly)
		if err != nil {
			closeMounts()
			return nil, nil, fmt.Errorf("mount %s at %s: %w", m.HostPath, m.ContainerPath, err)
		}
		roots = append(roots, r)
		fsc = fsc.(sysfs.FSConfig).WithSysFSMount(r, m.ContainerPath)
	}
	rc.fsc = fsc
	return rc, closeMounts, nil
}

// build returns a new module configuration for one run: rc's, with the
// clocks, crypto/rand, and the variables of extra (later ones win).
//
// Each run builds its own from scratch: wazero's ModuleConfig.WithEnv
// appends to (or overwrites in) an environment slice its copies share, so
// adding variables to one shared base from concurrent requests would race
// and could show one request's variables to another.
func (rc *runConfig) build(extra ...[][2]string) wazero.ModuleConfig {
	mc := wazero.NewModuleConfig().
		WithName("").
		WithArgs(rc.args...).
		WithSysWalltime().
		WithSysNanotime().
		WithRandSource(rand.Reader).
		WithFSConfig(rc.fsc)
	for _, kv := range rc.env {
		mc = mc.WithEnv(kv[0], kv[1])
	}
	for _, env := range extra {
		for _, kv := range env {
			mc = mc.WithEnv(kv[0], kv[1])
		}
	}
	return mc
}

// sleeper is a nanosleep that ends early when ctx is done, so that a module
// sleeping in poll_oneoff can be stopped. While it sleeps the instance's
// CPU accounting is paused (run may be nil).
func sleeper(ctx context.Context, run *instanceRun) sys.Nanosleep {
	return func(ns int64) {
		run.pause()
		defer run.resume()
		t := time.NewTimer(time.Duration(ns))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
		}
	}
}

// instance runs one instantiation of m to its end and says how it ended.
// killed reports whether the runtime cancelled ctx on purpose.
func (r *Runtime) instance(ctx context.Context, m *module, mc wazero.ModuleConfig, memLimit int64, u *usage, killed func() bool) inproc.Exit {
	if memLimit == 0 {
		memLimit = r.cfg.DefaultMemoryLimitBytes // negative: none
	}
	alloc := &allocator{usage: u.memBytes()}
	if memLimit > 0 {
		pages := uint64(memLimit) / 65536 * 65536
		if m.minMem > pages {
			return inproc.Exit{Code: runtimes.ExitCodeKilled, Reason: runtimes.ReasonOOMKilled,
				Message: fmt.Sprintf("the module needs %d bytes of memory at start, over the limit of %d", m.minMem, pages)}
		}
		alloc.limit = pages
	}
	ctx = experimental.WithMemoryAllocator(ctx, alloc)
	run := u.begin()
	mod, err := r.wz.InstantiateModule(ctx, m.cm, mc.WithNanosleep(sleeper(ctx, run)))
	if mod != nil {
		mod.Close(context.Background())
	}
	run.end()
	oom := alloc.oom.Load()
	var ee *sys.ExitError
	switch {
	case err == nil:
		// A module that coped with a refused memory.grow and returned
		// completed.
		return inproc.Exit{}
	case errors.As(err, &ee) && (ee.ExitCode() == sys.ExitCodeContextCanceled || ee.ExitCode() == sys.ExitCodeDeadlineExceeded):
		msg := "stopped"
		if !killed() {
			msg = "context ended: " + err.Error()
		}
		return inproc.Exit{Code: runtimes.ExitCodeKilled, Reason: runtimes.ReasonFailed, Message: msg}
	case errors.As(err, &ee):
		code := int32(ee.ExitCode())
		if oom && code != 0 {
			return inproc.Exit{Code: code, Reason: runtimes.ReasonOOMKilled, Message: fmt.Sprintf("out of memory: a memory.grow past the limit of %d bytes was refused", alloc.limit)}
		}
		return inproc.Exit{Code: code}
	default:
		if killed() {
			return inproc.Exit{Code: runtimes.ExitCodeKilled, Reason: runtimes.ReasonFailed, Message: "stopped"}
		}
		if oom {
			return inproc.Exit{Code: ExitCodeTrap, Reason: runtimes.ReasonOOMKilled, Message: err.Error()}
		}
		return inproc.Exit{Code: ExitCodeTrap, Reason: runtimes.ReasonFailed, Message: "trap: " + err.Error()}
	}
}

// cmdProc is a module running as a command.
type cmdProc struct {
	done   chan struct{}
	res    inproc.Exit
	cancel context.CancelFunc
	killed atomic.Bool
	stdin  *stdinPipe // nil without Stdin
}

func (p *cmdProc) Done() <-chan struct{} { return p.done }
func (p *cmdProc) Result() inproc.Exit   { return p.res }

// Term ends the module at once: WASI has no signals to ask first.
func (p *cmdProc) Term() { p.Kill() }
func (p *cmdProc) Kill() {
	p.killed.Store(true)
	p.cancel()
	if p.stdin != nil {
		p.stdin.stop() // a module blocked reading stdin would not see the cancel
	}
}

func (r *Runtime) runCommand(c *inproc.Container, m *module, logf *os.File) (inproc.Proc, error) {
	rc, closeMounts, err := moduleConfig(c)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &cmdProc{done: make(chan struct{}), cancel: cancel}
	out := &lockedWriter{w: logf}
	var stdin io.Reader = eofReader{}
	if c.Config.Stdin {
		p.stdin = newStdinPipe(c.Config.StdinOnce)
		stdin = p.stdin
		r.mu.Lock()
		r.stdins[c.ID] = p.stdin
		r.mu.Unlock()
	}
	mc := rc.build().WithStdout(out).WithStderr(out).WithStdin(stdin)
	go func() {
		defer close(p.done)
		if p.stdin != nil {
			defer func() {
				p.stdin.stop()
				r.mu.Lock()
				if r.stdins[c.ID] == p.stdin {
					delete(r.stdins, c.ID)
				}
				r.mu.Unlock()
			}()
		}
		defer cancel()
		defer logf.Close()
		defer closeMounts()
		defer r.dropUsage(c.ID)
		p.res = r.instance(ctx, m, mc, c.Config.MemoryLimitBytes, r.usageOf(c.ID), p.killed.Load)
		if p.res.Reason == runtimes.ReasonOOMKilled || p.res.Code == ExitCodeTrap {
			fmt.Fprintf(out, "[kyb wasm] %s: %s\n", p.res.Reason, p.res.Message)
		}
	}()
	return p, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

type eofReader struct{}

func (eofReader) Read([]byte) (int, error) { return 0, io.EOF }
