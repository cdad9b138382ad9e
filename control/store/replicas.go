package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// KeepReplicas returns the replica count to create or update stream with:
// want, or the stream's current count when that is higher, so that a
// server restarted while its cluster is short of servers never scales a
// replicated bucket down.
func KeepReplicas(ctx context.Context, js jetstream.JetStream, stream string, want int) int {
	want = max(want, 1)
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return want
	}
	return max(want, s.CachedInfo().Config.Replicas)
}

// ScaleReplicas raises every stream of the account (the objects, auth,
// heartbeat and servers buckets, the events and logs streams, the module
// store) to n replicas when it has fewer: JetStream copies its data to the
// new peers (a stream update of Replicas, which a KV bucket and an object
// store are). It never lowers a count. It returns the streams it changed.
func ScaleReplicas(ctx context.Context, js jetstream.JetStream, n int) ([]string, error) {
	var changed []string
	var errs []error
	names := js.StreamNames(ctx)
	for name := range names.Name() {
		s, err := js.Stream(ctx, name)
		if err != nil {
			errs = append(errs, fmt.Errorf("stream %s: %w", name, err))
			continue
		}
		cfg := s.CachedInfo().Config
		if cfg.Replicas >= n {
			continue
		}
		cfg.Replicas = n
		uctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err = js.UpdateStream(uctx, cfg)
		cancel()
		if err != nil {
			errs = append(errs, fmt.Errorf("scale stream %s to %d replicas: %w", name, n, err))
			continue
		}
		changed = append(changed, name)
	}
	if err := names.Err(); err != nil && !errors.Is(err, jetstream.ErrEndOfData) {
		errs = append(errs, fmt.Errorf("list streams: %w", err))
	}
	return changed, errors.Join(errs...)
}

// StreamExists reports whether stream exists (false on any error).
func StreamExists(ctx context.Context, js jetstream.JetStream, stream string) bool {
	_, err := js.Stream(ctx, stream)
	return err == nil
}
