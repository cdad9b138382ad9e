package store

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	gojson "github.com/goccy/go-json"

	"github.com/kybernetes/kybernetes/api"
)

// EncryptionConfigFile is the name of the key file under the control
// plane's pki directory.
const EncryptionConfigFile = "encryption-config.json"

// encPrefix starts every encrypted value, as Kubernetes' aesgcm provider
// writes it: k8s:enc:aesgcm:v1:<key name>:<nonce><ciphertext>.
const encPrefix = "k8s:enc:aesgcm:v1:"

// encryptionConfig is the key file: the shape of Kubernetes'
// EncryptionConfiguration with one aesgcm provider for secrets, so an
// operator reads it as they would read Kubernetes' (JSON is YAML).
type encryptionConfig struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	Resources  []struct {
		Resources []string `json:"resources"`
		Providers []struct {
			AESGCM *struct {
				Keys []encryptionKey `json:"keys"`
			} `json:"aesgcm,omitempty"`
		} `json:"providers"`
	} `json:"resources"`
}

type encryptionKey struct {
	Name   string `json:"name"`
	Secret string `json:"secret"` // base64 of 32 random bytes
}

type aeadKey struct {
	name string
	aead cipher.AEAD
}

// Keyring holds the AES-256-GCM keys that encrypt Secrets at rest: the
// first key encrypts, every key decrypts. It is kept in a file (0600) so
// that every control plane of a cluster shares it as it shares the other
// pki keys. Safe for concurrent use.
type Keyring struct {
	path string
	mu   sync.RWMutex
	keys []aeadKey
	raw  []encryptionKey
}

// LoadOrCreateKeyring reads the key file at path, or makes one with a
// fresh random key when there is none (directory 0700, file 0600).
func LoadOrCreateKeyring(path string) (*Keyring, error) {
	k := &Keyring{path: path}
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("encryption keys: %w", err)
		}
		nk, err := newEncryptionKey(1)
		if err != nil {
			return nil, err
		}
		if err := k.set([]encryptionKey{nk}); err != nil {
			return nil, err
		}
		return k, k.save()
	}
	if err != nil {
		return nil, fmt.Errorf("encryption keys: %w", err)
	}
	var cfg encryptionConfig
	if err := json.Unmarshal(b, &cfg); err != nil {
		return nil, fmt.Errorf("encryption keys %s: %w", path, err)
	}
	var keys []encryptionKey
	for _, r := range cfg.Resources {
		for _, p := range r.Providers {
			if p.AESGCM != nil {
				keys = append(keys, p.AESGCM.Keys...)
			}
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("encryption keys %s: no aesgcm key", path)
	}
	if err := k.set(keys); err != nil {
		return nil, fmt.Errorf("encryption keys %s: %w", path, err)
	}
	return k, nil
}

func newEncryptionKey(n int) (encryptionKey, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return encryptionKey{}, fmt.Errorf("encryption keys: random key: %w", err)
	}
	return encryptionKey{Name: "key" + strconv.Itoa(n), Secret: base64.StdEncoding.EncodeToString(b)}, nil
}

// set replaces the keys; the caller holds mu or owns k.
func (k *Keyring) set(raw []encryptionKey) error {
	keys := make([]aeadKey, 0, len(raw))
	seen := map[string]bool{}
	for _, r := range raw {
		if r.Name == "" || strings.Contains(r.Name, ":") || seen[r.Name] {
			return fmt.Errorf("key name %q: must be unique, non-empty and hold no ':'", r.Name)
		}
		seen[r.Name] = true
		secret, err := base64.StdEncoding.DecodeString(r.Secret)
		if err != nil || len(secret) != 32 {
			return fmt.Errorf("key %q: secret must be 32 bytes in base64 (AES-256)", r.Name)
		}
		block, err := aes.NewCipher(secret)
		if err != nil {
			return fmt.Errorf("key %q: %w", r.Name, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return fmt.Errorf("key %q: %w", r.Name, err)
		}
		keys = append(keys, aeadKey{name: r.Name, aead: aead})
	}
	k.keys, k.raw = keys, raw
	return nil
}

// save writes the key file atomically (a temporary file renamed over it).
func (k *Keyring) save() error {
	var cfg encryptionConfig
	cfg.APIVersion, cfg.Kind = "apiserver.config.k8s.io/v1", "EncryptionConfiguration"
	cfg.Resources = make([]struct {
		Resources []string `json:"resources"`
		Providers []struct {
			AESGCM *struct {
				Keys []encryptionKey `json:"keys"`
			} `json:"aesgcm,omitempty"`
		} `json:"providers"`
	}, 1)
	cfg.Resources[0].Resources = []string{"secrets"}
	cfg.Resources[0].Providers = make([]struct {
		AESGCM *struct {
			Keys []encryptionKey `json:"keys"`
		} `json:"aesgcm,omitempty"`
	}, 1)
	cfg.Resources[0].Providers[0].AESGCM = &struct {
		Keys []encryptionKey `json:"keys"`
	}{Keys: k.raw}
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return fmt.Errorf("encryption keys: %w", err)
	}
	tmp := k.path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("encryption keys: %w", err)
	}
	if err := os.Rename(tmp, k.path); err != nil {
		return fmt.Errorf("encryption keys: %w", err)
	}
	return nil
}

