package apiserver

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nats.go/micro"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/authz"
)

const (
	// MaxModuleBytes caps the size of a pushed module (as the wasm runtime
	// caps what it runs).
	MaxModuleBytes = 512 << 20
	// ModuleChunkSize is the largest chunk of an upload or a download: well
	// under the 1 MiB request limit, with room for headers.
	ModuleChunkSize = 256 << 10
)

// checkModuleName returns a 400 unless name is a DNS-1123 subdomain, what a
// kyb://NAME reference names.
func checkModuleName(name string) error {
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		if len(name) > 80 {
			name = name[:80] + "..."
		}
		return api.NewBadRequest("name: %q: %s", name, strings.Join(errs, "; "))
	}
	return nil
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

func moduleInfo(o *jetstream.ObjectInfo) api.ModuleInfo {
	return api.ModuleInfo{Name: o.Name, Size: int64(o.Size), Digest: objectDigest(o.Digest)}
}

func (s *Server) handleModuleList(req micro.Request) {
	if err := s.authorize(req, api.VerbList, authz.ResourceModules, "", ""); err != nil {
		syncErr(req, err)
		return
	}
	s.dispatch(req, func(ctx context.Context) ([]byte, error) {
		list, err := s.modules.List(ctx)
		if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
			return nil, fmt.Errorf("list modules: %w", err)
		}
		out := api.ModuleList{Items: []api.ModuleInfo{}}
		for _, o := range list {
			out.Items = append(out.Items, moduleInfo(o))
		}
		slices.SortFunc(out.Items, func(a, b api.ModuleInfo) int { return strings.Compare(a.Name, b.Name) })
		return json.Marshal(out)
	})
}

// moduleRequest decodes and checks a ModuleRequest; on failure it has
// answered req.
func moduleRequest(req micro.Request) (api.ModuleRequest, bool) {
	var r api.ModuleRequest
	err := decodeBody(req.Data(), &r, "ModuleRequest")
	if err == nil {
		err = checkModuleName(r.Name)
	}
	if err == nil && r.Offset < 0 {
		err = api.NewBadRequest("offset: must not be negative")
	}
	if err != nil {
		syncErr(req, err)
		return r, false
	}
	return r, true
}

func (s *Server) moduleInfo(ctx context.Context, name string) ([]byte, error) {
	o, err := s.modules.GetInfo(ctx, name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return nil, api.NewNotFound("Module", name)
	}
	if err != nil {
		return nil, fmt.Errorf("module %s: %w", name, err)
	}
	return json.Marshal(moduleInfo(o))
}

func (s *Server) handleModuleGet(req micro.Request) {
	r, ok := moduleRequest(req)
	if !ok {
		return
	}
	if err := s.authorize(req, api.VerbGet, authz.ResourceModules, "", r.Name); err != nil {
		syncErr(req, err)
		return
	}
	s.dispatch(req, func(ctx context.Context) ([]byte, error) { return s.moduleInfo(ctx, r.Name) })
}

// --- a node's modules ------------------------------------------------------

// nodeMayRead reports whether a pod bound to node references kyb://name
// (pinned or not), as the cache sees it now.
func (s *Server) nodeMayRead(node, name string) bool {
	ref := "kyb://" + name
	found := false
	s.cache.podsOn(node, func(p *api.Pod) bool {
		for _, cs := range [][]api.Container{p.Spec.InitContainers, p.Spec.Containers} {
			for _, c := range cs {
				if c.Image == ref || strings.HasPrefix(c.Image, ref+"@") {
					found = true
					return false
				}
			}
		}
		return true
	})
	return found
}

// nodeModuleRequest resolves the node and the module it asks for, and
// checks that it may read it; on failure it has answered req.
func (s *Server) nodeModuleRequest(req micro.Request) (string, api.ModuleRequest, bool) {
	node, err := nodeOf(req.Subject())
	if err != nil {
		syncErr(req, err)
		return "", api.ModuleRequest{}, false
	}
	r, ok := moduleRequest(req)
	if !ok {
		return "", r, false
	}
	if !s.nodeMayRead(node, r.Name) {
		syncErr(req, api.NewForbidden("node %q may not read module %q: no pod bound to it references kyb://%s", node, r.Name, r.Name))
		return "", r, false
	}
	return node, r, true
}

