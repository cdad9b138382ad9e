package controlplane_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/controlplane"
)

// BenchmarkClusterApply compares, in one run, one server with a cluster
// of three (R3 buckets), both with sync always, each over TLS as the admin:
// sequential applies of a new object (p50, p99) and 8 clients creating
// objects for a second (creates/s). Run with -benchtime 1x.
func BenchmarkClusterApply(b *testing.B) {
	for _, shape := range []string{"single", "cluster3"} {
		b.Run(shape, func(b *testing.B) {
			var cps []*controlplane.ControlPlane
			if shape == "single" {
				m := newMember(b, "kyb-single")
				cfg := func(c *controlplane.Config) { c.ClusterListen, c.Sync = "", "always" }
				wait(b, "single", startMember(b, m, cfg))
				b.Cleanup(func() { stopMember(m) })
				cps = append(cps, m.cp)
			} else {
				for _, m := range startCluster(b, "always") {
					cps = append(cps, m.cp)
				}
			}
			ctx := context.Background()
			var clients []*client.Client
			for i := 0; i < 8; i++ {
				clients = append(clients, adminClient(b, cps[i%len(cps)]))
			}
			apply := func(c *client.Client, name string) error {
				_, err := c.Apply(ctx, []byte(`{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"`+name+`"}}`))
				return err
			}
			for round := range b.N {
				const n = 300
				lat := make([]time.Duration, 0, n)
				for i := range n {
					t0 := time.Now()
					if err := apply(clients[0], fmt.Sprintf("seq-%d-%d", round, i)); err != nil {
						b.Fatal(err)
					}
					lat = append(lat, time.Since(t0))
				}
				slices.Sort(lat)
				b.ReportMetric(float64(lat[n/2].Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(lat[n*99/100].Microseconds())/1000, "p99-ms")
				var created atomic.Int64
				var wg sync.WaitGroup
				deadline := time.Now().Add(time.Second)
				for ci, c := range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; time.Now().Before(deadline); i++ {
							if err := apply(c, fmt.Sprintf("par-%d-%d-%d", round, ci, i)); err != nil {
								b.Error(err)
								return
							}
							created.Add(1)
						}
					}()
				}
				wg.Wait()
				b.ReportMetric(float64(created.Load()), "creates/s")
			}
		})
	}
}
