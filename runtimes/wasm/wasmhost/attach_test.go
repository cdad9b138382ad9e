package wasmhost_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
)

// TestAttachOutlivesAgent: a module's stdin lives in the host, so after the
// agent restarts (a new client adopts the host) an attachment reaches the
// same module, which echoes it; a module has no terminal to resize.
func TestAttachOutlivesAgent(t *testing.T) {
	dir := t.TempDir()
	first := open(t, dir)
	sb := sandbox(t, first)
	logPath := filepath.Join(t.TempDir(), "log")
	id := start(t, first, sb, runtimes.ContainerConfig{Name: "c", Image: "file://" + testProg(t), LogPath: logPath,
		Args: []string{"stdin"}, Stdin: true})
	ctx := ctxT(t)
	send := func(rt runtimes.Attacher, line string) {
		t.Helper()
		w, err := rt.AttachStdin(ctx, id)
		if err != nil {
			t.Fatalf("AttachStdin: %v", err)
		}
		if _, err := w.Write([]byte(line + "\n")); err != nil {
			t.Fatalf("write: %v", err)
		}
		if err := w.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		testutil.Eventually(t, 10*time.Second, func() error {
			b, _ := os.ReadFile(logPath)
			if !bytes.Contains(b, []byte(line)) {
				return fmt.Errorf("log %q: want %q", b, line)
			}
			return nil
		})
	}
	send(first, "before the restart")
	first.Close() // the agent goes

	second := open(t, dir)
	send(second, "after the restart")
	if st, err := second.ContainerStatus(ctx, id); err != nil || st.State != runtimes.ContainerRunning {
		t.Errorf("after two attachments: %+v, %v; want the module running", st, err)
	}
	if err := second.ResizeTTY(ctx, id, runtimes.TermSize{Width: 80, Height: 24}); !errors.Is(err, runtimes.ErrNoTTY) {
		t.Errorf("ResizeTTY: %v, want ErrNoTTY", err)
	}
	if err := second.StopContainer(ctx, id, 0); err != nil {
		t.Fatal(err)
	}
}
