package store

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/internal/testutil"
)

// openLeases opens the object store, where leases live.
func openLeases(t *testing.T) *Store {
	t.Helper()
	srv := testutil.StartNATS(t)
	js, err := jetstream.New(testutil.Connect(t, srv))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), js, Config{Fence: FenceBatch})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestLeaseBadSettings(t *testing.T) {
	st := openLeases(t)
	for _, tc := range []struct {
		name            string
		lease, identity string
		dur, renew      time.Duration
	}{
		{"no name", "", "a", time.Second, 100 * time.Millisecond},
		{"no identity", "x", "", time.Second, 100 * time.Millisecond},
		{"short duration", "x", "a", 100 * time.Millisecond, 10 * time.Millisecond},
		{"renew not under duration", "x", "a", time.Second, time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := st.Lease(tc.lease, tc.identity, tc.dur, tc.renew, nil); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// Only one process holds a lease; renewal at an old revision (a deposed
// holder) fails with ErrLeaseLost; release frees it at once.
func TestLeaseAcquireRenewRelease(t *testing.T) {
	st := openLeases(t)
	ctx := context.Background()
	a, _ := st.Lease("ctl", "a", time.Second, 200*time.Millisecond, nil)
	b, _ := st.Lease("ctl", "b", time.Second, 200*time.Millisecond, nil)
	rev, ok, err := a.Acquire(ctx)
	if !ok || err != nil {
		t.Fatalf("a.Acquire = %v, %v", ok, err)
	}
	if _, ok, err := b.Acquire(ctx); ok || err != nil {
		t.Fatalf("b.Acquire while a holds = %v, %v; want false, nil", ok, err)
	}
	rev2, err := a.Renew(ctx, rev)
	if err != nil || rev2 <= rev {
		t.Fatalf("a.Renew = %d, %v", rev2, err)
	}
	if _, err := a.Renew(ctx, rev); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renew at a stale revision: err = %v; want ErrLeaseLost", err)
	}
	if h, ok, _ := b.Holder(ctx); !ok || h != "a" {
		t.Fatalf("Holder = %q, %v; want a", h, ok)
	}
	// The same identity (a restarted process) takes its lease back.
	again, _ := st.Lease("ctl", "a", time.Second, 200*time.Millisecond, nil)
	rev3, ok, err := again.Acquire(ctx)
	if !ok || err != nil || rev3 <= rev2 {
		t.Fatalf("re-acquire by the same identity = %d, %v, %v", rev3, ok, err)
	}
	if _, err := a.Renew(ctx, rev2); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renew at the revision before the re-acquire: err = %v; want ErrLeaseLost", err)
	}
	rev2 = rev3
	if err := a.Release(ctx, rev2); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := b.Acquire(ctx); !ok || err != nil {
		t.Fatalf("b.Acquire after release = %v, %v", ok, err)
	}
	// a lost it: its renewal at its last revision fails.
	if _, err := a.Renew(ctx, rev2); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("deposed renew: err = %v; want ErrLeaseLost", err)
	}
}

// A holder that stops renewing loses the lease when the server expires the
// key, and another process acquires it.
func TestLeaseExpires(t *testing.T) {
	st := openLeases(t)
	ctx := context.Background()
	a, _ := st.Lease("ctl", "a", time.Second, 200*time.Millisecond, nil)
	b, _ := st.Lease("ctl", "b", time.Second, 200*time.Millisecond, nil)
	rev, ok, err := a.Acquire(ctx)
	if !ok || err != nil {
		t.Fatalf("a.Acquire = %v, %v", ok, err)
	}
	start := time.Now()
	testutil.Eventually(t, 5*time.Second, holds(func() bool {
		_, ok, _ := b.Acquire(ctx)
		return ok
	}))
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("b acquired after %v, before a's lease expired", d)
	}
	if _, err := a.Renew(ctx, rev); !errors.Is(err, ErrLeaseLost) {
		t.Fatalf("renew after expiry: err = %v; want ErrLeaseLost", err)
	}
}

