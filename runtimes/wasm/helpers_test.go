package wasm_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// wat compiles testdata/NAME.wat with wat2wasm into a temporary file. It
// skips the test when wat2wasm is missing, except in CI.
func wat(t testing.TB, name string) string {
	t.Helper()
	bin, err := exec.LookPath("wat2wasm")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("wat2wasm (wabt) is required in CI: %v", err)
		}
		t.Skipf("wat2wasm not installed: %v", err)
	}
	out := filepath.Join(t.TempDir(), name+".wasm")
	if b, err := exec.Command(bin, filepath.Join("testdata", name+".wat"), "-o", out).CombinedOutput(); err != nil {
		t.Fatalf("wat2wasm %s: %v\n%s", name, err, b)
	}
	return out
}

func cgiModule(t testing.TB) string {
	return precompiled(t, runtimetest.BuildGo(t, "./runtimes/wasm/testdata/cgi", "wasip1", "wasm"))
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func sandbox(t testing.TB, rt runtimes.Runtime) *runtimes.Sandbox {
	t.Helper()
	sb, err := rt.CreateSandbox(ctxT(t), &runtimes.SandboxConfig{Namespace: "default", Name: "pod"})
	if err != nil {
		t.Fatalf("CreateSandbox: %v", err)
	}
	return sb
}

// runToEnd creates and starts a container and waits for its end.
func runToEnd(t testing.TB, rt runtimes.Runtime, sb *runtimes.Sandbox, cfg runtimes.ContainerConfig) (runtimes.ExitResult, string) {
	t.Helper()
	ctx := ctxT(t)
	if cfg.Name == "" {
		cfg.Name = "c"
	}
	if cfg.LogPath == "" {
		cfg.LogPath = filepath.Join(t.TempDir(), "log")
	}
	id, err := rt.CreateContainer(ctx, sb.ID, &cfg)
	if err != nil {
		t.Fatalf("CreateContainer: %v", err)
	}
	ch, err := rt.WaitContainer(ctx, id)
	if err != nil {
		t.Fatalf("WaitContainer: %v", err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatalf("StartContainer: %v", err)
	}
	res := <-ch
	if res.Err != nil {
		t.Fatalf("wait: %v", res.Err)
	}
	b, _ := os.ReadFile(cfg.LogPath)
	return res, string(b)
}

func wantReason(t testing.TB, err error, reason string, retryable bool, mention string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want reason %s", reason)
	}
	re := asReason(err)
	if re == nil || re.Reason != reason || re.Retryable != retryable {
		t.Fatalf("error %v: want reason %s retryable %v", err, reason, retryable)
	}
	if mention != "" && !strings.Contains(err.Error(), mention) {
		t.Errorf("error %v does not mention %q", err, mention)
	}
}

func asReason(err error) *runtimes.ReasonError {
	for err != nil {
		if re, ok := err.(*runtimes.ReasonError); ok {
			return re
		}
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return nil
		}
		err = u.Unwrap()
	}
	return nil
}

var osReadFile = os.ReadFile

func fileRef(p string) string { return "file://" + p }

func hexSHA(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
