package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/kybernetes/kybernetes/api"
)

func TestJSONPath(t *testing.T) {
	var data any
	if err := json.Unmarshal([]byte(`{"kind":"List","items":[
		{"metadata":{"name":"a","labels":{"app.kubernetes.io/name":"web"}},"status":{"conditions":[{"type":"Scheduled","status":"True"},{"type":"Ready","status":"False"}]},"spec":{"n":2}},
		{"metadata":{"name":"b"},"status":{"conditions":[{"type":"Ready","status":"True"}]},"spec":{"n":1}}]}`), &data); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ tmpl, want string }{
		{"{.items[*].metadata.name}", "a b"},
		{".kind", "List"},
		{"{.items[0].metadata.name}", "a"},
		{"{.items[-1].metadata.name}", "b"},
		{"{.items[0:1].metadata.name}", "a"},
		{`{range .items[*]}{.metadata.name}{"\t"}{.spec.n}{"\n"}{end}`, "a\t2\nb\t1\n"},
		{`{.items[?(@.metadata.name=="b")].spec.n}`, "1"},
		{`{.items[0].status.conditions[?(@.type=="Ready")].status}`, "False"},
		{`{.items[0].metadata.labels['app.kubernetes.io/name']}`, "web"},
		{"{..name}", "a b"},
		{"name: {.items[1].metadata.name}!", "name: b!"},
		{"{.items[0].spec}", `{"n":2}`},
		{"{.nothing.here}", ""},
	} {
		t.Run(tc.tmpl, func(t *testing.T) {
			jp, err := parseJSONPath(tc.tmpl)
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			jp.execute(&b, data)
			if b.String() != tc.want {
				t.Errorf("got %q, want %q", b.String(), tc.want)
			}
		})
	}
	for _, bad := range []string{"{.a", "{range .items[*]}{.x}", "{end}", "{.items[x]}", "{metadata}"} {
		t.Run("bad "+bad, func(t *testing.T) {
			if _, err := parseJSONPath(bad); err == nil {
				t.Errorf("parsed %q", bad)
			}
		})
	}
}

func testPod(name, node string, labels map[string]string, age time.Duration) *api.Pod {
	return &api.Pod{TypeMeta: api.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: api.ObjectMeta{Name: name, Namespace: "default", Labels: labels, CreationTimestamp: time.Now().Add(-age)},
		Spec:       api.PodSpec{NodeName: node, Containers: []api.Container{{Name: "c"}}},
		Status:     api.PodStatus{Phase: api.PodRunning}}
}

