package wasm

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/kybernetes/kybernetes/runtimes"
)

// Media types of wasm module layers accepted in OCI artifacts.
const (
	MediaTypeWasmLayer       = "application/vnd.wasm.content.layer.v1+wasm"
	MediaTypeModuleWasmLayer = "application/vnd.module.wasm.content.layer.v1+wasm"
)

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
	// auth are the logins of the pod's imagePullSecrets (srcOCI).
	auth []runtimes.RegistryAuth
}

func invalidRef(ref string, err error) error {
	return runtimes.WithReason(runtimes.ReasonInvalidImageName, false, fmt.Errorf("module reference %q: %w", ref, err))
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
		return r.fetchFile(ctx, src.path)
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

// moduleDir returns the allowed module directory p (absolute) lies
// beneath and p relative to it. It looks at names only, never at the file
// system, so a refused path reveals nothing about what exists there.
func (r *Runtime) moduleDir(p string) (dir, rel string, err error) {
	p = filepath.Clean(p)
	if len(r.cfg.ModuleDirs) == 0 {
		return "", "", runtimes.WithReason(runtimes.ReasonModuleNotAllowed, false,
			fmt.Errorf("module file %s: file:// modules are not allowed on this node (the agent allows them only from the directories given with --module-dir)", p))
	}
	for _, d := range r.cfg.ModuleDirs {
		rel, err := filepath.Rel(d, p)
		if err == nil && rel != ".." && !strings.HasPrefix(rel, "../") {
			return d, rel, nil
		}
	}
	return "", "", runtimes.WithReason(runtimes.ReasonModuleNotAllowed, false,
		fmt.Errorf("module file %s is outside the directories this node allows modules from (--module-dir %s)", p, strings.Join(r.cfg.ModuleDirs, ", ")))
}

// fetchFile reads the module file p, resolved beneath the allowed module
// directory that holds it (symlinks may not lead out of it), and stores it.
// Only regular files are read, up to MaxModuleBytes; a file that has not
// changed (same size and modification time) keeps its digest without being
// read again.
func (r *Runtime) fetchFile(ctx context.Context, p string) (string, error) {
	dir, rel, err := r.moduleDir(p)
	if err != nil {
		return "", err
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return "", runtimes.WithReason(runtimes.ReasonModuleNotFound, true, fmt.Errorf("module directory %s: %w", dir, err))
	}
	defer root.Close()
	fi, err := root.Stat(rel)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", runtimes.WithReason(runtimes.ReasonModuleNotFound, true, runtimes.NotFoundf("module file %s", p))
	case err != nil:
		// A symlink that leads out of the directory, or a permission error.
		return "", runtimes.WithReason(runtimes.ReasonModuleNotAllowed, false, fmt.Errorf("module file %s (beneath %s): %w", p, dir, err))
	}
	if err := r.checkModuleFile(p, fi); err != nil {
		return "", err
	}
	r.mu.Lock()
	seen, ok := r.files[p]
	r.mu.Unlock()
	if ok && seen.size == fi.Size() && seen.mtime.Equal(fi.ModTime()) {
		if _, err := os.Stat(r.blobPath(seen.digest)); err == nil {
			return seen.digest, nil
		}
	}
	// O_NONBLOCK: should the name become a FIFO after the check above, the
	// open does not wait for a writer (and the check below refuses it).
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return "", runtimes.WithReason(runtimes.ReasonModuleNotFound, true, fmt.Errorf("open module file %s: %w", p, err))
	}
	defer f.Close()
	ofi, err := f.Stat()
	if err != nil {
		return "", runtimes.WithReason(runtimes.ReasonModuleNotFound, true, fmt.Errorf("stat module file %s: %w", p, err))
	}
	if err := r.checkModuleFile(p, ofi); err != nil {
		return "", err
	}
	b, err := readCapped(ctx, f, r.cfg.MaxModuleBytes)
	if err != nil {
		return "", r.readError("module file "+p, err)
	}
	d, err := r.store(b)
	if err == nil {
		r.mu.Lock()
		r.files[p] = fileSeen{size: ofi.Size(), mtime: ofi.ModTime(), digest: d}
		r.mu.Unlock()
	}
	return d, err
}

// checkModuleFile refuses what is not a regular file (a device such as
// /dev/zero would be read forever, a FIFO would block) and a file over
// MaxModuleBytes.
func (r *Runtime) checkModuleFile(p string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return runtimes.WithReason(runtimes.ReasonInvalidModule, false, fmt.Errorf("module file %s is not a regular file (mode %v)", p, fi.Mode().Type()))
	}
	if fi.Size() > r.cfg.MaxModuleBytes {
		return tooLarge("module file "+p, fi.Size(), r.cfg.MaxModuleBytes)
	}
	return nil
}

func tooLarge(what string, size, limit int64) error {
	return runtimes.WithReason(runtimes.ReasonInvalidModule, false, fmt.Errorf("%s: %d bytes is over the module size limit of %d bytes", what, size, limit))
}

// errTooLarge is what readCapped returns for a stream longer than its cap.
var errTooLarge = errors.New("over the module size limit")

// readCapped reads rd to its end, failing with errTooLarge past limit bytes
// and with ctx's error once ctx is done.
func readCapped(ctx context.Context, rd io.Reader, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(ctxReader{ctx, rd}, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, errTooLarge
	}
	return b, nil
}

