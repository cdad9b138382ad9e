package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/control/controllers/framework"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// TestWatchRestarted: a heartbeat watch that cannot start, or that ends
// (as after a lost connection), is restarted with back-off; Run keeps
// running instead of returning an error that would stop the control plane.
func TestWatchRestarted(t *testing.T) {
	// The manager is never run: this test is about the heartbeat watch.
	c := New(framework.NewManager(nil, nil), nil, nil, Config{Grace: time.Hour}, slog.New(slog.DiscardHandler))
	c.watchBackoff.Initial = time.Millisecond
	var calls atomic.Int32
	c.watch = func(ctx context.Context) (<-chan store.HeartbeatEvent, error) {
		switch calls.Add(1) {
		case 1:
			return nil, errors.New("jetstream unavailable")
		case 2:
			ch := make(chan store.HeartbeatEvent, 1)
			ch <- store.HeartbeatEvent{Node: "n1", Alive: true}
			close(ch) // the watch ends
			return ch, nil
		default:
			return make(chan store.HeartbeatEvent), nil // stays open
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	testutil.Eventually(t, 5*time.Second, func() error {
		select {
		case err := <-done:
			t.Fatalf("Run returned %v while its watch was being restarted", err)
		default:
		}
		if n := calls.Load(); n < 3 {
			return fmt.Errorf("watch started %d times, want 3", n)
		}
		return nil
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
}
