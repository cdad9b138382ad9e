//go:build !linux

package wasm

type mmapMemory struct{ sliceMemory }

func newMmapMemory(a *allocator, reserve uint64) *mmapMemory { return nil }
