package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServersBucket is the KV bucket where every control plane server
// registers itself, with a per-key TTL.
const ServersBucket = "kyb-servers"

// ServerInfo is one control plane server's registration.
type ServerInfo struct {
	Name       string    `json:"name"`
	ClientURL  string    `json:"clientURL"`
	ClusterURL string    `json:"clusterURL,omitempty"`
	Version    string    `json:"version"`
	Started    time.Time `json:"started"`
}

// Servers is the registry of control plane servers: each server puts its
// ServerInfo under its name every beat, with a TTL of three beats, so a
// dead server's key expires. Agents and joining servers learn every
// server's URL from it. Safe for concurrent use.
type Servers struct {
	js  jetstream.JetStream
	kv  jetstream.KeyValue
	ttl time.Duration
}

// OpenServers creates (or opens) the servers bucket with replicas copies
// (never fewer than it has); a registration not renewed within ttl
// (rounded up to whole seconds, at least 1s) expires.
func OpenServers(ctx context.Context, js jetstream.JetStream, ttl time.Duration, replicas int) (*Servers, error) {
	if ttl < time.Second {
		return nil, fmt.Errorf("open servers: ttl %v: must be at least 1s", ttl)
	}
	ttl = (ttl + time.Second - 1).Truncate(time.Second)
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:         ServersBucket,
		Description:    "kybernetes control plane servers (per-key TTL)",
		History:        1,
		Storage:        jetstream.FileStorage,
		MaxValueSize:   4096,
		LimitMarkerTTL: time.Minute,
		Replicas:       KeepReplicas(ctx, js, "KV_"+ServersBucket, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("open servers bucket %s: %w", ServersBucket, err)
	}
	return &Servers{js: js, kv: kv, ttl: ttl}, nil
}

// TTL is how long a registration lives unrenewed.
func (s *Servers) TTL() time.Duration { return s.ttl }

// Register puts (or renews) info under its name.
func (s *Servers) Register(ctx context.Context, info ServerInfo) error {
	if err := checkToken("server name", info.Name, MaxNameLen); err != nil {
		return err
	}
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	msg := &nats.Msg{Subject: "$KV." + ServersBucket + "." + escapeToken(info.Name), Data: b}
	if _, err := s.js.PublishMsg(ctx, msg, jetstream.WithMsgTTL(s.ttl)); err != nil {
		return storeErr("register server "+info.Name, err)
	}
	return nil
}

// List returns the servers whose registration is alive.
func (s *Servers) List(ctx context.Context) ([]ServerInfo, error) {
	lister, err := s.kv.ListKeys(ctx)
	if err != nil {
		if errors.Is(err, jetstream.ErrNoKeysFound) {
			return nil, nil
		}
		return nil, storeErr("list servers", err)
	}
	var out []ServerInfo
	for k := range lister.Keys() {
		e, err := s.kv.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
			continue // expired meanwhile
		}
		if err != nil {
			// Not a missing server: a list short of a live one would
			// send a joining node away with fewer servers than exist.
			return nil, storeErr("list servers: read "+k, err)
		}
		var si ServerInfo
		if json.Unmarshal(e.Value(), &si) == nil {
			out = append(out, si)
		}
	}
	return out, nil
}

// Forget removes a server's registration (a removed server).
func (s *Servers) Forget(ctx context.Context, name string) error {
	if err := s.kv.Purge(ctx, escapeToken(name)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return storeErr("forget server "+name, err)
	}
	return nil
}
