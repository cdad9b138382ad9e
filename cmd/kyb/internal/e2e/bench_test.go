package e2e

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// benchCluster is wasmCluster for benchmarks: one control plane (sync
// always) and one agent with the real wasm runtime, the test program pushed
// as kyb://prog and already compiled.
func benchCluster(b *testing.B) *cluster {
	b.Helper()
	c := startCluster(b)
	prog := precompiled(b, runtimetest.BuildTestProg(b, "wasip1", "wasm"))
	c.kyb("module", "push", "prog", prog)
	dir := b.TempDir()
	c.startAgent("bench-1", dir, nil, map[string]runtimes.Runtime{api.RuntimeWasm: c.wasmRuntime("bench-1", dir)})
	// Warm the module on the node: the first pod compiles it (or loads it
	// from the disk cache).
	c.apply(wasmPod("warm", "kyb://prog", "Never", "exit", "0"))
	c.waitPod("warm", 120*time.Second, phaseIs(api.PodSucceeded))
	return c
}

// waitRunning blocks until every named pod is Running, reading the events
// stream (never polling), and returns when each became Running.
func waitRunning(b *testing.B, events <-chan podEvent, names map[string]bool, timeout time.Duration) map[string]time.Time {
	b.Helper()
	at := map[string]time.Time{}
	deadline := time.After(timeout)
	for len(at) < len(names) {
		select {
		case ev := <-events:
			if names[ev.name] && ev.phase == api.PodRunning {
				if _, ok := at[ev.name]; !ok {
					at[ev.name] = ev.at
				}
			}
		case <-deadline:
			b.Fatalf("%d of %d pods Running after %v", len(at), len(names), timeout)
		}
	}
	return at
}

type podEvent struct {
	name  string
	phase api.PodPhase
	at    time.Time
}

func (c *cluster) podEvents(ctx context.Context, b *testing.B) <-chan podEvent {
	ch, err := c.c.Watch(ctx, "Pod", "default")
	if err != nil {
		b.Fatal(err)
	}
	out := make(chan podEvent, 4096)
	go func() {
		for ev := range ch {
			p := ev.Object.(*api.Pod)
			out <- podEvent{p.Name, p.Status.Phase, time.Now()}
		}
	}()
	return out
}

// BenchmarkWasmPodApplyToRunning: 200 sequential wasm pods, module cached;
// each is applied, then waited for until its status says Running.
func BenchmarkWasmPodApplyToRunning(b *testing.B) {
	c := benchCluster(b)
	benchApplyToRunning(b, c, 200, 0, 30*time.Second, func(name string) string {
		return wasmPod(name, "kyb://prog", "Always", "sleep", "forever")
	})
}

// benchApplyToRunning applies n pods one after another (manifest makes
// each from its name) and reports the p50 and p99 of apply until Running,
// read from the events stream. With keep > 0 only the last keep pods stay:
// older ones are deleted as new ones come.
func benchApplyToRunning(b *testing.B, c *cluster, n, keep int, timeout time.Duration, manifest func(name string) string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := c.podEvents(ctx, b)
	name := func(i int) string { return "p-" + strconv.Itoa(i) }
	b.ResetTimer()
	for range b.N {
		lat := make([]time.Duration, 0, n)
		for i := range n {
			start := time.Now()
			c.apply(manifest(name(i)))
			at := waitRunning(b, events, map[string]bool{name(i): true}, timeout)
			lat = append(lat, at[name(i)].Sub(start))
			if keep > 0 && i >= keep {
				c.kyb("delete", "pod", name(i-keep), "--grace-period", "0")
			}
		}
		b.StopTimer()
		sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
		b.ReportMetric(float64(lat[n/2].Microseconds())/1000, "p50-ms")
		b.ReportMetric(float64(lat[n*99/100].Microseconds())/1000, "p99-ms")
		first := 0
		if keep > 0 {
			first = max(n-keep, 0)
		}
		for i := first; i < n; i++ {
			c.kyb("delete", "pod", name(i), "--grace-period", "0")
		}
		b.StartTimer()
	}
}

// BenchmarkThousandWasmPods: 1,000 wasm pods applied at once (10 manifests
// of 100) onto one node; reports the seconds until all are Running and the
// memory of the test process (control plane and agent together).
func BenchmarkThousandWasmPods(b *testing.B) {
	c := benchCluster(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := c.podEvents(ctx, b)
	const n = 1000
	names := map[string]bool{}
	var docs []string
	for i := range n {
		name := fmt.Sprintf("many-%d", i)
		names[name] = true
		docs = append(docs, wasmPod(name, "kyb://prog", "Always", "sleep", "forever"))
	}
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < n; i += 100 {
		c.apply(strings.Join(docs[i:i+100], "---\n"))
	}
	waitRunning(b, events, names, 120*time.Second)
	b.ReportMetric(time.Since(start).Seconds(), "s-all-running")
	b.StopTimer()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MiB")
	b.ReportMetric(float64(rssKiB())/1024, "rss-MiB")
}

func rssKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// containerBenchCluster is a control plane and one agent with the real
// containerd runtime, the test image already pulled.
func containerBenchCluster(b *testing.B) (*cluster, string) {
	b.Helper()
	c := startCluster(b)
	dir := b.TempDir()
	cr := containerdRuntime(b, dir)
	image := progImage(b)
	c.startAgent("ctr-1", dir, nil, map[string]runtimes.Runtime{api.RuntimeContainerd: cr})
	c.apply(containerPod("warm", image, "Never", "", "exit", "0"))
	c.waitPod("warm", 120*time.Second, phaseIs(api.PodSucceeded))
	return c, image
}

// BenchmarkContainerPodApplyToRunning: 100 sequential container pods, image
// present; each applied, then waited for until its status says Running. The
// node keeps only the last 5 (the 50-pod benchmark measures density).
func BenchmarkContainerPodApplyToRunning(b *testing.B) {
	c, image := containerBenchCluster(b)
	benchApplyToRunning(b, c, 100, 5, 60*time.Second, func(name string) string {
		return containerPod(name, image, "Always", "", "sleep", "forever")
	})
}

// BenchmarkFiftyContainerPods: 50 container pods applied at once onto one
// node; reports the seconds until all are Running.
func BenchmarkFiftyContainerPods(b *testing.B) {
	c, image := containerBenchCluster(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	events := c.podEvents(ctx, b)
	names := map[string]bool{}
	var docs []string
	for i := range 50 {
		name := fmt.Sprintf("fifty-%d", i)
		names[name] = true
		docs = append(docs, containerPod(name, image, "Always", "", "sleep", "forever"))
	}
	b.ResetTimer()
	start := time.Now()
	c.apply(strings.Join(docs, "---\n"))
	waitRunning(b, events, names, 120*time.Second)
	b.ReportMetric(time.Since(start).Seconds(), "s-all-running")
	b.StopTimer()
	for name := range names {
		c.kyb("delete", "pod", name, "--grace-period", "0")
	}
	testutil.Eventually(b, 120*time.Second, func() error {
		for name := range names {
			if _, err := c.pod(name); !api.IsNotFound(err) {
				return fmt.Errorf("pod %s not gone after delete (%v)", name, err)
			}
		}
		return nil
	})
}
