package wasm_test

import (
	"context"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// BenchmarkStartCached measures create+start+wait+remove of a container
// whose module is already compiled: the per-run cost of the runtime.
func BenchmarkStartCached(b *testing.B) {
	for _, bc := range []struct {
		name string
		ref  func(b *testing.B) string
		args []string
	}{
		{"wat", func(b *testing.B) string { return fileRef(wat(b, "hello")) }, nil},
		{"go", func(b *testing.B) string { return fileRef(testProg(b)) }, []string{"exit", "0"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rt := newRuntime(b, wasm.Config{})
			sb := sandbox(b, rt)
			ctx := context.Background()
			ref := bc.ref(b)
			if _, err := rt.EnsureImage(ctx, ref, runtimes.PullIfNotPresent, nil); err != nil {
				b.Fatal(err)
			}
			logPath := filepath.Join(b.TempDir(), "log")
			b.ResetTimer()
			for b.Loop() {
				id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: ref, Args: bc.args, LogPath: logPath})
				if err != nil {
					b.Fatal(err)
				}
				ch, err := rt.WaitContainer(ctx, id)
				if err != nil {
					b.Fatal(err)
				}
				if err := rt.StartContainer(ctx, id); err != nil {
					b.Fatal(err)
				}
				if res := <-ch; res.ExitCode != 0 {
					b.Fatalf("exit %d %s", res.ExitCode, res.Message)
				}
				if err := rt.RemoveContainer(ctx, id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkWAGI drives a serving container with a bounded loopback client
// loop (b.N requests over 4 connections) and reports requests per second
// and latency percentiles.
func BenchmarkWAGI(b *testing.B) {
	for _, bc := range []struct {
		name string
		ref  func(b *testing.B) string
	}{
		{"wat", func(b *testing.B) string { return fileRef(wat(b, "hello")) }},
		{"go-cgi", func(b *testing.B) string { return fileRef(cgiModule(b)) }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			const workers = 4
			rt := newRuntime(b, wasm.Config{HTTP: wasm.HTTPConfig{MaxConcurrent: 64}})
			base, _, _ := serveModule(b, rt, bc.ref(b), nil)
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 30 * time.Second}
			do := func() error {
				resp, err := client.Get(base + "/bench?x=1")
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					return &statusErr{resp.StatusCode}
				}
				return nil
			}
			for range workers { // warm up connections and code
				if err := do(); err != nil {
					b.Fatal(err)
				}
			}
			var next atomic.Int64
			lat := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			var firstErr atomic.Value
			b.ResetTimer()
			start := time.Now()
			for range workers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1) - 1
						if i >= int64(b.N) {
							return
						}
						t0 := time.Now()
						if err := do(); err != nil {
							firstErr.CompareAndSwap(nil, err)
							return
						}
						lat[i] = time.Since(t0)
					}
				}()
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			if err, _ := firstErr.Load().(error); err != nil {
				b.Fatal(err)
			}
			slices.Sort(lat)
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

type statusErr struct{ code int }

func (e *statusErr) Error() string { return http.StatusText(e.code) }