// KeyNames returns the names of the keys, the encrypting one first.
func (k *Keyring) KeyNames() []string {
	k.mu.RLock()
	defer k.mu.RUnlock()
	out := make([]string, len(k.keys))
	for i, key := range k.keys {
		out[i] = key.name
	}
	return out
}

// AddKey makes a new random key the encrypting one (the others still
// decrypt) and saves the file; it returns the new key's name.
func (k *Keyring) AddKey() (string, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	n := 1
	for _, key := range k.raw {
		if v, err := strconv.Atoi(strings.TrimPrefix(key.Name, "key")); err == nil && v >= n {
			n = v + 1
		}
	}
	nk, err := newEncryptionKey(n)
	if err != nil {
		return "", err
	}
	old := k.raw
	if err := k.set(append([]encryptionKey{nk}, old...)); err != nil {
		return "", err
	}
	if err := k.save(); err != nil {
		_ = k.set(old)
		return "", err
	}
	return nk.Name, nil
}

// RetireOldKeys keeps only the encrypting key and saves the file. Call it
// only when nothing stored is encrypted with another key.
func (k *Keyring) RetireOldKeys() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.raw) <= 1 {
		return nil
	}
	old := k.raw
	if err := k.set(old[:1]); err != nil {
		return err
	}
	if err := k.save(); err != nil {
		_ = k.set(old)
		return err
	}
	return nil
}

// seal encrypts plain with the first key; aad binds it to its object.
func (k *Keyring) seal(plain, aad []byte) (string, error) {
	k.mu.RLock()
	key := k.keys[0]
	k.mu.RUnlock()
	nonce := make([]byte, key.aead.NonceSize(), key.aead.NonceSize()+len(plain)+key.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("encrypt: nonce: %w", err)
	}
	ct := key.aead.Seal(nonce, nonce, plain, aad)
	return encPrefix + key.name + ":" + base64.StdEncoding.EncodeToString(ct), nil
}

// open decrypts a sealed value with the key it names.
func (k *Keyring) open(sealed string, aad []byte) ([]byte, string, error) {
	rest, ok := strings.CutPrefix(sealed, encPrefix)
	if !ok {
		return nil, "", errors.New("decrypt: not an aesgcm value")
	}
	name, b64, ok := strings.Cut(rest, ":")
	if !ok {
		return nil, "", errors.New("decrypt: no key name")
	}
	ct, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		return nil, "", fmt.Errorf("decrypt: %w", err)
	}
	k.mu.RLock()
	var key *aeadKey
	for i := range k.keys {
		if k.keys[i].name == name {
			key = &k.keys[i]
		}
	}
	k.mu.RUnlock()
	if key == nil {
		return nil, "", fmt.Errorf("decrypt: key %q is not in the key file (retired, or the file of another cluster)", name)
	}
	ns := key.aead.NonceSize()
	if len(ct) < ns {
		return nil, "", errors.New("decrypt: value too short")
	}
	plain, err := key.aead.Open(nil, ct[:ns], ct[ns:], aad)
	if err != nil {
		return nil, "", fmt.Errorf("decrypt with key %q: %w", name, err)
	}
	return plain, name, nil
}

// sealedSecret is a Secret as stored when a Keyring is set: Data (and
// StringData, always empty once defaulted) replaced by EncryptedData, the
// AES-GCM envelope of their JSON bound to the Secret's namespace and name.
// The rest of the object (metadata, type) stays readable, so lists by
// label or field work without decrypting.
type sealedSecret struct {
	api.Secret
	EncryptedData string `json:"encryptedData,omitempty"`
}

// secretValues is what is encrypted.
type secretValues struct {
	Data       map[string][]byte `json:"data,omitempty"`
	StringData map[string]string `json:"stringData,omitempty"`
}

