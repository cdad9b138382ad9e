// Command precompile fills a wazero compilation cache directory with the
// compiled code of the given modules, using the wasm runtime's settings. The
// wasm runtime's tests run it (built without the race detector, where
// compiling a Go module takes a second instead of a minute) before
// runtimes built with -race load the same modules from the cache.
//
//	go run ./runtimes/wasm/internal/precompile -cache DIR mod.wasm...
package main

import (
	"context"
	"flag"
	"fmt"
	"os"

	"github.com/tetratelabs/wazero"

	"github.com/kybernetes/kybernetes/runtimes/wasm/internal/wasmbin"
)

func main() {
	dir := flag.String("cache", "", "compilation cache directory")
	flag.Parse()
	if err := run(*dir, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "precompile:", err)
		os.Exit(1)
	}
}

func run(dir string, files []string) error {
	ctx := context.Background()
	cache, err := wazero.NewCompilationCacheWithDir(dir)
	if err != nil {
		return err
	}
	defer cache.Close(ctx)
	// Keep in step with wasm.New.
	rt := wazero.NewRuntimeWithConfig(ctx, wazero.NewRuntimeConfig().WithCloseOnContextDone(true).WithCompilationCache(cache))
	defer rt.Close(ctx)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		b, _ = wasmbin.MergeData(b) // as wasm.Runtime does before compiling
		if _, err := rt.CompileModule(ctx, b); err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
	}
	return nil
}
