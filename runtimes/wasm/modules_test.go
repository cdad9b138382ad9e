package wasm_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// copyFile copies the module at src to dir/name.
func copyFile(t *testing.T, src, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFileModules: file:// modules come only from the directories the
// agent allows, resolved beneath them, regular files only.
func TestFileModules(t *testing.T) {
	base := t.TempDir()
	allowed, other := filepath.Join(base, "modules"), filepath.Join(base, "other")
	for _, d := range []string{allowed, other} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	hello := wat(t, "hello")
	good := copyFile(t, hello, allowed, "hello.wasm")
	outside := copyFile(t, hello, other, "hello.wasm")
	if err := os.Symlink("../other/hello.wasm", filepath.Join(allowed, "out.wasm")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("hello.wasm", filepath.Join(allowed, "in.wasm")); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(allowed, "fifo.wasm"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(allowed, "dir.wasm"), 0o755); err != nil {
		t.Fatal(err)
	}
	helloBytes, _ := os.ReadFile(hello)

	rt := newRuntime(t, wasm.Config{ModuleDirs: []string{allowed, "/dev"}})
	for _, tc := range []struct {
		name, ref, reason string
		retryable         bool
		mention           string
	}{
		{"outside every allowed dir", fileRef(outside), runtimes.ReasonModuleNotAllowed, false, "--module-dir"},
		{"a host secret", "file:///etc/shadow", runtimes.ReasonModuleNotAllowed, false, "--module-dir"},
		{"dot-dot out of an allowed dir", fileRef(allowed + "/../other/hello.wasm"), runtimes.ReasonModuleNotAllowed, false, "outside"},
		{"symlink out of an allowed dir", fileRef(filepath.Join(allowed, "out.wasm")), runtimes.ReasonModuleNotAllowed, false, ""},
		{"a device", "file:///dev/zero", runtimes.ReasonInvalidModule, false, "not a regular file"},
		{"a fifo", fileRef(filepath.Join(allowed, "fifo.wasm")), runtimes.ReasonInvalidModule, false, "not a regular file"},
		{"a directory", fileRef(filepath.Join(allowed, "dir.wasm")), runtimes.ReasonInvalidModule, false, "not a regular file"},
		{"missing in an allowed dir", fileRef(filepath.Join(allowed, "nope.wasm")), runtimes.ReasonModuleNotFound, true, "nope.wasm"},
		{"pinned, outside, even when the node has the bytes", fileRef(outside) + "@" + sha(helloBytes), runtimes.ReasonModuleNotAllowed, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rt.EnsureImage(ctxT(t), tc.ref, runtimes.PullIfNotPresent, nil)
			wantReason(t, err, tc.reason, tc.retryable, tc.mention)
		})
		if tc.name == "missing in an allowed dir" {
			// The node now holds hello's bytes, for the pinned case.
			if _, err := rt.EnsureImage(ctxT(t), fileRef(good), runtimes.PullIfNotPresent, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Run("a refused path says nothing of what exists there", func(t *testing.T) {
		_, e1 := rt.EnsureImage(ctxT(t), "file:///etc/shadow", runtimes.PullIfNotPresent, nil)
		_, e2 := rt.EnsureImage(ctxT(t), "file:///etc/no-such-file-kyb", runtimes.PullIfNotPresent, nil)
		if e1 == nil || e2 == nil || strings.ReplaceAll(e1.Error(), "shadow", "X") != strings.ReplaceAll(e2.Error(), "no-such-file-kyb", "X") {
			t.Errorf("errors differ beyond the name:\n%v\n%v", e1, e2)
		}
	})
	for _, p := range []string{good, filepath.Join(allowed, "in.wasm")} {
		t.Run("allowed "+filepath.Base(p), func(t *testing.T) {
			img, err := rt.EnsureImage(ctxT(t), fileRef(p), runtimes.PullIfNotPresent, nil)
			if err != nil || img.Digest != sha(helloBytes) {
				t.Errorf("EnsureImage(%s): %+v %v", p, img, err)
			}
		})
	}
	t.Run("no dirs allowed", func(t *testing.T) {
		rt := newRuntime(t, wasm.Config{ModuleDirs: []string{}})
		for _, ref := range []string{fileRef(good), "file:///dev/zero"} {
			_, err := rt.EnsureImage(ctxT(t), ref, runtimes.PullIfNotPresent, nil)
			wantReason(t, err, runtimes.ReasonModuleNotAllowed, false, "--module-dir")
		}
	})
	t.Run("relative dir refused", func(t *testing.T) {
		if _, err := wasm.New(wasm.Config{StateDir: t.TempDir(), ModuleDirs: []string{"modules"}}, nil); err == nil || !strings.Contains(err.Error(), "absolute") {
			t.Errorf("New with a relative module dir: %v", err)
		}
	})
}

// fakeStore is a ModuleStore (the runtime's boundary) that serves one
// module and may lie about it.
type fakeStore struct {
	info   wasm.ModuleInfo
	open   func(ctx context.Context) io.Reader
	opened int
}

func (f *fakeStore) Info(ctx context.Context, name string) (wasm.ModuleInfo, error) {
	if name != "mod" {
		return wasm.ModuleInfo{}, fmt.Errorf("no module %s: %w", name, fs.ErrNotExist)
	}
	return f.info, nil
}

func (f *fakeStore) Open(ctx context.Context, name string) (io.ReadCloser, wasm.ModuleInfo, error) {
	if name != "mod" {
		return nil, wasm.ModuleInfo{}, fmt.Errorf("no module %s: %w", name, fs.ErrNotExist)
	}
	f.opened++
	return io.NopCloser(f.open(ctx)), f.info, nil
}

// endless yields byte after byte forever, calling each after n reads.
type endless struct {
	n    int
	each func()
}

func (e *endless) Read(p []byte) (int, error) {
	if e.n--; e.n == 0 && e.each != nil {
		e.each()
	}
	p[0] = 0
	return 1, nil
}

func TestModuleStore(t *testing.T) {
	hello, err := os.ReadFile(wat(t, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	bytesOf := func(b []byte) func(context.Context) io.Reader {
		return func(context.Context) io.Reader { return strings.NewReader(string(b)) }
	}
	t.Run("digest checked", func(t *testing.T) {
		other := append([]byte(nil), hello...)
		other[len(other)-1] ^= 1
		st := &fakeStore{info: wasm.ModuleInfo{Digest: sha(hello), Size: int64(len(hello))}, open: bytesOf(other)}
		rt := newRuntime(t, wasm.Config{Modules: st, CacheDir: t.TempDir()})
		_, err := rt.EnsureImage(ctxT(t), "kyb://mod", runtimes.PullIfNotPresent, nil)
		wantReason(t, err, runtimes.ReasonErrImagePull, true, "digest")
		st.open = bytesOf(hello)
		if img, err := rt.EnsureImage(ctxT(t), "kyb://mod", runtimes.PullIfNotPresent, nil); err != nil || img.Digest != sha(hello) {
			t.Errorf("honest store: %+v %v", img, err)
		}
	})
	t.Run("missing", func(t *testing.T) {
		rt := newRuntime(t, wasm.Config{Modules: &fakeStore{}})
		_, err := rt.EnsureImage(ctxT(t), "kyb://absent", runtimes.PullIfNotPresent, nil)
		wantReason(t, err, runtimes.ReasonModuleNotFound, true, "absent")
		if !errors.Is(err, runtimes.ErrNotFound) {
			t.Errorf("%v does not wrap ErrNotFound", err)
		}
	})
	t.Run("size over the cap, said", func(t *testing.T) {
		st := &fakeStore{info: wasm.ModuleInfo{Size: 1 << 30}, open: bytesOf(hello)}
		rt := newRuntime(t, wasm.Config{Modules: st, CacheDir: t.TempDir()})
		_, err := rt.EnsureImage(ctxT(t), "kyb://mod", runtimes.PullIfNotPresent, nil)
		wantReason(t, err, runtimes.ReasonInvalidModule, false, "limit")
		if st.opened != 0 {
			t.Errorf("a module said to be over the cap was opened")
		}
	})
	t.Run("size over the cap, unsaid", func(t *testing.T) {
		st := &fakeStore{info: wasm.ModuleInfo{Size: 10}, open: func(context.Context) io.Reader { return &endless{} }}
		rt := newRuntime(t, wasm.Config{Modules: st, CacheDir: t.TempDir(), MaxModuleBytes: 64 << 10})
		_, err := rt.EnsureImage(ctxT(t), "kyb://mod", runtimes.PullIfNotPresent, nil)
		wantReason(t, err, runtimes.ReasonInvalidModule, false, "limit")
	})
	t.Run("cancelled while reading", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctxT(t))
		st := &fakeStore{info: wasm.ModuleInfo{Size: 10}, open: func(context.Context) io.Reader { return &endless{n: 1000, each: cancel} }}
		rt := newRuntime(t, wasm.Config{Modules: st, CacheDir: t.TempDir()})
		_, err := rt.EnsureImage(ctx, "kyb://mod", runtimes.PullIfNotPresent, nil)
		if !errors.Is(err, context.Canceled) {
			t.Errorf("read after cancel: %v, want context.Canceled", err)
		}
	})
	t.Run("file over the cap", func(t *testing.T) {
		rt := newRuntime(t, wasm.Config{MaxModuleBytes: int64(len(hello) - 1), CacheDir: t.TempDir()})
		_, err := rt.EnsureImage(ctxT(t), fileRef(copyFile(t, wat(t, "hello"), t.TempDir(), "m.wasm")), runtimes.PullIfNotPresent, nil)
		wantReason(t, err, runtimes.ReasonInvalidModule, false, "limit")
	})
}

func TestDefaultMemoryLimit(t *testing.T) {
	prog := fileRef(testProg(t))
	for _, tc := range []struct {
		name   string
		def    int64
		limit  int64
		reason string
	}{
		{"the default applies when no limit is set", 32 << 20, 0, runtimes.ReasonOOMKilled},
		{"a set limit wins over the default", 32 << 20, 256 << 20, runtimes.ReasonCompleted},
		{"a negative default is no limit", -1, 0, runtimes.ReasonCompleted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rt := newRuntime(t, wasm.Config{DefaultMemoryLimitBytes: tc.def})
			res, log := runToEnd(t, rt, sandbox(t, rt), runtimes.ContainerConfig{Image: prog, Args: []string{"alloc", "48"}, MemoryLimitBytes: tc.limit})
			if res.Reason != tc.reason {
				t.Errorf("exit %d %s %q, want %s; log:\n%s", res.ExitCode, res.Reason, res.Message, tc.reason, log)
			}
		})
	}
}
