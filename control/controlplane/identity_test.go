package controlplane

import (
	"strings"
	"testing"
)

// The lease identity is made once per data directory and kept, so a
// restarted control plane takes its own leases back at once; two data
// directories get different identities.
func TestLoadIdentity(t *testing.T) {
	dir := t.TempDir()
	a, err := loadIdentity(dir)
	if err != nil || a == "" {
		t.Fatalf("loadIdentity = %q, %v", a, err)
	}
	again, err := loadIdentity(dir)
	if err != nil || again != a {
		t.Fatalf("loadIdentity again = %q, %v; want %q", again, err, a)
	}
	other, err := loadIdentity(t.TempDir())
	if err != nil || other == a || strings.ContainsAny(other, " \n") {
		t.Fatalf("another dir's identity = %q, %v", other, err)
	}
}
