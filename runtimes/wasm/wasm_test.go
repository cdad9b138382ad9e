package wasm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

func TestModuleErrors(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	dir := t.TempDir()
	good, err := os.ReadFile(wat(t, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name, ref, reason string
		retryable         bool
		mention           string
	}{
		{"not wasm", fileRef(write("text.wasm", []byte("#!/bin/sh\necho hi\n"))), runtimes.ReasonInvalidModule, false, "not a WebAssembly binary"},
		{"truncated", fileRef(write("half.wasm", good[:len(good)/2])), runtimes.ReasonInvalidModule, false, ""},
		{"unknown import", fileRef(wat(t, "badimport")), runtimes.ReasonInvalidModule, false, "env.launch_missiles"},
		{"missing file", fileRef(filepath.Join(dir, "nope.wasm")), runtimes.ReasonModuleNotFound, true, "nope.wasm"},
		{"relative file", "file://rel/mod.wasm", runtimes.ReasonInvalidImageName, false, ""},
		{"unknown scheme", "ftp://x/mod.wasm", runtimes.ReasonInvalidImageName, false, "scheme"},
		{"no module store", "kyb://hello", runtimes.ReasonInvalidImageName, false, "module store"},
		{"bad oci ref", "UPPER/Case:tag!", runtimes.ReasonInvalidImageName, false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rt.EnsureImage(ctxT(t), tc.ref, runtimes.PullIfNotPresent, nil)
			wantReason(t, err, tc.reason, tc.retryable, tc.mention)
			// CreateContainer reports the same reason.
			sb := sandbox(t, rt)
			_, err = rt.CreateContainer(ctxT(t), sb.ID, &runtimes.ContainerConfig{Name: "c", Image: tc.ref, LogPath: filepath.Join(t.TempDir(), "log")})
			wantReason(t, err, tc.reason, tc.retryable, "")
		})
	}
	t.Run("missing file appears later", func(t *testing.T) {
		p := filepath.Join(dir, "later.wasm")
		_, err := rt.EnsureImage(ctxT(t), fileRef(p), runtimes.PullIfNotPresent, nil)
		wantReason(t, err, runtimes.ReasonModuleNotFound, true, "")
		if !errors.Is(err, runtimes.ErrNotFound) {
			t.Errorf("missing module: %v does not wrap ErrNotFound", err)
		}
		write("later.wasm", good)
		if _, err := rt.EnsureImage(ctxT(t), fileRef(p), runtimes.PullIfNotPresent, nil); err != nil {
			t.Fatalf("after the file appeared: %v", err)
		}
	})
}

func TestEndings(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	sb := sandbox(t, rt)
	prog := fileRef(testProg(t))
	for _, tc := range []struct {
		name    string
		cfg     runtimes.ContainerConfig
		code    int32
		reason  string
		message string
		log     string
	}{
		{"trap", runtimes.ContainerConfig{Image: fileRef(wat(t, "trap"))}, wasm.ExitCodeTrap, runtimes.ReasonFailed, "unreachable", "unreachable"},
		{"go module over its memory limit", runtimes.ContainerConfig{Image: prog, Args: []string{"alloc", "64"}, MemoryLimitBytes: 32 << 20}, 2, runtimes.ReasonOOMKilled, "out of memory", "out of memory"},
		{"go module under its memory limit", runtimes.ContainerConfig{Image: prog, Args: []string{"alloc", "16"}, MemoryLimitBytes: 128 << 20}, 0, runtimes.ReasonCompleted, "", "allocated 16 MiB"},
		{"refused grow handled", runtimes.ContainerConfig{Image: fileRef(wat(t, "grow")), MemoryLimitBytes: 8 << 20}, 3, runtimes.ReasonOOMKilled, "", ""},
		{"grow within limit", runtimes.ContainerConfig{Image: fileRef(wat(t, "grow")), MemoryLimitBytes: 128 << 20}, 0, runtimes.ReasonCompleted, "", ""},
		{"initial memory over limit", runtimes.ContainerConfig{Image: prog, MemoryLimitBytes: 64 << 10}, runtimes.ExitCodeKilled, runtimes.ReasonOOMKilled, "at start", ""},
		{"working dir", runtimes.ContainerConfig{Image: prog, WorkingDir: "/work", Args: []string{"env", "PWD"}}, 0, runtimes.ReasonCompleted, "", "PWD=/work"},
		{"no host files", runtimes.ContainerConfig{Image: prog, Args: []string{"cat", "/etc/passwd"}}, 1, runtimes.ReasonFailed, "", "cat:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res, log := runToEnd(t, rt, sb, tc.cfg)
			if res.ExitCode != tc.code || res.Reason != tc.reason || !strings.Contains(res.Message, tc.message) {
				t.Errorf("exit %d %q %q, want %d %q with %q; log:\n%s", res.ExitCode, res.Reason, res.Message, tc.code, tc.reason, tc.message, log)
			}
			if !strings.Contains(log, tc.log) {
				t.Errorf("log lacks %q:\n%s", tc.log, log)
			}
		})
	}
}

