package containerd

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/runtimes"
)

// TestCreateDeleteCyclesLeakNothing runs pods through create, start,
// stop and removal, four at a time, and checks that containers, snapshots,
// network namespaces, veths, IP allocations and NAT rules are back to where
// they were. 100 cycles, or 12 with -short.
func TestCreateDeleteCyclesLeakNothing(t *testing.T) {
	r, _ := newTestRuntime(t)
	ctx := context.Background()
	cycles := 100
	if testing.Short() {
		cycles = 12
	}
	const workers = 4
	before := countLeaks(t, r)
	cycle := func(i int) error {
		var ports []runtimes.PortMapping
		if i%10 == 0 {
			port, err := freeTCPPort()
			if err != nil {
				return err
			}
			ports = []runtimes.PortMapping{{ContainerPort: 8080, HostPort: port, Protocol: "TCP"}}
		}
		sb, err := r.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "cycle", Name: fmt.Sprintf("p%d", i), Ports: ports})
		if err != nil {
			return err
		}
		id, err := r.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: env.image, Args: []string{"sleep"}})
		if err != nil {
			return err
		}
		if err := r.StartContainer(ctx, id); err != nil {
			return err
		}
		// Every other pod is removed with its container still running.
		if i%2 == 0 {
			if err := r.StopContainer(ctx, id, 5*time.Second); err != nil {
				return err
			}
			if err := r.RemoveContainer(ctx, id); err != nil {
				return err
			}
		}
		if err := r.RemoveSandbox(ctx, sb.ID); err != nil {
			return err
		}
		if err := r.RemoveSandbox(ctx, sb.ID); err != nil {
			return fmt.Errorf("second RemoveSandbox: %w", err)
		}
		return nil
	}
	errs := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			for i := w; i < cycles; i += workers {
				if err := cycle(i); err != nil {
					errs <- fmt.Errorf("cycle %d: %w", i, err)
					return
				}
			}
			errs <- nil
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if after := countLeaks(t, r); after != before {
		t.Fatalf("after %d cycles: before %+v after %+v", cycles, before, after)
	}
}

// BenchmarkCreateStart measures CreateContainer+StartContainer until the
// container runs, with the image present, in one sandbox; and pod-level
// CreateSandbox+CreateContainer+StartContainer. Each container logs to a
// file through the log driver. Reports p50 and p99.
func BenchmarkCreateStart(b *testing.B) {
	r, _ := newTestRuntime(b)
	ctx := context.Background()
	logDir := b.TempDir()
	b.Run("container", func(b *testing.B) {
		sb := newSandbox(b, r, "bench")
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			id, err := r.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: fmt.Sprintf("c%d", i), Image: env.image, Args: []string{"sleep"}, LogPath: filepath.Join(logDir, fmt.Sprintf("c%d.log", i))})
			if err != nil {
				b.Fatal(err)
			}
			if err := r.StartContainer(ctx, id); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			b.StopTimer()
			if err := r.RemoveContainer(ctx, id); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		reportPercentiles(b, lat)
	})
	b.Run("pod", func(b *testing.B) {
		lat := make([]time.Duration, 0, b.N)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			start := time.Now()
			sb, err := r.CreateSandbox(ctx, &runtimes.SandboxConfig{Namespace: "bench", Name: fmt.Sprintf("p%d", i)})
			if err != nil {
				b.Fatal(err)
			}
			id, err := r.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: env.image, Args: []string{"sleep"}, LogPath: filepath.Join(logDir, fmt.Sprintf("p%d.log", i))})
			if err != nil {
				b.Fatal(err)
			}
			if err := r.StartContainer(ctx, id); err != nil {
				b.Fatal(err)
			}
			lat = append(lat, time.Since(start))
			b.StopTimer()
			if err := r.RemoveSandbox(ctx, sb.ID); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
		reportPercentiles(b, lat)
	})
}

func reportPercentiles(b *testing.B, lat []time.Duration) {
	if len(lat) == 0 {
		return
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	pct := func(p float64) time.Duration { return lat[int(p*float64(len(lat)-1))] }
	b.ReportMetric(float64(pct(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(pct(0.99).Microseconds())/1000, "p99-ms")
}

func TestMain(m *testing.M) {
	code := m.Run()
	if env != nil {
		env.registry.Close()
		removeLeftovers(env.addr, testNamespace)
		os.RemoveAll(env.dir)
	}
	os.Exit(code)
}
