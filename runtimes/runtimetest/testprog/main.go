// Command testprog is the conformance suite's test program: it runs the
// verbs of package prog given as its arguments. Build it for wasip1/wasm
// (the wasm runtime) or statically for linux (container images) with
// runtimetest.BuildTestProg.
package main

import (
	"context"
	"os"
	"time"

	"github.com/kybernetes/kybernetes/runtimes/runtimetest/prog"
)

func main() {
	os.Exit(prog.Run(context.Background(), os.Args[1:], prog.Sys{
		Getenv:    os.LookupEnv,
		Stdout:    os.Stdout,
		Stderr:    os.Stderr,
		Stdin:     os.Stdin,
		ReadFile:  os.ReadFile,
		WriteFile: func(p string, b []byte) error { return os.WriteFile(p, b, 0o644) },
		Sleep:     func(d time.Duration) bool { time.Sleep(d); return true },
	}))
}
