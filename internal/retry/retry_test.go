package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

func TestDelay(t *testing.T) {
	b := Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Factor: 2}
	for _, tc := range []struct {
		n    int
		want time.Duration
	}{
		{0, 10 * time.Millisecond},
		{1, 20 * time.Millisecond},
		{3, 80 * time.Millisecond},
		{4, 100 * time.Millisecond},
		{1000, 100 * time.Millisecond},
	} {
		if got := b.Delay(tc.n); got != tc.want {
			t.Errorf("Delay(%d) = %v, want %v", tc.n, got, tc.want)
		}
	}
	unbounded := Backoff{Initial: time.Second, Factor: 10}
	if got := unbounded.Delay(100); got != maxDuration {
		t.Errorf("uncapped Delay(100) = %v, want the largest duration (no overflow)", got)
	}
	j := Backoff{Initial: 10 * time.Millisecond, Jitter: 0.5}
	for range 100 {
		if d := j.Jittered(0); d < 10*time.Millisecond || d > 15*time.Millisecond {
			t.Fatalf("Jittered(0) = %v, want within [10ms, 15ms]", d)
		}
	}
}

func TestTimer(t *testing.T) {
	tm := NewTimer(Backoff{Initial: time.Millisecond, Max: 4 * time.Millisecond, Factor: 2})
	var got []time.Duration
	for range 5 {
		got = append(got, tm.Next())
	}
	want := []time.Duration{1, 2, 4, 4, 4}
	for i := range want {
		if got[i] != want[i]*time.Millisecond {
			t.Fatalf("waits %v, want %v ms", got, want)
		}
	}
	tm.Reset()
	if d := tm.Next(); d != time.Millisecond {
		t.Fatalf("after Reset: %v, want 1ms", d)
	}
}

func TestRetryOnConflict(t *testing.T) {
	conflict := api.NewConflict("Pod", "web", "the object has been modified")
	other := errors.New("jetstream unavailable")
	fast := Backoff{Initial: time.Microsecond, Factor: 1, Steps: 5}
	for _, tc := range []struct {
		name      string
		errs      []error // returned by successive calls; nil after the list
		wantCalls int
		wantErr   error
	}{
		{"succeeds at once", nil, 1, nil},
		{"conflict then success", []error{conflict, conflict}, 3, nil},
		{"other error is not retried", []error{other}, 1, other},
		{"conflict then other error", []error{conflict, other}, 2, other},
		{"gives up after Steps", []error{conflict, conflict, conflict, conflict, conflict, conflict}, 5, conflict},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := RetryOnConflict(context.Background(), fast, func() error {
				calls++
				if calls <= len(tc.errs) {
					return tc.errs[calls-1]
				}
				return nil
			})
			if calls != tc.wantCalls {
				t.Errorf("calls = %d, want %d", calls, tc.wantCalls)
			}
			if !errors.Is(err, tc.wantErr) && err != tc.wantErr {
				t.Errorf("err = %v, want %v", err, tc.wantErr)
			}
		})
	}
}

// TestRetryStopsWithContext: a cancelled context ends the waits; the
// result still says the last attempt conflicted.
func TestRetryStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := RetryOnConflict(ctx, Backoff{Initial: time.Hour}, func() error {
		calls++
		cancel()
		return api.NewConflict("Pod", "web", "modified")
	})
	if calls != 1 || !errors.Is(err, context.Canceled) || !api.IsConflict(err) {
		t.Fatalf("calls %d, err %v: want one call, Canceled and Conflict", calls, err)
	}
}
