package cli

import (
	"os"
	"runtime/debug"
	"syscall"
)

// tuneGC sets the garbage collector for a long-running control plane
// (`kyb server`, `kyb up`), unless GOGC or GOMEMLIMIT say otherwise: collect at 400% heap
// growth instead of 100% (the heap is mostly watch caches; measured: apply
// p99 2.8 ms -> 1.3 ms and +40% creates/s), under a soft limit of a quarter
// of the machine's memory so that a large cluster's heap still gets
// collected in time.
func tuneGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(400)
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		var si syscall.Sysinfo_t
		if syscall.Sysinfo(&si) == nil && si.Totalram > 0 {
			debug.SetMemoryLimit(int64(uint64(si.Totalram) * uint64(si.Unit) / 4))
		}
	}
}
