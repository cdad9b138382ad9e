package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/containerd/containerd/v2/core/runtime/v2/logging"
)

// LogDriverArg is the first argument with which the containerd shim starts
// the log driver binary (Config.LogDriver); the second is the log file.
const LogDriverArg = "kyb-containerd-log"

// LogDriverMain makes the calling program serve as the containers' log
// driver: when the process was started by the containerd shim for that
// (argv is [binary, LogDriverArg, path] and CONTAINER_ID is set), it appends
// the container's stdout and stderr to path until both end, then exits the
// process. Otherwise it returns at once. Programs whose binary is
// Config.LogDriver (by default the program running the Runtime) call it
// first thing in main. Run as [binary, LogDriverArg, "--probe"] it prints a
// reply and exits, so that New can tell that the binary is a log driver.
//
// A driver process outlives the agent, so logs keep flowing across agent
// restarts. It exists because containerd 1.6's own file logging can lose
// stderr written just before the process exits.
func LogDriverMain() {
	if len(os.Args) != 3 || os.Args[1] != LogDriverArg {
		return
	}
	if os.Args[2] == probeArg {
		fmt.Println(probeReply)
		os.Exit(0)
	}
	if os.Getenv("CONTAINER_ID") == "" {
		return
	}
	path := os.Args[2]
	logging.Run(func(ctx context.Context, cfg *logging.Config, ready func() error) error {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
		if err != nil {
			ready()
			return fmt.Errorf("log driver: %w", err)
		}
		defer f.Close()
		if err := ready(); err != nil {
			return fmt.Errorf("log driver: signal ready: %w", err)
		}
		return copyStreams(ctx, f, cfg.Stdout, cfg.Stderr)
	})
	os.Exit(0) // logging.Run exits itself; this is not reached
}

const (
	probeArg   = "--probe"
	probeReply = "kyb-containerd-log ok"
)

// resolveLogDriver picks the log driver binary: the configured one, else
// the running program, checked by running it with a probe argument. It
// falls back to "file" (the shim's own file logging) when the binary does
// not answer the probe, and for Go test binaries, which would run their
// tests instead.
func resolveLogDriver(ctx context.Context, configured string, log *slog.Logger) string {
	if configured == "file" {
		return configured
	}
	bin := configured
	if bin == "" {
		exe, err := os.Executable()
		if err != nil || strings.HasSuffix(exe, ".test") {
			return "file"
		}
		bin = exe
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, LogDriverArg, probeArg).Output()
	if err != nil || strings.TrimSpace(string(out)) != probeReply {
		log.Warn("log driver does not answer; using the shim's file logging, which may lose stderr written just before a container exits (call containerd.LogDriverMain first in main)",
			"binary", bin, "err", err)
		return "file"
	}
	return bin
}

// lockedWriter serialises writes of two streams into one file.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// copyStreams copies every reader into w until all end (or ctx ends after
// they were asked to stop, as the shim does on task deletion).
func copyStreams(ctx context.Context, w io.Writer, rs ...io.Reader) error {
	lw := &lockedWriter{w: w}
	errs := make(chan error, len(rs))
	for _, r := range rs {
		go func() {
			_, err := io.Copy(lw, r)
			errs <- err
		}()
	}
	var all []error
	for range rs {
		select {
		case err := <-errs:
			if err != nil && !errors.Is(err, os.ErrClosed) {
				all = append(all, err)
			}
		case <-ctx.Done():
			return nil
		}
	}
	return errors.Join(all...)
}
