package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// NatsCLI finds the real `nats` CLI (natscli v0.5.0): /root/go/bin/nats,
// else PATH, else `go install` into a temporary GOBIN. Without it the test
// is skipped, except in CI.
func NatsCLI(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/root/go/bin/nats"); err == nil {
		return "/root/go/bin/nats"
	}
	if p, err := exec.LookPath("nats"); err == nil {
		return p
	}
	gobin := t.TempDir()
	cmd := exec.Command("go", "install", "github.com/nats-io/natscli/nats@v0.5.0")
	cmd.Env = append(os.Environ(), "GOBIN="+gobin)
	if out, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("install natscli: %v\n%s", err, out)
		}
		t.Skipf("no nats CLI and go install failed: %v", err)
	}
	return filepath.Join(gobin, "nats")
}
