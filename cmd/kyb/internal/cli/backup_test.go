package cli

import (
	"archive/tar"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kyb backup writes a backup file (mode 0600: it holds every secret) for a
// user allowed nothing but kyb.api.v1.>; kyb restore puts it into a fresh
// data directory, refuses one that holds data, and replaces it with --force.
func TestBackupAndRestoreCommands(t *testing.T) {
	url := startCluster(t)
	file := filepath.Join(t.TempDir(), "cluster.kyb")
	out, err := kyb(t, url, "backup", file)
	if err != nil {
		t.Fatalf("kyb backup: %v", err)
	}
	if !strings.Contains(out, "backup written to "+file) {
		t.Fatalf("kyb backup printed %q", out)
	}
	fi, err := os.Stat(file)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("backup file: %v, mode %v; want 0600", err, fi.Mode())
	}
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := tar.NewReader(f).Next()
	f.Close()
	if err != nil || hdr.Name != "kyb-backup.json" {
		t.Fatalf("backup file starts with %v, %v; want kyb-backup.json", hdr, err)
	}

	dir := t.TempDir()
	if out, err = kyb(t, url, "restore", file, "--data-dir", dir); err != nil || !strings.Contains(out, "restored") {
		t.Fatalf("kyb restore: %q, %v", out, err)
	}
	if _, err = kyb(t, url, "restore", file, "--data-dir", dir); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("kyb restore over data: %v; want a refusal", err)
	}
	if _, err = kyb(t, url, "restore", file, "--data-dir", dir, "--force"); err != nil {
		t.Fatalf("kyb restore --force: %v", err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"backup"}, "accepts 1 arg"},
		{[]string{"restore", filepath.Join(dir, "missing.kyb"), "--data-dir", t.TempDir()}, "no such file"},
		{[]string{"server", "--restore-force"}, "only with --restore"},
	} {
		if _, err := kyb(t, url, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("kyb %s: %v; want an error saying %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}
}
