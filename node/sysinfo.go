package node

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

// Pressure thresholds, as Kubernetes' default hard eviction thresholds put
// them (memory.available, nodefs.available, pid.available).
const (
	memoryPressureRatio = 0.05 // MemAvailable below 5% of MemTotal
	diskPressureRatio   = 0.10 // free space of the data dir below 10%
	pidPressureRatio    = 0.10 // free pids below 10% of pid_max
)

// readings is one look at the machine.
type readings struct {
	memTotal, memAvailable int64 // bytes; 0 when unknown
	diskTotal, diskFree    int64 // bytes of the data dir's file system
	procs, pidMax          int64
}

func readMachine(dataDir string) readings {
	var r readings
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		r.memTotal, r.memAvailable = parseMeminfo(b)
	}
	var st syscall.Statfs_t
	dir := dataDir
	for {
		if err := syscall.Statfs(dir, &st); err == nil {
			r.diskTotal = int64(st.Blocks) * int64(st.Bsize)
			r.diskFree = int64(st.Bavail) * int64(st.Bsize)
			break
		}
		parent := dir[:max(strings.LastIndexByte(dir, '/'), 1)]
		if parent == dir {
			break
		}
		dir = parent
	}
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		// "0.00 0.01 0.05 1/123 4567": the fourth field is running/total tasks.
		if f := strings.Fields(string(b)); len(f) >= 4 {
			if _, tot, ok := strings.Cut(f[3], "/"); ok {
				r.procs, _ = strconv.ParseInt(tot, 10, 64)
			}
		}
	}
	r.pidMax = readInt("/proc/sys/kernel/pid_max")
	return r
}

func parseMeminfo(b []byte) (total, avail int64) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			continue
		}
		if len(f) > 1 && f[1] == "kB" {
			n *= 1024
		}
		switch k {
		case "MemTotal":
			total = n
		case "MemAvailable":
			avail = n
		}
	}
	return total, avail
}

func readInt(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	return n
}

func readTrim(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// osImage returns PRETTY_NAME of /etc/os-release (or /usr/lib/os-release).
func osImage() string {
	for _, p := range []string{"/etc/os-release", "/usr/lib/os-release"} {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "PRETTY_NAME="); ok {
				if u, err := strconv.Unquote(v); err == nil {
					return u
				}
				return strings.Trim(v, `"'`)
			}
		}
	}
	return runtime.GOOS
}

func machineID() string {
	for _, p := range []string{"/etc/machine-id", "/var/lib/dbus/machine-id"} {
		if s := readTrim(p); s != "" {
			return s
		}
	}
	return ""
}

// internalIP returns the first non-loopback IPv4 address of an interface
// that is up, or 127.0.0.1.
func internalIP() string {
	ifs, err := net.Interfaces()
	if err == nil {
		for _, ifc := range ifs {
			if ifc.Flags&net.FlagUp == 0 || ifc.Flags&net.FlagLoopback != 0 {
				continue
			}
			addrs, err := ifc.Addrs()
			if err != nil {
				continue
			}
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok {
					if ip4 := n.IP.To4(); ip4 != nil && !ip4.IsLoopback() && !ip4.IsLinkLocalUnicast() {
						return ip4.String()
					}
				}
			}
		}
	}
	return "127.0.0.1"
}

// conditions derives the node conditions from r. ready says whether the
// agent has at least one usable runtime. Times are left zero for the caller.
func conditions(r readings, ready bool, runtimesMsg string) []api.NodeCondition {
	cond := func(typ string, bad bool, reasonBad, msgBad, reasonOK, msgOK string) api.NodeCondition {
		if bad {
			return api.NodeCondition{Type: typ, Status: api.ConditionTrue, Reason: reasonBad, Message: msgBad}
		}
		return api.NodeCondition{Type: typ, Status: api.ConditionFalse, Reason: reasonOK, Message: msgOK}
	}
	memBad := r.memTotal > 0 && float64(r.memAvailable) < memoryPressureRatio*float64(r.memTotal)
	diskBad := r.diskTotal > 0 && float64(r.diskFree) < diskPressureRatio*float64(r.diskTotal)
	pidBad := r.pidMax > 0 && float64(r.pidMax-r.procs) < pidPressureRatio*float64(r.pidMax)
	out := []api.NodeCondition{
		cond(api.NodeMemoryPressure, memBad, "AgentHasInsufficientMemory",
			fmt.Sprintf("available memory %d MiB of %d MiB", r.memAvailable>>20, r.memTotal>>20),
			"AgentHasSufficientMemory", "agent has sufficient memory available"),
		cond(api.NodeDiskPressure, diskBad, "AgentHasDiskPressure",
			fmt.Sprintf("free disk %d MiB of %d MiB", r.diskFree>>20, r.diskTotal>>20),
			"AgentHasNoDiskPressure", "agent has no disk pressure"),
		cond(api.NodePIDPressure, pidBad, "AgentHasInsufficientPID",
			fmt.Sprintf("%d processes of pid_max %d", r.procs, r.pidMax),
			"AgentHasSufficientPID", "agent has sufficient PID available"),
	}
	if ready {
		out = append([]api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionTrue, Reason: "AgentReady", Message: "agent is posting ready status; runtimes: " + runtimesMsg}}, out...)
	} else {
		out = append([]api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionFalse, Reason: "RuntimeNotReady", Message: "no usable runtime: " + runtimesMsg}}, out...)
	}
	return out
}

// mergeConditions sets fresh conditions on st at now: heartbeat time now,
// transition time kept while the status stays. It reports whether any
// condition's status, reason changed.
func mergeConditions(st *api.NodeStatus, fresh []api.NodeCondition, now time.Time) bool {
	changed := false
	for _, c := range fresh {
		old := st.Condition(c.Type)
		c.LastHeartbeatTime = now
		if old == nil || old.Status != c.Status {
			c.LastTransitionTime = now
			changed = true
		} else {
			c.LastTransitionTime = old.LastTransitionTime
			if old.Reason != c.Reason {
				changed = true
			}
		}
		st.SetCondition(c)
	}
	return changed
}
