package apiserver_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	i := int(float64(len(d)-1) * p)
	return d[i]
}

// manifests are the request bodies the benchmarks send: the same pod as
// YAML (as `nats req` users write it) and as JSON (what a program sends;
// the server decodes JSON several times faster).
var manifests = map[string]func(name string) []byte{
	"yaml": func(name string) []byte { return []byte(podYAML("", name, map[string]string{"app": "bench"})) },
	"json": func(name string) []byte {
		return []byte(`{"apiVersion":"v1","kind":"Pod","metadata":{"name":"` + name +
			`","labels":{"app":"bench"}},"spec":{"containers":[{"name":"app","image":"nginx:1.27"}]}}`)
	},
}

// BenchmarkApplyCreate applies one new pod per iteration, sequentially,
// over a real NATS connection, and reports p50/p99 latency.
// Run with -benchtime=10000x for the 10,000-pod figure.
func BenchmarkApplyCreate(b *testing.B) {
	for _, format := range []string{"yaml", "json"} {
		b.Run(format, func(b *testing.B) { benchApplyCreate(b, manifests[format]) })
	}
}

func benchApplyCreate(b *testing.B, manifest func(string) []byte) {
	e := newEnv(b)
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		m := manifest(fmt.Sprintf("p%d", i))
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
}

// BenchmarkApplyCreateParallel applies new pods from 16 clients, each on
// its own NATS connection, and reports creates per second.
func BenchmarkApplyCreateParallel(b *testing.B) {
	for _, format := range []string{"yaml", "json"} {
		b.Run(format, func(b *testing.B) { benchApplyCreateParallel(b, manifests[format]) })
	}
}

func benchApplyCreateParallel(b *testing.B, manifest func(string) []byte) {
	clients := 16
	if v, err := strconv.Atoi(os.Getenv("KYB_BENCH_CLIENTS")); err == nil && v > 0 {
		clients = v
	}
	e := newEnv(b)
	cs := make([]*client.Client, clients)
	for i := range cs {
		cs[i] = client.New(testutil.Connect(b, e.ns, nats.Name(fmt.Sprintf("bench-%d", i))))
	}
	var next atomic.Int64
	var failed atomic.Value
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= int64(b.N) {
					return
				}
				if _, err := c.Apply(e.ctx, manifest(fmt.Sprintf("p%d", i))); err != nil {
					failed.Store(err)
					return
				}
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatalf("apply: %v", err)
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "creates/s")
}

// BenchmarkList50k lists 50,000 pods through the API (every page), raw and
// decoded into typed objects.
func BenchmarkList50k(b *testing.B) {
	const n = 50000
	e := newEnv(b)
	// Load through the store (many writers), as the apply path is measured above.
	var wg sync.WaitGroup
	var next atomic.Int64
	for range 32 {
		wg.Go(func() {
			for {
				i := next.Add(1) - 1
				if i >= n {
					return
				}
				p := &api.Pod{ObjectMeta: api.ObjectMeta{Name: fmt.Sprintf("p%05d", i), Namespace: "default", Labels: map[string]string{"app": "bench"}},
					Spec: api.PodSpec{Containers: []api.Container{{Name: "app", Image: "nginx:1.27"}}}}
				api.Default(p)
				if err := e.st.Create(context.Background(), p); err != nil {
					b.Errorf("create: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	testutil.Eventually(b, 60*time.Second, func() error {
		items, _, err := e.c.ListRaw(e.ctx, api.ListRequest{Kind: "pods"})
		if err != nil {
			return err
		}
		if len(items) != n {
			return fmt.Errorf("%d pods listed", len(items))
		}
		return nil
	})
	b.Run("raw", func(b *testing.B) {
		for b.Loop() {
			items, _, err := e.c.ListRaw(e.ctx, api.ListRequest{Kind: "pods"})
			if err != nil || len(items) != n {
				b.Fatalf("list: %d, %v", len(items), err)
			}
		}
	})
	b.Run("typed", func(b *testing.B) {
		for b.Loop() {
			items, _, err := e.c.List(e.ctx, api.ListRequest{Kind: "pods"})
			if err != nil || len(items) != n {
				b.Fatalf("list: %d, %v", len(items), err)
			}
		}
	})
	b.Run("selector-none-match", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := e.c.ListRaw(e.ctx, api.ListRequest{Kind: "pods", LabelSelector: "app=other"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
