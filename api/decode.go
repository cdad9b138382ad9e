package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// Decoded is one object read from a manifest.
type Decoded struct {
	// Object is the typed object, exactly as the document gave it (not defaulted).
	Object Object
	// Kind is the object's kind.
	Kind *Kind
	// Warnings name every field of the document that the kind does not have
	// (`unknown field "spec.containers[0].livenessProbe"`) and every field
	// given twice. Such fields are ignored.
	Warnings []string
}

// Decode reads every object of a manifest: YAML or JSON, one or more
// documents separated by `---` lines (or, for JSON, a stream of objects), where
// a document of kind `List` (or `<Kind>List`) contributes each of its items.
// Empty documents are skipped. The objects are returned in document order.
//
// Unknown fields are not errors; each one gives a warning on its object.
// Malformed YAML or JSON, a missing or unknown kind, an apiVersion the kind
// does not accept, and a value of the wrong type (a malformed quantity, a
// string where a number belongs) are errors: a *Status with code 400
// (BadRequest) naming the document, and the line or the field path when
// known. Decode is safe for concurrent use.
func Decode(data []byte) ([]Decoded, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	var out []Decoded
	for _, d := range docs {
		objs, err := decodeDocument(d.label, d.json, 0)
		if err != nil {
			return nil, err
		}
		out = append(out, objs...)
	}
	return out, nil
}

// SplitManifest returns the JSON of each document of a manifest (YAML or
// JSON, `---`-separated or a JSON stream), in order, without the empty
// ones; a List stays one document. Joined with newlines they make one JSON
// stream that Decode reads as the same objects: how a client sends the
// documents of several files in one apply. Errors are those of Decode.
func SplitManifest(data []byte) ([][]byte, error) {
	docs, err := splitDocuments(data)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(docs))
	for _, d := range docs {
		if t := bytes.TrimSpace(d.json); len(t) == 0 || string(t) == "null" || string(t) == "{}" {
			continue
		}
		out = append(out, d.json)
	}
	return out, nil
}

// document is one document of a manifest, converted to JSON.
type document struct {
	label string // "document 2", for errors
	json  []byte
}

// splitDocuments splits a manifest into JSON documents.
func splitDocuments(data []byte) ([]document, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) > 0 && trimmed[0] == '{' {
		docs, jerr := splitJSON(data)
		if jerr == nil {
			return docs, nil
		}
		// Flow-style YAML ({kind: Pod, ...}) also starts with a brace.
		if docs, yerr := splitYAML(data); yerr == nil {
			return docs, nil
		}
		return nil, jerr
	}
	return splitYAML(data)
}

// splitJSON reads a stream of JSON values.
func splitJSON(data []byte) ([]document, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	var docs []document
	for i := 1; ; i++ {
		var raw json.RawMessage
		start := dec.InputOffset()
		err := dec.Decode(&raw)
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			var se *json.SyntaxError
			if errors.As(err, &se) {
				line := lineOf(data, se.Offset)
				return nil, NewBadRequest("decode document %d: line %d: malformed JSON: %v", i, line, err)
			}
			return nil, NewBadRequest("decode document %d: line %d: malformed JSON: %v", i, lineOf(data, start), err)
		}
		docs = append(docs, document{label: fmt.Sprintf("document %d", i), json: raw})
	}
}

// lineOf returns the 1-based line of a byte offset.
func lineOf(data []byte, off int64) int {
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	return bytes.Count(data[:off], []byte("\n")) + 1
}

var (
	yamlLineRE = regexp.MustCompile(`^(?:error converting YAML to JSON: )?yaml: line (\d+): (.*)$`)
	// yamlDupRE matches yaml.v2's strict error for a key given twice.
	yamlDupRE = regexp.MustCompile(`(?s)^(?:error converting YAML to JSON: )?yaml: unmarshal errors:\s*line (\d+): key "(.*?)" already set in map`)
)

