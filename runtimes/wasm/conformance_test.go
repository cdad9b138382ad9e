package wasm_test

import (
	"os"
	"path/filepath"
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
	if cfg.ModuleDirs == nil {
		// Test modules live under the system temporary directory (built
		// there by runtimetest, or in t.TempDir()). A test of "no
		// directories allowed" passes an empty, non-nil slice.
		cfg.ModuleDirs = []string{os.TempDir()}
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

// precompiled fills the shared compilation cache with path's code, out of
// the race detector's reach (see runtimetest.PrecompileWasm).
func precompiled(t testing.TB, path string) string {
	t.Helper()
	return runtimetest.PrecompileWasm(t, path, cacheDir)
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