func (s *Server) handleNodeModuleInfo(req micro.Request) {
	_, r, ok := s.nodeModuleRequest(req)
	if !ok {
		return
	}
	s.dispatch(req, func(ctx context.Context) ([]byte, error) { return s.moduleInfo(ctx, r.Name) })
}

func (s *Server) handleNodeModule(req micro.Request) {
	_, r, ok := s.nodeModuleRequest(req)
	if !ok {
		return
	}
	s.serveStream(req, s.nodeStreams, "module", func(ctx context.Context, st *stream) (string, error) {
		return s.runModule(ctx, st, r)
	})
}

// runModule sends the module's bytes from r.Offset in chunks, each with its
// offset, digest and size, and returns the offset to resume from ("" when
// all is sent).
func (s *Server) runModule(ctx context.Context, st *stream, r api.ModuleRequest) (string, error) {
	res, err := s.modules.Get(ctx, r.Name)
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", api.NewNotFound("Module", r.Name)
	}
	if err != nil {
		return "", fmt.Errorf("module %s: %w", r.Name, err)
	}
	defer res.Close()
	info, err := res.Info()
	if err != nil {
		return "", fmt.Errorf("module %s: %w", r.Name, err)
	}
	mi := moduleInfo(info)
	if r.Digest != "" && r.Digest != mi.Digest {
		return "", api.NewConflict("Module", r.Name, fmt.Sprintf("digest is now %s, not %s: download it again", mi.Digest, r.Digest))
	}
	if r.Offset > mi.Size {
		return "", api.NewBadRequest("offset: %d is past the module's %d bytes", r.Offset, mi.Size)
	}
	// The object store reads from the start: skip to the offset.
	if _, err := io.CopyN(io.Discard, res, r.Offset); err != nil {
		return "", fmt.Errorf("module %s: seek to %d: %w", r.Name, r.Offset, err)
	}
	off := r.Offset
	size := strconv.FormatInt(mi.Size, 10)
	buf := make([]byte, ModuleChunkSize)
	for off < mi.Size {
		if ctx.Err() != nil {
			return strconv.FormatInt(off, 10), nil
		}
		n, err := io.ReadFull(res, buf[:min(int64(len(buf)), mi.Size-off)])
		if err != nil {
			return "", fmt.Errorf("module %s: read at %d: %w", r.Name, off, err)
		}
		hdr := nats.Header{
			api.StreamSeqHeader:    []string{strconv.FormatInt(off, 10)},
			api.ModuleDigestHeader: []string{mi.Digest},
			api.ModuleSizeHeader:   []string{size},
		}
		err = st.send(hdr, buf[:n])
		off += int64(n)
		if errors.Is(err, errWindow) && off < mi.Size {
			return strconv.FormatInt(off, 10), nil
		}
		if err != nil && !errors.Is(err, errWindow) {
			return "", err
		}
	}
	return "", nil
}

// --- uploads ---------------------------------------------------------------

// upload is one module push in progress: chunks are hashed and piped into
// the object store's Put, which stores the object only when the pipe ends
// cleanly (after the digest matched) and purges what it wrote otherwise.
type upload struct {
	name, digest string
	owner        string // requester of the push; every chunk must come from it
	size         int64
	mu           sync.Mutex // serializes chunks
	received     atomic.Int64
	hash         hash.Hash
	pw           *io.PipeWriter
	result       chan putResult
	timer        *time.Timer
	unhook       func() bool // forgets the abort at server stop
}

type putResult struct {
	info *jetstream.ObjectInfo
	err  error
}

// uploads are the open uploads by id. Safe for concurrent use.
type uploads struct {
	mu sync.Mutex
	m  map[string]*upload
}

