package containerd

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	apievents "github.com/containerd/containerd/api/events"
	"github.com/containerd/typeurl/v2"

	"github.com/kybernetes/kybernetes/runtimes"
)

const cgroupRoot = "/sys/fs/cgroup"

// cgroupV2 reports whether the host uses the unified hierarchy only; the
// answer cannot change while the process runs, so it is looked up once.
var cgroupV2 = sync.OnceValue(func() bool {
	_, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers"))
	return err == nil
})

// cgroupDir returns the directory of the container's cgroup for a
// controller ("memory", "cpu", "cpuacct", "pids"); on cgroup v2 the
// controller is ignored.
func (r *Runtime) cgroupDir(controller, id string) string {
	if cgroupV2() {
		return filepath.Join(cgroupRoot, r.cfg.Namespace, id)
	}
	return filepath.Join(cgroupRoot, controller, r.cfg.Namespace, id)
}

// keyedValue reads "key value" lines and returns the value of key.
func keyedValue(file, key string) (uint64, bool) {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 2 && f[0] == key {
			v, err := strconv.ParseUint(f[1], 10, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// wasOOMKilled reports whether the kernel OOM-killed a process of the
// container: an OOM event was seen, or its memory cgroup (which lives until
// the task is deleted) counts an OOM kill.
func (r *Runtime) wasOOMKilled(id string) bool {
	r.oomMu.Lock()
	seen := r.oomSeen[id]
	r.oomMu.Unlock()
	if seen {
		return true
	}
	var n uint64
	if cgroupV2() {
		n, _ = keyedValue(filepath.Join(r.cgroupDir("memory", id), "memory.events"), "oom_kill")
	} else {
		n, _ = keyedValue(filepath.Join(r.cgroupDir("memory", id), "memory.oom_control"), "oom_kill")
	}
	return n > 0
}

// watchOOM records containerd's OOM events for this namespace until ctx
// ends, resubscribing when the stream breaks.
func (r *Runtime) watchOOM(ctx context.Context) {
	ctx = r.ns(ctx)
	filter := fmt.Sprintf(`topic=="/tasks/oom",namespace==%q`, r.cfg.Namespace)
	for ctx.Err() == nil {
		evs, errs := r.client.Subscribe(ctx, filter)
	loop:
		for {
			select {
			case <-ctx.Done():
				return
			case err := <-errs:
				if err != nil && ctx.Err() == nil {
					r.log.Debug("OOM event stream broke; resubscribing", "err", err)
				}
				break loop
			case e := <-evs:
				if e == nil || e.Event == nil {
					continue
				}
				v, err := typeurl.UnmarshalAny(e.Event)
				if err != nil {
					continue
				}
				if oom, ok := v.(*apievents.TaskOOM); ok {
					r.oomMu.Lock()
					r.oomSeen[oom.ContainerID] = true
					r.oomMu.Unlock()
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(2 * time.Second):
		}
	}
}

// ContainerStats reads the container's CPU and memory usage from its
// cgroup. An unknown container gives an error wrapping runtimes.ErrNotFound;
// a container with no running task reports zeros.
func (r *Runtime) ContainerStats(ctx context.Context, id string) (*runtimes.Stats, error) {
	ctx = r.ns(ctx)
	if _, err := r.load(ctx, id); err != nil {
		return nil, fmt.Errorf("container stats %s: %w", id, err)
	}
	st := &runtimes.Stats{Time: time.Now()}
	if cgroupV2() {
		dir := r.cgroupDir("", id)
		if us, ok := keyedValue(filepath.Join(dir, "cpu.stat"), "usage_usec"); ok {
			st.CPUUsageNanos = us * 1000
		}
		usage := readUint(filepath.Join(dir, "memory.current"))
		// The working set, as the kubelet: usage minus inactive file pages.
		if inactive, ok := keyedValue(filepath.Join(dir, "memory.stat"), "inactive_file"); ok && inactive < usage {
			usage -= inactive
		}
		st.MemoryUsageBytes = usage
		return st, nil
	}
	st.CPUUsageNanos = readUint(filepath.Join(r.cgroupDir("cpuacct", id), "cpuacct.usage"))
	mem := r.cgroupDir("memory", id)
	usage := readUint(filepath.Join(mem, "memory.usage_in_bytes"))
	// Report the working set as the kubelet does: usage minus inactive file pages.
	if inactive, ok := keyedValue(filepath.Join(mem, "memory.stat"), "total_inactive_file"); ok && inactive < usage {
		usage -= inactive
	}
	st.MemoryUsageBytes = usage
	return st, nil
}

func readUint(file string) uint64 {
	b, err := os.ReadFile(file)
	if err != nil {
		return 0
	}
	v, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return v
}
