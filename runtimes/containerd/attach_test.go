package containerd

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/kybernetes/kybernetes/runtimes"
)

// TestAttachTTY: a container with a terminal logs it through the log
// driver binary (the terminal echoes what an attachment writes, with its
// CRLF), takes resizes, and a container without one refuses them; the
// shim's own file logging cannot log a terminal, so a runtime with the
// "file" log driver refuses tty at create.
func TestAttachTTY(t *testing.T) {
	r, e := newTestRuntime(t)
	sb := newSandbox(t, r, "tty")
	ctx := context.Background()
	lp := filepath.Join(t.TempDir(), "tty.log")
	id := run(t, r, sb, &runtimes.ContainerConfig{Name: "tty", Args: []string{"sleep"}, Stdin: true, TTY: true, LogPath: lp})
	if err := r.ResizeTTY(ctx, id, runtimes.TermSize{Width: 120, Height: 40}); err != nil {
		t.Errorf("ResizeTTY: %v", err)
	}
	w, err := r.AttachStdin(ctx, id)
	if err != nil {
		t.Fatalf("AttachStdin: %v", err)
	}
	if _, err := w.Write([]byte("typed on a terminal\n")); err != nil {
		t.Fatalf("write: %v", err)
	}
	waitLogHas(t, lp, "typed on a terminal\r\n")
	if err := w.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if st, err := r.ContainerStatus(ctx, id); err != nil || st.State != runtimes.ContainerRunning {
		t.Errorf("after a detach: %+v, %v; want running", st, err)
	}

	plain := run(t, r, sb, &runtimes.ContainerConfig{Name: "plain", Args: []string{"sleep"}, LogPath: filepath.Join(t.TempDir(), "plain.log")})
	if err := r.ResizeTTY(ctx, plain, runtimes.TermSize{Width: 80, Height: 24}); !errors.Is(err, runtimes.ErrNoTTY) {
		t.Errorf("ResizeTTY of a container without a terminal: %v, want ErrNoTTY", err)
	}

	cfg := testConfig(e)
	cfg.LogDriver = "file"
	fr, err := New(ctx, cfg, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer fr.Close()
	_, err = fr.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "filetty", Image: e.image, Args: []string{"sleep"}, TTY: true,
		LogPath: filepath.Join(t.TempDir(), "f.log")})
	if runtimes.ReasonOf(err, "") != runtimes.ReasonCreateContainerConfigError {
		t.Errorf("tty with the file log driver: %v; want CreateContainerConfigError", err)
	}
}
