package api

import (
	"bytes"
	"os"
	"os/exec"
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	for _, tc := range []struct {
		path string
		want []string
	}{
		{"pod", []string{"KIND:     Pod", "VERSION:  v1", "FIELDS:", "spec\t<Object>", "metadata\t<Object>"}},
		{"po.spec.containers.image", []string{"FIELD: image <string>", "DESCRIPTION:"}},
		{"pods.spec.containers", []string{"FIELD: containers <[]Object>", "resources\t<Object>", "ports\t<[]Object>"}},
		{"deployment.spec.replicas", []string{"VERSION:  apps/v1", "FIELD: replicas <integer>"}},
		{"pod.spec.containers.resources.limits", []string{"<map[string]Quantity>"}},
		{"pod.metadata.labels", []string{"FIELD: labels <map[string]string>"}},
	} {
		t.Run(tc.path, func(t *testing.T) {
			got, err := Explain(tc.path, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("explain %s lacks %q:\n%s", tc.path, w, got)
				}
			}
		})
	}
	rec, err := Explain("pod.spec.securityContext", true)
	if err != nil || !strings.Contains(rec, "  seccompProfile\t<Object>\n    localhostProfile\t<string>") {
		t.Errorf("recursive explain: %v\n%s", err, rec)
	}
	for path, want := range map[string]string{
		"gizmo":                            `unknown kind "gizmo"`,
		"pod.spec.nope":                    `field "nope" does not exist in pod.spec`,
		"pod.spec.nodeName.x":              `pod.spec.nodeName is string, which has no fields`,
		"pod." + strings.Repeat("a", 4096): "does not exist",
	} {
		if _, err := Explain(path, false); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("explain %.40s: %v, want %q", path, err, want)
		}
	}
}

// zz_docs.go is what the generator makes of the package now: a changed doc
// comment or a new type needs `go generate ./api`.
func TestFieldDocsCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the generator")
	}
	want, err := os.ReadFile("zz_docs.go")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "run", "./internal/explaingen", ".")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.Env = append(os.Environ(), "EXPLAINGEN_OUT=-")
	b, err := cmd.Output()
	if err != nil {
		t.Fatalf("explaingen: %v\n%s", err, stderr.String())
	}
	if !bytes.Equal(b, want) {
		t.Fatal("api/zz_docs.go is stale: run `go generate ./api`")
	}
}