// Hold runs fn only while holding; the second holder runs after the first
// ends; a deposed holder's fn is cancelled and Hold returns ErrLeaseLost.
func TestLeaseHold(t *testing.T) {
	st := openLeases(t)
	a, _ := st.Lease("ctl", "a", time.Second, 100*time.Millisecond, nil)
	b, _ := st.Lease("ctl", "b", time.Second, 100*time.Millisecond, nil)
	var running atomic.Int32
	var maxRunning atomic.Int32
	body := func(ctx context.Context) error {
		if n := running.Add(1); n > maxRunning.Load() {
			maxRunning.Store(n)
		}
		<-ctx.Done()
		running.Add(-1)
		return nil
	}
	actx, acancel := context.WithCancel(context.Background())
	aerr := make(chan error, 1)
	go func() { aerr <- a.Hold(actx, body) }()
	testutil.Eventually(t, 3*time.Second, holds(func() bool { return running.Load() == 1 }))
	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	berr := make(chan error, 1)
	go func() { berr <- b.Hold(bctx, body) }()
	time.Sleep(100 * time.Millisecond)
	if h, _, _ := b.Holder(context.Background()); h != "a" {
		t.Fatalf("holder = %q; want a", h)
	}
	start := time.Now()
	acancel() // the holder stops: it releases, b takes over
	if err := <-aerr; err != nil {
		t.Fatalf("a.Hold = %v", err)
	}
	testutil.Eventually(t, 3*time.Second, holds(func() bool {
		h, _, _ := b.Holder(context.Background())
		return h == "b" && running.Load() == 1
	}))
	t.Logf("failover after release: %v", time.Since(start))
	if maxRunning.Load() != 1 {
		t.Fatalf("%d bodies ran at once", maxRunning.Load())
	}
	// Depose b: delete its key behind its back and let a take it.
	if err := a.Revoke(context.Background()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-berr:
		if !errors.Is(err, ErrLeaseLost) {
			t.Fatalf("b.Hold = %v; want ErrLeaseLost", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("deposed b kept running")
	}
	if running.Load() != 0 {
		t.Fatal("deposed holder's fn still running")
	}
}

// holds adapts a condition to testutil.Eventually.
func holds(f func() bool) func() error {
	return func() error {
		if !f() {
			return errors.New("not yet")
		}
		return nil
	}
}

// Lease keys share the objects bucket but are never listed or watched as
// objects.
func TestObjectWatchSkipsLeases(t *testing.T) {
	st := openLeases(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	l, _ := st.Lease("scheduler", "a", time.Second, 200*time.Millisecond, nil)
	go func() {
		_ = l.Hold(ctx, func(ctx context.Context) error {
			fst := st.WithFence(l.Fence())
			_ = fst.Create(ctx, newPod("default", "p1", nil))
			<-ctx.Done()
			return nil
		})
	}()
	testutil.Eventually(t, 3*time.Second, func() error {
		_, err := st.Get(ctx, podKind, "default", "p1")
		return err
	})
	events, err := st.Watch(ctx, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	for ev := range events {
		if ev.Type == Synced {
			break
		}
		seen = append(seen, ev.Object.GetObjectMeta().Name)
	}
	if len(seen) != 1 || seen[0] != "p1" {
		t.Fatalf("a watch of every kind saw %q; want [p1] (no lease keys)", seen)
	}
	items, _, err := st.List(ctx, podKind, ListOptions{})
	if err != nil || len(items) != 1 {
		t.Fatalf("List = %d items, %v; want 1", len(items), err)
	}
}

// LeaseHolder names the holder while it holds, and no one before, after a
// release, or for a name that is not a lease; a 4 KB name is refused.
func TestLeaseHolder(t *testing.T) {
	st := openLeases(t)
	ctx := context.Background()
	l, _ := st.Lease("scheduler", "a", time.Second, 200*time.Millisecond, nil)
	if h, ok, err := st.LeaseHolder(ctx, "scheduler"); ok || err != nil {
		t.Fatalf("before acquire: %q, %v, %v", h, ok, err)
	}
	rev, ok, err := l.Acquire(ctx)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	if h, ok, err := st.LeaseHolder(ctx, "scheduler"); h != "a" || !ok || err != nil {
		t.Fatalf("held: %q, %v, %v; want a", h, ok, err)
	}
	if err := l.Release(ctx, rev); err != nil {
		t.Fatal(err)
	}
	if h, ok, err := st.LeaseHolder(ctx, "scheduler"); ok || err != nil {
		t.Fatalf("released: %q, %v, %v", h, ok, err)
	}
	if _, _, err := st.LeaseHolder(ctx, strings.Repeat("x", 4096)); err == nil {
		t.Fatal("a 4 KB lease name was accepted")
	}
}
