package wasm

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"strings"

	"github.com/kybernetes/kybernetes/runtimes"

	"github.com/nats-io/nats.go/jetstream"
)

// ModuleStore is where kyb:// modules come from.
type ModuleStore interface {
	// Info returns the module's digest ("sha256:<hex>") and size; an error wrapping
	// fs.ErrNotExist when there is no such module.
	Info(ctx context.Context, name string) (ModuleInfo, error)
	// Open returns a reader of the module's bytes (the caller closes it) and its info.
	Open(ctx context.Context, name string) (io.ReadCloser, ModuleInfo, error)
}

// ModuleInfo describes a module in a ModuleStore.
type ModuleInfo = runtimes.ModuleInfo

// ObjectStoreModules serves kyb:// modules from a JetStream object store
// (the cluster's module bucket, as `kyb module push` writes it). A missing
// object is an error wrapping fs.ErrNotExist. Safe for concurrent use. A nil
// obs gives a nil ModuleStore (kyb:// modules unsupported).
func ObjectStoreModules(obs jetstream.ObjectStore) ModuleStore {
	if obs == nil {
		return nil
	}
	return objectModules{obs}
}

type objectModules struct{ obs jetstream.ObjectStore }

func (o objectModules) Info(ctx context.Context, name string) (ModuleInfo, error) {
	info, err := o.obs.GetInfo(ctx, name)
	if err != nil {
		return ModuleInfo{}, objectErr(name, err)
	}
	return objectInfo(info), nil
}

func (o objectModules) Open(ctx context.Context, name string) (io.ReadCloser, ModuleInfo, error) {
	res, err := o.obs.Get(ctx, name)
	if err != nil {
		return nil, ModuleInfo{}, objectErr(name, err)
	}
	info, err := res.Info()
	if err != nil {
		res.Close()
		return nil, ModuleInfo{}, objectErr(name, err)
	}
	return res, objectInfo(info), nil
}

func objectErr(name string, err error) error {
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("module object %s: %w", name, fs.ErrNotExist)
	}
	return fmt.Errorf("module object %s: %w", name, err)
}

func objectInfo(info *jetstream.ObjectInfo) ModuleInfo {
	return ModuleInfo{Digest: objectDigest(info.Digest), Size: int64(info.Size)}
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
