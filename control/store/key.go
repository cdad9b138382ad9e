package store

import (
	"fmt"
	"strings"

	"github.com/kybernetes/kybernetes/api"
)

// Longest name and namespace a key may hold, Kubernetes' limits (a DNS-1123
// subdomain, a DNS-1123 label). They are checked before a name becomes part
// of a subject: NATS closes the connection of a client whose control line
// (the subject among it) exceeds 4 KB, and the store's connection is the
// control plane's. Escaped, a name takes at most 3 x 253 bytes.
const (
	MaxNameLen      = 253
	MaxNamespaceLen = 63
)

// checkToken returns a BadRequest naming field when v is longer than max.
func checkToken(field, v string, max int) error {
	if len(v) > max {
		return &api.Status{Code: 400, Reason: api.ReasonBadRequest,
			Message: fmt.Sprintf("%s: must be no more than %d bytes (got %d)", field, max, len(v)),
			Causes:  []api.StatusCause{{Field: field, Message: fmt.Sprintf("must be no more than %d bytes", max)}}}
	}
	return nil
}

// Key layout (known only to this package):
//
//	<kind-lower>.<namespace or _>.<escaped name>
//
// A KV key token may hold only [-/_=a-zA-Z0-9], and '.' separates tokens, so
// a name Kubernetes accepts (a DNS subdomain may hold dots) is escaped: every
// byte outside [-a-zA-Z0-9] becomes '=' and two upper-case hex digits
// ("web.v1" -> "web=2Ev1"). '_' is escaped too, so the cluster-scope token
// "_" can never collide with a namespace. Escaping is reversible and the
// common case (no dot) costs no allocation.

const hexDigits = "0123456789ABCDEF"

func plainByte(c byte) bool {
	return c == '-' || ('a' <= c && c <= 'z') || ('0' <= c && c <= '9') || ('A' <= c && c <= 'Z')
}

// escapeToken makes s a valid KV key token.
func escapeToken(s string) string {
	n := 0
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			n++
		}
	}
	if n == 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 2*n)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if plainByte(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('=')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// unescapeToken reverses escapeToken; ok is false for a malformed token.
func unescapeToken(s string) (string, bool) {
	if strings.IndexByte(s, '=') < 0 {
		return s, true
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '=' {
			b.WriteByte(c)
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[i+1])
		lo, ok2 := unhex(s[i+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), true
}

// kindToken is the first key token of a kind.
func kindToken(k *api.Kind) string { return strings.ToLower(k.Name) }

// nsToken is the namespace token: "_" for cluster-scoped kinds.
func nsToken(k *api.Kind, namespace string) string {
	if !k.Namespaced {
		return api.ClusterScope
	}
	return escapeToken(namespace)
}

// objectKey is the KV key of one object.
func objectKey(k *api.Kind, namespace, name string) string {
	return kindToken(k) + "." + nsToken(k, namespace) + "." + escapeToken(name)
}

// splitKey splits a key (without the subject prefix) into its three tokens
// and unescapes namespace and name; ok is false when it is not an object key.
func splitKey(key string) (kind, namespace, name string, ok bool) {
	i := strings.IndexByte(key, '.')
	if i < 0 {
		return "", "", "", false
	}
	j := strings.IndexByte(key[i+1:], '.')
	if j < 0 {
		return "", "", "", false
	}
	j += i + 1
	kind, nsTok, nameTok := key[:i], key[i+1:j], key[j+1:]
	if strings.IndexByte(nameTok, '.') >= 0 || nameTok == "" {
		return "", "", "", false
	}
	if nsTok != api.ClusterScope {
		if namespace, ok = unescapeToken(nsTok); !ok {
			return "", "", "", false
		}
	}
	if name, ok = unescapeToken(nameTok); !ok {
		return "", "", "", false
	}
	return kind, namespace, name, true
}
