package store

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/kybernetes/kybernetes/api"
)

// benchPod is a pod of realistic size (about 700 bytes of JSON).
func benchPod(ns, name string) *api.Pod {
	return &api.Pod{
		TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name,
			Labels:      map[string]string{"app": "web", "tier": "frontend", "pod-template-hash": "5d8f7c9b6"},
			Annotations: map[string]string{"kyb.dev/created-by": "benchmark"},
		},
		Spec: api.PodSpec{
			Containers: []api.Container{{
				Name: "web", Image: "registry.example/team/web:1.24.3",
				Args:  []string{"--port=8080", "--log-level=info"},
				Env:   []api.EnvVar{{Name: "MODE", Value: "production"}, {Name: "REGION", Value: "eu-west"}},
				Ports: []api.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: api.ProtocolTCP}},
				Resources: api.ResourceRequirements{
					Requests: api.ResourceList{api.ResourceCPU: resource.MustParse("100m"), api.ResourceMemory: resource.MustParse("64Mi")},
					Limits:   api.ResourceList{api.ResourceMemory: resource.MustParse("128Mi")},
				},
			}},
			RestartPolicy: api.RestartPolicyAlways,
		},
	}
}

// cpuTime is the CPU time this process (client and embedded server) used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// measureCPU reports the process CPU time per operation next to ns/op, which
// matters on a shared machine where wall time depends on the neighbours.
func measureCPU(b *testing.B) func() {
	start := cpuTime()
	return func() {
		b.ReportMetric(float64(cpuTime()-start)/float64(b.N), "cpu-ns/op")
	}
}

