package fault

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// BenchmarkFailover kills (-9) the server leading the objects bucket of a
// three-server cluster of real processes, ten times, and times the kill to
// the first successful write of a client that writes in a loop (1 s
// request timeout) through any server. The killed server is restarted and
// every stream current again before the next run. Reports p50 and max.
// Needs KYB_FAULT=1 (or CI=true). Run with -benchtime 1x (about 2 min).
func BenchmarkFailover(b *testing.B) {
	enabled(b)
	c := startCluster(b, []string{"127.0.0.1", "127.0.0.1", "127.0.0.1"}, nil)
	creds, ca := c.servers[0].creds(b)
	nc := connect(b, creds, ca, c.urls()...)
	watch := connect(b, creds, ca, c.urls()...)
	cl := client.New(nc)
	for range b.N {
		var times []time.Duration
		for run := 0; run < 10; run++ {
			leader := c.byName(streamLeader(b, watch, "KV_kyb-objects"))
			killed := time.Now()
			leader.kill()
			for i := 0; ; i++ {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				_, err := cl.Apply(ctx, []byte(fmt.Sprintf("apiVersion: v1\nkind: Namespace\nmetadata: {name: failover-%d-%d-%d}\n", b.N, run, i)))
				cancel()
				if err == nil {
					break
				}
				if time.Since(killed) > time.Minute {
					b.Fatalf("run %d: no successful write a minute after killing %s: %v", run, leader.name, err)
				}
				time.Sleep(20 * time.Millisecond)
			}
			times = append(times, time.Since(killed))
			b.Logf("run %d: killed %s, first write after %v", run, leader.name, times[run].Round(time.Millisecond))
			leader.extra = nil
			leader.start()
			cc := client.New(watch)
			testutil.Eventually(b, 60*time.Second, func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				st, err := cc.ClusterStatus(ctx)
				if err != nil {
					return err
				}
				return allCurrent(st, 3)
			})
		}
		slices.Sort(times)
		b.ReportMetric(float64(times[len(times)/2].Milliseconds()), "p50-ms")
		b.ReportMetric(float64(times[len(times)-1].Milliseconds()), "max-ms")
	}
}
