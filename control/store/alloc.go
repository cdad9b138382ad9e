package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// AllocBucket is the KV bucket of allocations: Service cluster IPs and
// NodePorts, one create-only key each, so that two API servers can never
// hand out the same one.
const AllocBucket = "kyb-allocations"

// Allocations keeps claims on shared values (an IP, a port): a key per
// value whose content names its owner. A claim is a KV create, which only
// one writer can make; a release deletes the key at the revision read,
// only while the owner is the one named. Keys are dot-separated tokens the
// caller builds (e.g. "ip.10.43.0.5", "nodeport.30080"). Safe for
// concurrent use.
type Allocations struct {
	kv jetstream.KeyValue
}

// Claim is one stored allocation.
type Claim struct {
	Key      string
	Owner    string
	Revision uint64
	Created  time.Time
}

// OpenAllocations creates (or opens) the allocations bucket with replicas copies.
func OpenAllocations(ctx context.Context, js jetstream.JetStream, replicas int) (*Allocations, error) {
	if replicas == 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       AllocBucket,
		Description:  "kybernetes allocations (service IPs, node ports)",
		History:      1,
		Storage:      jetstream.FileStorage,
		MaxValueSize: 1024,
		Replicas:     replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open allocations bucket %s: %w", AllocBucket, err)
	}
	return &Allocations{kv: kv}, nil
}

// Claim gives key to owner unless another owner holds it. It returns
// holder "" when owner holds the key now, with created true when this call
// made the claim, and the holder's name when someone else holds it.
func (a *Allocations) Claim(ctx context.Context, key, owner string) (holder string, created bool, err error) {
	for attempt := 0; attempt < 4; attempt++ {
		_, err := a.kv.Create(ctx, key, []byte(owner))
		if err == nil {
			return "", true, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return "", false, storeErr("claim "+key, err)
		}
		e, gerr := a.kv.Get(ctx, key)
		if errors.Is(gerr, jetstream.ErrKeyNotFound) || errors.Is(gerr, jetstream.ErrKeyDeleted) {
			continue // released meanwhile: try again
		}
		if gerr != nil {
			return "", false, storeErr("read claim "+key, gerr)
		}
		if h := string(e.Value()); h != owner {
			return h, false, nil
		}
		return "", false, nil
	}
	return "", false, fmt.Errorf("claim %s: changed concurrently too often", key)
}

// Release deletes key if owner holds it (compare-and-set on the revision
// read); a key held by another owner, or by no one, is left alone.
func (a *Allocations) Release(ctx context.Context, key, owner string) error {
	e, err := a.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return nil
	}
	if err != nil {
		return storeErr("read claim "+key, err)
	}
	if string(e.Value()) != owner {
		return nil
	}
	if err := a.kv.Delete(ctx, key, jetstream.LastRevision(e.Revision())); err != nil && !isWrongLastSeq(err) {
		return storeErr("release "+key, err)
	}
	return nil
}

// ReleaseAt deletes key only if it is still at revision rev (a claim read
// by List), so a claim made again since is kept.
func (a *Allocations) ReleaseAt(ctx context.Context, key string, rev uint64) error {
	if err := a.kv.Delete(ctx, key, jetstream.LastRevision(rev)); err != nil && !isWrongLastSeq(err) && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return storeErr("release "+key, err)
	}
	return nil
}

// List returns the claims whose keys begin with prefix (e.g. "ip.").
func (a *Allocations) List(ctx context.Context, prefix string) ([]Claim, error) {
	w, err := a.kv.WatchFiltered(ctx, []string{strings.TrimSuffix(prefix, ".") + ".>"}, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, storeErr("list claims "+prefix, err)
	}
	defer func() { _ = w.Stop() }()
	var out []Claim
	for {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("list claims %s: %w", prefix, ctx.Err())
		case e, ok := <-w.Updates():
			if !ok {
				return out, nil
			}
			if e == nil { // the initial values are all delivered
				return out, nil
			}
			out = append(out, Claim{Key: e.Key(), Owner: string(e.Value()), Revision: e.Revision(), Created: e.Created()})
		}
	}
}