func secretAAD(s *api.Secret) []byte {
	return []byte("secrets/" + s.Namespace + "/" + s.Name)
}

// marshal encodes obj for storage: JSON, with a Secret's values encrypted
// when the store has a Keyring.
func (s *Store) marshal(obj api.Object) ([]byte, error) {
	sec, ok := obj.(*api.Secret)
	if !ok || s.keys == nil {
		return json.Marshal(obj)
	}
	plain, err := json.Marshal(secretValues{Data: sec.Data, StringData: sec.StringData})
	if err != nil {
		return nil, err
	}
	sealed := sealedSecret{Secret: *sec}
	sealed.Data, sealed.StringData = nil, nil
	if sealed.EncryptedData, err = s.keys.seal(plain, secretAAD(sec)); err != nil {
		return nil, err
	}
	return json.Marshal(&sealed)
}

// openSecret decrypts a stored Secret's values into sec; keyName is the key
// that encrypted them ("" when they were stored in plaintext).
func (s *Store) openSecret(sealed string, sec *api.Secret) (keyName string, err error) {
	if sealed == "" {
		return "", nil
	}
	if s.keys == nil {
		return "", errors.New("secret is encrypted but the store has no encryption keys")
	}
	plain, name, err := s.keys.open(sealed, secretAAD(sec))
	if err != nil {
		return "", err
	}
	var v secretValues
	if err := gojson.Unmarshal(plain, &v); err != nil {
		return "", fmt.Errorf("decode decrypted values: %w", err)
	}
	sec.Data, sec.StringData = v.Data, v.StringData
	return name, nil
}

// ReencryptSecrets rewrites every stored Secret, so that each is
// encrypted with the keyring's first key (a Secret stored in plaintext,
// before encryption was on, is encrypted too). A Secret changed meanwhile
// is read again and rewritten. It returns how many it rewrote.
func (s *Store) ReencryptSecrets(ctx context.Context) (int, error) {
	if s.keys == nil {
		return 0, errors.New("re-encrypt secrets: the store has no encryption keys")
	}
	kind := api.SecretKind()
	objs, _, err := s.List(ctx, kind, ListOptions{})
	if err != nil {
		return 0, fmt.Errorf("re-encrypt secrets: %w", err)
	}
	n := 0
	for _, obj := range objs {
		for attempt := 0; ; attempt++ {
			err := s.Update(ctx, obj)
			if err == nil {
				n++
				break
			}
			if api.IsNotFound(err) {
				break
			}
			if !api.IsConflict(err) || attempt >= 5 {
				m := obj.GetObjectMeta()
				return n, fmt.Errorf("re-encrypt secret %s/%s: %w", m.Namespace, m.Name, err)
			}
			m := obj.GetObjectMeta()
			if obj, err = s.Get(ctx, kind, m.Namespace, m.Name); err != nil {
				if api.IsNotFound(err) {
					break
				}
				return n, fmt.Errorf("re-encrypt secret %s/%s: %w", m.Namespace, m.Name, err)
			}
		}
	}
	return n, nil
}

// FinishKeyRotation completes a rotation: when the keyring holds more than
// one key (a rotation began, perhaps interrupted by a crash), every Secret
// is re-encrypted with the first key and the others are retired. With one
// key it does nothing. Call it at start, before serving.
func (s *Store) FinishKeyRotation(ctx context.Context) (int, error) {
	if s.keys == nil || len(s.keys.KeyNames()) <= 1 {
		return 0, nil
	}
	n, err := s.ReencryptSecrets(ctx)
	if err != nil {
		return n, err
	}
	return n, s.keys.RetireOldKeys()
}

// RotateKey makes a new key the encrypting one (saved first, so a crash
// leaves a file that still decrypts everything), re-encrypts every Secret
// with it, then retires the old keys. It returns the new key's name and
// how many Secrets it rewrote.
func (s *Store) RotateKey(ctx context.Context) (string, int, error) {
	if s.keys == nil {
		return "", 0, errors.New("rotate key: the store has no encryption keys")
	}
	name, err := s.keys.AddKey()
	if err != nil {
		return "", 0, fmt.Errorf("rotate key: %w", err)
	}
	n, err := s.FinishKeyRotation(ctx)
	if err != nil {
		return name, n, fmt.Errorf("rotate key: %w", err)
	}
	s.log.Info("secrets encryption key rotated", "key", name, "secrets", n)
	return name, n, nil
}
