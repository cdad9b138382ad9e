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

// AuthBucket is the KV bucket of join tokens and of the keys of issued credentials.
const AuthBucket = "kyb-auth"

// Token is a bootstrap (join) token as stored: its secret only as a hash.
type Token struct {
	ID          string    `json:"id"`
	SecretHash  string    `json:"secretHash"` // hex SHA-256 of the secret
	Expires     time.Time `json:"expires"`
	Description string    `json:"description,omitempty"`
	Created     time.Time `json:"created"`
}

// AuthStore keeps join tokens and the public keys of issued credentials. Token IDs and
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
		Description:  "kybernetes join tokens and issued credential keys",
		History:      1,
		Storage:      jetstream.FileStorage,
		MaxValueSize: 4096,
		Replicas:     KeepReplicas(ctx, js, "KV_"+AuthBucket, replicas),
	})
	if err != nil {
		return nil, fmt.Errorf("open auth bucket %s: %w", AuthBucket, err)
	}
	return &AuthStore{kv: kv}, nil
}

func tokenKey(id string) string { return "token." + escapeToken(id) }
func keysKey(p string) string   { return "keys." + escapeToken(p) }
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

// RecordKey notes that credentials for the NKey public key pub were
// issued to principal, so that revoking principal can name every key.
func (s *AuthStore) RecordKey(ctx context.Context, principal, pub string) error {
	key := keysKey(principal)
	for attempt := 0; attempt < 10; attempt++ {
		var keys []string
		var rev uint64
		e, err := s.kv.Get(ctx, key)
		switch {
		case err == nil:
			if err := json.Unmarshal(e.Value(), &keys); err != nil {
				return fmt.Errorf("decode keys of %s: %w", principal, err)
			}
			rev = e.Revision()
		case !errors.Is(err, jetstream.ErrKeyNotFound):
			return storeErr("read keys of "+principal, err)
		}
		keys = append(keys, pub)
		b, _ := json.Marshal(keys)
		if rev == 0 {
			_, err = s.kv.Create(ctx, key, b)
		} else {
			_, err = s.kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return nil
		}
		if !isWrongLastSeq(err) {
			return storeErr("record key of "+principal, err)
		}
	}
	return api.NewConflict("credentials", principal, "changed concurrently too often; try again")
}

// ClaimKey records pub as the first and only key of principal; an
// AlreadyExists error when principal holds keys already (until Forget).
func (s *AuthStore) ClaimKey(ctx context.Context, principal, pub string) error {
	b, _ := json.Marshal([]string{pub})
	_, err := s.kv.Create(ctx, keysKey(principal), b)
	if errors.Is(err, jetstream.ErrKeyExists) {
		return api.NewAlreadyExists("credentials", principal)
	}
	if err != nil {
		return storeErr("claim "+principal, err)
	}
	return nil
}

// Keys returns the public keys issued to principal since its last Forget.
func (s *AuthStore) Keys(ctx context.Context, principal string) ([]string, error) {
	e, err := s.kv.Get(ctx, keysKey(principal))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, storeErr("read keys of "+principal, err)
	}
	var keys []string
	if err := json.Unmarshal(e.Value(), &keys); err != nil {
		return nil, fmt.Errorf("decode keys of %s: %w", principal, err)
	}
	return keys, nil
}

// Forget drops the record of principal's keys (after they were revoked).
func (s *AuthStore) Forget(ctx context.Context, principal string) error {
	if err := s.kv.Delete(ctx, keysKey(principal)); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return storeErr("forget keys of "+principal, err)
	}
	return nil
}
