package retry

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// Backoff describes exponential back-off: the n-th wait (from 0) is
// Initial*Factor^n, capped at Max, each stretched by a random fraction of
// up to Jitter. Steps bounds the number of attempts of OnError and
// RetryOnConflict (0: unbounded until ctx ends). The zero value waits
// nothing and never gives up; use the defaults below. A Backoff is a value:
// copying it is free and safe for concurrent use.
type Backoff struct {
	// Initial is the first wait.
	Initial time.Duration
	// Max caps every wait (0: no cap).
	Max time.Duration
	// Factor multiplies the wait after each step; values below 1 count as 1.
	Factor float64
	// Jitter adds up to this fraction of a wait at random (0.1: up to 10%).
	Jitter float64
	// Steps is how many attempts OnError makes before it gives up (0: no limit).
	Steps int
}

// DefaultRetry is for a compare-and-set loop in a request: 20 attempts,
// waits from 1 ms up to 50 ms with jitter, about half a second in all.
var DefaultRetry = Backoff{Initial: time.Millisecond, Max: 50 * time.Millisecond, Factor: 1.5, Jitter: 1, Steps: 20}

// DefaultWatch is for restarting a failed watch: 100 ms doubling to 5 s.
var DefaultWatch = Backoff{Initial: 100 * time.Millisecond, Max: 5 * time.Second, Factor: 2, Jitter: 0.1}

// Delay returns the wait before retry n (0 is the first retry), without
// jitter; it never exceeds Max when Max is set.
func (b Backoff) Delay(n int) time.Duration {
	d := float64(b.Initial)
	f := b.Factor
	if f < 1 {
		f = 1
	}
	for i := 0; i < n; i++ {
		d *= f
		if b.Max > 0 && d >= float64(b.Max) {
			return b.Max
		}
		if d > float64(maxDuration) {
			return maxDuration
		}
	}
	if b.Max > 0 && d > float64(b.Max) {
		return b.Max
	}
	return time.Duration(d)
}

const maxDuration = time.Duration(1<<63 - 1)

// Jittered returns Delay(n) stretched by a random fraction of up to Jitter.
func (b Backoff) Jittered(n int) time.Duration {
	d := b.Delay(n)
	if b.Jitter > 0 && d > 0 {
		extra := time.Duration(rand.Float64() * b.Jitter * float64(d))
		if d+extra > d {
			d += extra
		}
	}
	return d
}

// Wait sleeps Jittered(n) or until ctx ends, whichever is first; it
// returns ctx.Err() when ctx ended.
func (b Backoff) Wait(ctx context.Context, n int) error {
	d := b.Jittered(n)
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Timer is a back-off between restarts of something long-lived (a watch):
// Next returns the wait before the next restart and grows it; Reset, once
// the thing ran well, starts again from Initial. Not safe for concurrent
// use.
type Timer struct {
	b Backoff
	n int
}

// NewTimer returns a Timer over b.
func NewTimer(b Backoff) *Timer { return &Timer{b: b} }

// Next returns the (jittered) wait before the next restart and grows the
// following one.
func (t *Timer) Next() time.Duration {
	d := t.b.Jittered(t.n)
	if t.b.Max == 0 || t.b.Delay(t.n) < t.b.Max {
		t.n++
	}
	return d
}

// Reset makes the next wait Initial again.
func (t *Timer) Reset() { t.n = 0 }

// OnError calls fn until it succeeds, returns an error retriable rejects,
// b.Steps attempts were made, or ctx ends. Between attempts it waits as b
// says. It returns fn's last error (or ctx's error when ctx ended first
// while waiting).
func OnError(ctx context.Context, b Backoff, retriable func(error) bool, fn func() error) error {
	var err error
	for n := 0; ; n++ {
		if err = fn(); err == nil || !retriable(err) {
			return err
		}
		if b.Steps > 0 && n+1 >= b.Steps {
			return err
		}
		if werr := b.Wait(ctx, n); werr != nil {
			return errors.Join(err, werr)
		}
	}
}

// RetryOnConflict calls fn, a read-modify-write that must read the object
// again on every call, until it does not return a 409 Conflict
// (api.IsConflict), with OnError's limits. Use it around every
// compare-and-set update: the store's Update answers Conflict when the
// object changed since it was read.
func RetryOnConflict(ctx context.Context, b Backoff, fn func() error) error {
	return OnError(ctx, b, api.IsConflict, fn)
}