func BenchmarkDecodePod(b *testing.B) {
	data, err := json.Marshal(benchPod("default", "pod-000001"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer measureCPU(b)()
	for b.Loop() {
		if _, err := (&Store{}).decode(podKind, data, 5); err != nil {
			b.Fatal(err)
		}
	}
}

// startDurableNATS starts an embedded server like testutil.StartNATS but
// with the given fsync policy: always (fsync before every ack) or an
// interval.
func startDurableNATS(b *testing.B, always bool, interval time.Duration) *nats.Conn {
	b.Helper()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: b.TempDir(),
		NoLog: true, NoSigs: true, SyncAlways: always, SyncInterval: interval}
	srv, err := server.NewServer(opts)
	if err != nil {
		b.Fatal(err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		b.Fatal("nats not ready")
	}
	b.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(nc.Close)
	return nc
}

// BenchmarkCreateDurability measures creates by 16 concurrent clients under
// both durability modes: fsync on every write, and every second.
func BenchmarkCreateDurability(b *testing.B) {
	for _, mode := range []struct {
		name     string
		always   bool
		interval time.Duration
	}{{"always", true, 0}, {"interval1s", false, time.Second}} {
		b.Run(mode.name, func(b *testing.B) {
			s := openStore(b, startDurableNATS(b, mode.always, mode.interval))
			ctx := context.Background()
			var n atomic.Int64
			b.ReportAllocs()
			defer measureCPU(b)()
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := s.Create(ctx, benchPod("par", fmt.Sprintf("p-%d", n.Add(1)))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkCreate(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	var n atomic.Int64 // unique names across the benchmark's runs
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		defer measureCPU(b)()
		for b.Loop() {
			if err := s.Create(ctx, benchPod("serial", fmt.Sprintf("p-%d", n.Add(1)))); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel16", func(b *testing.B) {
		b.ReportAllocs()
		defer measureCPU(b)()
		b.SetParallelism(8) // 16 goroutines on 2 cores, like 16 API clients
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := s.Create(ctx, benchPod("par", fmt.Sprintf("p-%d", n.Add(1)))); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkGet(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	if err := s.Create(ctx, benchPod("default", "web")); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	defer measureCPU(b)()
	for b.Loop() {
		if _, err := s.Get(ctx, podKind, "default", "web"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUpdate(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	p := benchPod("default", "web")
	if err := s.Create(ctx, p); err != nil {
		b.Fatal(err)
	}
	b.Run("status", func(b *testing.B) {
		b.ReportAllocs()
		defer measureCPU(b)()
		for i := 0; b.Loop(); i++ {
			p.Status.Message = fmt.Sprintf("tick %d", i)
			if err := s.Update(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("spec", func(b *testing.B) {
		b.ReportAllocs()
		defer measureCPU(b)()
		for i := 0; b.Loop(); i++ {
			p.Spec.NodeName = fmt.Sprintf("node-%d", i)
			if err := s.Update(ctx, p); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// fill creates n pods in namespace ns, spread over 100 nodes, with 16 writers.
func fill(b *testing.B, s *Store, ns string, n int) {
	b.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	var next atomic.Int64
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				p := benchPod(ns, fmt.Sprintf("pod-%06d", i))
				p.Spec.NodeName = fmt.Sprintf("node-%03d", i%100)
				if err := s.Create(ctx, p); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
}

// BenchmarkLarge measures reads of 50,000 pods: a full list (target ≤ 500 ms),
// a list filtered to one node, and the initial sync of a watch.
func BenchmarkLarge(b *testing.B) {
	const n = 50000
	s := newStore(b)
	fill(b, s, "default", n)
	ctx := context.Background()
	b.Run("List50k", func(b *testing.B) {
		b.ReportAllocs()
		defer measureCPU(b)()
		for b.Loop() {
			objs, _, err := s.List(ctx, podKind, ListOptions{})
			if err != nil {
				b.Fatal(err)
			}
			if len(objs) != n {
				b.Fatalf("listed %d; want %d", len(objs), n)
			}
		}
	})
	b.Run("List50kByNode", func(b *testing.B) {
		sel := fields.OneTermEqualSelector("spec.nodeName", "node-042")
		defer measureCPU(b)()
		for b.Loop() {
			objs, _, err := s.List(ctx, podKind, ListOptions{Fields: sel})
			if err != nil {
				b.Fatal(err)
			}
			if len(objs) != n/100 {
				b.Fatalf("listed %d; want %d", len(objs), n/100)
			}
		}
	})
	b.Run("WatchSync50k", func(b *testing.B) {
		b.ReportAllocs()
		defer measureCPU(b)()
		for b.Loop() {
			ctx, cancel := context.WithCancel(ctx)
			ch, err := s.Watch(ctx, podKind, 0)
			if err != nil {
				b.Fatal(err)
			}
			got := 0
			for ev := range ch {
				if ev.Type == Synced {
					break
				}
				got++
			}
			cancel()
			if got != n {
				b.Fatalf("initial sync had %d; want %d", got, n)
			}
		}
	})
}

func BenchmarkDelete(b *testing.B) {
	s := newStore(b)
	ctx := context.Background()
	for i := range b.N {
		if err := s.Create(ctx, benchPod("default", fmt.Sprintf("p-%d", i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	defer measureCPU(b)()
	b.ResetTimer()
	for i := range b.N {
		if _, err := s.Delete(ctx, podKind, "default", fmt.Sprintf("p-%d", i), ""); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWatchLatency measures one write until a live watch delivers it.
func BenchmarkWatchLatency(b *testing.B) {
	s := newStore(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := s.Watch(ctx, podKind, 0)
	if err != nil {
		b.Fatal(err)
	}
	if ev := <-ch; ev.Type != Synced {
		b.Fatalf("first event %v; want Synced", ev.Type)
	}
	b.ReportAllocs()
	defer measureCPU(b)()
	for i := 0; b.Loop(); i++ {
		if err := s.Create(ctx, benchPod("default", fmt.Sprintf("p-%d", i))); err != nil {
			b.Fatal(err)
		}
		if ev := <-ch; ev.Type != Added {
			b.Fatalf("event %v; want Added", ev.Type)
		}
	}
}