func newUploads() *uploads { return &uploads{m: map[string]*upload{}} }

func (u *uploads) get(id string) *upload {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.m[id]
}

// drop forgets id and aborts its Put with err (nil after a clean end).
func (u *uploads) drop(id string, err error) {
	u.mu.Lock()
	up := u.m[id]
	delete(u.m, id)
	u.mu.Unlock()
	if up != nil {
		up.timer.Stop()
		up.unhook()
		if err != nil {
			up.pw.CloseWithError(err)
		}
	}
}

// requester names who sent req as "<account>/<user>", from the
// Nats-Request-Info header that a service import with share: true adds;
// "/" without one.
func requester(req micro.Request) string {
	var ri struct {
		Account string `json:"acc"`
		User    string `json:"user"`
	}
	if h := req.Headers().Get("Nats-Request-Info"); h != "" {
		_ = json.Unmarshal([]byte(h), &ri)
	}
	return ri.Account + "/" + ri.User
}

// errAbandoned aborts an upload that received no chunk in time.
var errAbandoned = errors.New("upload abandoned")

func (s *Server) handleModulePush(req micro.Request) {
	var r api.ModulePushRequest
	err := decodeBody(req.Data(), &r, "ModulePushRequest")
	if err == nil {
		err = checkModuleName(r.Name)
	}
	if err == nil && (r.Size < 8 || r.Size > MaxModuleBytes) {
		err = api.NewBadRequest("size: %d is not between 8 and %d bytes", r.Size, MaxModuleBytes)
	}
	if err == nil {
		hexsum, ok := strings.CutPrefix(r.Digest, "sha256:")
		if b, herr := hex.DecodeString(hexsum); !ok || herr != nil || len(b) != sha256.Size {
			err = api.NewBadRequest("digest: %q is not sha256:<64 hex digits>", r.Digest)
		}
	}
	if err == nil {
		// Pushing over an existing module replaces what pods run: update.
		verb := api.VerbCreate
		ictx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		if _, gerr := s.modules.GetInfo(ictx, r.Name); gerr == nil {
			verb = api.VerbUpdate
		}
		cancel()
		err = s.authorize(req, verb, authz.ResourceModules, "", r.Name)
	}
	if err != nil {
		syncErr(req, err)
		return
	}
	var idb [16]byte
	_, _ = rand.Read(idb[:])
	id := hex.EncodeToString(idb[:])
	pr, pw := io.Pipe()
	up := &upload{name: r.Name, digest: r.Digest, owner: requester(req), size: r.Size, hash: sha256.New(), pw: pw, result: make(chan putResult, 1)}
	s.uploads.mu.Lock()
	if len(s.uploads.m) >= s.cfg.MaxUploads {
		s.uploads.mu.Unlock()
		syncErr(req, api.NewUnavailable("too many module uploads open (%d); retry", s.cfg.MaxUploads))
		return
	}
	if !s.track() {
		s.uploads.mu.Unlock()
		syncErr(req, api.NewUnavailable("apiserver is shutting down; retry"))
		return
	}
	up.timer = time.AfterFunc(s.cfg.UploadIdleTimeout, func() {
		s.log.Warn("module upload abandoned", "module", r.Name, "received", up.received.Load(), "size", r.Size)
		s.uploads.drop(id, errAbandoned)
	})
	up.unhook = context.AfterFunc(s.ctx, func() { s.uploads.drop(id, errors.New("apiserver stopping")) })
	s.uploads.m[id] = up
	s.uploads.mu.Unlock()
	go func() {
		defer s.wg.Done()
		// Not s.ctx: a Put aborted by Stop must still purge what it wrote.
		info, err := s.modules.Put(context.WithoutCancel(s.ctx), jetstream.ObjectMeta{Name: r.Name, Description: "wasm module"}, pr)
		pr.CloseWithError(errAbandoned)
		up.result <- putResult{info, err}
	}()
	b, _ := json.Marshal(api.ModuleUpload{
		Subject:     api.SubjectModulesUpload + "." + id,
		ChunkSize:   ModuleChunkSize,
		IdleTimeout: s.cfg.UploadIdleTimeout.String(),
	})
	if err := req.Respond(b); err != nil {
		s.log.Warn("reply failed", "err", err)
	}
}