func TestPrinterFormats(t *testing.T) {
	kind, _ := api.LookupKind("pod")
	a := testPod("alpha", "n2", map[string]string{"app": "web", "tier": "front"}, time.Hour)
	b := testPod("b", "n1", nil, time.Minute)
	render := func(t *testing.T, format string, set func(p *printer), objs ...api.Object) string {
		t.Helper()
		var out bytes.Buffer
		p, err := newPrinter(&out, format, false)
		if err != nil {
			t.Fatal(err)
		}
		if set != nil {
			set(p)
		}
		if err := p.print(kind, objs); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	t.Run("json of one pod is a List", func(t *testing.T) {
		var l struct {
			Kind  string            `json:"kind"`
			Items []json.RawMessage `json:"items"`
		}
		if err := json.Unmarshal([]byte(render(t, "json", nil, a)), &l); err != nil || l.Kind != "List" || len(l.Items) != 1 {
			t.Errorf("json: %+v %v", l, err)
		}
		if err := json.Unmarshal([]byte(render(t, "json", nil)), &l); err != nil || l.Kind != "List" || l.Items == nil || len(l.Items) != 0 {
			t.Errorf("json of nothing: %+v %v", l, err)
		}
	})
	t.Run("yaml of a list is one List document", func(t *testing.T) {
		out := render(t, "yaml", nil, a, b)
		if strings.Contains(out, "---") {
			t.Errorf("yaml has several documents:\n%s", out)
		}
		var l struct {
			Kind  string `json:"kind"`
			Items []api.Pod
		}
		if err := yaml.Unmarshal([]byte(out), &l); err != nil || l.Kind != "List" || len(l.Items) != 2 || l.Items[1].Name != "b" {
			t.Errorf("yaml: %+v %v", l, err)
		}
	})
	t.Run("one object prints as itself", func(t *testing.T) {
		var out bytes.Buffer
		p, _ := newPrinter(&out, "json", false)
		if err := p.printObject(kind, a); err != nil {
			t.Fatal(err)
		}
		var pod api.Pod
		if err := json.Unmarshal(out.Bytes(), &pod); err != nil || pod.Kind != "Pod" || pod.Name != "alpha" {
			t.Errorf("object: %+v %v", pod, err)
		}
	})
	for _, tc := range []struct {
		name, format string
		set          func(p *printer)
		want         string
	}{
		{"jsonpath", "jsonpath={.items[*].metadata.name}", nil, "alpha b"},
		{"jsonpath range", `jsonpath={range .items[*]}{.metadata.name}={.spec.nodeName}{"\n"}{end}`, nil, "alpha=n2\nb=n1\n"},
		{"name", "name", nil, "pod/alpha\npod/b\n"},
		{"custom-columns", "custom-columns=NAME:.metadata.name,NODE:.spec.nodeName,APP:.metadata.labels.app", nil,
			"NAME    NODE   APP\nalpha   n2     web\nb       n1     <none>\n"},
		{"sort-by node", "name", func(p *printer) { p.setSortBy(".spec.nodeName") }, "pod/b\npod/alpha\n"},
		{"sort-by braces", "name", func(p *printer) { p.setSortBy("{.metadata.name}") }, "pod/alpha\npod/b\n"},
		{"sort-by creation", "name", func(p *printer) { p.setSortBy(".metadata.creationTimestamp") }, "pod/alpha\npod/b\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := render(t, tc.format, tc.set, a, b); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	t.Run("show-labels and -L", func(t *testing.T) {
		out := render(t, "", func(p *printer) { p.showLabels, p.labelCols = true, []string{"tier", "example.com/app"} }, a, b)
		lines := strings.Split(out, "\n")
		if !regexp.MustCompile(`^NAME +READY +STATUS +RESTARTS +AGE +TIER +APP +LABELS$`).MatchString(lines[0]) {
			t.Errorf("header %q", lines[0])
		}
		if !strings.HasSuffix(lines[1], "front         app=web,tier=front") || !strings.HasSuffix(lines[2], "<none>") {
			t.Errorf("rows:\n%s", out)
		}
	})
	t.Run("watch rows keep the listing's widths", func(t *testing.T) {
		var out bytes.Buffer
		p, _ := newPrinter(&out, "", false)
		if err := p.print(kind, []api.Object{a}); err != nil {
			t.Fatal(err)
		}
		p.printObject(kind, testPod("c", "n1", nil, time.Second))
		p.printObject(kind, testPod("a-much-longer-name", "n1", nil, time.Second))
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		col := func(l string) int { return strings.Index(l, "1/1") + strings.Index(l, "0/1") + 1 }
		if len(lines) != 4 || col(lines[1]) != strings.Index(lines[0], "READY") || col(lines[2]) != col(lines[1]) {
			t.Errorf("rows not aligned with the header:\n%s", out.String())
		}
		if col(lines[3]) <= col(lines[2]) {
			t.Errorf("a longer name did not widen the column:\n%s", out.String())
		}
	})
	for _, bad := range []string{"jsonpath={.a", "custom-columns=NAME", "custom-columns=NAME:metadata", "xml", "jsonpath"} {
		t.Run("bad -o "+bad, func(t *testing.T) {
			if _, err := newPrinter(&bytes.Buffer{}, bad, false); err == nil {
				t.Errorf("-o %s accepted", bad)
			}
		})
	}
}

// kybOut runs kyb and returns stdout, stderr and the error.
func kybOut(url string, args ...string) (string, string, error) {
	var out, errOut bytes.Buffer
	err := Run(context.Background(), append([]string{"--server", url}, args...), Streams{In: strings.NewReader(""), Out: &out, Err: &errOut})
	return out.String(), errOut.String(), err
}

func applyText(t *testing.T, url, manifest string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "m.yaml")
	if err := os.WriteFile(f, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, errOut, err := kybOut(url, "apply", "-f", f); err != nil {
		t.Fatalf("apply: %v\n%s", err, errOut)
	}
}

func podYAML(name, labels string) string {
	return "apiVersion: v1\nkind: Pod\nmetadata:\n  name: " + name + "\n  labels: {" + labels + "}\nspec:\n  containers:\n  - name: app\n    image: busybox\n---\n"
}

// kubectl's get forms against a real apiserver: json of a kind is a List
// even with one item, TYPE/NAME, several kinds, all, names past a
// not-found.
func TestGetForms(t *testing.T) {
	url := startCluster(t)
	applyText(t, url, podYAML("web", "app: web")+"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: team\n")
	for _, tc := range []struct {
		name    string
		args    []string
		want    string // regexp of stdout
		wantErr string
	}{
		{"json of one pod has items", []string{"get", "pods", "-o", "json"}, `(?s)"items": \[\s*\{.*"name": "web".*"kind": "List"`, ""},
		{"get NAME prints the object", []string{"get", "pod", "web", "-o", "jsonpath={.kind}/{.metadata.name}"}, `^Pod/web$`, ""},
		{"TYPE/NAME", []string{"get", "pods/web", "-o", "name"}, `^pod/web\n$`, ""},
		{"TYPE/NAME json is the object", []string{"get", "po/web", "-o", "jsonpath={.kind}"}, `^Pod$`, ""},
		{"several TYPE/NAME", []string{"get", "pods/web", "ns/team", "-o", "jsonpath={.kind}:{.items[*].metadata.name}"}, `^List:web team$`, ""},
		{"several TYPE/NAME table", []string{"get", "pods/web", "ns/team"}, `(?s)^NAME +READY.*\npod/web .*\n\nNAME +STATUS +AGE\nnamespace/team +Active`, ""},
		{"pod,namespace", []string{"get", "pod,ns", "-o", "name"}, `^pod/web\n(namespace/\S+\n)*namespace/team\n`, ""},
		{"pod,namespace table", []string{"get", "pod,ns"}, `(?s)pod/web.*\n\nNAME +STATUS +AGE\n.*namespace/team`, ""},
		{"all", []string{"get", "all"}, `^NAME +READY +STATUS +RESTARTS +AGE\npod/web `, ""},
		{"show-labels", []string{"get", "pods", "--show-labels"}, `LABELS\nweb .* app=web\n$`, ""},
		{"-L", []string{"get", "pods", "-L", "app"}, `AGE +APP\nweb .* web\n$`, ""},
		{"names past a not-found", []string{"get", "pods", "nope", "web", "-o", "name"}, `^pod/web\n$`, `"nope" not found`},
		{"one missing object prints nothing", []string{"get", "pods/nope", "-o", "json"}, `^$`, `"nope" not found`},
		{"mixed forms", []string{"get", "pods", "pods/web"}, ``, "TYPE/NAME form"},
		{"names with several kinds", []string{"get", "pod,ns", "web"}, ``, "exactly one kind"},
		{"watch of several kinds", []string{"get", "pod,ns", "-w"}, ``, "one kind"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := kybOut(url, tc.args...)
			if tc.wantErr == "" && err != nil {
				t.Fatalf("%v\n%s", err, errOut)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
			if !regexp.MustCompile(tc.want).MatchString(out) {
				t.Errorf("printed %q, want it to match %s", out, tc.want)
			}
		})
	}
	t.Run("logs pod/NAME", func(t *testing.T) {
		// web is not scheduled: the error names it, so pod/web was read.
		if _, _, err := kybOut(url, "logs", "pod/web"); err == nil || !strings.Contains(err.Error(), `in pod "web" is waiting to start`) {
			t.Errorf("logs pod/web: %v", err)
		}
		if _, _, err := kybOut(url, "logs", "node/web"); err == nil || !strings.Contains(err.Error(), "want a pod") {
			t.Errorf("logs node/web: %v", err)
		}
	})
}
