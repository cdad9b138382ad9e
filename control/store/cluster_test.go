package store

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/internal/testutil"
)

// startCluster starts three embedded NATS servers forming one JetStream
// cluster and returns a client connection to each.
func startCluster(t testing.TB) []*nats.Conn {
	t.Helper()
	ports := make([]int, 3)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ports[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
	}
	var routes []string
	for _, p := range ports {
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var conns []*nats.Conn
	var servers []*server.Server
	for i, p := range ports {
		opts := &server.Options{
			ServerName: fmt.Sprintf("s%d", i+1), Host: "127.0.0.1", Port: -1, JetStream: true,
			StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "kyb-test", Host: "127.0.0.1", Port: p},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		s, err := server.NewServer(opts)
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
		servers = append(servers, s)
	}
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("cluster server not ready")
		}
		nc, err := nats.Connect(s.ClientURL())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		conns = append(conns, nc)
	}
	js, _ := jetstream.New(conns[0])
	testutil.Eventually(t, 20*time.Second, func() error {
		_, err := js.AccountInfo(context.Background())
		return err
	})
	return conns
}

func openR3(t testing.TB, nc *nats.Conn) *Store {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	var s *Store
	testutil.Eventually(t, 20*time.Second, func() error {
		s, err = Open(context.Background(), js, Config{Replicas: 3})
		return err
	})
	return s
}

// On a 3-server cluster with R3 buckets, FenceAuto fences with atomic
// batches: concurrent fenced writes of the holder all land (JetStream's
// refusal of two checks of one key in replication at once is retried), and
// after a takeover every write of the deposed holder, on another server,
// fails.
func TestFencedWritesOnR3Cluster(t *testing.T) {
	conns := startCluster(t)
	ctx := context.Background()
	sa, sb := openR3(t, conns[0]), openR3(t, conns[1])
	a, _ := sa.Lease("ctl", "a", 2*time.Second, 500*time.Millisecond, nil)
	b, _ := sb.Lease("ctl", "b", 2*time.Second, 500*time.Millisecond, nil)
	fa, fb := sa.WithFence(a.Fence()), sb.WithFence(b.Fence())
	if !fa.BatchFenced() {
		t.Fatal("auto fencing on a cluster does not use batches")
	}
	acquire(t, a)
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for w := range 20 {
		wg.Go(func() {
			for i := range 10 {
				if err := fa.Create(ctx, newPod("default", fmt.Sprintf("w%d-%d", w, i), nil)); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("holder's fenced create on R3: %v", err)
	}
	if err := b.Break(ctx); err != nil {
		t.Fatal(err)
	}
	acquire(t, b)
	if err := fa.Create(ctx, newPod("default", "late", nil)); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("deposed holder's create on R3: %v; want ErrLeaseLost", err)
	}
	if err := fb.Create(ctx, newPod("default", "successor", nil)); err != nil {
		t.Fatalf("successor's create on R3: %v", err)
	}
	// A list may be answered by a replica that has not applied the last
	// writes yet (KV direct gets): every acknowledged write shows soon.
	testutil.Eventually(t, 10*time.Second, func() error {
		items, _, err := sb.List(ctx, podKind, ListOptions{})
		if err != nil || len(items) != 201 {
			return fmt.Errorf("%d pods on the cluster (%v); want 201", len(items), err)
		}
		return nil
	})
}

// BenchmarkFencedWriteR3 measures a fenced update (atomic batch) against an
// unfenced one, serial and by 16 writers, on a 3-server cluster with R3
// buckets (where JetStream stages batches in memory).
func BenchmarkFencedWriteR3(b *testing.B) {
	conns := startCluster(b)
	ctx := context.Background()
	st := openR3(b, conns[0])
	l, _ := st.Lease("bench", "a", 10*time.Second, time.Second, nil)
	acquire(b, l)
	var n int64
	var mu sync.Mutex
	next := func() int64 { mu.Lock(); defer mu.Unlock(); n++; return n }
	for _, sc := range []struct {
		name string
		s    *Store
	}{{"unfenced", st}, {"batch", st.WithFence(l.Fence())}} {
		b.Run("update/"+sc.name, func(b *testing.B) {
			p := benchPod("default", fmt.Sprintf("u-%d", next()))
			if err := sc.s.Create(ctx, p); err != nil {
				b.Fatal(err)
			}
			for i := 0; b.Loop(); i++ {
				p.Status.Message = fmt.Sprintf("tick %d", i)
				if err := sc.s.Update(ctx, p); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("create16/"+sc.name, func(b *testing.B) {
			b.SetParallelism(8)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := sc.s.Create(ctx, benchPod("par", fmt.Sprintf("p-%d", next()))); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}
