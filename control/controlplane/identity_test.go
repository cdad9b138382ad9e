package controlplane

import (
	"strings"
	"testing"
	"time"
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

func TestCheckLease(t *testing.T) {
	for _, tc := range []struct {
		name       string
		dur, renew time.Duration
		ok         bool
	}{
		{"defaults", 15 * time.Second, 5 * time.Second, true},
		{"short", time.Second, 200 * time.Millisecond, true},
		{"under a second", 500 * time.Millisecond, 100 * time.Millisecond, false},
		{"renew equal", 2 * time.Second, 2 * time.Second, false},
		{"renew zero", 2 * time.Second, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := CheckLease(tc.dur, tc.renew); (err == nil) != tc.ok {
				t.Fatalf("CheckLease(%v, %v) = %v", tc.dur, tc.renew, err)
			}
		})
	}
}
