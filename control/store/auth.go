package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/api"
)

// AuthBucket is the KV bucket of join tokens and credential revocations.
const AuthBucket = "kyb-auth"

// Token is a bootstrap (join) token as stored: its secret only as a hash.
type Token struct {
	ID          string    `json:"id"`
	SecretHash  string    `json:"secretHash"` // hex SHA-256 of the secret
	Expires     time.Time `json:"expires"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
}

// Revocation says that every credential of Principal issued at or before
// At (Unix seconds, the JWT's iat) is refused.
type Revocation struct {
	Principal string `json:"principal"`
	At        int64  `json:"at"`
}

// AuthStore keeps join tokens and credential revocations. Token IDs and
// principals must be short KV-safe names; callers validate them. Safe for
// concurrent use.
type AuthStore struct {
	kv jetstream.KeyValue
}

// OpenAuth creates (or opens) the auth bucket with replicas copies.
func OpenAuth(ctx context.Context, js jetstream.JetStream, replicas int) (*AuthStore, error) {
	if replicas == 0 {
		replicas = 1
	}
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:       AuthBucket,
		Description:  "kybernetes join tokens and credential revocations",
		History:      1,
		Storage:      jetstream.FileStorage,
		MaxValueSize: 4096,
		Replicas:     replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("open auth bucket %s: %w", AuthBucket, err)
	}
	return &AuthStore{kv: kv}, nil
}

func tokenKey(id string) string     { return "token." + escapeToken(id) }
func revocationKey(p string) string { return "revoked." + escapeToken(p) }
func (s *AuthStore) put(ctx context.Context, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = s.kv.Put(ctx, key, b)
	return err
}

// PutToken stores t (replacing a token of the same ID).
func (s *AuthStore) PutToken(ctx context.Context, t Token) error {
	if err := s.put(ctx, tokenKey(t.ID), t); err != nil {
		return storeErr("store token "+t.ID, err)
	}
	return nil
}

// Token returns the token id; NotFound when there is none.
func (s *AuthStore) Token(ctx context.Context, id string) (*Token, error) {
	e, err := s.kv.Get(ctx, tokenKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, api.NewNotFound("token", id)
	}
	if err != nil {
		return nil, storeErr("read token "+id, err)
	}
	var t Token
	if err := json.Unmarshal(e.Value(), &t); err != nil {
		return nil, fmt.Errorf("decode token %s: %w", id, err)
	}
	return &t, nil
}

// DeleteToken removes token id; a missing one is not an error.
func (s *AuthStore) DeleteToken(ctx context.Context, id string) error {
	if err := s.kv.Delete(ctx, tokenKey(id)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return storeErr("delete token "+id, err)
	}
	return nil
}

// Tokens lists every stored token, expired ones included.
func (s *AuthStore) Tokens(ctx context.Context) ([]Token, error) {
	lister, err := s.kv.ListKeysFiltered(ctx, "token.>")
	if err != nil {
		return nil, storeErr("list tokens", err)
	}
	var out []Token
	for k := range lister.Keys() {
		e, err := s.kv.Get(ctx, k)
		if err != nil {
			continue // deleted meanwhile
		}
		var t Token
		if json.Unmarshal(e.Value(), &t) == nil {
			out = append(out, t)
		}
	}
	return out, nil
}

// Revoke refuses, from now on, every credential of principal issued at or
// before at.
func (s *AuthStore) Revoke(ctx context.Context, principal string, at time.Time) error {
	if err := s.put(ctx, revocationKey(principal), Revocation{Principal: principal, At: at.Unix()}); err != nil {
		return storeErr("revoke "+principal, err)
	}
	return nil
}

// RevokedAt returns when principal's credentials were last revoked, and
// false when they never were.
func (s *AuthStore) RevokedAt(ctx context.Context, principal string) (int64, bool, error) {
	e, err := s.kv.Get(ctx, revocationKey(principal))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, storeErr("read revocation of "+principal, err)
	}
	var r Revocation
	if err := json.Unmarshal(e.Value(), &r); err != nil {
		return 0, false, fmt.Errorf("decode revocation of %s: %w", principal, err)
	}
	return r.At, true, nil
}
