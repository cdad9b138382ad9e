package apiserver

import (
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

// FuzzConfigRequest: whatever parseConfigRequest accepts names a ConfigMap
// or Secret fit for a key; everything else is a 4xx Status.
//
//	go test ./control/apiserver -run '^$' -fuzz '^FuzzConfigRequest$' -fuzztime 10000x
func FuzzConfigRequest(f *testing.F) {
	for _, s := range []string{
		`{"kind":"Secret","namespace":"default","name":"db"}`,
		`{"kind":"ConfigMap","namespace":"a-b","name":"x.y.z"}`,
		`{"kind":"Pod","namespace":"default","name":"p"}`,
		`{"kind":"Secret","namespace":"","name":"db"}`,
		`{"kind":"Secret","namespace":"default","name":"` + strings.Repeat("a", 4096) + `"}`,
		`{"kind":"Secret","namespace":"default","name":"a>b"}`,
		`{"kind":"Secret","namespace":"de.fault","name":"db"}`,
		`[`, ``, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, kind, err := parseConfigRequest(data)
		if err != nil {
			isStatus(t, err)
			return
		}
		if kind != api.ConfigMapKind() && kind != api.SecretKind() {
			t.Fatalf("accepted kind %q", r.Kind)
		}
		fitForKey(t, kind, r.Namespace, r.Name)
	})
}
