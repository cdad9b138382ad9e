package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/runtimes"
)

// ModuleInfo describes a module of the cluster's module store (the wasm
// runtime's ModuleInfo, so that Modules is its ModuleStore).
type ModuleInfo = runtimes.ModuleInfo

// Modules fetches the kyb:// modules of this node's pods through the node
// API (kyb.node.<node>.moduleinfo and the streamed kyb.node.<node>.module),
// never from JetStream: the apiserver answers only for modules a pod bound
// to this node references (403 otherwise). It is the wasm runtime's module
// store on an agent. Safe for concurrent use.
type Modules struct {
	nc      *nats.Conn
	node    string
	timeout time.Duration
}

// NewModules returns the module fetcher of node over nc; timeout bounds
// Info when its context has no deadline (0: 30s).
func NewModules(nc *nats.Conn, node string, timeout time.Duration) *Modules {
	if timeout <= 0 {
		timeout = client.DefaultTimeout
	}
	return &Modules{nc: nc, node: node, timeout: timeout}
}

// notExist wraps a NotFound reply so that errors.Is(err, fs.ErrNotExist).
func notExist(name string, err error) error {
	if api.IsNotFound(err) {
		return fmt.Errorf("module %s: %w (%w)", name, fs.ErrNotExist, err)
	}
	return fmt.Errorf("module %s: %w", name, err)
}

// Info returns the digest and size of module name. A module that is not
// there wraps fs.ErrNotExist; one no pod of this node references is a 403
// *api.Status.
func (m *Modules) Info(ctx context.Context, name string) (ModuleInfo, error) {
	body, err := json.Marshal(api.ModuleRequest{Name: name})
	if err != nil {
		return ModuleInfo{}, fmt.Errorf("module %s: %w", name, err)
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, m.timeout)
		defer cancel()
	}
	msg, err := m.nc.RequestWithContext(ctx, api.NodeSubject(m.node, api.NodeVerbModuleInfo), body)
	if errors.Is(err, nats.ErrNoResponders) {
		err = api.NewUnavailable("no kyb apiserver answers")
	}
	if err == nil {
		err = client.ReplyError(msg)
	}
	if err != nil {
		return ModuleInfo{}, notExist(name, err)
	}
	var info api.ModuleInfo
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		return ModuleInfo{}, fmt.Errorf("module %s: decode info: %w", name, err)
	}
	return ModuleInfo{Digest: info.Digest, Size: info.Size}, nil
}

// Open returns a reader of module name's bytes and their info. The bytes
// stream in chunks while the caller reads; a stream the server ends on its
// own resumes at the next byte, and only while the module keeps the digest
// Open returned (else the read fails with a 409). The last read checks
// size and digest. Close the reader when done; ctx ending stops the
// download. Errors as Info.
func (m *Modules) Open(ctx context.Context, name string) (io.ReadCloser, ModuleInfo, error) {
	info, err := m.Info(ctx, name)
	if err != nil {
		return nil, ModuleInfo{}, err
	}
	req := api.ModuleRequest{Name: name, Digest: info.Digest}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, ModuleInfo{}, fmt.Errorf("module %s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	go func() {
		h := sha256.New()
		var off int64
		next := func(resume string) ([]byte, error) {
			o, err := strconv.ParseInt(resume, 10, 64)
			if err != nil || o != off {
				return nil, fmt.Errorf("resume at %q, but %d bytes were read", resume, off)
			}
			req.Offset = o
			return json.Marshal(req)
		}
		err := client.Stream(ctx, m.nc, 0, api.NodeSubject(m.node, api.NodeVerbModule), body, next, func(msg *nats.Msg) error {
			if at := msg.Header.Get(api.StreamSeqHeader); at != strconv.FormatInt(off, 10) {
				return fmt.Errorf("chunk at offset %s, expected %d", at, off)
			}
			if int64(len(msg.Data)) > info.Size-off {
				return fmt.Errorf("more than the %d bytes announced", info.Size)
			}
			h.Write(msg.Data)
			off += int64(len(msg.Data))
			_, err := pw.Write(msg.Data)
			return err
		})
		if err == nil && off != info.Size {
			err = fmt.Errorf("stream ended after %d of %d bytes", off, info.Size)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); err == nil && got != info.Digest {
			err = fmt.Errorf("received bytes have digest %s, not %s", got, info.Digest)
		}
		if err != nil {
			pw.CloseWithError(notExist(name, err))
			return
		}
		pw.Close()
	}()
	return &moduleReader{PipeReader: pr, cancel: cancel}, info, nil
}

type moduleReader struct {
	*io.PipeReader
	cancel context.CancelFunc
}

func (r *moduleReader) Close() error {
	r.cancel()
	return r.PipeReader.Close()
}
