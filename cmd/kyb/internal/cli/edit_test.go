package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// editorScript writes a shell script that edits the file it is given and
// returns the command to run it.
func editorScript(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "editor.sh")
	if err := os.WriteFile(p, []byte("#!/bin/sh\nset -e\nf=\"$1\"\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return "sh " + p
}

func TestEdit(t *testing.T) {
	url := startCluster(t)
	applyText(t, url, podYAML("web", "app: web"))
	t.Setenv("TMPDIR", t.TempDir()) // the copies failed edits keep
	for _, tc := range []struct {
		name, script string
		args         []string
		out, wantErr string
	}{
		{"add a label", `sed -i 's/^    app: web$/    app: web\n    tier: front/' "$f"`, []string{"edit", "pod", "web"}, "pod/web edited\n", ""},
		{"no change", `true`, []string{"edit", "pods/web"}, "Edit cancelled, no changes made.\n", ""},
		{"comment only", `echo '# a note' >> "$f"`, []string{"edit", "pod/web"}, "Edit cancelled, no changes made.\n", ""},
		{"emptied", `: > "$f"`, []string{"edit", "pod/web"}, "Edit cancelled, no changes made.\n", ""},
		{"json", `sed -i 's/"tier": "front"/"tier": "back"/' "$f"`, []string{"edit", "pod/web", "-o", "json"}, "pod/web edited\n", ""},
		{"rename refused", `sed -i 's/^  name: web$/  name: other/' "$f"`, []string{"edit", "pod/web"}, "", "cannot change"},
		{"bad yaml kept", `echo '  bad: [' >> "$f"`, []string{"edit", "pod/web"}, "", "A copy of your changes has been stored to"},
		{"stale version is a conflict", `sed -i 's/^  resourceVersion: .*/  resourceVersion: "1"/; s/tier: back/tier: lost/' "$f"`, []string{"edit", "pod/web"}, "", "has been modified"},
		{"editor fails", `exit 3`, []string{"edit", "pod/web"}, "", "exit status 3"},
		{"missing object", `true`, []string{"edit", "pod/nope"}, "", `"nope" not found`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KYB_EDITOR", editorScript(t, tc.script))
			out, _, err := kybOut(url, tc.args...)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("error %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || out != tc.out {
				t.Errorf("printed %q (%v), want %q", out, err, tc.out)
			}
		})
	}
	p, err := getPod(t, url, "web")
	if err != nil {
		t.Fatal(err)
	}
	if p.Labels["tier"] != "back" || p.Name != "web" {
		t.Errorf("after the edits: labels %v", p.Labels)
	}
}
