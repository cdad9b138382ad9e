package wasm_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// cacheDir is shared by every runtime of the test binary (and by later
// runs), so that each Go module compiles once.
var cacheDir = filepath.Join(os.TempDir(), "kyb-wasm-test-cache")

func newRuntime(t testing.TB, cfg wasm.Config) *wasm.Runtime {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = t.TempDir()
	}
	if cfg.CacheDir == "" {
		cfg.CacheDir = cacheDir
	}
	if cfg.HTTP.DefaultHostIP == "" {
		cfg.HTTP.DefaultHostIP = "127.0.0.1"
	}
	rt, err := wasm.New(cfg, nil)
	if err != nil {
		t.Fatalf("wasm.New: %v", err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func testProg(t testing.TB) string {
	return precompiled(t, runtimetest.BuildTestProg(t, "wasip1", "wasm"))
}

var (
	precompileMu   sync.Mutex
	precompileDone = map[string]bool{}
)

// precompiled fills the shared compilation cache with path's code from a
// process built without the race detector (compiling a Go module under
// -race takes about a minute instead of a second), once per test binary.
func precompiled(t testing.TB, path string) string {
	t.Helper()
	if !raceEnabled {
		return path
	}
	precompileMu.Lock()
	defer precompileMu.Unlock()
	if precompileDone[path] {
		return path
	}
	// Test binaries carry no module versions, so wazero names its cache
	// directory "dev" in them: make the helper do the same.
	cmd := exec.Command("go", "run", "-ldflags=-X github.com/tetratelabs/wazero/internal/version.version=dev", "./runtimes/wasm/internal/precompile", "-cache", filepath.Join(cacheDir, "compiled"), path)
	cmd.Dir = runtimetest.ModuleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("precompile %s: %v\n%s", path, err, out)
	}
	precompileDone[path] = true
	return path
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, runtimetest.Harness{
		New: func(t *testing.T, stateDir string) runtimes.Runtime {
			return newRuntime(t, wasm.Config{StateDir: stateDir})
		},
		Image: "file://" + testProg(t),
		Close: func(t *testing.T, rt runtimes.Runtime) { rt.(*wasm.Runtime).Close() },
	})
}
