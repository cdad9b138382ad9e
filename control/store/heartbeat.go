package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
)

// HeartbeatBucket is the KV bucket of node liveness keys.
const HeartbeatBucket = "kyb-heartbeats"

// heartbeatMarkerTTL is how long the server keeps the marker of an expired
// key, so a watch started later still learns which nodes expired.
const heartbeatMarkerTTL = time.Hour

// Heartbeats is a KV bucket of node liveness keys with a per-key TTL, so a
// node's liveness never rewrites its Node object. Safe for concurrent use.
//
// Each beat is a KV put carrying a per-message TTL (JetStream's Nats-TTL
// header, nats-server 2.11+), not a bucket-wide max age, so other keys
// (leases) may later live in the same bucket with their own TTL. When a key
// is not beaten within its TTL the server removes it and writes a marker
// (reason MaxAge), which Watch reports as Alive false, at once and without
// polling. The value is the beat's time (RFC 3339, UTC).
type Heartbeats struct {
	js     jetstream.JetStream
	kv     jetstream.KeyValue
	prefix string
	ttl    time.Duration
}

// OpenHeartbeats creates (or opens) the heartbeat bucket; a key not beaten
// within ttl expires. JetStream counts TTLs in whole seconds, so ttl is
// rounded up to one; a ttl under one second is an error.
func OpenHeartbeats(ctx context.Context, js jetstream.JetStream, ttl time.Duration) (*Heartbeats, error) {
	if ttl < time.Second {
		return nil, fmt.Errorf("open heartbeats: ttl %v: must be at least 1s", ttl)
	}
	ttl = (ttl + time.Second - 1).Truncate(time.Second)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         HeartbeatBucket,
		Description:    "kybernetes node heartbeats (per-key TTL)",
		History:        1,
		Storage:        jetstream.FileStorage,
		MaxValueSize:   1024,
		LimitMarkerTTL: heartbeatMarkerTTL,
		// A restart never scales a replicated bucket down (ScaleReplicas raises it).
		Replicas: KeepReplicas(ctx, js, "KV_"+HeartbeatBucket, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("open heartbeats bucket %s: %w", HeartbeatBucket, err)
	}
	return &Heartbeats{js: js, kv: kv, prefix: "$KV." + HeartbeatBucket + ".", ttl: ttl}, nil
}

// TTL returns the time after which a key that is not beaten expires.
func (h *Heartbeats) TTL() time.Duration { return h.ttl }

// Beat records that node is alive at t and restarts its TTL. An empty node
// name is a BadRequest.
func (h *Heartbeats) Beat(ctx context.Context, node string, t time.Time) error {
	if node == "" {
		return api.NewBadRequest("heartbeat: node name: required")
	}
	if err := checkToken("node name", node, MaxNameLen); err != nil {
		return err
	}
	msg := &nats.Msg{
		Subject: h.prefix + escapeToken(node),
		Data:    t.UTC().AppendFormat(make([]byte, 0, 32), time.RFC3339Nano),
	}
	if _, err := h.js.PublishMsg(ctx, msg, jetstream.WithMsgTTL(h.ttl)); err != nil {
		return storeErr("heartbeat of node "+node, err)
	}
	return nil
}

// Last returns the time of node's last live beat, or false when it has
// expired or never beat (not an error).
func (h *Heartbeats) Last(ctx context.Context, node string) (time.Time, bool, error) {
	if node == "" {
		return time.Time{}, false, api.NewBadRequest("heartbeat: node name: required")
	}
	if err := checkToken("node name", node, MaxNameLen); err != nil {
		return time.Time{}, false, err
	}
	e, err := h.kv.Get(ctx, escapeToken(node))
	if err != nil {
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return time.Time{}, false, nil
		}
		return time.Time{}, false, storeErr("last heartbeat of node "+node, err)
	}
	// The server removes an expired key within about a second; do not
	// report a beat older than the TTL in that window.
	if time.Since(e.Created()) > h.ttl {
		return time.Time{}, false, nil
	}
	t, err := time.Parse(time.RFC3339Nano, string(e.Value()))
	if err != nil {
		return time.Time{}, false, fmt.Errorf("last heartbeat of node %s: bad value %q: %w", node, e.Value(), err)
	}
	return t, true, nil
}

// HeartbeatEvent reports a node's beat (Alive) or its expiry (!Alive).
type HeartbeatEvent struct {
	Node  string
	Alive bool
	// Time is the beat's time, or when the server marked the expiry.
	Time time.Time
}

// Watch streams beats and expiries until ctx ends; it starts with the
// current keys (a node that expired within the last hour starts as not
// Alive). The channel closes when ctx ends. It reads the bucket's stream
// with an ordered consumer, which recreates itself after a reconnect or a
// server restart and resumes where it left off. A slow reader blocks the
// watch; nothing is dropped. Safe for concurrent use.
func (h *Heartbeats) Watch(ctx context.Context) (<-chan HeartbeatEvent, error) {
	stream := "KV_" + HeartbeatBucket
	cons, err := h.js.OrderedConsumer(ctx, stream, jetstream.OrderedConsumerConfig{
		FilterSubjects:    []string{h.prefix + ">"},
		DeliverPolicy:     jetstream.DeliverLastPerSubjectPolicy,
		InactiveThreshold: consumerIdle,
	})
	if err != nil {
		return nil, storeErr("watch heartbeats", err)
	}
	out := make(chan HeartbeatEvent, 64)
	var mu sync.Mutex // serialises handler calls (across consumer resets) with close
	closed := false
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		key := strings.TrimPrefix(msg.Subject(), h.prefix)
		if strings.HasPrefix(key, leaseKeyPrefix) {
			return // a leader lease, not a node
		}
		node, ok := unescapeToken(key)
		if !ok {
			return
		}
		ev := HeartbeatEvent{Node: node}
		if md, err := msg.Metadata(); err == nil {
			ev.Time = md.Timestamp
		}
		if !isMarker(msg.Headers()) {
			ev.Alive = true
			if t, err := time.Parse(time.RFC3339Nano, string(msg.Data())); err == nil {
				ev.Time = t
			}
		}
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		select {
		case out <- ev:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return nil, storeErr("watch heartbeats", err)
	}
	go func() {
		select {
		case <-ctx.Done():
		case <-cc.Closed():
		}
		cc.Stop()
		if info := cons.CachedInfo(); info != nil {
			dctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = h.js.DeleteConsumer(dctx, stream, info.Name)
			cancel()
		}
		mu.Lock()
		closed = true
		close(out)
		mu.Unlock()
	}()
	return out, nil
}

// Forget removes node's key (when its Node object is deleted). A node that
// never beat is not an error.
func (h *Heartbeats) Forget(ctx context.Context, node string) error {
	if node == "" {
		return api.NewBadRequest("heartbeat: node name: required")
	}
	if err := checkToken("node name", node, MaxNameLen); err != nil {
		return err
	}
	if err := h.kv.Delete(ctx, escapeToken(node)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return storeErr("forget heartbeat of node "+node, err)
	}
	return nil
}
