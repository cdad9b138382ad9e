package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
)

// Revocations are the user public keys of one account whose credentials
// issued at or before a time (Unix seconds) are refused: NATS's account
// revocation list, kept in the auth bucket so that every server of a
// cluster enforces it.
type Revocations map[string]int64

func revokedKey(account string) string { return "revoked." + escapeToken(account) }

// Revoke adds pubs, revoked at at, to account's revocations (a
// compare-and-set, retried on a concurrent change).
func (s *AuthStore) Revoke(ctx context.Context, account string, pubs []string, at time.Time) error {
	key := revokedKey(account)
	for attempt := 0; attempt < 10; attempt++ {
		list := Revocations{}
		var rev uint64
		e, err := s.kv.Get(ctx, key)
		switch {
		case err == nil:
			if err := json.Unmarshal(e.Value(), &list); err != nil {
				return fmt.Errorf("decode revocations of %s: %w", account, err)
			}
			rev = e.Revision()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return storeErr("read revocations of "+account, err)
		}
		for _, p := range pubs {
			list[p] = at.Unix()
		}
		b, _ := json.Marshal(list)
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, b)
		} else {
			_, err = s.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return nil
		}
		if !isWrongLastSeq(err) && !errors.Is(err, jetstream.ErrKeyExists) {
			return storeErr("record revocations of "+account, err)
		}
	}
	return api.NewConflict("credentials", account, "revocations changed concurrently too often; try again")
}

// WatchRevocations calls fn with each account's revocations as stored now
// and after every change, until ctx ends. fn is called from one goroutine.
// A watch that fails is started again (its first values repeat what fn saw).
func (s *AuthStore) WatchRevocations(ctx context.Context, fn func(account string, list Revocations)) error {
	for {
		w, err := s.kv.Watch(ctx, "revoked.*")
		if err == nil {
			for e := range w.Updates() {
				if e == nil || e.Operation() != jetstream.KeyValuePut {
					continue
				}
				var list Revocations
				if json.Unmarshal(e.Value(), &list) != nil {
					continue
				}
				if account, ok := unescapeToken(strings.TrimPrefix(e.Key(), "revoked.")); ok {
					fn(account, list)
				}
			}
			_ = w.Stop()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}
