package wasm

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/kybernetes/kybernetes/runtimes"
)

// Media types of wasm module layers accepted in OCI artifacts.
const (
	MediaTypeWasmLayer       = "application/vnd.wasm.content.layer.v1+wasm"
	MediaTypeModuleWasmLayer = "application/vnd.module.wasm.content.layer.v1+wasm"
)

// maxModuleBytes caps a module's size.
const maxModuleBytes = 512 << 20

// fileSeen is what a module file looked like when it was last read.
type fileSeen struct {
	size   int64
	mtime  time.Time
	digest string
}

type srcKind int

const (
	srcFile srcKind = iota + 1
	srcObject
	srcOCI
)

type source struct {
	kind srcKind
	ref  string
	path string         // srcFile
	obj  string         // srcObject
	oci  name.Reference // srcOCI
}

func invalidRef(ref string, err error) error {
	return runtimes.WithReason(ReasonInvalidImageName, false, fmt.Errorf("module reference %q: %w", ref, err))
}

func parseRef(ref string) (*source, error) {
	switch {
	case ref == "":
		return nil, invalidRef(ref, errors.New("empty"))
	case strings.HasPrefix(ref, "file://"):
		u, err := url.Parse(ref)
		if err != nil {
			return nil, invalidRef(ref, err)
		}
		if u.Host != "" && u.Host != "localhost" || !filepath.IsAbs(u.Path) {
			return nil, invalidRef(ref, errors.New("a file reference is file:///absolute/path"))
		}
		return &source{kind: srcFile, ref: ref, path: u.Path}, nil
	case strings.HasPrefix(ref, "/"):
		return &source{kind: srcFile, ref: ref, path: filepath.Clean(ref)}, nil
	case strings.HasPrefix(ref, "kyb://"):
		obj := strings.TrimPrefix(ref, "kyb://")
		if i := strings.LastIndex(obj, "@"); i >= 0 {
			obj = obj[:i]
		}
		if obj == "" {
			return nil, invalidRef(ref, errors.New("kyb://NAME needs a name"))
		}
		return &source{kind: srcObject, ref: ref, obj: obj}, nil
	case strings.Contains(ref, "://"):
		return nil, invalidRef(ref, errors.New("unknown scheme; use file://, kyb:// or an OCI reference"))
	}
	var opts []name.Option
	if r, err := name.ParseReference(ref); err == nil && insecureHost(r.Context().RegistryStr(), nil) {
		opts = append(opts, name.Insecure)
	}
	r, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, invalidRef(ref, err)
	}
	return &source{kind: srcOCI, ref: ref, oci: r}, nil
}

func insecureHost(host string, list []string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	if h == "localhost" {
		return true
	}
	if ip := net.ParseIP(h); ip != nil && ip.IsLoopback() {
		return true
	}
	return slices.Contains(list, host) || slices.Contains(list, h)
}

// fetch gets the module of src, stores it by digest, and returns the digest.
func (r *Runtime) fetch(ctx context.Context, src *source) (string, error) {
	var (
		b   []byte
		err error
	)
	switch src.kind {
	case srcFile:
		// A file that has not changed (same size and modification time)
		// keeps its digest without being read again.
		fi, statErr := os.Stat(src.path)
		if statErr == nil {
			r.mu.Lock()
			seen, ok := r.files[src.path]
			r.mu.Unlock()
			if ok && seen.size == fi.Size() && seen.mtime.Equal(fi.ModTime()) {
				if _, err := os.Stat(r.blobPath(seen.digest)); err == nil {
					return seen.digest, nil
				}
			}
		}
		b, err = os.ReadFile(src.path)
		if errors.Is(err, os.ErrNotExist) {
			return "", runtimes.WithReason(ReasonModuleNotFound, true, runtimes.NotFoundf("module file %s", src.path))
		}
		if err != nil {
			return "", runtimes.WithReason(ReasonModuleNotFound, true, fmt.Errorf("read module file: %w", err))
		}
		d, err := r.store(b)
		if err == nil && statErr == nil {
			r.mu.Lock()
			r.files[src.path] = fileSeen{size: fi.Size(), mtime: fi.ModTime(), digest: d}
			r.mu.Unlock()
		}
		return d, err
	case srcObject:
		var digest string
		digest, b, err = r.fetchObject(ctx, src.obj)
		if err == nil && b == nil {
			return digest, nil // the node has these bytes already
		}
	case srcOCI:
		b, err = r.fetchOCI(ctx, src)
	}
	if err != nil {
		return "", err
	}
	return r.store(b)
}

// store writes module bytes under CacheDir by digest.
func (r *Runtime) store(b []byte) (string, error) {
	sum := sha256.Sum256(b)
	hexsum := hex.EncodeToString(sum[:])
	p := r.blobPath("sha256:" + hexsum)
	if _, err := os.Stat(p); err == nil {
		return "sha256:" + hexsum, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), "tmp-*")
	if err != nil {
		return "", fmt.Errorf("store module: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return "", fmt.Errorf("store module: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("store module: %w", err)
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return "", fmt.Errorf("store module: %w", err)
	}
	return "sha256:" + hexsum, nil
}

func (r *Runtime) blobPath(digest string) string {
	return filepath.Join(r.cfg.CacheDir, "modules", strings.ReplaceAll(digest, ":", "-")+".wasm")
}