// readError classes an error of readCapped.
func (r *Runtime) readError(what string, err error) error {
	switch {
	case errors.Is(err, errTooLarge):
		return runtimes.WithReason(runtimes.ReasonInvalidModule, false, fmt.Errorf("%s: more than the module size limit of %d bytes", what, r.cfg.MaxModuleBytes))
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("read %s: %w", what, err)
	}
	return runtimes.WithReason(runtimes.ReasonErrImagePull, true, fmt.Errorf("read %s: %w", what, err))
}

// ctxReader is a reader that fails with ctx's error once ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
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

// fetchObject reads the kyb:// module obj from Config.Modules. When the
// node already holds the bytes of the module's digest it returns that
// digest and nil bytes, with one Info request and no read or hash of the
// module. The bytes read are checked against the digest the store gives.
func (r *Runtime) fetchObject(ctx context.Context, obj string) (string, []byte, error) {
	if r.cfg.Modules == nil {
		return "", nil, runtimes.WithReason(runtimes.ReasonInvalidImageName, false, fmt.Errorf("kyb://%s: this node has no module store", obj))
	}
	storeErr := func(err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return runtimes.WithReason(runtimes.ReasonModuleNotFound, true, fmt.Errorf("module %s: %w: %w", obj, runtimes.ErrNotFound, err))
		}
		return runtimes.WithReason(runtimes.ReasonErrImagePull, true, fmt.Errorf("module %s: %w", obj, err))
	}
	info, err := r.cfg.Modules.Info(ctx, obj)
	if err != nil {
		return "", nil, storeErr(err)
	}
	if info.Digest != "" {
		if _, err := os.Stat(r.blobPath(info.Digest)); err == nil {
			return info.Digest, nil, nil
		}
	}
	if info.Size > r.cfg.MaxModuleBytes {
		return "", nil, tooLarge("module "+obj, info.Size, r.cfg.MaxModuleBytes)
	}
	rc, oinfo, err := r.cfg.Modules.Open(ctx, obj)
	if err != nil {
		return "", nil, storeErr(err)
	}
	defer rc.Close()
	b, err := readCapped(ctx, rc, r.cfg.MaxModuleBytes)
	if err != nil {
		return "", nil, r.readError("module "+obj, err)
	}
	want := oinfo.Digest // the object read, should it have changed since Info
	if want == "" {
		want = info.Digest
	}
	if got := digestOf(b); want != "" && got != want {
		return "", nil, runtimes.WithReason(runtimes.ReasonErrImagePull, true, fmt.Errorf("module %s: read %d bytes of digest %s, the store says %s", obj, len(b), got, want))
	}
	return "", b, nil
}

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
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
	if a, ok := runtimes.AuthFor(src.auth, ref.Context().RegistryStr()); ok {
		opts = append(opts, remote.WithAuth(&authn.Basic{Username: a.Username, Password: a.Password}))
	}
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
			return nil, runtimes.WithReason(runtimes.ReasonInvalidModule, false, fmt.Errorf("%s: empty index", src.ref))
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
			if size, err := l.Size(); err == nil && size > r.cfg.MaxModuleBytes {
				return nil, tooLarge(src.ref, size, r.cfg.MaxModuleBytes)
			}
			rc, err := l.Compressed()
			if err != nil {
				return nil, pullError(src.ref, err)
			}
			defer rc.Close()
			b, err := readCapped(ctx, rc, r.cfg.MaxModuleBytes)
			if errors.Is(err, errTooLarge) {
				return nil, r.readError(src.ref, err)
			}
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
		b, err := wasmFromTar(ctx, layers[i], r.cfg.MaxModuleBytes)
		if errors.Is(err, errTooLarge) {
			return nil, r.readError(src.ref, err)
		}
		if err != nil {
			return nil, pullError(src.ref, err)
		}
		if b != nil {
			return b, nil
		}
	}
	return nil, runtimes.WithReason(runtimes.ReasonInvalidModule, false, fmt.Errorf("%s: no wasm layer (%s or %s) and no .wasm file in its layers", src.ref, MediaTypeWasmLayer, MediaTypeModuleWasmLayer))
}

func isTarLayer(mt types.MediaType) bool {
	switch mt {
	case types.DockerLayer, types.OCILayer, types.OCIUncompressedLayer, types.DockerUncompressedLayer, types.OCILayerZStd:
		return true
	}
	return strings.Contains(string(mt), "tar")
}

// wasmFromTar returns the first .wasm file of a tar layer (nil when there
// is none), failing with errTooLarge past limit bytes.
func wasmFromTar(ctx context.Context, l v1.Layer, limit int64) ([]byte, error) {
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
			if h.Size > limit {
				return nil, errTooLarge
			}
			b, err := readCapped(ctx, tr, limit)
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", h.Name, err)
			}
			return b, nil
		}
	}
}

func pullError(ref string, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		if te.StatusCode == http.StatusNotFound {
			return runtimes.WithReason(runtimes.ReasonModuleNotFound, true, fmt.Errorf("pull %s: %w: %w", ref, runtimes.ErrNotFound, err))
		}
		for _, d := range te.Errors {
			if d.Code == transport.ManifestUnknownErrorCode || d.Code == transport.NameUnknownErrorCode || d.Code == transport.BlobUnknownErrorCode {
				return runtimes.WithReason(runtimes.ReasonModuleNotFound, true, fmt.Errorf("pull %s: %w: %w", ref, runtimes.ErrNotFound, err))
			}
		}
	}
	return runtimes.WithReason(runtimes.ReasonErrImagePull, true, fmt.Errorf("pull %s: %w", ref, err))
}
