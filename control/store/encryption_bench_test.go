package store

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

// BenchmarkSecretEncode measures what encryption at rest adds to a write
// and a read of one Secret of 8 keys (4 KiB): encode (marshal, seal) then
// decode (open, unmarshal), against the same Secret stored in plaintext.
//
//	go test -run '^$' -bench SecretEncode ./control/store/
func BenchmarkSecretEncode(b *testing.B) {
	data := map[string][]byte{}
	for i := range 8 {
		data["key"+strconv.Itoa(i)] = []byte(strings.Repeat("v", 512))
	}
	sec := &api.Secret{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: api.ObjectMeta{Namespace: "default", Name: "db", UID: "u"}, Type: api.SecretTypeOpaque, Data: data}
	keys, err := LoadOrCreateKeyring(filepath.Join(b.TempDir(), EncryptionConfigFile))
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		s    *Store
	}{{"plaintext", &Store{}}, {"aes-gcm", &Store{keys: keys}}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				raw, err := tc.s.marshal(sec)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tc.s.decode(api.SecretKind(), raw, 1); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
