package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// deploymentManifest is a wasm Deployment of the test program that runs
// forever; env changes the template (a rollout).
func deploymentManifest(name string, replicas int, env string) string {
	return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: %[1]s
spec:
  replicas: %[2]d
  selector:
    matchLabels: {app: %[1]s}
  strategy:
    rollingUpdate: {maxSurge: 25%%, maxUnavailable: 25%%}
  template:
    metadata:
      labels: {app: %[1]s}
    spec:
      runtimeClassName: wasm
      terminationGracePeriodSeconds: 1
      containers:
      - name: app
        image: kyb://prog
        args: ["sleep", "forever"]
        env: [{name: VERSION, value: %[3]q}]
`, name, replicas, env)
}

// waitDeployment polls the Deployment until done accepts it.
func (c *cluster) waitDeployment(b testing.TB, name string, timeout time.Duration, done func(d *api.Deployment) bool) {
	b.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		o, err := c.c.Get(ctx, "Deployment", "default", name)
		cancel()
		if err == nil && done(o.(*api.Deployment)) {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("deployment %s not done after %v: %+v %v", name, timeout, o, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// BenchmarkWasmDeployment applies a wasm Deployment of 100 replicas and
// waits until all its pods are Ready (target ≤ 2 s), then rolls a new
// template out (target ≤ 5 s): every replica updated, Ready, and the old
// ReplicaSet scaled to 0; and one of 1,000 replicas until Ready (target
// ≤ 10 s; not rolled). One node, the real wasm runtime, sync always.
// Reports seconds for each.
func BenchmarkWasmDeployment(b *testing.B) {
	b.Run("replicas=100", func(b *testing.B) { benchDeployment(b, 100, true) })
	b.Run("replicas=1000", func(b *testing.B) { benchDeployment(b, 1000, false) })
}

func benchDeployment(b *testing.B, n int32, rollout bool) {
	c := benchCluster(b)
	var ready, roll time.Duration
	for i := 0; b.Loop(); i++ {
		name := fmt.Sprintf("web%d", i)
		start := time.Now()
		c.apply(deploymentManifest(name, int(n), "v1"))
		c.waitDeployment(b, name, 120*time.Second, func(d *api.Deployment) bool {
			return d.Status.ReadyReplicas == n && d.Status.UpdatedReplicas == n
		})
		ready += time.Since(start)
		if rollout {
			start = time.Now()
			c.apply(deploymentManifest(name, int(n), "v2"))
			c.waitDeployment(b, name, 120*time.Second, func(d *api.Deployment) bool {
				return d.Status.ObservedGeneration >= d.Generation && d.Status.UpdatedReplicas == n &&
					d.Status.ReadyReplicas == n && d.Status.Replicas == n
			})
			roll += time.Since(start)
		}
		b.StopTimer()
		c.kyb("delete", "deployment", name)
		b.StartTimer()
	}
	b.ReportMetric(ready.Seconds()/float64(b.N), "ready-s")
	if rollout {
		b.ReportMetric(roll.Seconds()/float64(b.N), "rollout-s")
	}
}
