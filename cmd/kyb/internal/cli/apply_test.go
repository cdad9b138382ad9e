package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// `kyb apply -f DIR` checks every document of every file before it stores
// any (before, it applied a.yaml and then stopped at b.yaml), and names
// the file and document of each problem.
func TestApplyDirIsAllOrNothing(t *testing.T) {
	url := startCluster(t)
	good := "---\n" + podYAML("one", "app: a") + podYAML("two", "")
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"invalid object in the second file", map[string]string{
			"a.yaml": good,
			"b.yaml": "apiVersion: v1\nkind: Pod\nmetadata:\n  name: three\nspec:\n  containers:\n  - name: app\n",
		}, []string{"b.yaml document 1", "spec.containers[0].image", "nothing was applied"}},
		{"duplicate key and bad kind in two files", map[string]string{
			"a.yaml": good,
			"b.yaml": "---\napiVersion: v1\nkind: Pod\nkind: Pod\nmetadata: {name: three}\n",
			"c.json": `{"apiVersion":"v1","kind":"Gizmo","metadata":{"name":"g"}}`,
		}, []string{"2 manifests", "b.yaml: decode document 1: line 4: duplicate key \"kind\"", "c.json: decode document 1: unknown kind", "nothing was applied"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			_, _, err := kybOut(url, "apply", "-f", dir)
			for _, w := range tc.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v, want one containing %q", err, w)
				}
			}
			for _, n := range []string{"one", "two"} {
				if _, err := getPod(t, url, n); !api.IsNotFound(err) {
					t.Errorf("pod %s of the good file was applied: %v", n, err)
				}
			}
		})
	}
	t.Run("good JSON and YAML files in one request", func(t *testing.T) {
		dir := writeFiles(t, map[string]string{
			"a.yaml": good,
			"b.json": `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"three"},"spec":{"containers":[{"name":"app","image":"busybox"}]}}`,
		})
		out, errOut, err := kybOut(url, "apply", "-f", dir)
		if err != nil {
			t.Fatalf("%v\n%s", err, errOut)
		}
		if out != "pod/one created\npod/two created\npod/three created\n" {
			t.Errorf("apply printed %q", out)
		}
		if out, _, err := kybOut(url, "apply", "-f", dir); err != nil || out != "pod/one unchanged\npod/two unchanged\npod/three unchanged\n" {
			t.Errorf("apply again printed %q (%v)", out, err)
		}
	})
}

// apply --dry-run=server answers as an apply would and stores nothing;
// diff shows the change and exits 1 (0 when there is none); --prune -l
// deletes what the selector picks that the manifests no longer name.
func TestApplyDryRunDiffPrune(t *testing.T) {
	url := startCluster(t)
	web := podYAML("web", "app: shop")
	dir := writeFiles(t, map[string]string{"shop.yaml": web + podYAML("cart", "app: shop")})
	out, errOut, err := kybOut(url, "apply", "-f", dir, "--dry-run=server")
	if err != nil || out != "pod/web created (server dry run)\npod/cart created (server dry run)\n" {
		t.Fatalf("dry run printed %q (%v, %s)", out, err, errOut)
	}
	if _, err := getPod(t, url, "web"); !api.IsNotFound(err) {
		t.Fatalf("a dry run stored pod web: %v", err)
	}
	for _, bad := range []string{"client", "maybe"} {
		if _, _, err := kybOut(url, "apply", "-f", dir, "--dry-run="+bad); err == nil {
			t.Errorf("--dry-run=%s accepted", bad)
		}
	}
	// diff of objects not there yet: all new, exit 1.
	out, _, err = kybOut(url, "diff", "-f", dir)
	if exit, ok := err.(ExitError); !ok || exit.Code != 1 || !strings.Contains(out, "+  name: web") {
		t.Fatalf("diff before apply: %q, %v", out, err)
	}
	if _, _, err := kybOut(url, "apply", "-f", dir); err != nil {
		t.Fatal(err)
	}
	if out, _, err := kybOut(url, "diff", "-f", dir); err != nil || out != "" {
		t.Errorf("diff after apply: %q, %v; want no output, exit 0", out, err)
	}
	changed := writeFiles(t, map[string]string{"shop.yaml": strings.Replace(web, "app: shop", "app: shop, tier: front", 1)})
	out, _, err = kybOut(url, "diff", "-f", changed)
	if exit, ok := err.(ExitError); !ok || exit.Code != 1 || !strings.Contains(out, "+    tier: front") || strings.Contains(out, "resourceVersion") {
		t.Errorf("diff of a label change: %q, %v", out, err)
	}
	// The manifests now name web only: prune (dry run first) removes cart,
	// never a pod of another selector.
	if _, _, err := kybOut(url, "apply", "-f", writeFiles(t, map[string]string{"other.yaml": podYAML("other", "app: other")})); err != nil {
		t.Fatal(err)
	}
	only := writeFiles(t, map[string]string{"shop.yaml": web})
	out, _, err = kybOut(url, "apply", "-f", only, "--prune", "-l", "app=shop", "--dry-run=server")
	if err != nil || out != "pod/web unchanged (server dry run)\npod/cart pruned (server dry run)\n" {
		t.Errorf("prune dry run printed %q (%v)", out, err)
	}
	if _, err := getPod(t, url, "cart"); err != nil {
		t.Errorf("a prune dry run deleted cart: %v", err)
	}
	out, _, err = kybOut(url, "apply", "-f", only, "--prune", "-l", "app=shop")
	if err != nil || out != "pod/web unchanged\npod/cart pruned\n" {
		t.Errorf("prune printed %q (%v)", out, err)
	}
	if _, err := getPod(t, url, "other"); err != nil {
		t.Errorf("prune deleted a pod of another selector: %v", err)
	}
	if _, _, err := kybOut(url, "apply", "-f", only, "--prune"); err == nil || !strings.Contains(err.Error(), "-l") {
		t.Errorf("--prune without -l: %v", err)
	}
}

// A dry run of a Service checks its NodePort can be had and keeps no claim
// on it: a real apply of another Service then gets it.
func TestApplyDryRunKeepsNoAllocation(t *testing.T) {
	url := startCluster(t)
	svc := func(name string) string {
		return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\nspec:\n  type: NodePort\n  selector: {app: web}\n  ports:\n  - port: 80\n    nodePort: 30080\n"
	}
	out, errOut, err := kybOut(url, "apply", "-f", writeFiles(t, map[string]string{"a.yaml": svc("first")}), "--dry-run=server")
	if err != nil || out != "service/first created (server dry run)\n" {
		t.Fatalf("dry run: %q (%v, %s)", out, err, errOut)
	}
	if out, errOut, err := kybOut(url, "apply", "-f", writeFiles(t, map[string]string{"b.yaml": svc("second")})); err != nil {
		t.Fatalf("nodePort 30080 still claimed after a dry run: %q (%v, %s)", out, err, errOut)
	}
	if _, _, err := kybOut(url, "apply", "-f", writeFiles(t, map[string]string{"a.yaml": svc("first")}), "--dry-run=server"); err == nil || !strings.Contains(err.Error(), "nodePort") {
		t.Errorf("a dry run of a taken nodePort: %v", err)
	}
}
