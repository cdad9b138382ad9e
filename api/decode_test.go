package api

import (
	"errors"
	"os"
	"slices"
	"strings"
	"testing"
)

// TestDecodeRefusesUnimplementedPodFields: an unmodified Kubernetes
// manifest that uses fields kybernetes does not implement yet is refused,
// 422 naming each, rather than run without them.
func TestDecodeRefusesUnimplementedPodFields(t *testing.T) {
	data, err := os.ReadFile("testdata/k8s-pod.yaml")
	if err != nil {
		t.Fatal(err)
	}
	_, err = Decode(data)
	var st *Status
	if !errors.As(err, &st) || st.Code != 422 {
		t.Fatalf("Decode: %v, want a 422", err)
	}
	var fields []string
	for _, c := range st.Causes {
		fields = append(fields, c.Field)
	}
	slices.Sort(fields)
	// envFrom, valueFrom and imagePullSecrets are implemented (issue 9).
	want := []string{"spec.affinity"}
	if !slices.Equal(fields, want) {
		t.Errorf("refused fields %q, want %q", fields, want)
	}
	// The same fields in a workload's template are refused too; outside a
	// pod spec the names mean nothing and stay warnings.
	_, err = Decode([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\nspec:\n  selector: {matchLabels: {a: b}}\n  template:\n    metadata: {labels: {a: b}}\n    spec:\n      affinity: {}\n      containers: [{name: c, image: i, volumeDevices: []}]\n"))
	if !errors.As(err, &st) || st.Code != 422 || len(st.Causes) != 2 {
		t.Fatalf("deployment with affinity and volumeDevices: %v, want a 422 naming both", err)
	}
	// stdin, stdinOnce and tty are implemented (kyb attach).
	got, err := Decode([]byte("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers: [{name: c, image: i, stdin: true, stdinOnce: true, tty: true}]\n"))
	if err != nil {
		t.Fatalf("pod with stdin, stdinOnce, tty: %v", err)
	}
	if c := got[0].Object.(*Pod).Spec.Containers[0]; !c.Stdin || !c.StdinOnce || !c.TTY || len(got[0].Warnings) != 0 {
		t.Errorf("container = %+v, warnings %q; want stdin, stdinOnce and tty set, no warning", c, got[0].Warnings)
	}
}

func TestDecodeKubernetesPodManifest(t *testing.T) {
	data, err := os.ReadFile("testdata/k8s-pod-supported.yaml")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(data)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d objects, want 1", len(got))
	}
	d := got[0]
	p, ok := d.Object.(*Pod)
	if !ok {
		t.Fatalf("object is %T, want *Pod", d.Object)
	}
	if d.Kind.Name != "Pod" || p.Name != "web" || p.Namespace != "shop" {
		t.Errorf("kind/name = %s %s/%s", d.Kind.Name, p.Namespace, p.Name)
	}
	wantWarnings := []string{
		`unknown field "spec.automountServiceAccountToken"`,
		`unknown field "spec.priorityClassName"`,
	}
	warnings := slices.Sorted(slices.Values(d.Warnings))
	if !slices.Equal(warnings, wantWarnings) {
		t.Errorf("warnings:\n got %q\nwant %q", warnings, wantWarnings)
	}
	c := p.Spec.Containers[0]
	cpu, mem := c.Resources.Requests[ResourceCPU], c.Resources.Limits[ResourceMemory]
	if cpu.String() != "250m" || mem.String() != "256Mi" {
		t.Errorf("resources = %+v", c.Resources)
	}
	if len(c.Ports) != 2 || c.Ports[1].ContainerPort != 9090 || c.Env[1].Name != "POD_NAME" {
		t.Errorf("container = %+v", c)
	}
	if p.Spec.Tolerations[0].TolerationSeconds == nil || *p.Spec.Tolerations[0].TolerationSeconds != 300 {
		t.Errorf("tolerations = %+v", p.Spec.Tolerations)
	}
	// Probes are decoded, no longer dropped with a warning; a port by name.
	if lp := c.LivenessProbe; lp == nil || lp.HTTPGet == nil || lp.HTTPGet.Path != "/healthz" || lp.HTTPGet.Port != FromString("http") || lp.InitialDelaySeconds != 10 {
		t.Errorf("livenessProbe = %+v", lp)
	}
	if rp := c.ReadinessProbe; rp == nil || rp.HTTPGet == nil || rp.HTTPGet.Path != "/ready" {
		t.Errorf("readinessProbe = %+v", rp)
	}
	// securityContext is decoded, no longer dropped with a warning.
	if sc := p.Spec.SecurityContext; sc == nil || *sc.RunAsUser != 10001 || !*sc.RunAsNonRoot || *sc.FSGroup != 10001 || sc.SeccompProfile.Type != SeccompProfileRuntimeDefault {
		t.Errorf("pod securityContext = %+v", sc)
	}
	if sc := c.SecurityContext; sc == nil || *sc.AllowPrivilegeEscalation || !*sc.ReadOnlyRootFilesystem || !slices.Equal(sc.Capabilities.Drop, []Capability{CapabilityAll}) {
		t.Errorf("container securityContext = %+v", sc)
	}
	// The manifest is valid once defaulted: unknown fields are only warnings.
	Default(p)
	if err := Validate(p); err != nil {
		t.Errorf("Validate: %v", err)
	}
}

const multiDocYAML = `# leading comment
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
---   # an empty document, skipped
apiVersion: kyb/v1
kind: Pod
metadata:
  name: hello
spec:
  runtimeClassName: wasm
  containers:
  - name: hello
    image: file:///tmp/hello.wasm
---
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Node
  metadata:
    name: n1
  spec:
    taints: [{key: gpu, effect: NoSchedule}]
- apiVersion: v1
  kind: Pod
  metadata: {name: p2, namespace: shop}
  spec:
    containers: [{name: c, image: nginx:1.27, bogus: 1}]
...
`

func TestDecodeMultiDocumentYAML(t *testing.T) {
	got, err := Decode([]byte(multiDocYAML))
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	var kinds, names []string
	for _, d := range got {
		kinds = append(kinds, d.Kind.Name)
		names = append(names, d.Object.GetObjectMeta().Name)
	}
	if want := []string{"Namespace", "Pod", "Node", "Pod"}; !slices.Equal(kinds, want) {
		t.Fatalf("kinds = %v, want %v", kinds, want)
	}
	if want := []string{"shop", "hello", "n1", "p2"}; !slices.Equal(names, want) {
		t.Errorf("names = %v, want %v", names, want)
	}
	if p := got[1].Object.(*Pod); p.Spec.RuntimeClass() != RuntimeWasm || p.APIVersion != "kyb/v1" {
		t.Errorf("pod hello = %+v", p)
	}
	if n := got[2].Object.(*Node); len(n.Spec.Taints) != 1 || n.Spec.Taints[0].Effect != TaintNoSchedule {
		t.Errorf("node taints = %+v", n.Spec.Taints)
	}
	if w := got[3].Warnings; !slices.Equal(w, []string{`unknown field "spec.containers[0].bogus"`}) {
		t.Errorf("warnings of p2 = %q", w)
	}
	for i := range 3 {
		if len(got[i].Warnings) != 0 {
			t.Errorf("document %d: unexpected warnings %q", i, got[i].Warnings)
		}
	}
}

func TestDecodeJSON(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		names []string
	}{
		{"one object", `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"containers":[{"name":"c","image":"x"}]}}`, []string{"a"}},
		{"stream", `{"apiVersion":"v1","kind":"Node","metadata":{"name":"a"}}
			{"apiVersion":"v1","kind":"Node","metadata":{"name":"b"}}`, []string{"a", "b"}},
		{"list", `{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Node","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"Namespace","metadata":{"name":"b"}}]}`, []string{"a", "b"}},
		{"typed list", `{"apiVersion":"v1","kind":"NodeList","items":[{"apiVersion":"v1","kind":"Node","metadata":{"name":"a"}}]}`, []string{"a"}},
		{"flow-style YAML", `{apiVersion: v1, kind: Node, metadata: {name: a}}`, []string{"a"}},
		{"empty", "", nil},
		{"empty List", "apiVersion: v1\nkind: List\n", nil},
		{"only comments", "# nothing\n---\n# here\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			var names []string
			for _, d := range got {
				names = append(names, d.Object.GetObjectMeta().Name)
			}
			if !slices.Equal(names, tt.names) {
				t.Errorf("names = %v, want %v", names, tt.names)
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		want  []string // substrings of the message
		field string   // cause field, when the error names one
	}{
		{"unknown kind", "apiVersion: v1\nkind: Gadget\nmetadata: {name: a}\n", []string{`unknown kind "Gadget"`, "document 1"}, "kind"},
		{"kind in wrong case", "apiVersion: v1\nkind: pod\nmetadata: {name: a}\n", []string{`unknown kind "pod"`, `did you mean "Pod"`}, ""},
		{"apiVersion not accepted", "apiVersion: apps/v2\nkind: Pod\nmetadata: {name: a}\n", []string{`apiVersion "apps/v2" is not accepted for kind Pod`}, "apiVersion"},
		{"missing kind", "apiVersion: v1\nmetadata: {name: a}\n", []string{"kind is required"}, "kind"},
		{"missing apiVersion", "kind: Pod\nmetadata: {name: a}\n", []string{"apiVersion is required"}, "apiVersion"},
		{"not an object", "- a\n- b\n", []string{"expected an object"}, ""},
		{"malformed YAML in second document", "apiVersion: v1\nkind: Node\nmetadata: {name: a}\n---\napiVersion: v1\nkind: Node\nmetadata:\n  name: b\n   labels: x\n", []string{"document 2", "line 9", "malformed YAML"}, ""},
		{"malformed JSON", "{\"apiVersion\": \"v1\",\n \"kind\": \"Node\",\n \"metadata\": {\"name\" \"a\"}}", []string{"document 1", "line 3", "malformed JSON"}, ""},
		{"malformed quantity", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - {name: a, image: x}\n  - name: b\n    image: x\n    resources: {limits: {cpu: 2 cores}}\n", []string{"spec.containers[1].resources.limits.cpu", "quantities must match"}, "spec.containers[1].resources.limits.cpu"},
		{"string for a number", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: a\n    image: x\n    ports: [{containerPort: http}]\n", []string{"spec.containers[0].ports[0].containerPort", "expected an integer, got a string"}, "spec.containers[0].ports[0].containerPort"},
		{"number for a string", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: a\n    image: x\n    env: [{name: PORT, value: 8080}]\n", []string{"spec.containers[0].env[0].value", "expected a string, got a number"}, "spec.containers[0].env[0].value"},
		{"YAML 1.1 boolean for a string", "apiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n  - name: a\n    image: y\n", []string{"spec.containers[0].image", "got a boolean", "quote the value"}, "spec.containers[0].image"},
		{"list for an object", "apiVersion: v1\nkind: Pod\nmetadata: [a]\n", []string{"metadata", "expected an object, got a list"}, "metadata"},
		{"bad item in a List", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Node, metadata: {name: a}}\n- {apiVersion: v1, kind: Gadget}\n", []string{"items[1]", `unknown kind "Gadget"`}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Decode([]byte(tt.in))
			if err == nil {
				t.Fatalf("Decode succeeded (%d objects), want error", len(got))
			}
			var st *Status
			if !errors.As(err, &st) || st.Code != 400 || st.Reason != ReasonBadRequest {
				t.Fatalf("error %v (%T) is not a 400 BadRequest Status", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(st.Message, w) {
					t.Errorf("message %q does not contain %q", st.Message, w)
				}
			}
			if tt.field != "" && (len(st.Causes) != 1 || st.Causes[0].Field != tt.field) {
				t.Errorf("causes = %+v, want one for field %s", st.Causes, tt.field)
			}
		})
	}
}

// A key given twice is rejected as kubectl rejects it (before, YAML kept
// one value silently and JSON only warned), naming the key and document.
func TestDecodeDuplicateKeys(t *testing.T) {
	node := "apiVersion: v1\nkind: Node\nmetadata: {name: ok}\n"
	for _, tt := range []struct {
		name, in string
		want     []string
	}{
		{"json", `{"apiVersion":"v1","kind":"Node","metadata":{"name":"a","name":"b"}}`, []string{"document 1", `duplicate key "metadata.name"`}},
		{"json label", `{"apiVersion":"v1","kind":"Node","metadata":{"name":"a","labels":{"x":"1","x":"2"}}}`, []string{`duplicate key "metadata.labels.x"`}},
		{"json in a list item", `{"kind":"List","items":[{"apiVersion":"v1","kind":"Node","metadata":{"name":"a"}},{"apiVersion":"v1","kind":"Node","kind":"Node","metadata":{"name":"b"}}]}`, []string{`duplicate key "items[1].kind"`}},
		{"json unknown field", `{"apiVersion":"v1","kind":"Node","metadata":{"name":"a"},"extra":{"k":1,"k":2}}`, []string{`duplicate key "extra.k"`}},
		{"json second document", `{"apiVersion":"v1","kind":"Node","metadata":{"name":"a"}}` + "\n" + `{"apiVersion":"v1","kind":"Node","metadata":{"name":"b"},"spec":{},"spec":{}}`, []string{"document 2", `duplicate key "spec"`}},
		{"yaml", node + "---\napiVersion: v1\nkind: Node\nmetadata:\n  name: a\n  labels:\n    app: x\n    app: y\n", []string{"document 2", "line 11", `duplicate key "app"`}},
		{"yaml top level", "apiVersion: v1\nkind: Node\nkind: Node\nmetadata: {name: a}\n", []string{"document 1", "line 3", `duplicate key "kind"`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			var st *Status
			if !errors.As(err, &st) || st.Code != 400 {
				t.Fatalf("error %v, want a 400 Status", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(st.Message, w) {
					t.Errorf("message %q does not contain %q", st.Message, w)
				}
			}
		})
	}
	// The same key in different objects is no duplicate.
	if _, err := Decode([]byte(`{"apiVersion":"v1","kind":"Node","metadata":{"name":"a","labels":{"name":"x"}}}`)); err != nil {
		t.Errorf("distinct objects with one key: %v", err)
	}
}

// Documents count from 1 whatever separators lead or repeat: a manifest
// that starts with `---`, as every public Kubernetes example does, has its
// first document called document 1.
func TestDecodeDocumentNumbers(t *testing.T) {
	bad := "apiVersion: v1\nkind: Gadget\nmetadata: {name: g}\n"
	node := "apiVersion: v1\nkind: Node\nmetadata: {name: nd}\n"
	for _, tt := range []struct{ name, in, want string }{
		{"leading separator", "---\n" + bad, "document 1"},
		{"leading comment and separator", "# a comment\n---\n" + bad, "document 1"},
		{"empty documents between", node + "---\n---\n# nothing\n---\n" + bad, "document 2"},
		{"second", "---\n" + node + "---\n" + bad, "document 2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode([]byte(tt.in))
			if err == nil || !strings.Contains(err.Error(), tt.want+":") {
				t.Errorf("error %v, want it about %s", err, tt.want)
			}
		})
	}
}

// A document with several bad fields reports the same one every time
// (before, a map's iteration order decided).
func TestDecodeReportsFieldsDeterministically(t *testing.T) {
	in := []byte(`apiVersion: v1
kind: Pod
metadata:
  name: p
  labels: {a: 1, b: 2, c: 3, d: 4, e: 5}
spec:
  containers:
  - name: c
    image: x
    resources: {limits: {cpu: bad, memory: bad}, requests: {cpu: bad, memory: bad}}
  terminationGracePeriodSeconds: soon
`)
	first := ""
	for i := range 50 {
		_, err := Decode(in)
		var st *Status
		if !errors.As(err, &st) || len(st.Causes) != 1 {
			t.Fatalf("error %v", err)
		}
		if i == 0 {
			first = st.Causes[0].Field
			if first != "metadata.labels.a" {
				t.Errorf("first field %q, want metadata.labels.a (metadata before spec, keys sorted)", first)
			}
		} else if st.Causes[0].Field != first {
			t.Fatalf("run %d reported %s, run 0 %s", i, st.Causes[0].Field, first)
		}
	}
}

// SplitManifest's documents, joined into one JSON stream, decode to the
// same objects as the manifest.
func TestSplitManifest(t *testing.T) {
	in := []byte("---\n# c\n---\napiVersion: v1\nkind: Node\nmetadata: {name: a}\n---\nkind: List\nitems:\n- {apiVersion: v1, kind: Node, metadata: {name: b}}\n---\n")
	parts, err := SplitManifest(in)
	if err != nil || len(parts) != 2 {
		t.Fatalf("SplitManifest: %d parts, %v", len(parts), err)
	}
	objs, err := Decode([]byte(string(parts[0]) + "\n" + string(parts[1])))
	if err != nil || len(objs) != 2 || objs[0].Object.GetObjectMeta().Name != "a" || objs[1].Object.GetObjectMeta().Name != "b" {
		t.Errorf("decoded %v, %v", objs, err)
	}
	if _, err := SplitManifest([]byte("a: 1\na: 2\n")); err == nil {
		t.Error("a duplicate key split without error")
	}
}
