package node

import (
	"bufio"
	"context"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/runtimes"
)

// Usage sampling: every StatsInterval the agent reads each running
// container's usage from its runtime (runtimes.StatsProvider: cgroup CPU
// and working set for containerd; linear memory, instances and CPU time for
// wasm) and the node's own (/proc/stat, /proc/meminfo: the whole machine, as
// the kubelet's root cgroup), turns cumulative CPU time into cores over the
// window since the previous sample, and reports it through
// kyb.node.<name>.usage (api.NodeUsageReport).

// cpuSample is a cumulative CPU reading.
type cpuSample struct {
	nanos uint64
	at    time.Time
}

// sampler keeps the previous readings; statsLoop's goroutine only.
type sampler struct {
	a     *Agent
	prev  map[string]cpuSample // by container ID
	node  cpuSample            // the machine's busy time
	clock func() time.Time
}

func (a *Agent) statsLoop(ctx context.Context) {
	if a.cfg.StatsInterval < 0 {
		return
	}
	select {
	case <-a.ready:
	case <-ctx.Done():
		return
	}
	s := &sampler{a: a, prev: map[string]cpuSample{}, clock: time.Now}
	s.sample(ctx) // the first CPU readings: rates need two
	t := time.NewTicker(a.cfg.StatsInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r := s.sample(ctx)
		for _, part := range splitReport(r, api.MaxUsagePods) {
			if err := a.request(ctx, api.NodeVerbUsage, part, nil); err != nil && ctx.Err() == nil {
				a.log.Debug("usage report failed", "err", err)
				break
			}
		}
	}
}

// splitReport cuts r into reports of at most max pods each (the first
// carries the node's own usage too; all do, harmlessly).
func splitReport(r *api.NodeUsageReport, max int) []*api.NodeUsageReport {
	if len(r.Pods) <= max {
		return []*api.NodeUsageReport{r}
	}
	var out []*api.NodeUsageReport
	for pods := range slices.Chunk(r.Pods, max) {
		cp := *r
		cp.Pods = pods
		out = append(out, &cp)
	}
	return out
}

// sample reads the node's and every running container's usage.
func (s *sampler) sample(ctx context.Context) *api.NodeUsageReport {
	now := s.clock()
	r := &api.NodeUsageReport{Time: now.UTC(), Window: api.Duration{Duration: s.a.cfg.StatsInterval}}
	if busy, ok := machineBusyNanos(); ok {
		r.CPUNanoCores = rate(s.node, cpuSample{busy, now})
		s.node = cpuSample{busy, now}
	}
	r.MemoryBytes = machineWorkingSet()

	pods := map[string]*api.PodUsage{}
	seen := map[string]bool{}
	classes := make([]string, 0, len(s.a.rts))
	for class := range s.a.rts {
		classes = append(classes, class)
	}
	slices.Sort(classes)
	for _, class := range classes {
		sp, ok := s.a.rts[class].(runtimes.StatsProvider)
		if !ok {
			continue
		}
		ctrs, err := s.a.rts[class].ListContainers(ctx, "")
		if err != nil {
			s.a.log.Debug("usage: list containers", "runtime", class, "err", err)
			continue
		}
		for _, c := range ctrs {
			ns, name, cname := c.Labels[LabelPodNamespace], c.Labels[LabelPodName], c.Labels[LabelContainer]
			if c.State != runtimes.ContainerRunning || ns == "" || name == "" || cname == "" {
				continue
			}
			st, err := sp.ContainerStats(ctx, c.ID)
			if err != nil {
				continue // gone meanwhile
			}
			seen[c.ID] = true
			cur := cpuSample{st.CPUUsageNanos, now}
			cu := api.ContainerUsage{Name: cname, CPUUsageNanos: st.CPUUsageNanos, MemoryBytes: st.MemoryUsageBytes, Instances: st.Instances}
			if p, ok := s.prev[c.ID]; ok {
				cu.CPUNanoCores = rate(p, cur)
			}
			s.prev[c.ID] = cur
			key := ns + "/" + name
			pu := pods[key]
			if pu == nil {
				pu = &api.PodUsage{Namespace: ns, Name: name, UID: c.Labels[LabelPodUID], Runtime: class}
				pods[key] = pu
			}
			pu.Containers = append(pu.Containers, cu)
		}
	}
	for id := range s.prev {
		if !seen[id] {
			delete(s.prev, id)
		}
	}
	keys := make([]string, 0, len(pods))
	for k := range pods {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		p := pods[k]
		slices.SortFunc(p.Containers, func(a, b api.ContainerUsage) int { return strings.Compare(a.Name, b.Name) })
		r.Pods = append(r.Pods, *p)
	}
	return r
}

// rate is the CPU used between two cumulative readings, in nanocores.
func rate(prev, cur cpuSample) uint64 {
	dt := cur.at.Sub(prev.at)
	if prev.at.IsZero() || dt <= 0 || cur.nanos < prev.nanos {
		return 0
	}
	return uint64(float64(cur.nanos-prev.nanos) / dt.Seconds())
}

// machineBusyNanos is the machine's CPU time spent not idle (all CPUs),
// from /proc/stat.
func machineBusyNanos() (uint64, bool) {
	f, err := os.Open("/proc/stat")
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return 0, false
	}
	fields := strings.Fields(sc.Text())
	if len(fields) < 5 || fields[0] != "cpu" {
		return 0, false
	}
	var busy uint64
	for i, v := range fields[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, false
		}
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is in user already
			continue
		}
		busy += n
	}
	// USER_HZ is 100 on every Linux the agent runs on.
	return busy * uint64(time.Second/100), true
}

// machineWorkingSet is the machine's memory in use: MemTotal - MemAvailable.
func machineWorkingSet() uint64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	var total, avail uint64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		n, _ := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "MemTotal":
			total = n << 10
		case "MemAvailable":
			avail = n << 10
		}
	}
	if avail > total {
		return 0
	}
	return total - avail
}
