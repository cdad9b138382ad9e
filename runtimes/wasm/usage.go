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

// instanceRun is one running instance's CPU accounting: while it runs wasm
// code its goroutine is locked to its OS thread, whose CPU clock measures
// it; while it sleeps (nanosleep, poll_oneoff) the thread is let go, so
// that thousands of sleeping modules hold no thread each.
type instanceRun struct {
	u   *usage
	run *liveRun // nil while paused, or where CPU clocks are not read
}

// begin counts an instance that starts on the calling goroutine; end (or
// the last pause) must be called on the same goroutine. u may be nil.
func (u *usage) begin() *instanceRun {
	if u == nil {
		return nil
	}
	u.instances.Add(1)
	r := &instanceRun{u: u}
	r.resume()
	return r
}

// resume locks the goroutine to its thread and notes its CPU clock.
func (r *instanceRun) resume() {
	if r == nil || r.run != nil {
		return
	}
	run := startThreadCPU()
	if run == nil {
		return
	}
	r.u.mu.Lock()
	if r.u.live == nil {
		r.u.live = map[*liveRun]bool{}
	}
	r.u.live[run] = true
	r.u.mu.Unlock()
	r.run = run
}

// pause adds the CPU used since resume and lets the thread go.
func (r *instanceRun) pause() {
	if r == nil || r.run == nil {
		return
	}
	used := endThreadCPU(r.run)
	r.u.mu.Lock()
	delete(r.u.live, r.run)
	r.u.cpuDone += used
	r.u.mu.Unlock()
	r.run = nil
}

// end accounts the instance's last CPU time and stops counting it.
func (r *instanceRun) end() {
	if r == nil {
		return
	}
	r.pause()
	r.u.instances.Add(-1)
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
