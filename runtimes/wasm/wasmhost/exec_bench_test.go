package wasmhost_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// BenchmarkExec: one exec (a fresh instance of the module) in the agent's
// process and through the host process: "run" is a command that prints a
// line and exits (latency per exec), "stdin-8MiB" pipes 8 MiB through cat
// and back (throughput of the framed relay).
func BenchmarkExec(b *testing.B) {
	shMod := runtimetest.PrecompileWasm(b, runtimetest.BuildGo(b, "./runtimes/runtimetest/execsh", "wasip1", "wasm"), cacheDir)
	input := bytes.Repeat([]byte("0123456789abcdef"), 8<<20/16)
	for _, mode := range []string{"inproc", "host"} {
		b.Run(mode, func(b *testing.B) {
			rt, _ := benchRuntime(b, mode)
			ex := rt.(runtimes.StreamExecer)
			sb := sandbox(b, rt)
			id := start(b, rt, sb, runtimes.ContainerConfig{Name: "sh", Image: "file://" + shMod, Args: []string{"-c", "sleep 100000"}})
			ctx := context.Background()
			b.Run("run", func(b *testing.B) {
				for b.Loop() {
					if code, err := ex.Exec(ctx, id, runtimes.ExecOptions{Cmd: []string{"-c", "echo hi"}, Stdout: io.Discard}); err != nil || code != 0 {
						b.Fatalf("Exec: %d %v", code, err)
					}
				}
			})
			b.Run("stdin-8MiB", func(b *testing.B) {
				b.SetBytes(int64(len(input)))
				for b.Loop() {
					var n countWriter
					if code, err := ex.Exec(ctx, id, runtimes.ExecOptions{Cmd: []string{"-c", "cat"}, Stdin: bytes.NewReader(input), Stdout: &n}); err != nil || code != 0 || int(n) != len(input) {
						b.Fatalf("Exec: %d %v, %d bytes back", code, err, n)
					}
				}
			})
		})
	}
}

type countWriter int

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}
