package cli

import (
	"fmt"
	"io"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/kybernetes/kybernetes/api"
)

// describeAny describes an object of a kind without a describer of its
// own: its metadata as kubectl prints it, then its other fields as YAML.
func describeAny(w io.Writer, obj api.Object) error {
	m := obj.GetObjectMeta()
	kv(w, "Name", m.Name)
	if m.Namespace != "" {
		kv(w, "Namespace", m.Namespace)
	}
	kv(w, "Labels", mapText(m.Labels))
	kv(w, "Annotations", mapText(m.Annotations))
	if !m.CreationTimestamp.IsZero() {
		kv(w, "Created", timeText(m.CreationTimestamp))
	}
	g, err := toGeneric(obj)
	if err != nil {
		return err
	}
	fields, _ := g.(map[string]any)
	for _, k := range sortedKeys(fields) {
		switch k {
		case "apiVersion", "kind", "metadata":
			continue
		}
		b, err := yaml.Marshal(fields[k])
		if err != nil {
			return fmt.Errorf("describe: encode %s: %w", k, err)
		}
		fmt.Fprintf(w, "%s:\n", strings.ToUpper(k[:1])+k[1:])
		for _, l := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
			fmt.Fprintf(w, "  %s\n", l)
		}
	}
	return nil
}