// blankYAML reports whether text holds no document: only blank lines and
// comments.
func blankYAML(text string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

// splitYAML splits YAML at `---` lines and converts each document to JSON.
func splitYAML(data []byte) ([]document, error) {
	var docs []document
	lines := strings.SplitAfter(string(data), "\n")
	var cur strings.Builder
	startLine, n := 1, 0
	flush := func(next int) error {
		text := cur.String()
		cur.Reset()
		first := startLine
		startLine = next
		if blankYAML(text) {
			return nil // not a document: `---` first, or two in a row
		}
		n++
		// Strict: a key given twice in one mapping is an error, as kubectl
		// makes it (plain YAMLToJSON keeps one of them silently).
		js, err := yaml.YAMLToJSONStrict([]byte(text))
		if err != nil {
			msg := err.Error()
			if m := yamlDupRE.FindStringSubmatch(msg); m != nil {
				l, _ := strconv.Atoi(m[1])
				st := NewBadRequest("decode document %d: line %d: duplicate key %q (a key may appear once in a mapping)", n, first+l-1, m[2])
				return withCause(st, m[2], "duplicate key")
			}
			if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
				l, _ := strconv.Atoi(m[1])
				return NewBadRequest("decode document %d: line %d: malformed YAML: %s", n, first+l-1, m[2])
			}
			return NewBadRequest("decode document %d (from line %d): malformed YAML: %s", n, first, strings.TrimPrefix(msg, "error converting YAML to JSON: "))
		}
		docs = append(docs, document{label: fmt.Sprintf("document %d", n), json: js})
		return nil
	}
	for i, l := range lines {
		if isDocSeparator(l) {
			if err := flush(i + 2); err != nil {
				return nil, err
			}
			continue
		}
		cur.WriteString(l)
	}
	if err := flush(len(lines) + 1); err != nil {
		return nil, err
	}
	return docs, nil
}

// isDocSeparator reports whether a line is a YAML document separator: `---`
// followed by nothing but blanks or a comment.
func isDocSeparator(line string) bool {
	if !strings.HasPrefix(line, "---") {
		return false
	}
	rest := strings.TrimSpace(line[3:])
	return rest == "" || strings.HasPrefix(rest, "#")
}

// maxListDepth is how deep Lists may nest in a manifest. Each level is
// decoded again whole, so the cost grows with the square of the depth: 2,000
// levels (52 KB) took 4 s before this cap.
const maxListDepth = 8

// decodeDocument decodes one JSON document into zero (empty document), one,
// or (for a List) many objects; depth counts the Lists it is within.
func decodeDocument(label string, js []byte, depth int) ([]Decoded, error) {
	if depth == 0 {
		if path, ok := duplicateKey(js); ok {
			st := NewBadRequest("decode %s: duplicate key %q (a key may appear once in an object)", label, path)
			return nil, withCause(st, path, "duplicate key")
		}
	}
	var generic any
	if err := sigsjson.UnmarshalCaseSensitivePreserveInts(js, &generic); err != nil {
		return nil, NewBadRequest("decode %s: %v", label, err)
	}
	if generic == nil {
		return nil, nil // empty document
	}
	m, ok := generic.(map[string]any)
	if !ok {
		return nil, NewBadRequest("decode %s: expected an object with apiVersion and kind, got %s", label, jsonTypeName(generic))
	}
	if len(m) == 0 {
		return nil, nil
	}
	kindName, _ := m["kind"].(string)
	apiVersion, _ := m["apiVersion"].(string)
	if kindName == "" {
		return nil, withCause(NewBadRequest("decode %s: kind is required", label), "kind", "required")
	}
	if items, ok := m["items"]; (ok && strings.HasSuffix(kindName, "List")) || kindName == "List" {
		if depth >= maxListDepth {
			return nil, NewBadRequest("decode %s: Lists nest more than %d deep", label, maxListDepth)
		}
		list, ok := items.([]any)
		if !ok && items != nil {
			return nil, NewBadRequest("decode %s: %s: items must be a list, got %s", label, kindName, jsonTypeName(items))
		}
		var out []Decoded
		for i, it := range list {
			b, err := json.Marshal(it)
			if err != nil {
				return nil, NewBadRequest("decode %s: items[%d]: %v", label, i, err)
			}
			objs, err := decodeDocument(fmt.Sprintf("%s, items[%d]", label, i), b, depth+1)
			if err != nil {
				return nil, err
			}
			out = append(out, objs...)
		}
		return out, nil
	}
	kind := kindByName(kindName)
	if kind == nil {
		hint := ""
		if k, err := LookupKind(kindName); err == nil {
			hint = fmt.Sprintf(" (did you mean %q?)", k.Name)
		}
		st := NewBadRequest("decode %s: unknown kind %q%s", label, kindName, hint)
		return nil, withCause(st, "kind", fmt.Sprintf("unknown kind %q%s", kindName, hint))
	}
	if apiVersion == "" {
		st := NewBadRequest("decode %s: apiVersion is required (kind %s accepts %s)", label, kind.Name, strings.Join(kind.APIVersions, ", "))
		return nil, withCause(st, "apiVersion", "required")
	}
	if !kind.AcceptsVersion(apiVersion) {
		msg := fmt.Sprintf("apiVersion %q is not accepted for kind %s (accepted: %s)", apiVersion, kind.Name, strings.Join(kind.APIVersions, ", "))
		return nil, withCause(NewBadRequest("decode %s: %s", label, msg), "apiVersion", msg)
	}
	obj := kind.New()
	strict, err := sigsjson.UnmarshalStrict(js, obj, sigsjson.DisallowUnknownFields, sigsjson.DisallowDuplicateFields)
	if err != nil {
		name := objectName(m)
		if path, ferr := locateFieldError(generic, reflect.TypeOf(obj), nil); path != nil {
			st := NewBadRequest("decode %s: %s %q: %s: %v", label, kind.Name, name, path.String(), ferr)
			st.Kind, st.Name = kind.Name, name
			st.Causes = []StatusCause{{Field: path.String(), Message: ferr.Error()}}
			return nil, st
		}
		st := NewBadRequest("decode %s: %s %q: %v", label, kind.Name, name, err)
		st.Kind, st.Name = kind.Name, name
		return nil, st
	}
	d := Decoded{Object: obj, Kind: kind}
	var refused []StatusCause
	for _, e := range strict {
		if path, why, ok := refusedField(kind, e.Error()); ok {
			refused = append(refused, StatusCause{Field: path, Message: why})
			continue
		}
		d.Warnings = append(d.Warnings, e.Error())
	}
	if len(refused) > 0 {
		name := objectName(m)
		st := &Status{Code: 422, Reason: ReasonInvalid, Kind: kind.Name, Name: name, Causes: refused,
			Message: fmt.Sprintf("decode %s: %s %q: %d field(s) kybernetes does not implement yet and would otherwise ignore", label, kind.Name, name, len(refused))}
		return nil, st
	}
	return []Decoded{d}, nil
}