func TestStopPureLoop(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	sb := sandbox(t, rt)
	ctx := ctxT(t)
	id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "spin", Image: fileRef(wat(t, "loop")), LogPath: filepath.Join(t.TempDir(), "log")})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	grace := 2 * time.Second
	start := time.Now()
	if err := rt.StopContainer(ctx, id, grace); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > grace+5*time.Second {
		t.Errorf("stop took %v, want within grace+5s", d)
	}
	st, err := rt.ContainerStatus(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.State != runtimes.ContainerExited || st.ExitCode != runtimes.ExitCodeKilled {
		t.Errorf("after stop: %v exit %d, want exited %d", st.State, st.ExitCode, runtimes.ExitCodeKilled)
	}
}

// TestClusterModules: kyb:// modules come from the ModuleStore (on an
// agent, the node API) and a container is pinned to the module it was
// created with, even when the module is replaced before it starts.
func TestClusterModules(t *testing.T) {
	ctx := ctxT(t)
	obs := &mapStore{m: map[string][]byte{}}
	prog, err := os.ReadFile(testProg(t))
	if err != nil {
		t.Fatal(err)
	}
	hello, err := os.ReadFile(wat(t, "hello"))
	if err != nil {
		t.Fatal(err)
	}
	obs.put("prog", prog)
	rt := newRuntime(t, wasm.Config{Modules: obs})

	_, err = rt.EnsureImage(ctx, "kyb://absent", runtimes.PullIfNotPresent, nil)
	wantReason(t, err, runtimes.ReasonModuleNotFound, true, "absent")

	img, err := rt.EnsureImage(ctx, "kyb://prog", runtimes.PullIfNotPresent, nil)
	if err != nil {
		t.Fatal(err)
	}
	if img.Digest != sha(prog) || img.Size != int64(len(prog)) {
		t.Errorf("image %+v, want digest %s size %d", img, sha(prog), len(prog))
	}
	sb := sandbox(t, rt)
	cfg := &runtimes.ContainerConfig{Name: "c", Image: "kyb://prog", Args: []string{"out", "from the object store"}, LogPath: filepath.Join(t.TempDir(), "log")}
	id, err := rt.CreateContainer(ctx, sb.ID, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The container is pinned to the module it was created with, even
	// when the object is replaced before it starts.
	obs.put("prog", hello)
	st, _ := rt.ContainerStatus(ctx, id)
	if st.ImageRef != "kyb://prog@"+sha(prog) {
		t.Errorf("ImageRef %q, want kyb://prog@%s", st.ImageRef, sha(prog))
	}
	ch, _ := rt.WaitContainer(ctx, id)
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	if res := <-ch; res.ExitCode != 0 {
		t.Fatalf("exit %d %s", res.ExitCode, res.Message)
	}
	if b, _ := os.ReadFile(cfg.LogPath); !strings.Contains(string(b), "from the object store") {
		t.Errorf("log %q: the pinned module did not run", b)
	}
	// The pinned reference still names the old module; the node has it.
	if img, err := rt.EnsureImage(ctx, st.ImageRef, runtimes.PullIfNotPresent, nil); err != nil || img.Digest != sha(prog) {
		t.Errorf("EnsureImage(pinned %s): %+v %v", st.ImageRef, img, err)
	}
	// A node without it fetches, finds other bytes, and says so.
	other := newRuntime(t, wasm.Config{Modules: obs, CacheDir: t.TempDir()})
	_, err = other.EnsureImage(ctx, st.ImageRef, runtimes.PullIfNotPresent, nil)
	wantReason(t, err, runtimes.ReasonModuleNotFound, true, "pinned")
	// A new container gets the new module.
	img, err = rt.EnsureImage(ctx, "kyb://prog", runtimes.PullIfNotPresent, nil)
	if err != nil || img.Digest != sha(hello) {
		t.Errorf("after replacing the object: %+v %v, want digest %s", img, err, sha(hello))
	}
}

func TestOCI(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	prog, err := os.ReadFile(testProg(t))
	if err != nil {
		t.Fatal(err)
	}
	push := func(t *testing.T, repo string, img v1.Image) string {
		ref, err := name.ParseReference(host + "/" + repo)
		if err != nil {
			t.Fatal(err)
		}
		if err := remote.Write(ref, img); err != nil {
			t.Fatalf("push %s: %v", ref, err)
		}
		return ref.String()
	}
	artifact := func(t *testing.T, mt types.MediaType, b []byte) v1.Image {
		img, err := mutate.AppendLayers(empty.Image, static.NewLayer(b, mt))
		if err != nil {
			t.Fatal(err)
		}
		img = mutate.MediaType(img, types.OCIManifestSchema1)
		return mutate.ConfigMediaType(img, "application/vnd.wasm.config.v0+json")
	}
	tarImage := func(t *testing.T, files map[string][]byte) v1.Image {
		l, err := crane.Layer(files)
		if err != nil {
			t.Fatal(err)
		}
		img, err := mutate.AppendLayers(empty.Image, l)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	rt := newRuntime(t, wasm.Config{})
	sb := sandbox(t, rt)

	for _, tc := range []struct {
		name string
		ref  func(t *testing.T) string
	}{
		{"wasm content layer", func(t *testing.T) string {
			return push(t, "a/wasm:v1", artifact(t, wasm.MediaTypeWasmLayer, prog))
		}},
		{"module wasm layer", func(t *testing.T) string {
			return push(t, "a/module:v1", artifact(t, wasm.MediaTypeModuleWasmLayer, prog))
		}},
		{"tar layer with a .wasm", func(t *testing.T) string {
			return push(t, "a/tar:v1", tarImage(t, map[string][]byte{"README": []byte("hi"), "app/prog.wasm": prog}))
		}},
		{"index with a wasi platform", func(t *testing.T) string {
			idx := mutate.AppendManifests(empty.Index,
				mutate.IndexAddendum{Add: tarImage(t, map[string][]byte{"bin/sh": []byte("not this")}), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
				mutate.IndexAddendum{Add: artifact(t, wasm.MediaTypeWasmLayer, prog), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "wasip1", Architecture: "wasm"}}},
			)
			ref, _ := name.ParseReference(host + "/a/index:v1")
			if err := remote.WriteIndex(ref, idx); err != nil {
				t.Fatal(err)
			}
			return ref.String()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := tc.ref(t)
			img, err := rt.EnsureImage(ctxT(t), ref, runtimes.PullAlways, nil)
			if err != nil {
				t.Fatalf("EnsureImage(%s): %v", ref, err)
			}
			if img.Digest != sha(prog) {
				t.Errorf("digest %s, want the module's %s", img.Digest, sha(prog))
			}
			res, log := runToEnd(t, rt, sb, runtimes.ContainerConfig{Image: ref, Args: []string{"out", "from oci"}})
			if res.ExitCode != 0 || !strings.Contains(log, "from oci") {
				t.Errorf("exit %d log %q", res.ExitCode, log)
			}
		})
	}
	t.Run("errors", func(t *testing.T) {
		_, err := rt.EnsureImage(ctxT(t), host+"/a/absent:v1", runtimes.PullIfNotPresent, nil)
		wantReason(t, err, runtimes.ReasonModuleNotFound, true, "absent")
		noWasm := push(t, "a/nowasm:v1", tarImage(t, map[string][]byte{"bin/app": []byte("elf")}))
		_, err = rt.EnsureImage(ctxT(t), noWasm, runtimes.PullIfNotPresent, nil)
		wantReason(t, err, runtimes.ReasonInvalidModule, false, "no wasm layer")
		_, err = rt.EnsureImage(ctxT(t), host+"/a/never:v1", runtimes.PullNever, nil)
		wantReason(t, err, runtimes.ReasonErrImageNeverPull, false, "")
		down := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
		downHost := strings.TrimPrefix(down.URL, "http://")
		down.Close()
		_, err = rt.EnsureImage(ctxT(t), downHost+"/a/x:v1", runtimes.PullIfNotPresent, nil)
		wantReason(t, err, runtimes.ReasonErrImagePull, true, "")
	})
	t.Run("insecure registry by name", func(t *testing.T) {
		// A registry named in InsecureRegistries is reached over HTTP even
		// when it is not a loopback address; here "localhost" stands in.
		rt := newRuntime(t, wasm.Config{InsecureRegistries: []string{"localhost"}})
		ref := push(t, "a/named:v1", artifact(t, wasm.MediaTypeWasmLayer, prog))
		ref = strings.Replace(ref, "127.0.0.1", "localhost", 1)
		if _, err := rt.EnsureImage(ctxT(t), ref, runtimes.PullIfNotPresent, nil); err != nil {
			t.Fatal(err)
		}
	})
}

func sha(b []byte) string {
	return "sha256:" + hexSHA(b)
}

func TestStats(t *testing.T) {
	rt := newRuntime(t, wasm.Config{})
	sb := sandbox(t, rt)
	ctx := ctxT(t)
	id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: "c", Image: fileRef(testProg(t)), Args: []string{"alloc", "8", "sleep", "forever"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rt.ContainerStats(ctx, "nope"); !errors.Is(err, runtimes.ErrNotFound) {
		t.Errorf("stats of an unknown container: %v", err)
	}
	if err := rt.StartContainer(ctx, id); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		st, err := rt.ContainerStats(ctx, id)
		if err != nil {
			return err
		}
		if st.MemoryUsageBytes < 8<<20 {
			return fmt.Errorf("memory usage %d, want at least 8 MiB", st.MemoryUsageBytes)
		}
		return nil
	})
	if err := rt.StopContainer(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		st, err := rt.ContainerStats(ctx, id)
		if err != nil {
			return err
		}
		if st.MemoryUsageBytes != 0 {
			return fmt.Errorf("memory usage %d after stop, want 0", st.MemoryUsageBytes)
		}
		return nil
	})
}

// mapStore is a ModuleStore of modules kept in memory, replaceable.
type mapStore struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (s *mapStore) put(name string, b []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = b
}

func (s *mapStore) Info(_ context.Context, name string) (wasm.ModuleInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.m[name]
	if !ok {
		return wasm.ModuleInfo{}, fmt.Errorf("module %s: %w", name, fs.ErrNotExist)
	}
	return wasm.ModuleInfo{Digest: sha(b), Size: int64(len(b))}, nil
}

func (s *mapStore) Open(ctx context.Context, name string) (io.ReadCloser, wasm.ModuleInfo, error) {
	info, err := s.Info(ctx, name)
	if err != nil {
		return nil, info, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return io.NopCloser(bytes.NewReader(s.m[name])), info, nil
}
