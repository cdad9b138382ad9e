package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
)

// DefaultTokenTTL is a join token's lifetime when none is asked for.
const DefaultTokenTTL = 24 * time.Hour

// MaxTokenTTL bounds a join token's lifetime.
const MaxTokenTTL = 365 * 24 * time.Hour

// ParseToken splits a join token (api.ParseJoinToken).
func ParseToken(tok string) (api.JoinToken, error) { return api.ParseJoinToken(tok) }

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

func randomString(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	for i := range b {
		b[i] = tokenAlphabet[int(b[i])%len(tokenAlphabet)]
	}
	return string(b)
}

func hashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// Tokens makes and checks join tokens, kept in an AuthStore.
type Tokens struct {
	a  *Authority
	st *store.AuthStore
}

// NewTokens returns the join tokens of authority a, kept in st.
func NewTokens(a *Authority, st *store.AuthStore) *Tokens { return &Tokens{a: a, st: st} }

// Create stores a new join token valid for ttl (DefaultTokenTTL when 0)
// and returns it; the secret is kept only as a hash.
func (t *Tokens) Create(ctx context.Context, ttl time.Duration, description string) (string, time.Time, error) {
	if ttl == 0 {
		ttl = DefaultTokenTTL
	}
	if ttl < time.Second || ttl > MaxTokenTTL {
		return "", time.Time{}, api.NewBadRequest("ttl %v: must be between 1s and %v", ttl, MaxTokenTTL)
	}
	if len(description) > 256 {
		return "", time.Time{}, api.NewBadRequest("description: at most 256 characters")
	}
	p := api.JoinToken{CAHash: t.a.CAHash(), ID: randomString(6), Secret: randomString(16)}
	for p.ID == api.ServerTokenID { // the server token's ID is never a node token's
		p.ID = randomString(6)
	}
	now := time.Now()
	exp := now.Add(ttl).UTC()
	err := t.st.PutToken(ctx, store.Token{ID: p.ID, SecretHash: hashSecret(p.Secret), Expires: exp, Description: description, Created: now.UTC()})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("create join token: %w", err)
	}
	return p.String(), exp, nil
}

// Check returns the stored token that tok names when it is valid now: the
// CA hash is this cluster's, the secret matches and it has not expired or
// been deleted. The error says which, without revealing the secret.
func (t *Tokens) Check(ctx context.Context, tok string) (*store.Token, error) {
	p, err := ParseToken(tok)
	if err != nil {
		return nil, err
	}
	if p.CAHash != t.a.CAHash() {
		return nil, fmt.Errorf("join token %s is for another cluster (its CA hash differs)", p.ID)
	}
	return t.CheckID(ctx, p.ID, p.Secret)
}

// CheckID checks token id with secret (secret "" skips the secret check,
// for a connection the callout already authenticated with it).
func (t *Tokens) CheckID(ctx context.Context, id, secret string) (*store.Token, error) {
	st, err := t.st.Token(ctx, id)
	if api.IsNotFound(err) {
		return nil, fmt.Errorf("join token %s does not exist (deleted or never made)", id)
	}
	if err != nil {
		return nil, err
	}
	if secret != "" && subtle.ConstantTimeCompare([]byte(hashSecret(secret)), []byte(st.SecretHash)) != 1 {
		return nil, fmt.Errorf("join token %s: wrong secret", id)
	}
	if !time.Now().Before(st.Expires) {
		return nil, fmt.Errorf("join token %s expired at %s", id, st.Expires.Format(time.RFC3339))
	}
	return st, nil
}

// RandomSecret returns 32 random characters of [a-z0-9].
func RandomSecret() string { return randomString(32) }
