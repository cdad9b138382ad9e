package containerd

import (
	"context"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
)

// TestConformance runs the shared runtime suite on containerd, with the
// suite's test program packed as an image whose entrypoint it is.
func TestConformance(t *testing.T) {
	e := requireEnv(t)
	bin := runtimetest.BuildTestProg(t, "linux", "amd64")
	img, err := buildImageAs(bin, "testprog", []string{"/testprog"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(e.registry.URL, "http://") + "/kyb/testprog:v1"
	if err := pushImage(ref, img); err != nil {
		t.Fatal(err)
	}
	runtimetest.Run(t, runtimetest.Harness{
		New: func(t *testing.T, stateDir string) runtimes.Runtime {
			cfg := testConfig(e)
			cfg.StateDir = stateDir
			r, err := New(context.Background(), cfg, testLogger(t))
			if err != nil {
				t.Fatalf("New: %v", err)
			}
			t.Cleanup(func() { r.Close() })
			return r
		},
		Image:           ref,
		ExecCommand:     []string{"/testprog"},
		SurvivesRestart: true,
		Close:           func(t *testing.T, rt runtimes.Runtime) { rt.(*Runtime).Close() },
	})
}
