package store

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

func openKeyedStore(t *testing.T) (*Store, *Keyring, jetstream.JetStream) {
	t.Helper()
	keys, err := LoadOrCreateKeyring(filepath.Join(t.TempDir(), "pki", EncryptionConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(testutil.Connect(t, testutil.StartNATS(t)))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Open(context.Background(), js, Config{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	return s, keys, js
}

func rawValue(t *testing.T, s *Store, ns, name string) []byte {
	t.Helper()
	e, err := s.kv.Get(context.Background(), objectKey(api.SecretKind(), ns, name))
	if err != nil {
		t.Fatal(err)
	}
	return e.Value()
}

// A Secret's values are stored encrypted (with the key's name in the
// envelope), read back in plaintext by Get, List and Watch, and bound to
// their object: a ciphertext copied into another Secret does not decrypt.
// Other kinds are stored as before.
func TestSecretEncryption(t *testing.T) {
	s, keys, _ := openKeyedStore(t)
	ctx := context.Background()
	kind := api.SecretKind()
	sec := &api.Secret{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "a", Labels: map[string]string{"app": "x"}},
		Type: api.SecretTypeOpaque, Data: map[string][]byte{"password": []byte("hunter2-plain")}}
	if err := s.Create(ctx, sec); err != nil {
		t.Fatal(err)
	}
	raw := rawValue(t, s, "default", "a")
	if bytes.Contains(raw, []byte("hunter2")) || bytes.Contains(raw, []byte("aHVudGVyMi1wbGFpbg")) || !bytes.Contains(raw, []byte(encPrefix+"key1:")) {
		t.Fatalf("stored value %s: want it encrypted with key1", raw)
	}
	got, err := s.Get(ctx, kind, "default", "a")
	if err != nil || string(got.(*api.Secret).Data["password"]) != "hunter2-plain" {
		t.Fatalf("Get = %+v, %v", got, err)
	}
	lbl, err := labels.Parse("app=x")
	if err != nil {
		t.Fatal(err)
	}
	objs, _, err := s.List(ctx, kind, ListOptions{Labels: lbl})
	if err != nil || len(objs) != 1 || string(objs[0].(*api.Secret).Data["password"]) != "hunter2-plain" {
		t.Fatalf("List = %v, %v", objs, err)
	}

	// Swap: b's record with a's ciphertext does not decrypt.
	b := &api.Secret{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "b"}, Data: map[string][]byte{"k": []byte("v")}}
	if err := s.Create(ctx, b); err != nil {
		t.Fatal(err)
	}
	forged := bytes.Replace(raw, []byte(`"name":"a"`), []byte(`"name":"b"`), 1)
	if _, err := s.kv.Put(ctx, objectKey(kind, "default", "b"), forged); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, kind, "default", "b"); err == nil || !strings.Contains(err.Error(), "decrypt") {
		t.Fatalf("moved ciphertext: %v, want a decryption error", err)
	}

	// Rotation: everything is rewritten with key2, key1 retired.
	if err := s.kv.Purge(ctx, objectKey(kind, "default", "b")); err != nil {
		t.Fatal(err)
	}
	name, n, err := s.RotateKey(ctx)
	if err != nil || name != "key2" || n != 1 {
		t.Fatalf("RotateKey = %s, %d, %v", name, n, err)
	}
	if got := keys.KeyNames(); len(got) != 1 || got[0] != "key2" {
		t.Fatalf("keys after rotation %q", got)
	}
	if raw := rawValue(t, s, "default", "a"); !bytes.Contains(raw, []byte(encPrefix+"key2:")) {
		t.Fatalf("after rotation: %s", raw)
	}
	got, err = s.Get(ctx, kind, "default", "a")
	if err != nil || string(got.(*api.Secret).Data["password"]) != "hunter2-plain" {
		t.Fatalf("Get after rotation = %+v, %v", got, err)
	}
	// The key file reloads to the same key.
	again, err := LoadOrCreateKeyring(keys.path)
	if err != nil || strings.Join(again.KeyNames(), ",") != "key2" {
		t.Fatalf("reloaded keys %v, %v", again.KeyNames(), err)
	}

	// A ConfigMap is plain JSON.
	cm := &api.ConfigMap{ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "c"}, Data: map[string]string{"k": "visible"}}
	if err := s.Create(ctx, cm); err != nil {
		t.Fatal(err)
	}
	e, err := s.kv.Get(ctx, objectKey(api.ConfigMapKind(), "default", "c"))
	if err != nil || !bytes.Contains(e.Value(), []byte("visible")) {
		t.Fatalf("configmap stored as %s, %v", e.Value(), err)
	}
}

// An interrupted rotation (two keys in the file) is finished on the next
// start; a Secret whose key is no longer in the file fails with a message
// naming the key.
func TestFinishKeyRotation(t *testing.T) {
	s, keys, _ := openKeyedStore(t)
	ctx := context.Background()
	if err := s.Create(ctx, &api.Secret{ObjectMeta: api.ObjectMeta{Namespace: "ns", Name: "a"}, Data: map[string][]byte{"k": []byte("v")}}); err != nil {
		t.Fatal(err)
	}
	if _, err := keys.AddKey(); err != nil {
		t.Fatal(err)
	}
	n, err := s.FinishKeyRotation(ctx)
	if err != nil || n != 1 || strings.Join(keys.KeyNames(), ",") != "key2" {
		t.Fatalf("FinishKeyRotation = %d, %v; keys %v", n, err, keys.KeyNames())
	}
	if n, err := s.FinishKeyRotation(ctx); n != 0 || err != nil {
		t.Fatalf("with one key: %d, %v; want nothing done", n, err)
	}
	// A store with a foreign key file cannot read it, and says which key.
	other, err := LoadOrCreateKeyring(filepath.Join(t.TempDir(), EncryptionConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	s.keys = other
	if _, err := s.Get(ctx, api.SecretKind(), "ns", "a"); err == nil || !strings.Contains(err.Error(), `key "key2" is not in the key file`) {
		t.Fatalf("foreign keys: %v", err)
	}
}
