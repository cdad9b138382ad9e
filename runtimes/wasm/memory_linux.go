package wasm

import (
	"sync"
	"syscall"
)

// mmapMemory is a linear memory in its own anonymous mapping, reserved at
// its largest size up front (MAP_NORESERVE: address space, not memory).
type mmapMemory struct {
	a    *allocator
	full []byte
	size uint64 // high-water mark of the bytes handed out
	cur  uint64 // bytes handed out now
}

// Freed mappings are kept for reuse (cleared up to their high-water mark),
// which spares each instantiation an mmap, a munmap (with its TLB
// shoot-downs) and the page faults of touching fresh memory again. Only
// mappings that used at most poolMaxBytes are kept, at most poolSize per
// reservation size.
const (
	poolSize     = 32
	poolMaxBytes = 64 << 20
)

var pool = struct {
	sync.Mutex
	free map[int][][]byte // by reservation size
}{free: map[int][][]byte{}}

func newMmapMemory(a *allocator, reserve uint64) *mmapMemory {
	n := int(reserve)
	pool.Lock()
	if l := pool.free[n]; len(l) > 0 {
		b := l[len(l)-1]
		pool.free[n] = l[:len(l)-1]
		pool.Unlock()
		return &mmapMemory{a: a, full: b}
	}
	pool.Unlock()
	b, err := syscall.Mmap(-1, 0, n, syscall.PROT_READ|syscall.PROT_WRITE,
		syscall.MAP_PRIVATE|syscall.MAP_ANONYMOUS|syscall.MAP_NORESERVE)
	if err != nil {
		return nil
	}
	return &mmapMemory{a: a, full: b}
}

func (m *mmapMemory) Reallocate(size uint64) []byte {
	if size > uint64(len(m.full)) {
		if m.a.limit > 0 {
			m.a.oom.Store(true)
		}
		return nil
	}
	m.a.account(int64(size) - int64(m.cur))
	m.cur = size
	m.size = max(m.size, size)
	return m.full[:size:size]
}

func (m *mmapMemory) Free() {
	b := m.full
	if b == nil {
		return
	}
	m.full = nil
	m.a.account(-int64(m.cur))
	if m.size <= poolMaxBytes {
		clear(b[:m.size])
		pool.Lock()
		if l := pool.free[len(b)]; len(l) < poolSize {
			pool.free[len(b)] = append(l, b)
			pool.Unlock()
			return
		}
		pool.Unlock()
	}
	_ = syscall.Munmap(b)
}
