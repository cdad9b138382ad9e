package apiserver_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/metrics"
)

// BenchmarkInstrumentation measures what the Prometheus instrumentation
// (the endpoint wrapper's latency histogram, the store's operation
// histogram) costs an apply and a get: in one run, on one server,
// alternating requests with metrics.Enabled on and off so that both see the
// same conditions, and reports the p50 and p99 of each and their ratio.
func BenchmarkInstrumentation(b *testing.B) {
	e := newEnv(b)
	b.Cleanup(func() { metrics.Enabled.Store(true) })
	e.apply(b, podYAML("", "target", nil))
	for _, op := range []string{"apply", "get"} {
		b.Run(op, func(b *testing.B) {
			lat := map[bool][]time.Duration{}
			b.ResetTimer()
			for i := range b.N {
				on := i%2 == 0
				metrics.Enabled.Store(on)
				start := time.Now()
				var err error
				if op == "apply" {
					_, err = e.c.Apply(e.ctx, []byte(podYAML("", fmt.Sprintf("%s-%d", op, i), nil)))
				} else {
					_, err = e.c.Get(e.ctx, "pod", api.DefaultNamespace, "target")
				}
				lat[on] = append(lat[on], time.Since(start))
				if err != nil {
					b.Fatalf("%s %d: %v", op, i, err)
				}
			}
			b.StopTimer()
			metrics.Enabled.Store(true)
			if len(lat[false]) == 0 {
				return
			}
			on50, off50 := percentile(lat[true], 0.50), percentile(lat[false], 0.50)
			b.ReportMetric(float64(on50.Microseconds()), "on-p50-µs")
			b.ReportMetric(float64(off50.Microseconds()), "off-p50-µs")
			b.ReportMetric(float64(percentile(lat[true], 0.99).Microseconds()), "on-p99-µs")
			b.ReportMetric(float64(percentile(lat[false], 0.99).Microseconds()), "off-p99-µs")
			b.ReportMetric(float64(on50)/float64(off50), "p50-ratio")
		})
	}
}
