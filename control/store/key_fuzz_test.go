package store

import (
	"regexp"
	"strings"
	"testing"
)

// FuzzObjectKey: any namespace and name the store accepts become a valid
// KV key (tokens of [-/_=a-zA-Z0-9], three of them) that splits back to
// exactly that namespace and name, and the key subject stays far below
// NATS' 4 KB control line.
//
//	go test ./control/store -run '^$' -fuzz '^FuzzObjectKey$' -fuzztime 10s
func FuzzObjectKey(f *testing.F) {
	for _, s := range [][2]string{
		{"default", "web"}, {"shop", "web.v1"}, {"a_b", "x=y"}, {"", "_"}, {"ns", "ünï/a b"},
		{"ns", strings.Repeat("a", 253)}, {strings.Repeat("n", 63), "x"}, {"ns", strings.Repeat(".", 300)}, {"ns", ""},
	} {
		f.Add(s[0], s[1])
	}
	valid := regexp.MustCompile(`^[-/_=a-zA-Z0-9]+$`)
	f.Fuzz(func(t *testing.T, ns, name string) {
		for _, kind := range []struct {
			k  string
			ns string
		}{{"pod", ns}, {"node", ""}} {
			k := podKind
			if kind.k == "node" {
				k = nodeKind
			}
			key, err := keyFor(k, kind.ns, name)
			if err != nil {
				return
			}
			toks := strings.Split(key, ".")
			if len(toks) != 3 {
				t.Fatalf("key %q of %q/%q has %d tokens", key, kind.ns, name, len(toks))
			}
			for _, tok := range toks {
				if !valid.MatchString(tok) {
					t.Fatalf("key %q of %q/%q: token %q is not a valid key token", key, kind.ns, name, tok)
				}
			}
			if n := len("$KV.kyb-objects.") + len(key); n > 1024 {
				t.Fatalf("key subject of %d bytes for a name of %d and namespace of %d", n, len(name), len(kind.ns))
			}
			gotKind, gotNS, gotName, ok := splitKey(key)
			if !ok || gotKind != kindToken(k) || gotName != name || (k.Namespaced && gotNS != kind.ns) {
				t.Fatalf("splitKey(%q) = %q %q %q %v, want %q %q", key, gotKind, gotNS, gotName, ok, kind.ns, name)
			}
		}
	})
}
