// Package containerdtest gives tests outside runtimes/containerd a real
// containerd runtime: on the containerd of $KYB_CONTAINERD_ADDRESS, on a
// bridge of the test's own, skipped where containerd is not there (never
// when CI=true), and leaving nothing behind.
package containerdtest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/runtimes/containerd"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// Runtime returns a containerd runtime with cfg, its Address filled from
// $KYB_CONTAINERD_ADDRESS (else containerd.DefaultAddress), on a fresh
// bridge cfg.BridgeName (runtimetest.FreshBridge). It skips the test when
// containerd does not answer or the test is not root, and fails it instead
// when CI=true. Its cleanup, registered now and so run after those the
// test registers later (an agent's stop), removes every sandbox left in
// cfg.Namespace and closes the runtime.
func Runtime(t testing.TB, cfg containerd.Config, log *slog.Logger) *containerd.Runtime {
	t.Helper()
	cfg.Address = os.Getenv("KYB_CONTAINERD_ADDRESS")
	if cfg.Address == "" {
		cfg.Address = containerd.DefaultAddress
	}
	skip := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI=true, so this cannot skip: "+format, args...)
		}
		t.Skipf(format, args...)
	}
	if os.Geteuid() != 0 {
		skip("the containerd tests need root")
	}
	runtimetest.FreshBridge(t, cfg.BridgeName)
	rt, err := containerd.New(context.Background(), cfg, log)
	if err != nil {
		skip("containerd at %s: %v", cfg.Address, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := rt.Info(ctx); err != nil {
		rt.Close()
		skip("containerd at %s does not answer (set KYB_CONTAINERD_ADDRESS; .ci/containerd.sh starts one): %v", cfg.Address, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		sbs, _ := rt.ListSandboxes(ctx)
		for _, sb := range sbs {
			if err := rt.RemoveSandbox(ctx, sb.ID); err != nil {
				t.Errorf("clean up sandbox %s: %v", sb.ID, err)
			}
		}
		rt.Close()
	})
	return rt
}

// Namespace is a containerd namespace of this test process's own, for
// prefix: tests of other packages running at the same time use others.
func Namespace(prefix string) string { return fmt.Sprintf("%s-%d", prefix, os.Getpid()) }
