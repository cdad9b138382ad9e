package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/cmd/kyb/internal/cli"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
)

// background runs a long-running kyb command (get -w, logs -f) until the
// test ends, and returns its output so far.
func (c *cluster) background(args ...string) *testutil.SyncBuffer {
	c.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := &testutil.SyncBuffer{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		cli.Run(ctx, append([]string{"--server", c.url, "--config", c.config}, args...), cli.Streams{In: strings.NewReader(""), Out: out, Err: out})
	}()
	c.t.Cleanup(func() { cancel(); <-done })
	return out
}

// `kyb get pods -w` prints the pod as it changes, and `kyb logs -f`
// follows a running container's output.
func TestGetWatchAndFollowLogs(t *testing.T) {
	c := startCluster(t)
	dir := t.TempDir()
	c.startAgent("fake-1", dir, nil, map[string]runtimes.Runtime{api.RuntimeWasm: fakeRuntime(t, api.RuntimeWasm, dir)})
	watch := c.background("get", "pods", "-w")
	c.apply(wasmPod("talker", "fake://prog", "Never", "out", "first line", "sleep", "2s", "out", "second line"))
	c.waitPod("talker", 30*time.Second, phaseIs(api.PodRunning))
	follow := c.background("logs", "talker", "-f")
	testutil.Eventually(t, 30*time.Second, func() error {
		f := follow.String()
		if !strings.Contains(f, "first line") || !strings.Contains(f, "second line") {
			return fmt.Errorf("logs -f printed %q", f)
		}
		return nil
	})
	c.waitPod("talker", 30*time.Second, phaseIs(api.PodSucceeded))
	testutil.Eventually(t, 10*time.Second, func() error {
		// The pod finishes after the watch began, whatever it caught before.
		if w := watch.String(); !strings.Contains(w, "talker") || !strings.Contains(w, "Completed") {
			return fmt.Errorf("get -w never showed Completed: %q", w)
		}
		return nil
	})
}
