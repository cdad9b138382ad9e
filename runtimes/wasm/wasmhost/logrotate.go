package wasmhost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"
)

// MaxLogBytes bounds host.log. A host lives as long as the node (it
// outlives every agent), so its log would otherwise grow without end: past
// the bound, its content moves to host.log.1 (one generation kept), so at
// most about twice the bound is on disk.
const MaxLogBytes = 10 << 20

// logCheckInterval is how often a host compares host.log with MaxLogBytes.
const logCheckInterval = 30 * time.Second

// rotateLog keeps f, the host's stdout and stderr (host.log at path, which
// the agent that started the host opened with O_APPEND), under max bytes:
// when it is larger, its content is copied to path.1 (replacing the one
// before) and f is truncated, as logrotate's copytruncate does. The host
// cannot swap the file it writes (the agent opened it, and a panic's trace
// must still reach fd 2); lines written during the copy may be lost. f
// must be the file at path, or nothing is done: a host served in a test
// process must not truncate the test's stderr.
func rotateLog(f *os.File, path string, max int64) (bool, error) {
	fi, err := f.Stat()
	if err != nil {
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	pi, err := os.Stat(path)
	if err != nil || !os.SameFile(fi, pi) || fi.Size() <= max {
		return false, nil
	}
	src, err := os.Open(path)
	if err != nil {
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	defer src.Close()
	dst, err := os.OpenFile(path+".1", os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return false, fmt.Errorf("rotate %s: %w", path, err)
	}
	_, err = io.Copy(dst, src)
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return false, fmt.Errorf("rotate %s: copy: %w", path, err)
	}
	if err := f.Truncate(0); err != nil {
		return false, fmt.Errorf("rotate %s: truncate: %w", path, err)
	}
	return true, nil
}

// rotateLogLoop runs rotateLog on the host's stderr every
// logCheckInterval until ctx ends.
func rotateLogLoop(ctx context.Context, path string, log *slog.Logger) {
	t := time.NewTicker(logCheckInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rotated, err := rotateLog(os.Stderr, path, MaxLogBytes)
		switch {
		case err != nil && !errors.Is(err, os.ErrNotExist):
			log.Warn("wasm host: rotate its log", "err", err)
		case rotated:
			log.Info("wasm host: log rotated", "kept", path+".1", "max", MaxLogBytes)
		}
	}
}
