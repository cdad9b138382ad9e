package runtimetest

import (
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

var (
	precompileMu   sync.Mutex
	precompileDone = map[string]bool{}
)

// PrecompileWasm fills the wazero compilation cache under cacheDir (the
// wasm runtime's Config.CacheDir) with the module at path, compiled by a
// helper process built without the race detector: under -race, wazero
// takes about a minute to compile a Go module instead of a second. Without
// -race it does nothing. Once per test binary, cache dir and module; it
// returns path. Safe for concurrent use.
func PrecompileWasm(t testing.TB, path, cacheDir string) string {
	t.Helper()
	if !raceEnabled {
		return path
	}
	precompileMu.Lock()
	defer precompileMu.Unlock()
	key := cacheDir + "\x00" + path
	if precompileDone[key] {
		return path
	}
	// Test binaries carry no module versions, so wazero names its cache
	// directory "dev" in them: make the helper do the same.
	cmd := exec.Command("go", "run", "-ldflags=-X github.com/tetratelabs/wazero/internal/version.version=dev",
		"./runtimes/wasm/internal/precompile", "-cache", filepath.Join(cacheDir, "compiled"), path)
	cmd.Dir = ModuleRoot()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("precompile %s: %v\n%s", path, err, out)
	}
	precompileDone[key] = true
	return path
}
