package api

//go:generate go run ./internal/explaingen .

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"time"
)

// Explain describes a kind or one of its fields, as kubectl explain does:
// path is KIND or KIND.field.field... (KIND any of a kind's names, fields
// by their JSON names, e.g. "pod.spec.containers.image"). The text is the
// field's type, its doc comment (from the Go type, so it is what the code
// means) and, for an object, its fields with the first line of each one's
// doc. recursive lists every field beneath, indented, with its type only.
func Explain(path string, recursive bool) (string, error) {
	segs := strings.Split(path, ".")
	k, err := LookupKind(segs[0])
	if err != nil {
		return "", err
	}
	t := reflect.TypeOf(k.New()).Elem()
	docKey := t.Name()
	var b strings.Builder
	fmt.Fprintf(&b, "KIND:     %s\nVERSION:  %s\n\n", k.Name, k.APIVersions[0])
	var name string
	for i, seg := range segs[1:] {
		st := elem(t)
		if st.Kind() != reflect.Struct || isLeaf(st) {
			return "", fmt.Errorf("field %q: %s is %s, which has no fields", seg, strings.Join(segs[:i+1], "."), typeName(t))
		}
		f, ok := fieldByJSON(st, seg)
		if !ok {
			return "", fmt.Errorf("field %q does not exist in %s", seg, strings.Join(segs[:i+1], "."))
		}
		docKey = f.owner + "." + f.goName
		t, name = f.typ, seg
	}
	if name != "" {
		fmt.Fprintf(&b, "FIELD: %s <%s>\n\n", name, typeName(t))
	}
	b.WriteString("DESCRIPTION:\n")
	doc := fieldDocs[docKey]
	if doc == "" && name == "" {
		doc = fieldDocs[t.Name()]
	}
	if doc == "" {
		if st := elem(t); st.Name() != "" {
			doc = fieldDocs[st.Name()]
		}
	}
	if doc == "" {
		doc = "<empty>"
	}
	for _, line := range strings.Split(doc, "\n") {
		b.WriteString(indent(1) + line + "\n")
	}
	if st := elem(t); st.Kind() == reflect.Struct && !isLeaf(st) {
		b.WriteString("\nFIELDS:\n")
		writeFields(&b, st, 1, recursive, map[reflect.Type]bool{})
	}
	return b.String(), nil
}

// fields lists a struct's fields by JSON name, sorted, inlined fields
// included.
func fields(t reflect.Type) []jsonField {
	out := jsonFieldList(t)
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func fieldByJSON(t reflect.Type, name string) (jsonField, bool) {
	for _, f := range jsonFieldList(t) {
		if strings.EqualFold(f.name, name) {
			return f, true
		}
	}
	return jsonField{}, false
}

func writeFields(b *strings.Builder, t reflect.Type, depth int, recursive bool, seen map[reflect.Type]bool) {
	seen[t] = true
	defer delete(seen, t)
	for _, f := range fields(t) {
		fmt.Fprintf(b, "%s%s\t<%s>\n", indent(depth), f.name, typeName(f.typ))
		st := elem(f.typ)
		if recursive {
			if st.Kind() == reflect.Struct && !isLeaf(st) && !seen[st] {
				writeFields(b, st, depth+1, true, seen)
			}
			continue
		}
		doc := fieldDocs[f.owner+"."+f.goName]
		if doc == "" {
			doc = fieldDocs[st.Name()]
		}
		if doc == "" {
			doc = "<no description>"
		}
		first, _, _ := strings.Cut(doc, "\n")
		fmt.Fprintf(b, "%s%s\n\n", indent(depth+1), first)
	}
}

func indent(n int) string { return strings.Repeat("  ", n) }

// elem is the type beneath pointers, slices and maps.
func elem(t reflect.Type) reflect.Type {
	for {
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Map, reflect.Array:
			t = t.Elem()
		default:
			return t
		}
	}
}

var (
	timeType        = reflect.TypeFor[time.Time]()
	intOrStringType = reflect.TypeFor[IntOrString]()
)

// isLeaf: a struct written as one JSON scalar.
func isLeaf(t reflect.Type) bool {
	return t == quantityType || t == timeType || t == intOrStringType
}

// typeName names a field's type as kubectl explain does.
func typeName(t reflect.Type) string {
	switch t {
	case quantityType:
		return "Quantity"
	case timeType:
		return "string (date-time)"
	case intOrStringType:
		return "IntOrString"
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() == reflect.Uint8 {
			return "string (base64)"
		}
		return "[]" + typeName(t.Elem())
	case reflect.Map:
		return "map[" + typeName(t.Key()) + "]" + typeName(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Struct:
		return "Object"
	case reflect.Interface:
		return "Object"
	}
	return t.Kind().String()
}
