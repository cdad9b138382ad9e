package scheduler

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

type leasedScheduler struct {
	nc     interface{ Close() }
	s      *Scheduler
	lease  *store.Lease
	cancel context.CancelFunc
	done   chan error
}

// startLeased runs a scheduler of its own connection under the "scheduler"
// lease, as one control plane process would.
func startLeased(t *testing.T, srv *testutil.Server, identity string) *leasedScheduler {
	t.Helper()
	nc := testutil.Connect(t, srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(t.Context(), js, store.Config{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.Lease("scheduler", identity, time.Second, 200*time.Millisecond, testLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	ls := &leasedScheduler{nc: nc, s: New(Config{}, st.WithFence(l.Fence()), testLogger(t)), lease: l, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	ls.cancel = cancel
	go func() { ls.done <- ls.s.RunWithLease(ctx, l) }()
	t.Cleanup(func() { cancel(); <-ls.done })
	return ls
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

// Two schedulers under one lease: only the holder schedules; when it stops
// the other takes over; a deposed holder stops.
func TestSchedulersUnderLease(t *testing.T) {
	srv := testutil.StartNATS(t)
	st := openStore(t, srv)
	createAll(t, st, []api.Object{mkNode("node-a", "8", "16Gi")})
	a := startLeased(t, srv, "a")
	testutil.Eventually(t, 3*time.Second, func() error {
		if !isClosed(a.s.Ready()) {
			return errors.New("a not scheduling")
		}
		return nil
	})
	b := startLeased(t, srv, "b")
	bound := func(name string) func() error {
		return func() error {
			pod := mkPod(name, "1", "1Gi")
			o, err := st.Get(context.Background(), api.KindOf(pod), pod.Namespace, name)
			if err != nil {
				return err
			}
			if o.(*api.Pod).Spec.NodeName == "" {
				return fmt.Errorf("pod %s not bound", name)
			}
			return nil
		}
	}
	createAll(t, st, []api.Object{mkPod("p1", "100m", "64Mi")})
	testutil.Eventually(t, 3*time.Second, bound("p1"))
	if isClosed(b.s.Ready()) || b.s.Stats().Attempts != 0 {
		t.Fatal("the scheduler without the lease schedules")
	}

	start := time.Now()
	a.cancel()
	if err := <-a.done; err != nil {
		t.Fatalf("a: %v", err)
	}
	a.done <- nil
	createAll(t, st, []api.Object{mkPod("p2", "100m", "64Mi")})
	testutil.Eventually(t, 3*time.Second, bound("p2"))
	t.Logf("scheduler failover after a clean stop: %v", time.Since(start))
	// The store shows the binding before b has counted its reply.
	testutil.Eventually(t, 3*time.Second, func() error {
		if n := b.s.Stats().Bound; n != 1 {
			return fmt.Errorf("b bound %d pods; want 1", n)
		}
		return nil
	})

	if err := b.lease.Revoke(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-b.done:
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("deposed scheduler: %v; want ErrLeaseLost", err)
		}
		b.done <- nil
	case <-time.After(3 * time.Second):
		t.Fatal("deposed scheduler kept running")
	}

	// A crashed holder (its connection gone) is replaced once its lease
	// expires, and it has stopped by then.
	c := startLeased(t, srv, "c")
	testutil.Eventually(t, 5*time.Second, func() error {
		if !isClosed(c.s.Ready()) {
			return errors.New("c not scheduling")
		}
		return nil
	})
	d := startLeased(t, srv, "d")
	start = time.Now()
	c.nc.Close()
	select {
	case err := <-c.done:
		if !errors.Is(err, store.ErrLeaseLost) {
			t.Fatalf("crashed scheduler: %v; want ErrLeaseLost", err)
		}
		c.done <- nil
	case <-time.After(3 * time.Second):
		t.Fatal("crashed scheduler kept running")
	}
	if isClosed(d.s.Ready()) {
		t.Fatal("the successor started before the crashed holder stopped")
	}
	createAll(t, st, []api.Object{mkPod("p3", "100m", "64Mi")})
	testutil.Eventually(t, 5*time.Second, bound("p3"))
	t.Logf("scheduler failover after a crash (lease 1s, renew 200ms): %v", time.Since(start))
}