// fetchObject reads the module object obj. When the node already holds the
// bytes of the object's digest it returns that digest and nil bytes, with
// one metadata request and no read or hash of the module.
func (r *Runtime) fetchObject(ctx context.Context, obj string) (string, []byte, error) {
	if r.cfg.ObjectStore == nil {
		return "", nil, runtimes.WithReason(ReasonInvalidImageName, false, fmt.Errorf("kyb://%s: this node has no module object store", obj))
	}
	info, err := r.cfg.ObjectStore.GetInfo(ctx, obj)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", nil, runtimes.WithReason(ReasonModuleNotFound, true, runtimes.NotFoundf("module object %s", obj))
	}
	if err != nil {
		return "", nil, runtimes.WithReason(ReasonImagePull, true, fmt.Errorf("module object %s: %w", obj, err))
	}
	if d := objectDigest(info.Digest); d != "" {
		if _, err := os.Stat(r.blobPath(d)); err == nil {
			return d, nil, nil
		}
	}
	if info.Size > maxModuleBytes {
		return "", nil, runtimes.WithReason(ReasonInvalidModule, false, fmt.Errorf("module object %s: %d bytes is over the %d limit", obj, info.Size, maxModuleBytes))
	}
	b, err := r.cfg.ObjectStore.GetBytes(ctx, obj)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", nil, runtimes.WithReason(ReasonModuleNotFound, true, runtimes.NotFoundf("module object %s", obj))
	}
	if err != nil {
		return "", nil, runtimes.WithReason(ReasonImagePull, true, fmt.Errorf("module object %s: %w", obj, err))
	}
	return "", b, nil
}

// objectDigest turns JetStream's "SHA-256=<base64url>" into "sha256:<hex>".
func objectDigest(d string) string {
	v, ok := strings.CutPrefix(d, "SHA-256=")
	if !ok {
		return ""
	}
	raw, err := base64.URLEncoding.DecodeString(v)
	if err != nil {
		return ""
	}
	return "sha256:" + hex.EncodeToString(raw)
}

func (r *Runtime) fetchOCI(ctx context.Context, src *source) ([]byte, error) {
	ref := src.oci
	if insecureHost(ref.Context().RegistryStr(), r.cfg.InsecureRegistries) {
		var err error
		if ref, err = name.ParseReference(src.ref, name.Insecure); err != nil {
			return nil, invalidRef(src.ref, err)
		}
	}
	opts := []remote.Option{remote.WithContext(ctx), remote.WithTransport(http.DefaultTransport)}
	desc, err := remote.Get(ref, opts...)
	if err != nil {
		return nil, pullError(src.ref, err)
	}
	var img v1.Image
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return nil, pullError(src.ref, err)
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return nil, pullError(src.ref, err)
		}
		if len(im.Manifests) == 0 {
			return nil, runtimes.WithReason(ReasonInvalidModule, false, fmt.Errorf("%s: empty index", src.ref))
		}
		pick := im.Manifests[0]
		for _, m := range im.Manifests {
			if p := m.Platform; p != nil && (p.Architecture == "wasm" || strings.HasPrefix(p.OS, "wasi") || p.OS == "wasip1") {
				pick = m
				break
			}
		}
		if img, err = idx.Image(pick.Digest); err != nil {
			return nil, pullError(src.ref, err)
		}
	} else if img, err = desc.Image(); err != nil {
		return nil, pullError(src.ref, err)
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, pullError(src.ref, err)
	}
	for _, l := range layers {
		mt, err := l.MediaType()
		if err != nil {
			return nil, pullError(src.ref, err)
		}
		if mt == MediaTypeWasmLayer || mt == MediaTypeModuleWasmLayer || mt == "application/wasm" {
			rc, err := l.Compressed()
			if err != nil {
				return nil, pullError(src.ref, err)
			}
			defer rc.Close()
			b, err := io.ReadAll(io.LimitReader(rc, maxModuleBytes+1))
			if err != nil {
				return nil, pullError(src.ref, err)
			}
			return b, nil
		}
	}
	// A container-style image: find a .wasm file in its layers, last first.
	for i := len(layers) - 1; i >= 0; i-- {
		mt, _ := layers[i].MediaType()
		if !isTarLayer(mt) {
			continue
		}
		b, err := wasmFromTar(layers[i])
		if err != nil {
			return nil, pullError(src.ref, err)
		}
		if b != nil {
			return b, nil
		}
	}
	return nil, runtimes.WithReason(ReasonInvalidModule, false, fmt.Errorf("%s: no wasm layer (%s or %s) and no .wasm file in its layers", src.ref, MediaTypeWasmLayer, MediaTypeModuleWasmLayer))
}

func isTarLayer(mt types.MediaType) bool {
	switch mt {
	case types.DockerLayer, types.OCILayer, types.OCIUncompressedLayer, types.DockerUncompressedLayer, types.OCILayerZStd:
		return true
	}
	return strings.Contains(string(mt), "tar")
}

func wasmFromTar(l v1.Layer) ([]byte, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("read layer: %w", err)
		}
		if h.Typeflag == tar.TypeReg && path.Ext(h.Name) == ".wasm" {
			var buf bytes.Buffer
			if _, err := io.Copy(&buf, io.LimitReader(tr, maxModuleBytes+1)); err != nil {
				return nil, fmt.Errorf("read %s: %w", h.Name, err)
			}
			return buf.Bytes(), nil
		}
	}
}

func pullError(ref string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return runtimes.WithReason(ReasonModuleNotFound, true, fmt.Errorf("pull %s: %w: %w", ref, runtimes.ErrNotFound, err))
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode || d.Code == transport.BlobUnknownErrorCode {
				return runtimes.WithReason(ReasonModuleNotFound, true, fmt.Errorf("pull %s: %w: %w", ref, runtimes.ErrNotFound, err))
			}
		}
	}
	return runtimes.WithReason(ReasonImagePull, true, fmt.Errorf("pull %s: %w", ref, err))
}
