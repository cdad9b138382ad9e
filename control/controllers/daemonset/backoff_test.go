package daemonset

import (
	"testing"
	"time"
)

func TestFailBackoff(t *testing.T) {
	b := newFailBackoff(time.Second, 8*time.Second)
	t0 := time.Unix(1000, 0)
	steps := []struct {
		name     string
		at       time.Duration // since t0
		fail     bool
		wantLeft time.Duration // before failing at this step
	}{
		{"never failed", 0, true, 0},
		{"just failed: 1s", 0, false, time.Second},
		{"after 1s", time.Second, true, 0},
		{"second failure doubles", time.Second, false, 2 * time.Second},
		{"third", 3 * time.Second, true, 0},
		{"fourth", 7 * time.Second, true, 0},
		{"capped at max", 7 * time.Second, false, 8 * time.Second},
		{"a quiet spell resets", 40 * time.Second, true, 0},
		{"back to 1s", 40 * time.Second, false, time.Second},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			now := t0.Add(s.at)
			if got := b.left("k", now); got != s.wantLeft {
				t.Fatalf("left = %v, want %v", got, s.wantLeft)
			}
			if s.fail {
				b.next("k", now)
			}
		})
	}
	if got := b.left("other", t0); got != 0 {
		t.Fatalf("another key is in back-off: %v", got)
	}
}
