package framework

import (
	"fmt"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/internal/retry"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

var (
	kA = Key{Namespace: "default", Name: "a"}
	kB = Key{Namespace: "default", Name: "b"}
	t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
)

// getNow takes a key that must be ready.
func getNow(t *testing.T, q *Queue) Key {
	t.Helper()
	if q.Len() == 0 {
		t.Fatal("queue empty, want a ready key")
	}
	k, ok := q.Get()
	if !ok {
		t.Fatal("queue shut down")
	}
	return k
}

func TestQueue(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func(t *testing.T, q *Queue)
	}{
		{"adds before a Get are merged", func(t *testing.T, q *Queue) {
			q.Add(kA)
			q.Add(kB)
			q.Add(kA)
			q.Add(kA)
			if n := q.Len(); n != 2 {
				t.Fatalf("Len %d, want 2", n)
			}
			if k := getNow(t, q); k != kA {
				t.Fatalf("first %v, want %v (order of first add)", k, kA)
			}
			if k := getNow(t, q); k != kB {
				t.Fatalf("second %v, want %v", k, kB)
			}
			if q.Len() != 0 {
				t.Fatal("a merged add was handed out twice")
			}
		}},
		{"a key added while processing waits for Done", func(t *testing.T, q *Queue) {
			q.Add(kA)
			k := getNow(t, q)
			q.Add(kA)
			q.Add(kA)
			if n := q.Len(); n != 0 {
				t.Fatalf("Len %d while %v is processed, want 0: never two at once", n, kA)
			}
			q.Done(k)
			if n := q.Len(); n != 1 {
				t.Fatalf("Len %d after Done, want 1: the add during processing is not lost", n)
			}
			q.Done(getNow(t, q))
			if q.Len() != 0 {
				t.Fatal("processed again without an add")
			}
		}},
		{"Done without a new add drops the key", func(t *testing.T, q *Queue) {
			q.Add(kA)
			q.Done(getNow(t, q))
			if q.Len() != 0 {
				t.Fatal("key came back without an add")
			}
		}},
		{"ShutDown ends Get", func(t *testing.T, q *Queue) {
			q.Add(kA)
			q.ShutDown()
			if _, ok := q.Get(); ok {
				t.Fatal("Get after ShutDown handed out a key")
			}
			q.Add(kB)
			if q.Len() != 0 {
				t.Fatal("Add after ShutDown queued")
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := NewQueue(nil, NewFakeClock(t0))
			defer q.ShutDown()
			tc.run(t, q)
		})
	}
}

// waitLen waits until the delay loop has moved keys into the queue.
func waitLen(t *testing.T, q *Queue, want int) {
	t.Helper()
	testutil.Eventually(t, 5*time.Second, func() error {
		if n := q.Len(); n != want {
			return fmt.Errorf("Len %d, want %d", n, want)
		}
		return nil
	})
}

func TestQueueAddAfter(t *testing.T) {
	clock := NewFakeClock(t0)
	q := NewQueue(nil, clock)
	defer q.ShutDown()
	q.AddAfter(kA, 10*time.Second)
	q.AddAfter(kA, 20*time.Second) // the earlier time stays
	q.AddAfter(kB, 30*time.Second)
	if q.Len() != 0 || q.Waiting() != 2 {
		t.Fatalf("Len %d Waiting %d, want 0 and 2", q.Len(), q.Waiting())
	}
	clock.Step(9 * time.Second)
	if q.Len() != 0 {
		t.Fatal("a key came before its time")
	}
	clock.Step(time.Second)
	waitLen(t, q, 1)
	if k := getNow(t, q); k != kA {
		t.Fatalf("got %v, want %v", k, kA)
	}
	// A shorter delay moves a waiting key earlier.
	q.AddAfter(kB, time.Second)
	clock.Step(time.Second)
	waitLen(t, q, 1)
	if k := getNow(t, q); k != kB {
		t.Fatalf("got %v, want %v", k, kB)
	}
	if q.Waiting() != 0 {
		t.Fatalf("Waiting %d, want 0", q.Waiting())
	}
}

func TestRateLimiters(t *testing.T) {
	kb := NewKeyBackoff(retry.Backoff{Initial: 5 * time.Millisecond, Max: 40 * time.Millisecond, Factor: 2})
	for i, want := range []time.Duration{5, 10, 20, 40, 40} {
		if got := kb.When(kA); got != want*time.Millisecond {
			t.Fatalf("When #%d = %v, want %vms", i, got, want)
		}
	}
	if d := kb.When(kB); d != 5*time.Millisecond {
		t.Fatalf("another key's first wait %v, want 5ms: back-off is per key", d)
	}
	if n := kb.NumRequeues(kA); n != 5 {
		t.Fatalf("NumRequeues %d, want 5", n)
	}
	kb.Forget(kA)
	if d := kb.When(kA); d != 5*time.Millisecond {
		t.Fatalf("after Forget %v, want 5ms", d)
	}

	clock := NewFakeClock(t0)
	b := NewBucket(10, 2, clock) // 10/s, burst 2
	for i, want := range []time.Duration{0, 0, 100 * time.Millisecond, 200 * time.Millisecond} {
		if got := b.When(kA); got != want {
			t.Fatalf("bucket When #%d = %v, want %v", i, got, want)
		}
	}
	clock.Step(time.Second) // refills to the burst, no more
	for i, want := range []time.Duration{0, 0, 100 * time.Millisecond} {
		if got := b.When(kB); got != want {
			t.Fatalf("after refill, When #%d = %v, want %v", i, got, want)
		}
	}

	m := MaxOf(NewKeyBackoff(retry.Backoff{Initial: time.Millisecond, Factor: 2}), NewBucket(1, 1, clock))
	if d := m.When(kA); d != time.Millisecond {
		t.Fatalf("MaxOf first %v, want 1ms (per key)", d)
	}
	if d := m.When(kA); d != time.Second {
		t.Fatalf("MaxOf second %v, want 1s (overall bucket)", d)
	}
}

func backoffOf(d time.Duration) retry.Backoff { return retry.Backoff{Initial: d, Factor: 2} }
