package wasm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"

	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm/internal/wasmbin"
)

// module is one compiled module, shared by every run of its digest.
type module struct {
	once   sync.Once
	digest string
	size   int64
	cm     wazero.CompiledModule
	minMem uint64 // bytes of memory the module needs at start
	err    error
}

// module returns the compiled module of digest, compiling it once.
func (r *Runtime) module(ctx context.Context, digest string) (*module, error) {
	if digest == "" {
		return nil, runtimes.WithReason(runtimes.ReasonModuleNotFound, true, errors.New("container has no pinned module digest"))
	}
	r.mu.Lock()
	m := r.mods[digest]
	if m == nil {
		m = &module{digest: digest}
		r.mods[digest] = m
	}
	r.mu.Unlock()
	m.once.Do(func() { m.err = r.compile(ctx, m) })
	if m.err != nil {
		// Let a later call try again when the failure was not the module's.
		if runtimes.ReasonOf(m.err, "") != runtimes.ReasonInvalidModule {
			r.mu.Lock()
			if r.mods[digest] == m {
				delete(r.mods, digest)
			}
			r.mu.Unlock()
		}
		return nil, m.err
	}
	return m, nil
}

func (r *Runtime) compile(ctx context.Context, m *module) error {
	b, err := os.ReadFile(r.blobPath(m.digest))
	if errors.Is(err, os.ErrNotExist) {
		return runtimes.WithReason(runtimes.ReasonModuleNotFound, true, runtimes.NotFoundf("module %s is not in the cache", m.digest))
	}
	if err != nil {
		return fmt.Errorf("read module %s: %w", m.digest, err)
	}
	m.size = int64(len(b))
	if len(b) < 8 || string(b[:4]) != "\x00asm" {
		return runtimes.WithReason(runtimes.ReasonInvalidModule, false, fmt.Errorf("module %s: not a WebAssembly binary (no \\0asm magic)", m.digest))
	}
	b, _ = wasmbin.MergeData(b)
	cm, err := r.wz.CompileModule(context.WithoutCancel(ctx), b)
	if err != nil {
		return runtimes.WithReason(runtimes.ReasonInvalidModule, false, fmt.Errorf("module %s: %w", m.digest, err))
	}
	var bad []string
	for _, f := range cm.ImportedFunctions() {
		mod, fn, _ := f.Import()
		if mod != "wasi_snapshot_preview1" || !r.wasi[fn] {
			bad = append(bad, mod+"."+fn)
		}
	}
	for _, mem := range cm.ImportedMemories() {
		mod, n, _ := mem.Import()
		bad = append(bad, mod+"."+n+" (memory)")
	}
	if len(bad) > 0 {
		cm.Close(ctx)
		return runtimes.WithReason(runtimes.ReasonInvalidModule, false, fmt.Errorf("module %s: unknown imports %s (only wasi_snapshot_preview1 is provided)", m.digest, strings.Join(bad, ", ")))
	}
	if _, ok := cm.ExportedFunctions()["_start"]; !ok {
		cm.Close(ctx)
		return runtimes.WithReason(runtimes.ReasonInvalidModule, false, fmt.Errorf("module %s: no _start export (not a WASI command)", m.digest))
	}
	for _, mem := range cm.ExportedMemories() {
		m.minMem = uint64(mem.Min()) * 65536
	}
	m.cm = cm
	return nil
}