func (s *Server) handleModuleChunk(req micro.Request) {
	id := req.Subject()[len(api.SubjectModulesUpload)+1:]
	up := s.uploads.get(id)
	if up == nil {
		syncErr(req, api.NewNotFound("Upload", id))
		return
	}
	if who := requester(req); who != up.owner {
		syncErr(req, api.NewForbidden("upload %s belongs to %s, not %s", id, up.owner, who))
		return
	}
	off, err := strconv.ParseInt(req.Headers().Get(api.StreamSeqHeader), 10, 64)
	if err != nil {
		syncErr(req, api.NewBadRequest("header %s: the chunk's byte offset is required", api.StreamSeqHeader))
		return
	}
	data := req.Data()
	up.mu.Lock()
	err = s.takeChunk(id, up, off, data)
	received := up.received.Load()
	up.mu.Unlock()
	if err != nil {
		syncErr(req, err)
		return
	}
	if received < up.size {
		b, _ := json.Marshal(api.ModuleUploadAck{Received: received})
		if err := req.Respond(b); err != nil {
			s.log.Warn("reply failed", "err", err)
		}
		return
	}
	// The last chunk: wait for the store, then answer with what it holds.
	s.dispatch(req, func(ctx context.Context) ([]byte, error) {
		select {
		case res := <-up.result:
			if res.err != nil {
				return nil, fmt.Errorf("store module %s: %w", up.name, res.err)
			}
			s.log.Info("module pushed", "module", up.name, "size", res.info.Size, "digest", up.digest)
			return json.Marshal(moduleInfo(res.info))
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	})
}

// takeChunk writes one chunk of up at off; up.mu is held. The chunk that
// completes the module checks the digest and ends the upload.
func (s *Server) takeChunk(id string, up *upload, off int64, data []byte) error {
	switch {
	case off != up.received.Load():
		return api.NewConflict("Upload", up.name, fmt.Sprintf("chunk at offset %d, expected %d", off, up.received.Load()))
	case len(data) == 0 || len(data) > ModuleChunkSize:
		return api.NewBadRequest("chunk: %d bytes, want 1 to %d", len(data), ModuleChunkSize)
	case off+int64(len(data)) > up.size:
		s.uploads.drop(id, errors.New("upload larger than declared"))
		return api.NewBadRequest("chunk: ends at %d, past the declared size %d; upload dropped", off+int64(len(data)), up.size)
	case off == 0 && !bytes.HasPrefix(data, []byte("\x00asm")):
		s.uploads.drop(id, errors.New("not a wasm module"))
		return &api.Status{Code: 422, Reason: api.ReasonInvalid, Kind: "Module", Name: up.name,
			Message: fmt.Sprintf("module %q is not a WebAssembly module (no \\0asm magic); upload dropped", up.name)}
	}
	up.timer.Reset(s.cfg.UploadIdleTimeout)
	up.hash.Write(data)
	if _, err := up.pw.Write(data); err != nil {
		s.uploads.drop(id, err)
		return fmt.Errorf("store module %s: %w", up.name, err)
	}
	if up.received.Add(int64(len(data))) < up.size {
		return nil
	}
	if got := "sha256:" + hex.EncodeToString(up.hash.Sum(nil)); got != up.digest {
		s.uploads.drop(id, errors.New("digest mismatch"))
		return &api.Status{Code: 422, Reason: api.ReasonInvalid, Kind: "Module", Name: up.name,
			Message: fmt.Sprintf("module %q: received bytes have digest %s, not the declared %s; nothing stored", up.name, got, up.digest)}
	}
	s.uploads.drop(id, nil)
	up.pw.Close()
	return nil
}
