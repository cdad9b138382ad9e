package wasm

import (
	"sync/atomic"

	"github.com/tetratelabs/wazero/experimental"
)

// maxWasm32Memory is the most a 32-bit linear memory can hold (65536 pages).
const maxWasm32Memory = 1 << 32

// allocator backs linear memories. With mmap (Linux) it reserves the
// memory's whole range of address space once and lets the kernel hand out
// zeroed pages as the module touches them, so memory.grow never copies;
// elsewhere a slice grows by doubling. A limit (when not zero) makes a
// memory.grow past it fail (memory.grow returns -1), remembered as an OOM.
type allocator struct {
	limit uint64
	oom   atomic.Bool
	usage *atomic.Int64 // the container's linear memory bytes in use
}

func (a *allocator) account(delta int64) {
	if a.usage != nil {
		a.usage.Add(delta)
	}
}

func (a *allocator) Allocate(capacity, max uint64) experimental.LinearMemory {
	reserve := max
	if reserve == 0 || reserve > maxWasm32Memory {
		reserve = maxWasm32Memory
	}
	if a.limit > 0 && a.limit < reserve {
		reserve = a.limit
	}
	if m := newMmapMemory(a, reserve); m != nil {
		return m
	}
	return &sliceMemory{a: a, max: reserve}
}

type sliceMemory struct {
	a   *allocator
	max uint64
	buf []byte
}

func (m *sliceMemory) Reallocate(size uint64) []byte {
	if size > m.max {
		if m.a.limit > 0 {
			m.a.oom.Store(true)
		}
		return nil
	}
	m.a.account(int64(size) - int64(len(m.buf)))
	if size <= uint64(cap(m.buf)) {
		m.buf = m.buf[:size]
		return m.buf
	}
	c := min(max(size, 2*uint64(cap(m.buf))), m.max)
	nb := make([]byte, size, c)
	copy(nb, m.buf)
	m.buf = nb
	return nb
}

func (m *sliceMemory) Free() {
	m.a.account(-int64(len(m.buf)))
	m.buf = nil
}
