package wasm_test

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/internal/testutil"
	"github.com/kybernetes/kybernetes/runtimes"
	"github.com/kybernetes/kybernetes/runtimes/wasm"
)

// TestStatsCPUAndInstances: a module that spins reports one instance and
// CPU time that grows while it runs (measured by its thread's CPU clock);
// a module that sleeps uses next to none.
func TestStatsCPUAndInstances(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("CPU time of wasm instances is measured on Linux only")
	}
	rt := newRuntime(t, wasm.Config{})
	sb := sandbox(t, rt)
	ctx := ctxT(t)
	start := func(name string, args ...string) string {
		id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: name, Image: fileRef(testProg(t)), Args: args})
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		return id
	}
	spin := start("spin", "loop")
	idle := start("idle", "sleep", "forever")
	var first uint64
	testutil.Eventually(t, 30*time.Second, func() error {
		st, err := rt.ContainerStats(ctx, spin)
		if err != nil {
			return err
		}
		if st.Instances != 1 {
			return fmt.Errorf("instances %d, want 1", st.Instances)
		}
		if st.CPUUsageNanos < uint64(50*time.Millisecond) {
			return fmt.Errorf("cpu %v, want at least 50ms of a spinning module", time.Duration(st.CPUUsageNanos))
		}
		first = st.CPUUsageNanos
		return nil
	})
	testutil.Eventually(t, 30*time.Second, func() error {
		st, err := rt.ContainerStats(ctx, spin)
		if err != nil {
			return err
		}
		if st.CPUUsageNanos <= first {
			return fmt.Errorf("cpu %d did not grow from %d while spinning", st.CPUUsageNanos, first)
		}
		return nil
	})
	st, err := rt.ContainerStats(ctx, idle)
	if err != nil {
		t.Fatal(err)
	}
	if st.Instances != 1 || st.CPUUsageNanos > uint64(first) {
		t.Errorf("idle module: %d instances, cpu %v (the spinning one had %v)", st.Instances, time.Duration(st.CPUUsageNanos), time.Duration(first))
	}
	if err := rt.StopContainer(ctx, spin, time.Second); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 10*time.Second, func() error {
		st, err := rt.ContainerStats(ctx, spin)
		if err != nil {
			return err
		}
		if st.Instances != 0 {
			return fmt.Errorf("instances %d after stop", st.Instances)
		}
		return nil
	})
}

// threads is this process's OS thread count.
func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
	}
	t.Fatal("no Threads in /proc/self/status")
	return 0
}

// TestSleepingModulesHoldNoThread: an instance is locked to its thread for
// CPU accounting only while it runs wasm code, so 64 sleeping modules do
// not hold 64 threads.
func TestSleepingModulesHoldNoThread(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("Linux only")
	}
	rt := newRuntime(t, wasm.Config{})
	sb := sandbox(t, rt)
	ctx := ctxT(t)
	before := threads(t)
	const n = 64
	var ids []string
	for i := range n {
		id, err := rt.CreateContainer(ctx, sb.ID, &runtimes.ContainerConfig{Name: fmt.Sprintf("s%d", i), Image: fileRef(testProg(t)), Args: []string{"out", "up", "sleep", "forever"}})
		if err != nil {
			t.Fatal(err)
		}
		if err := rt.StartContainer(ctx, id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	testutil.Eventually(t, 30*time.Second, func() error {
		for _, id := range ids {
			st, err := rt.ContainerStats(ctx, id)
			if err != nil {
				return err
			}
			if st.Instances != 1 {
				return fmt.Errorf("%s: %d instances", id, st.Instances)
			}
		}
		return nil
	})
	time.Sleep(50 * time.Millisecond) // let them reach their sleep
	if after := threads(t); after-before >= n/2 {
		t.Fatalf("threads went from %d to %d with %d sleeping modules", before, after, n)
	}
}
