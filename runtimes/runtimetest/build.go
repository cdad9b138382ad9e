package runtimetest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

var (
	buildMu    sync.Mutex
	buildCache = map[string]*buildResult{}
)

type buildResult struct {
	once sync.Once
	path string
	err  error
}

// ModuleRoot returns the directory of the kybernetes module (the one
// holding go.mod), found from this source file.
func ModuleRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// BuildTestProg builds the test program (runtimes/runtimetest/testprog) for
// goos/goarch ("wasip1"/"wasm" or "linux"/"amd64", static, CGO off) and
// returns the binary's path. It builds once per test binary and target;
// later calls return the same path. Safe for concurrent use.
func BuildTestProg(t testing.TB, goos, goarch string) string {
	t.Helper()
	return BuildGo(t, "./runtimes/runtimetest/testprog", goos, goarch)
}

// BuildGo builds the Go main package pkg (a path relative to the module
// root, such as "./runtimes/wasm/testdata/cgi") for goos/goarch, once per
// test binary, and returns the binary's path. The binaries live under the
// system temporary directory, shared by test binaries (each writes its own
// file and renames it into place). Safe for concurrent use.
func BuildGo(t testing.TB, pkg, goos, goarch string) string {
	t.Helper()
	key := pkg + "@" + goos + "/" + goarch
	buildMu.Lock()
	r := buildCache[key]
	if r == nil {
		r = &buildResult{}
		buildCache[key] = r
	}
	buildMu.Unlock()
	r.once.Do(func() { r.path, r.err = build(pkg, goos, goarch) })
	if r.err != nil {
		t.Fatalf("build %s: %v", key, r.err)
	}
	return r.path
}

func build(pkg, goos, goarch string) (string, error) {
	dir := filepath.Join(os.TempDir(), "kyb-testbin")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	name := strings.NewReplacer("/", "_", ".", "_").Replace(strings.TrimPrefix(pkg, "./")) + "-" + goos + "-" + goarch
	if goarch == "wasm" {
		name += ".wasm"
	}
	out := filepath.Join(dir, name)
	tmp, err := os.CreateTemp(dir, name+".tmp*")
	if err != nil {
		return "", err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	cmd := exec.Command("go", "build", "-trimpath", "-o", tmp.Name(), pkg)
	cmd.Dir = ModuleRoot()
	cmd.Env = append(os.Environ(), "GOOS="+goos, "GOARCH="+goarch, "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	if err := os.Rename(tmp.Name(), out); err != nil {
		return "", err
	}
	return out, nil
}
