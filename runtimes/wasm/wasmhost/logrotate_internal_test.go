package wasmhost

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestRotateLog: host.log past the bound moves to host.log.1 and starts
// again, and what the host writes next lands at its start; a file that is
// not the one at the path (a test's stderr) is never touched.
func TestRotateLog(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, LogName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	old := bytes.Repeat([]byte("old line\n"), 200) // 1,800 bytes
	if _, err := f.Write(old); err != nil {
		t.Fatal(err)
	}
	if rotated, err := rotateLog(f, path, 4096); err != nil || rotated {
		t.Fatalf("under the bound: rotated %v, %v", rotated, err)
	}
	if rotated, err := rotateLog(f, path, 1024); err != nil || !rotated {
		t.Fatalf("over the bound: rotated %v, %v", rotated, err)
	}
	if b, _ := os.ReadFile(path + ".1"); !bytes.Equal(b, old) {
		t.Fatalf("host.log.1 holds %d bytes, want the %d written", len(b), len(old))
	}
	if _, err := f.Write([]byte("new line\n")); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != "new line\n" {
		t.Fatalf("host.log after rotation: %q", b)
	}

	other, err := os.CreateTemp(dir, "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.Write(old)
	if rotated, err := rotateLog(other, path, 1); err != nil || rotated {
		t.Fatalf("a file that is not host.log: rotated %v, %v", rotated, err)
	}
	if fi, _ := other.Stat(); fi.Size() != int64(len(old)) {
		t.Fatalf("the other file was truncated to %d bytes", fi.Size())
	}
}
