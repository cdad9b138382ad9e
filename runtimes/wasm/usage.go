package wasm

import (
	"sync"
	"sync/atomic"
)

// usage is what a container's instances use, for ContainerStats: linear
// memory in bytes (all instances), instances running now, and CPU time
// (instances that ended, plus those running, measured by their threads'
// CPU clocks: an instance runs locked to its OS thread, cpu_linux.go).
type usage struct {
	mem       atomic.Int64
	instances atomic.Int64

	mu      sync.Mutex
	cpuDone uint64            // nanoseconds of instances that ended
	live    map[*liveRun]bool // instances running now
}

// liveRun is one running instance's thread and its CPU clock at start.
type liveRun struct {
	tid   int
	start uint64
}

// begin counts an instance that starts on the calling goroutine and
// returns the function that ends it. With a CPU clock (Linux) the
// goroutine stays locked to its thread until then. u may be nil.
func (u *usage) begin() func() {
	if u == nil {
		return func() {}
	}
	u.instances.Add(1)
	run := startThreadCPU()
	if run != nil {
		u.mu.Lock()
		if u.live == nil {
			u.live = map[*liveRun]bool{}
		}
		u.live[run] = true
		u.mu.Unlock()
	}
	return func() {
		if run != nil {
			used := endThreadCPU(run)
			u.mu.Lock()
			delete(u.live, run)
			u.cpuDone += used
			u.mu.Unlock()
		}
		u.instances.Add(-1)
	}
}

// cpuNanos is the CPU time the container's instances used so far.
func (u *usage) cpuNanos() uint64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	n := u.cpuDone
	for run := range u.live {
		if now, ok := threadCPU(run.tid); ok && now > run.start {
			n += now - run.start
		}
	}
	return n
}

// memBytes is the pointer the allocator accounts linear memory into; nil
// for a nil usage.
func (u *usage) memBytes() *atomic.Int64 {
	if u == nil {
		return nil
	}
	return &u.mem
}
