package apiserver_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// BenchmarkApplyService creates Services one after another and reports the
// apply latency: ClusterIP (one IP claim) and NodePort (an IP and a port
// claim), against a pod's create (BenchmarkApplyCreate) for the claims'
// cost. Run: go test -run '^$' -bench ApplyService ./control/apiserver/
func BenchmarkApplyService(b *testing.B) {
	for _, typ := range []string{"ClusterIP", "NodePort"} {
		b.Run(typ, func(b *testing.B) {
			e := newEnv(b)
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				m := []byte(svcYAML(fmt.Sprintf("s%d", i), typ, "", 0))
				start := time.Now()
				r, err := e.c.Apply(e.ctx, m)
				lat = append(lat, time.Since(start))
				if err != nil || r.Results[0].Action != api.ActionCreated {
					b.Fatalf("apply %d: %v", i, err)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(percentile(lat, 0.50).Microseconds()), "p50-µs")
			b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-µs")
		})
	}
}
