package wasm_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/runtimetest"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

func fsprobeModule(t testing.TB) string {
	return precompiled(t, runtimetest.BuildGo(t, "./runtimes/wasm/testdata/fsprobe", "wasip1", "wasm"))
}

// TestMountSymlinkEscape is the attack of issue 7: a module with only an
// emptyDir creates a relative symlink up and out of it and reads and
// writes the host through it. Every path must resolve beneath the mount.
func TestMountSymlinkEscape(t *testing.T) {
	base := t.TempDir()
	// The emptyDir is four levels below base, so that the issue's
	// "../../../../etc" from it names base/etc: a stand-in for the host's
	// /etc that the test may try to write to.
	vol := filepath.Join(base, "w", "x", "y", "vol")
	fakeEtc := filepath.Join(base, "etc")
	outside := filepath.Join(base, "w", "x", "y", "outside")
	ro := filepath.Join(base, "ro")
	for _, d := range []string{filepath.Join(vol, "sub"), fakeEtc, outside, ro} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, s := range map[string]string{
		filepath.Join(vol, "sub", "file.txt"): "inside",
		filepath.Join(outside, "secret"):      "host secret",
		filepath.Join(fakeEtc, "passwd"):      "root:x:0:0",
		filepath.Join(ro, "in.txt"):           "read-only",
	} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A link planted in the volume by someone else, absolute.
	if err := os.Symlink("/etc", filepath.Join(vol, "abs")); err != nil {
		t.Fatal(err)
	}
	// Enough ".." to reach the host's / from the volume, whatever its depth.
	toRoot := strings.Repeat("../", strings.Count(vol, "/"))

	rt := newRuntime(t, wasm.Config{})
	sb := sandbox(t, rt)
	res, log := runToEnd(t, rt, sb, runtimes.ContainerConfig{
		Image: fileRef(fsprobeModule(t)),
		Mounts: []runtimes.Mount{
			{HostPath: vol, ContainerPath: "/data"},
			{HostPath: ro, ContainerPath: "/config", ReadOnly: true},
		},
		Args: []string{
			"symlink", "../../../../etc", "/data/esc",
			"read", "/data/esc/passwd",
			"write", "/data/esc/pwned", "x",
			"symlink", toRoot + "etc", "/data/deep",
			"read", "/data/deep/passwd",
			"read", "/data/abs/passwd",
			"symlink", "../outside", "/data/out",
			"read", "/data/out/secret",
			"write", "/data/out/pwned", "x",
			"symlink", "sub/..", "/data/self",
			"read", "/data/self/../outside/secret",
			"read", "/data/sub/../../outside/secret",
			"symlink", "sub/file.txt", "/data/in",
			"read", "/data/in",
			"symlink", "sub", "/data/subln",
			"write", "/data/subln/new.txt", "through an inner link",
			"read", "/config/in.txt",
			"write", "/config/x", "nope",
			"symlink", "in.txt", "/config/ln",
			"ls", "/data",
		},
	})
	if res.ExitCode != 0 {
		t.Fatalf("exit %d %s; log:\n%s", res.ExitCode, res.Message, log)
	}
	lines := map[string]string{}
	for _, l := range strings.Split(log, "\n") {
		if k, v, ok := strings.Cut(l, ": "); ok {
			lines[k] = v
		}
	}
	escaped := func(v string) bool { return v != "EPERM" && v != "ENOENT" }
	// Go's wasip1 port cleans "/data/sub/../../x" to "/x" before WASI sees
	// it (no preopen: EBADF); the point is only that it fails.
	succeeded := func(v string) bool { return v == "ok" || strings.HasPrefix(v, `"`) }
	for _, tc := range []struct {
		name, line string
		bad        func(string) bool
	}{
		{"symlink up is created (it is only a name)", "symlink /data/esc", func(v string) bool { return v != "ok" }},
		{"read through ../../../../etc", "read /data/esc/passwd", escaped},
		{"write through ../../../../etc", "write /data/esc/pwned", escaped},
		{"read through a link to the host's /", "read /data/deep/passwd", escaped},
		{"read through an absolute link", "read /data/abs/passwd", escaped},
		{"read a sibling of the volume", "read /data/out/secret", escaped},
		{"write a sibling of the volume", "write /data/out/pwned", escaped},
		{"dot-dot after a link to the volume's root", "read /data/self/../outside/secret", escaped},
		{"dot-dot in the path", "read /data/sub/../../outside/secret", succeeded},
		{"a link inside the volume works", "read /data/in", func(v string) bool { return v != `"inside"` }},
		{"a link to a directory inside the volume works", "write /data/subln/new.txt", func(v string) bool { return v != "ok" }},
		{"read-only mount reads", "read /config/in.txt", func(v string) bool { return v != `"read-only"` }},
		{"read-only mount refuses a write", "write /config/x", func(v string) bool { return v == "ok" }},
		{"read-only mount refuses a symlink", "symlink /config/ln", func(v string) bool { return v == "ok" }},
		{"listing", "ls /data", func(v string) bool { return !strings.Contains(v, "esc") || !strings.Contains(v, "sub") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, ok := lines[tc.line]
			if !ok || tc.bad(v) {
				t.Errorf("%s: got %q; log:\n%s", tc.line, v, log)
			}
		})
	}
	for _, p := range []string{filepath.Join(outside, "pwned"), filepath.Join(fakeEtc, "pwned")} {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("the module wrote %s, outside its volume", p)
		}
	}
	if b, err := os.ReadFile(filepath.Join(vol, "sub", "new.txt")); err != nil || string(b) != "through an inner link" {
		t.Errorf("write through an inner link: %q %v", b, err)
	}
	for _, p := range []string{filepath.Join(ro, "x"), filepath.Join(ro, "ln")} {
		if _, err := os.Lstat(p); err == nil {
			t.Errorf("%s: created through a read-only mount", p)
		}
	}
}

// TestMountMissing: a mount whose host directory does not exist fails the
// start with a reason naming it, instead of a module with a broken preopen.
func TestMountMissing(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	sb := sandbox(t, rt)
	ctx := ctxT(t)
	missing := filepath.Join(t.TempDir(), "nope")
	id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: fileRef(fsprobeModule(t)),
		Mounts: []runtimes.Mount{{HostPath: missing, ContainerPath: "/data"}}, LogPath: filepath.Join(t.TempDir(), "log")})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, id); err == nil || !strings.Contains(err.Error(), missing) {
		t.Errorf("start with a missing mount: %v, want an error naming %s", err, missing)
	}
}
