package wasmhost_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/kybernetes/kybernetes/runtimes/wasm/wasmhost"
)

// TestMain lets the test binary be a wasm host: `<test binary> wasm-host
// DIR` serves DIR as `kyb wasm-host --dir DIR` does.
func TestMain(m *testing.M) {
	if len(os.Args) == 3 && os.Args[1] == "wasm-host" {
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		cfg, err := wasmhost.ReadConfig(os.Args[2])
		if err == nil {
			err = wasmhost.Serve(ctx, cfg, os.Getenv("KYB_TEST_HOST_VERSION"), slog.New(slog.NewTextHandler(os.Stderr, nil)))
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "wasm host:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// cacheDir is the wasm runtime tests' shared compilation cache, so that
// each module compiles once, out of the race detector's reach.
var cacheDir = filepath.Join(os.TempDir(), "kyb-wasm-test-cache")

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}
