package wasmhost_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/runtimes/wasm/wasmhost"
)

// TestReadConfigRefuses: a config file that names another directory, or
// is not JSON, or is missing, is refused with what was wrong.
func TestReadConfigRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, body, want string
	}{
		{"another dir", `{"Dir": "/etc"}`, "not the directory it is in"},
		{"not json", `{`, "decode wasm host config"},
		{"missing", "", "read wasm host config"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.body != "" {
				os.WriteFile(filepath.Join(dir, wasmhost.ConfigName), []byte(tc.body), 0o600)
			}
			if _, err := wasmhost.ReadConfig(dir); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("ReadConfig: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
