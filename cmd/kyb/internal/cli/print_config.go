package cli

import (
	"io"
	"maps"
	"slices"
	"strconv"

	"github.com/kybernetes/kybernetes/api"
)

// The columns of `kyb get configmaps` and `kyb get secrets`, as kubectl's:
// the number of keys, never a value.
var (
	configMapColumns = []string{"NAME", "DATA", "AGE"}
	secretColumns    = []string{"NAME", "TYPE", "DATA", "AGE"}
)

// configRow is the row of a ConfigMap or Secret, nil for other objects.
func (p *printer) configRow(o api.Object) []string {
	switch v := o.(type) {
	case *api.ConfigMap:
		return []string{v.Name, strconv.Itoa(len(v.Data) + len(v.BinaryData)), p.age(v.CreationTimestamp)}
	case *api.Secret:
		return []string{v.Name, string(v.Type), strconv.Itoa(len(v.Data)), p.age(v.CreationTimestamp)}
	}
	return nil
}

// describeSecret shows a Secret as kubectl does: its type and each key
// with the size of its value, never the value.
func describeSecret(w io.Writer, s *api.Secret) {
	kv(w, "Name", s.Name)
	kv(w, "Namespace", s.Namespace)
	kv(w, "Labels", mapText(s.Labels))
	kv(w, "Annotations", mapText(s.Annotations))
	kv(w, "Type", s.Type)
	if s.Immutable != nil && *s.Immutable {
		kv(w, "Immutable", true)
	}
	kv(w, "\nData", "")
	kv(w, "====", "")
	for _, k := range slices.Sorted(maps.Keys(s.Data)) {
		kv(w, k, strconv.Itoa(len(s.Data[k]))+" bytes")
	}
}
