package wasm

import (
	"runtime"

	"golang.org/x/sys/unix"
)

// startThreadCPU locks the calling goroutine to its OS thread, so that the
// thread's CPU clock measures the instance that runs on it, and notes the
// clock. endThreadCPU unlocks it and returns the CPU time used.
func startThreadCPU() *liveRun {
	runtime.LockOSThread()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil {
		runtime.UnlockOSThread()
		return nil
	}
	return &liveRun{tid: unix.Gettid(), start: uint64(ts.Nano())}
}

func endThreadCPU(run *liveRun) uint64 {
	defer runtime.UnlockOSThread()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts); err != nil || uint64(ts.Nano()) < run.start {
		return 0
	}
	return uint64(ts.Nano()) - run.start
}

// threadCPU reads the CPU clock of thread tid of this process (Linux's
// MAKE_THREAD_CPUCLOCK(tid, CPUCLOCK_SCHED), as pthread_getcpuclockid).
func threadCPU(tid int) (uint64, bool) {
	clock := int32(^uint32(tid)<<3 | 6)
	var ts unix.Timespec
	if err := unix.ClockGettime(clock, &ts); err != nil {
		return 0, false
	}
	return uint64(ts.Nano()), true
}
