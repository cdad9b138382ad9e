package store

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Heartbeats is a KV bucket of node liveness keys with a per-key TTL, so a
// node's liveness never rewrites its Node object. Safe for concurrent use.
type Heartbeats struct{}

// OpenHeartbeats creates (or opens) the heartbeat bucket; a key not beaten
// within ttl expires.
func OpenHeartbeats(ctx context.Context, js jetstream.JetStream, ttl time.Duration) (*Heartbeats, error) {
	panic("unimplemented")
}

// Beat records that node is alive at t.
func (h *Heartbeats) Beat(ctx context.Context, node string, t time.Time) error {
	panic("unimplemented")
}

// Last returns the time of node's last live beat, or false when it has expired or never beat.
func (h *Heartbeats) Last(ctx context.Context, node string) (time.Time, bool, error) {
	panic("unimplemented")
}

// HeartbeatEvent reports a node's beat (Alive) or its expiry (!Alive).
type HeartbeatEvent struct {
	Node  string
	Alive bool
	Time  time.Time
}

// Watch streams beats and expiries until ctx ends; it starts with the current keys.
func (h *Heartbeats) Watch(ctx context.Context) (<-chan HeartbeatEvent, error) {
	panic("unimplemented")
}
