package wasm_test

import (
	"fmt"
	"io"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// BenchmarkWAGIConcurrency serves the Go net/http/cgi module with the
// default limits (per-pod and per-node caps, a brief queue before 503) to 1,
// 8 and 64 concurrent clients, and reports req/s, p50, p99 and how many
// requests were refused (503) — what a Service sending real traffic sees.
func BenchmarkWAGIConcurrency(b *testing.B) {
	for _, clients := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			rt := newRuntime(b, wasm.Config{})
			base, _, _ := serveModule(b, rt, fileRef(cgiModule(b)), nil)
			hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: clients}, Timeout: 30 * time.Second}
			var refused atomic.Int64
			do := func() error {
				resp, err := hc.Get(base + "/bench?x=1")
				if err != nil {
					return err
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 200:
					return nil
				case 503:
					refused.Add(1)
					return nil
				}
				return &statusErr{resp.StatusCode}
			}
			for range clients { // warm up connections and code
				if err := do(); err != nil {
					b.Fatal(err)
				}
			}
			refused.Store(0)
			var next atomic.Int64
			lat := make([]time.Duration, b.N)
			var wg sync.WaitGroup
			var firstErr atomic.Value
			b.ResetTimer()
			start := time.Now()
			for range clients {
				wg.Go(func() {
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
				})
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
			b.ReportMetric(float64(refused.Load()), "refused")
		})
	}
}