// Fields of a pod spec (also in a workload's template) and of a container
// that change what a pod does. kybernetes does not implement them yet, so
// a manifest naming one is refused (422) rather than run without it; other
// unknown fields, which change nothing here (automountServiceAccountToken:
// no service account tokens exist; priorityClassName, priority,
// preemptionPolicy: no preemption; os: a hint), stay warnings.
var (
	refusedPodFields = map[string]bool{
		"affinity": true, "topologySpreadConstraints": true, "activeDeadlineSeconds": true,
		"hostAliases": true, "ephemeralContainers": true,
		"readinessGates": true, "schedulingGates": true, "resourceClaims": true, "overhead": true,
		"setHostnameAsFQDN": true,
	}
	// Service fields kybernetes does not implement and that would change
	// who may reach a Service or who serves it (the hints
	// trafficDistribution and externalName on other types are not here).
	refusedServiceFields = map[string]bool{
		"loadBalancerSourceRanges": true, "loadBalancerIP": true, "loadBalancerClass": true,
		"healthCheckNodePort": true,
	}
	refusedContainerFields = map[string]bool{
		"volumeDevices": true,
		"resizePolicy":  true, "restartPolicy": true,
	}
	indexSuffix = regexp.MustCompile(`\[[0-9]+\]$`)
)

// refusedField reports whether the unknown-field error msg (from the
// strict decoder: unknown field "a.b[0].c") names a field refusedPodFields
// or refusedContainerFields hold, and returns
// its path and why it is refused.
func refusedField(kind *Kind, msg string) (string, string, bool) {
	path, ok := strings.CutPrefix(msg, `unknown field "`)
	if !ok {
		return "", "", false
	}
	path = strings.TrimSuffix(path, `"`)
	segs := strings.Split(path, ".")
	n := len(segs)
	if n < 2 {
		return "", "", false
	}
	field, parent := segs[n-1], indexSuffix.ReplaceAllString(segs[n-2], "")
	const why = "not implemented by kybernetes yet: it would change what the pod does, so it is refused rather than ignored"
	switch {
	case (parent == "containers" || parent == "initContainers") && refusedContainerFields[field]:
		return path, why, true
	case parent == "volumeMounts" && (field == "subPath" || field == "subPathExpr"):
		// subPath would otherwise mount the whole volume where the
		// manifest expects one file of it (a ConfigMap's nginx.conf).
		return path, why, true
	case parent == "spec" && refusedPodFields[field] && (n == 2 && kind.Name == "Pod" || n >= 3 && segs[n-3] == "template"):
		return path, why, true
	case parent == "spec" && n == 2 && kind.Name == "Service" && refusedServiceFields[field]:
		return path, "not implemented by kybernetes yet: it would change who may reach the Service or who serves it, so it is refused rather than ignored", true
	}
	return "", "", false
}

// withCause adds one field cause to a Status.
func withCause(st *Status, fieldPath, msg string) *Status {
	st.Causes = append(st.Causes, StatusCause{Field: fieldPath, Message: msg})
	return st
}

// kindByName finds a kind by its exact Kind name, as a manifest must give it.
func kindByName(name string) *Kind {
	for _, k := range Kinds() {
		if k.Name == name {
			return k
		}
	}
	return nil
}

func objectName(m map[string]any) string {
	md, _ := m["metadata"].(map[string]any)
	name, _ := md["name"].(string)
	return name
}

func jsonTypeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case map[string]any:
		return "an object"
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	default:
		return "a number"
	}
}

var jsonUnmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// locateFieldError walks a generic JSON value alongside the Go type it is
// decoded into, and returns the path of the first value that does not decode,
// with its error. It returns a nil path when every leaf decodes. The json
// package's own errors lack list indices; this names
// `spec.containers[1].resources.limits.cpu`.
func locateFieldError(v any, t reflect.Type, p *field.Path) (*field.Path, error) {
	if v == nil {
		return nil, nil
	}
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	leaf := func() (*field.Path, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return p, err
		}
		if err := json.Unmarshal(b, reflect.New(t).Interface()); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				if _, isBool := v.(bool); isBool && t.Kind() == reflect.String {
					return p, fmt.Errorf("expected a string, got a boolean (YAML reads unquoted y, yes, on, n, no, off as booleans: quote the value)")
				}
				return p, fmt.Errorf("expected %s, got %s", typeWord(t), jsonTypeName(v))
			}
			return p, err
		}
		return nil, nil
	}
	if reflect.PointerTo(t).Implements(jsonUnmarshalerType) {
		return leaf()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return p, fmt.Errorf("expected an object, got %s", jsonTypeName(v))
		}
		// In the struct's field order (metadata before spec), so that the
		// same field is reported first every time; unknown fields are
		// warnings, found elsewhere.
		for _, f := range jsonFieldList(t) {
			sub, ok := m[f.name]
			if !ok {
				continue
			}
			if fp, err := locateFieldError(sub, f.typ, childPath(p, f.name)); fp != nil {
				return fp, err
			}
		}
		return nil, nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return leaf()
		}
		l, ok := v.([]any)
		if !ok {
			return p, fmt.Errorf("expected a list, got %s", jsonTypeName(v))
		}
		for i, sub := range l {
			if fp, err := locateFieldError(sub, t.Elem(), indexPath(p, i)); fp != nil {
				return fp, err
			}
		}
		return nil, nil
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return p, fmt.Errorf("expected an object, got %s", jsonTypeName(v))
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if fp, err := locateFieldError(m[k], t.Elem(), childPath(p, k)); fp != nil {
				return fp, err
			}
		}
		return nil, nil
	default:
		return leaf()
	}
}

func childPath(p *field.Path, name string) *field.Path {
	if p == nil {
		return field.NewPath(name)
	}
	return p.Child(name)
}

func indexPath(p *field.Path, i int) *field.Path {
	if p == nil {
		return field.NewPath("").Index(i)
	}
	return p.Index(i)
}

func typeWord(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	}
	return t.String()
}

// jsonField is a struct field's JSON name and type, and its Go name and
// the Go type declaring it (whose doc comments Explain shows).
type jsonField struct {
	name   string
	typ    reflect.Type
	goName string
	owner  string
}

// jsonFieldList lists the JSON names of a struct's fields and their types
// in declaration order, embedded structs without a name inlined (an outer
// field of the same name wins, as in encoding/json).
func jsonFieldList(t reflect.Type) []jsonField {
	var out []jsonField
	seen := map[string]bool{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				out = append(out, jsonField{name: "", typ: ft}) // expanded below
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		seen[name] = true
		out = append(out, jsonField{name: name, typ: f.Type, goName: f.Name, owner: t.Name()})
	}
	var flat []jsonField
	for _, f := range out {
		if f.name != "" {
			flat = append(flat, f)
			continue
		}
		for _, inner := range jsonFieldList(f.typ) {
			if !seen[inner.name] {
				seen[inner.name] = true
				flat = append(flat, inner)
			}
		}
	}
	return flat
}

// duplicateKey returns the path of the first key given twice in one object
// of a JSON document (`metadata.labels.app`, `spec.containers[0].name`).
func duplicateKey(js []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	path, ok, _ := dupWalk(dec, "")
	return path, ok
}

// dupWalk reads one JSON value from dec and reports the first duplicate
// key within it.
func dupWalk(dec *json.Decoder, path string) (string, bool, error) {
	tok, err := dec.Token()
	if err != nil {
		return "", false, err
	}
	switch tok {
	case json.Delim('{'):
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return "", false, err
			}
			k, _ := kt.(string)
			kp := k
			if path != "" {
				kp = path + "." + k
			}
			if seen[k] {
				return kp, true, nil
			}
			seen[k] = true
			if p, ok, err := dupWalk(dec, kp); ok || err != nil {
				return p, ok, err
			}
		}
		_, err = dec.Token() // }
		return "", false, err
	case json.Delim('['):
		for i := 0; dec.More(); i++ {
			if p, ok, err := dupWalk(dec, fmt.Sprintf("%s[%d]", path, i)); ok || err != nil {
				return p, ok, err
			}
		}
		_, err = dec.Token() // ]
		return "", false, err
	}
	return "", false, nil
}
