package runtimetest

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// File is one entry of a test image's only layer.
type File struct {
	// Name is the path without a leading slash; a trailing slash makes a
	// directory (mode 1777).
	Name string
	// Data is a regular file's content (mode 0755).
	Data []byte
	// Link, when set, makes the entry a symbolic link to Link.
	Link string
}

// Image is a one-layer linux image of the machine's architecture.
type Image struct {
	// Repo is the repository and tag in the registry, e.g. "kyb/app:v1".
	Repo       string
	Files      []File
	Entrypoint []string
	Env        []string
}

// PushImage pushes img to an in-process registry on loopback (closed at
// cleanup; containerd pulls from it over plain HTTP, as from any loopback
// registry) and returns the image's reference.
func PushImage(t testing.TB, img Image) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range img.Files {
		h := &tar.Header{Name: f.Name, ModTime: time.Unix(0, 0)}
		switch {
		case f.Link != "":
			h.Typeflag, h.Linkname, h.Mode = tar.TypeSymlink, f.Link, 0o777
		case strings.HasSuffix(f.Name, "/"):
			h.Typeflag, h.Mode = tar.TypeDir, 0o1777
		default:
			h.Typeflag, h.Mode, h.Size = tar.TypeReg, 0o755, int64(len(f.Data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(f.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(buf.Bytes())), nil })
	if err != nil {
		t.Fatal(err)
	}
	image, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := image.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	cf.Config.Entrypoint, cf.Config.Env = img.Entrypoint, img.Env
	if image, err = mutate.ConfigFile(image, cf); err != nil {
		t.Fatal(err)
	}
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(reg.Close)
	ref := strings.TrimPrefix(reg.URL, "http://") + "/" + img.Repo
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(r, image); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// BinaryImage pushes the static binary at path as /file, the image's
// entrypoint (with /tmp and PATH=/), and returns the image's reference
// (repository kyb/FILE:v1).
func BinaryImage(t testing.TB, path, file string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return PushImage(t, Image{
		Repo:       "kyb/" + file + ":v1",
		Files:      []File{{Name: "tmp/"}, {Name: file, Data: data}},
		Entrypoint: []string{"/" + file},
		Env:        []string{"PATH=/"},
	})
}

// ShellImage packs the execsh test program (./execsh, a stand-in for a
// shell; true, false, echo, cat, sleep and tar link to it) as /bin/sh in a
// one-layer image with entrypoint [/bin/sh -c], pushes it to an in-process
// registry (closed at cleanup) and returns its reference.
func ShellImage(t testing.TB) string {
	t.Helper()
	data, err := os.ReadFile(BuildGo(t, "./runtimes/runtimetest/execsh", "linux", runtime.GOARCH))
	if err != nil {
		t.Fatal(err)
	}
	files := []File{{Name: "bin/"}, {Name: "tmp/"}, {Name: "bin/sh", Data: data}}
	for _, l := range []string{"true", "false", "echo", "cat", "sleep", "tar"} {
		files = append(files, File{Name: "bin/" + l, Link: "sh"})
	}
	return PushImage(t, Image{Repo: "kyb/execsh:v1", Files: files, Entrypoint: []string{"/bin/sh", "-c"}, Env: []string{"PATH=/bin"}})
}
