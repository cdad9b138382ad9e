package wasm

import (
	"context"
	"io"

	"github.com/kybernetes/kybernetes/runtimes"
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
