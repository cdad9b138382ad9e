package rootfs_test

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"

	"github.com/kybernetes/kybernetes/runtimes/wasm/internal/rootfs"
)

// layout makes base/vol (the mount) beside base/outside, with a file in
// each, and returns base.
func layout(t *testing.T) string {
	t.Helper()
	base := t.TempDir()
	for p, s := range map[string]string{
		"vol/sub/file.txt": "inside",
		"outside/secret":   "host secret",
	} {
		full := filepath.Join(base, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return base
}

func open(t *testing.T, dir string, readOnly bool) *rootfs.FS {
	t.Helper()
	f, err := rootfs.Open(dir, readOnly)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func read(t *testing.T, f *rootfs.FS, p string) (string, experimentalsys.Errno) {
	t.Helper()
	file, errno := f.OpenFile(p, experimentalsys.O_RDONLY, 0)
	if errno != 0 {
		return "", errno
	}
	defer file.Close()
	buf := make([]byte, 256)
	n, errno := file.Read(buf)
	return string(buf[:n]), errno
}

func wantDenied(t *testing.T, what string, errno experimentalsys.Errno) {
	t.Helper()
	if errno != experimentalsys.EPERM && errno != experimentalsys.ENOENT {
		t.Errorf("%s: errno %v, want EPERM or ENOENT", what, errno)
	}
}

func TestEscapes(t *testing.T) {
	base := layout(t)
	vol := filepath.Join(base, "vol")
	f := open(t, vol, false)
	toRoot := strings.Repeat("../", strings.Count(vol, "/"))
	for _, l := range [][2]string{
		{"../../../../etc", "esc"},
		{toRoot + "etc", "deep"},
		{"../outside", "out"},
		{"sub/../../outside", "hop"},
		{"sub/up", "chain"}, // sub/up -> ../.. below
		{"sub/file.txt", "in"},
		{"sub", "subln"},
		{".", "self"},
	} {
		if errno := f.Symlink(l[0], l[1]); errno != 0 {
			t.Fatalf("symlink %s -> %s: %v", l[1], l[0], errno)
		}
	}
	if errno := f.Symlink("../..", "sub/up"); errno != 0 {
		t.Fatal(errno)
	}
	if err := os.Symlink("/etc", filepath.Join(vol, "abs")); err != nil {
		t.Fatal(err)
	}

	t.Run("reads", func(t *testing.T) {
		for _, p := range []string{"esc/passwd", "deep/passwd", "abs/passwd", "out/secret", "hop/secret",
			"chain/outside/secret", "../outside/secret", "sub/../../outside/secret", "self/../outside/secret", "/../outside/secret"} {
			_, errno := read(t, f, p)
			wantDenied(t, "read "+p, errno)
			_, errno = f.Stat(p)
			wantDenied(t, "stat "+p, errno)
		}
	})
	t.Run("trailing slash", func(t *testing.T) {
		// openat(O_NOFOLLOW) follows a final symlink when the path ends in
		// "/": os.Root let that escape before Go 1.26.5 (CVE-2026-39822),
		// and wazero hands trailing slashes on.
		for _, p := range []string{"esc/", "deep/", "abs/", "out/", "hop/", "chain/"} {
			_, errno := f.OpenFile(p, experimentalsys.O_RDONLY|experimentalsys.O_DIRECTORY, 0)
			wantDenied(t, "open "+p, errno)
			_, errno = f.OpenFile(p, experimentalsys.O_RDONLY|experimentalsys.O_DIRECTORY|experimentalsys.O_NOFOLLOW, 0)
			if errno == 0 {
				t.Errorf("open %s with O_NOFOLLOW: succeeded", p)
			}
			_, errno = f.Stat(p)
			wantDenied(t, "stat "+p, errno)
			if st, errno := f.Lstat(p); errno == 0 && st.Mode&fs.ModeSymlink == 0 {
				t.Errorf("lstat %s: %v, the target outside", p, st.Mode)
			}
		}
	})
	t.Run("writes", func(t *testing.T) {
		for _, p := range []string{"out/pwned", "hop/pwned", "chain/outside/pwned", "../outside/pwned"} {
			_, errno := f.OpenFile(p, experimentalsys.O_WRONLY|experimentalsys.O_CREAT|experimentalsys.O_TRUNC, 0o644)
			wantDenied(t, "create "+p, errno)
			wantDenied(t, "mkdir "+p, f.Mkdir(p+"d", 0o755))
			wantDenied(t, "rename to "+p, f.Rename("sub/file.txt", p))
			wantDenied(t, "link to "+p, f.Link("sub/file.txt", p))
			wantDenied(t, "symlink at "+p, f.Symlink("x", p))
		}
		wantDenied(t, "unlink through a link", f.Unlink("out/secret"))
		wantDenied(t, "chmod through a link", f.Chmod("out/secret", 0o777))
		wantDenied(t, "utimens through a link", f.Utimens("out/secret", 0, 0))
		wantDenied(t, "hard link of an outside file", f.Link("out/secret", "stolen"))
		entries, _ := os.ReadDir(filepath.Join(base, "outside"))
		if len(entries) != 1 {
			t.Errorf("outside holds %d entries, want only its secret", len(entries))
		}
		if fi, _ := os.Stat(filepath.Join(base, "outside", "secret")); fi == nil || fi.Mode().Perm() != 0o644 {
			t.Errorf("outside secret changed: %v", fi)
		}
	})
	t.Run("absolute symlinks are refused", func(t *testing.T) {
		if errno := f.Symlink("/etc", "abs2"); errno != experimentalsys.EPERM {
			t.Errorf("symlink to /etc: %v, want EPERM", errno)
		}
	})
	t.Run("inside links work", func(t *testing.T) {
		for p, want := range map[string]string{"in": "inside", "subln/file.txt": "inside", "self/sub/file.txt": "inside"} {
			if got, errno := read(t, f, p); errno != 0 || got != want {
				t.Errorf("read %s: %q %v, want %q", p, got, errno, want)
			}
		}
		w, errno := f.OpenFile("subln/new.txt", experimentalsys.O_WRONLY|experimentalsys.O_CREAT, 0o644)
		if errno != 0 {
			t.Fatalf("create through an inner link: %v", errno)
		}
		if _, errno := w.Write([]byte("new")); errno != 0 {
			t.Fatal(errno)
		}
		w.Close()
		if b, _ := os.ReadFile(filepath.Join(vol, "sub", "new.txt")); string(b) != "new" {
			t.Errorf("host sees %q", b)
		}
	})
	t.Run("names, not targets", func(t *testing.T) {
		st, errno := f.Lstat("esc")
		if errno != 0 || st.Mode&fs.ModeSymlink == 0 {
			t.Errorf("lstat esc: %v %v, want a symlink", st.Mode, errno)
		}
		if dst, errno := f.Readlink("esc"); errno != 0 || dst != "../../../../etc" {
			t.Errorf("readlink esc: %q %v", dst, errno)
		}
		if _, errno := f.OpenFile("in", experimentalsys.O_RDONLY|experimentalsys.O_NOFOLLOW, 0); errno != experimentalsys.ELOOP {
			t.Errorf("open in with O_NOFOLLOW: %v, want ELOOP", errno)
		}
		if errno := f.Unlink("out"); errno != 0 {
			t.Errorf("unlink the link out: %v", errno)
		}
		if _, err := os.Stat(filepath.Join(base, "outside", "secret")); err != nil {
			t.Errorf("unlinking a link removed its target: %v", err)
		}
		if errno := f.Rmdir("subln"); errno != experimentalsys.ENOTDIR {
			t.Errorf("rmdir of a link to a dir: %v, want ENOTDIR", errno)
		}
	})
	t.Run("directory listing", func(t *testing.T) {
		d, errno := f.OpenFile(".", experimentalsys.O_RDONLY|experimentalsys.O_DIRECTORY, 0)
		if errno != 0 {
			t.Fatal(errno)
		}
		defer d.Close()
		ents, errno := d.Readdir(-1)
		if errno != 0 {
			t.Fatal(errno)
		}
		if errno := f.Mkdir("later", 0o755); errno != 0 {
			t.Fatal(errno)
		}
		if _, errno := d.Seek(0, 0); errno != 0 {
			t.Fatal(errno)
		}
		again, errno := d.Readdir(-1)
		if errno != 0 || len(again) != len(ents)+1 {
			t.Errorf("after a rewind: %d entries %v, want %d", len(again), errno, len(ents)+1)
		}
		for _, e := range again {
			if e.Ino == 0 {
				t.Errorf("%s: no inode", e.Name)
			}
		}
	})
}

func TestReadOnly(t *testing.T) {
	base := layout(t)
	vol := filepath.Join(base, "vol")
	f := open(t, vol, true)
	if got, errno := read(t, f, "sub/file.txt"); errno != 0 || got != "inside" {
		t.Fatalf("read: %q %v", got, errno)
	}
	for name, errno := range map[string]experimentalsys.Errno{
		"mkdir":   f.Mkdir("d", 0o755),
		"symlink": f.Symlink("sub", "l"),
		"unlink":  f.Unlink("sub/file.txt"),
		"rmdir":   f.Rmdir("sub"),
		"rename":  f.Rename("sub/file.txt", "moved"),
		"chmod":   f.Chmod("sub/file.txt", 0o777),
		"link":    f.Link("sub/file.txt", "l2"),
		"utimens": f.Utimens("sub/file.txt", 0, 0),
	} {
		if errno != experimentalsys.EROFS {
			t.Errorf("%s: %v, want EROFS", name, errno)
		}
	}
	for _, flag := range []experimentalsys.Oflag{experimentalsys.O_WRONLY, experimentalsys.O_RDWR, experimentalsys.O_WRONLY | experimentalsys.O_CREAT, experimentalsys.O_RDONLY | experimentalsys.O_TRUNC, experimentalsys.O_RDONLY | experimentalsys.O_APPEND} {
		if _, errno := f.OpenFile("sub/file.txt", flag, 0o644); errno != experimentalsys.EROFS {
			t.Errorf("open with %v: %v, want EROFS", flag, errno)
		}
	}
	if _, errno := f.OpenFile("nope", experimentalsys.O_WRONLY, 0); errno != experimentalsys.ENOENT {
		t.Errorf("open a missing file for writing: %v, want ENOENT", errno)
	}
	r, errno := f.OpenFile("sub/file.txt", experimentalsys.O_RDONLY, 0)
	if errno != 0 {
		t.Fatal(errno)
	}
	defer r.Close()
	if _, errno := r.Write([]byte("x")); errno == 0 {
		t.Errorf("write to a file opened read-only succeeded")
	}
	if errno := r.Truncate(0); errno != experimentalsys.EROFS {
		t.Errorf("truncate: %v, want EROFS", errno)
	}
	if errno := r.SetAppend(true); errno != experimentalsys.EROFS {
		t.Errorf("set append: %v, want EROFS", errno)
	}
	if b, _ := os.ReadFile(filepath.Join(vol, "sub", "file.txt")); string(b) != "inside" {
		t.Errorf("file changed: %q", b)
	}
}
