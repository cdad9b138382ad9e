package framework

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// countRunnable counts how many of its runs are in progress, across every
// manager it is added to.
type countRunnable struct {
	running *atomic.Int32
	max     *atomic.Int32
	mine    atomic.Int32
}

func (c *countRunnable) Run(ctx context.Context) error {
	n := c.running.Add(1)
	for {
		m := c.max.Load()
		if n <= m || c.max.CompareAndSwap(m, n) {
			break
		}
	}
	c.mine.Add(1)
	<-ctx.Done()
	c.mine.Add(-1)
	c.running.Add(-1)
	return nil
}

func cond(f func() bool) func() error {
	return func() error {
		if !f() {
			return errors.New("not yet")
		}
		return nil
	}
}

type leaseEnv struct {
	srv     *testutil.Server
	running atomic.Int32
	max     atomic.Int32
}

// member is one control plane: its own connection, store, lease, manager.
type member struct {
	nc     interface{ Close() }
	lease  *store.Lease
	m      *Manager
	r      *countRunnable
	cancel context.CancelFunc
	done   chan error
}

func (e *leaseEnv) start(t *testing.T, identity string) *member {
	t.Helper()
	nc := testutil.Connect(t, e.srv)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := store.Open(ctx, js, store.Config{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	l, err := st.Lease("controller-manager", identity, time.Second, 200*time.Millisecond, quiet)
	if err != nil {
		t.Fatal(err)
	}
	m := NewManager(st, quiet)
	m.Informer(podKind)
	r := &countRunnable{running: &e.running, max: &e.max}
	m.Add("count", r)
	m.SetElector(l)
	rctx, cancel := context.WithCancel(ctx)
	mb := &member{nc: nc, lease: l, m: m, r: r, cancel: cancel, done: make(chan error, 1)}
	go func() { mb.done <- m.Run(rctx) }()
	t.Cleanup(func() { cancel(); <-mb.done })
	return mb
}

func TestManagerLease(t *testing.T) {
	env := &leaseEnv{srv: testutil.StartNATS(t)}
	a := env.start(t, "a")
	testutil.Eventually(t, 3*time.Second, cond(func() bool { return a.r.mine.Load() == 1 }))
	b := env.start(t, "b")

	// b's informers run at once (warm caches), its controllers do not.
	sctx, scancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer scancel()
	if !b.m.WaitForSync(sctx) {
		t.Fatal("standby manager's informers did not sync")
	}
	time.Sleep(50 * time.Millisecond)
	if b.r.mine.Load() != 0 {
		t.Fatal("standby manager runs its controllers")
	}

	t.Run("stopped holder hands over", func(t *testing.T) {
		start := time.Now()
		a.cancel()
		if err := <-a.done; err != nil {
			t.Fatalf("a.Run = %v", err)
		}
		a.done <- nil // for the cleanup
		testutil.Eventually(t, 3*time.Second, cond(func() bool { return b.r.mine.Load() == 1 }))
		t.Logf("failover after a clean stop: %v", time.Since(start))
	})

	c := env.start(t, "c")
	t.Run("deposed holder stops", func(t *testing.T) {
		if err := c.lease.Revoke(context.Background()); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-b.done:
			if !errors.Is(err, store.ErrLeaseLost) {
				t.Fatalf("deposed b.Run = %v; want ErrLeaseLost", err)
			}
			b.done <- nil
		case <-time.After(3 * time.Second):
			t.Fatal("deposed manager kept running")
		}
		if b.r.mine.Load() != 0 {
			t.Fatal("deposed manager's controllers still run")
		}
		// The revoked lease is taken again once its revocation expires.
		testutil.Eventually(t, 5*time.Second, cond(func() bool { return c.r.mine.Load() == 1 }))
	})

	d := env.start(t, "d")
	t.Run("crashed holder expires", func(t *testing.T) {
		// c's connection dies: it cannot renew or release. It stops its
		// controllers at its local deadline; d takes over once the server
		// expires the key.
		start := time.Now()
		c.nc.Close()
		testutil.Eventually(t, 5*time.Second, cond(func() bool { return d.r.mine.Load() == 1 }))
		t.Logf("failover after a crash (lease 1s, renew 200ms): %v", time.Since(start))
		if c.r.mine.Load() != 0 {
			t.Fatal("crashed holder's controllers still run")
		}
	})
	if env.max.Load() != 1 {
		t.Fatalf("%d managers ran controllers at once", env.max.Load())
	}
}

// A worker of a controller whose run has ended (its lease lost) reconciles
// nothing more, even a key it took from the queue before the queue shut
// down.
func TestControllerFencedAfterCancel(t *testing.T) {
	var calls atomic.Int32
	r := ReconcileFunc(func(ctx context.Context, key Key) (Result, error) {
		calls.Add(1)
		return Result{}, nil
	})
	c := NewController("fenced", r, Options{Workers: 1, Logger: quiet})
	c.Queue().Add(Key{Namespace: "ns", Name: "k"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if c.processNext(ctx) {
		t.Fatal("a worker whose run ended goes on")
	}
	if n := calls.Load(); n != 0 {
		t.Fatalf("%d reconciles after the run's context ended", n)
	}
}
