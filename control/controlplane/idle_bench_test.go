package controlplane_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/controlplane"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkIdleControllers makes 10,000 pods through 100 ReplicaSets of
// 100 replicas (no node, so they stay pending: the scheduler and every
// controller have seen them all), waits until nothing changes, then
// measures the whole control plane's CPU over 20 s of quiet, reported as
// CPU seconds per minute: with no change there should be no work.
func BenchmarkIdleControllers(b *testing.B) {
	for b.Loop() {
		cp, err := controlplane.Start(context.Background(), controlplane.Config{
			DataDir: b.TempDir(), Listen: "127.0.0.1:0", Sync: "1s",
		}, nil)
		if err != nil {
			b.Fatal(err)
		}
		c := client.New(cp.Conn())
		ctx := context.Background()
		for i := range 100 {
			m := fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"ReplicaSet","metadata":{"name":"rs%d"},"spec":{"replicas":100,
"selector":{"matchLabels":{"rs":"rs%d"}},"template":{"metadata":{"labels":{"rs":"rs%d"}},"spec":{"containers":[{"name":"c","image":"busybox"}]}}}}`, i, i, i)
			if _, err := c.Apply(ctx, []byte(m)); err != nil {
				b.Fatal(err)
			}
		}
		deadline := time.Now().Add(5 * time.Minute)
		for {
			objs, _, err := c.List(ctx, api.ListRequest{Kind: "Pod", AllNamespaces: true})
			if err == nil && len(objs) == 10000 {
				break
			}
			if time.Now().After(deadline) {
				b.Fatalf("%d pods after 5 minutes", len(objs))
			}
			time.Sleep(500 * time.Millisecond)
		}
		time.Sleep(5 * time.Second) // let the last status writes and events settle
		before, start := cpuTime(), time.Now()
		time.Sleep(20 * time.Second)
		used, wall := cpuTime()-before, time.Since(start)
		b.ReportMetric(used.Seconds()/wall.Minutes(), "cpu-s/min")
		_ = cp.Shutdown()
	}
}
