package framework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var quiet = slog.New(slog.DiscardHandler)

// TestControllerOneAtATime: many goroutines add a few keys while eight
// workers reconcile them. No key is ever reconciled by two workers at once
// (checked under -race and by an in-flight count), and every key's last
// reconcile saw its last change (level-triggered: an add during a
// reconcile is not lost).
func TestControllerOneAtATime(t *testing.T) {
	const keys, writers, writes = 5, 8, 300
	var (
		mu       sync.Mutex
		version  = map[Key]int{} // bumped before each Add
		seen     = map[Key]int{} // version the last reconcile read
		inFlight = map[Key]*atomic.Int32{}
		overlaps atomic.Int32
		calls    atomic.Int32
	)
	keyOf := func(i int) Key { return Key{Namespace: "ns", Name: fmt.Sprint("k", i)} }
	for i := range keys {
		inFlight[keyOf(i)] = new(atomic.Int32)
	}
	r := ReconcileFunc(func(ctx context.Context, key Key) (Result, error) {
		calls.Add(1)
		if inFlight[key].Add(1) > 1 {
			overlaps.Add(1)
		}
		defer inFlight[key].Add(-1)
		mu.Lock()
		v := version[key]
		mu.Unlock()
		time.Sleep(50 * time.Microsecond) // widen the window for overlaps
		mu.Lock()
		seen[key] = v
		mu.Unlock()
		return Result{}, nil
	})
	c := NewController("test", r, Options{Workers: 8, Logger: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range writes {
				k := keyOf((w + i) % keys)
				mu.Lock()
				version[k]++
				mu.Unlock()
				c.Queue().Add(k)
			}
		})
	}
	wg.Wait()
	testutil.Eventually(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		for k, v := range version {
			if seen[k] != v {
				return fmt.Errorf("key %v: last reconcile saw version %d, want %d", k, seen[k], v)
			}
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if n := overlaps.Load(); n > 0 {
		t.Fatalf("%d reconciles overlapped another of the same key", n)
	}
	if n := calls.Load(); n >= writers*writes {
		t.Fatalf("%d reconciles for %d adds: adds were not merged", n, writers*writes)
	}
	t.Logf("%d adds, %d reconciles", writers*writes, calls.Load())
}

// TestControllerResults: what happens to a key after each kind of outcome.
func TestControllerResults(t *testing.T) {
	boom := errors.New("store unavailable")
	for _, tc := range []struct {
		name        string
		res         Result
		err         error
		wantWaiting bool // queued again, later
		wantRetries int  // rate-limited retries counted
	}{
		{"success forgets", Result{}, nil, false, 0},
		{"error is retried with back-off", Result{}, boom, true, 1},
		{"terminal error is not retried", Result{}, Terminal(boom), false, 0},
		{"Requeue uses the back-off", Result{Requeue: true}, nil, true, 1},
		{"RequeueAfter waits that long", Result{RequeueAfter: time.Minute}, nil, true, 0},
		{"RequeueAfter wins over Requeue", Result{Requeue: true, RequeueAfter: time.Minute}, nil, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := NewFakeClock(t0)
			calls := make(chan Key, 10)
			r := ReconcileFunc(func(ctx context.Context, key Key) (Result, error) {
				calls <- key
				return tc.res, tc.err
			})
			// A huge per-key base delay keeps a retried key waiting on the
			// fake clock, where the test can see it.
			c := NewController("test", r, Options{Clock: clock, Logger: quiet,
				RateLimiter: NewKeyBackoff(backoffOf(time.Hour))})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			go c.Run(ctx)
			c.Queue().Add(kA)
			if k := <-calls; k != kA {
				t.Fatalf("reconciled %v", k)
			}
			testutil.Eventually(t, 5*time.Second, func() error {
				q := c.Queue()
				q.mu.Lock()
				_, busy := q.processing[kA]
				q.mu.Unlock()
				if busy {
					return errors.New("still processing")
				}
				return nil
			})
			if got := c.Queue().Waiting() == 1; got != tc.wantWaiting {
				t.Fatalf("waiting to be retried: %v, want %v", got, tc.wantWaiting)
			}
			if n := c.Queue().NumRequeues(kA); n != tc.wantRetries {
				t.Fatalf("NumRequeues %d, want %d", n, tc.wantRetries)
			}
			if tc.wantWaiting {
				clock.Step(time.Hour)
				select {
				case <-calls:
				case <-time.After(5 * time.Second):
					t.Fatal("not reconciled again once its time came")
				}
			}
		})
	}
}

// TestControllerPanic: a panicking Reconcile is an error (retried), not a
// crash of the control plane.
func TestControllerPanic(t *testing.T) {
	var calls atomic.Int32
	r := ReconcileFunc(func(ctx context.Context, key Key) (Result, error) {
		if calls.Add(1) == 1 {
			panic("nil map")
		}
		return Result{}, nil
	})
	c := NewController("test", r, Options{Logger: quiet, RateLimiter: NewKeyBackoff(backoffOf(time.Millisecond))})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	c.Queue().Add(kA)
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := calls.Load(); n < 2 {
			return fmt.Errorf("%d calls, want a retry after the panic", n)
		}
		return nil
	})
}

func TestTerminal(t *testing.T) {
	base := errors.New("bad spec")
	wrapped := fmt.Errorf("reconcile web: %w", Terminal(base))
	if !IsTerminal(wrapped) || !errors.Is(wrapped, base) {
		t.Fatalf("IsTerminal %v, Is(base) %v: want both", IsTerminal(wrapped), errors.Is(wrapped, base))
	}
	if IsTerminal(base) || Terminal(nil) != nil {
		t.Fatal("a plain error is terminal, or Terminal(nil) is not nil")
	}
}

func TestMapFuncs(t *testing.T) {
	yes, no := true, false
	pod := func(refs ...api.OwnerReference) api.Object {
		return &api.Pod{ObjectMeta: api.ObjectMeta{Namespace: "shop", Name: "web-1", OwnerReferences: refs}}
	}
	rs := OwnerKey("ReplicaSet")
	for _, tc := range []struct {
		name string
		obj  api.Object
		want []Key
	}{
		{"controlling owner", pod(api.OwnerReference{Kind: "ReplicaSet", Name: "web", Controller: &yes}), []Key{{Namespace: "shop", Name: "web"}}},
		{"owner that does not control", pod(api.OwnerReference{Kind: "ReplicaSet", Name: "web", Controller: &no}), nil},
		{"controller of another kind", pod(api.OwnerReference{Kind: "Job", Name: "web", Controller: &yes}), nil},
		{"no owner", pod(), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := rs(tc.obj); !slices.Equal(got, tc.want) {
				t.Fatalf("OwnerKey = %v, want %v", got, tc.want)
			}
		})
	}
	if got := NamespaceKey(pod()); !slices.Equal(got, []Key{{Name: "shop"}}) {
		t.Fatalf("NamespaceKey = %v", got)
	}
}
