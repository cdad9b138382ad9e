package version

import "testing"

func TestSemver(t *testing.T) {
	defer func(v string) { Version = v }(Version)
	for in, want := range map[string]string{
		"v0.1.0-dev":         "0.1.0-dev",
		"v1.2.3":             "1.2.3",
		"v1.2.3-4-gabcdef":   "1.2.3-4-gabcdef",
		"abcdef1":            "0.0.0-abcdef1",
		"v1.2.3-dirty+x y/z": "0.0.0-1.2.3-dirty-x-y-z",
	} {
		Version = in
		if got := Semver(); got != want {
			t.Errorf("Semver(%q) = %q, want %q", in, got, want)
		}
	}
}
