package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/kybernetes/kybernetes/api"
)

func TestRate(t *testing.T) {
	t0 := time.Now()
	tests := []struct {
		name      string
		prev, cur cpuSample
		nanocores uint64
	}{
		{"first sample", cpuSample{}, cpuSample{5e9, t0}, 0},
		{"one core for 10s", cpuSample{1e9, t0}, cpuSample{11e9, t0.Add(10 * time.Second)}, 1e9},
		{"a quarter core", cpuSample{0, t0}, cpuSample{2.5e9, t0.Add(10 * time.Second)}, 250e6},
		{"counter reset (restart)", cpuSample{9e9, t0}, cpuSample{1e9, t0.Add(10 * time.Second)}, 0},
		{"clock went back", cpuSample{1e9, t0}, cpuSample{2e9, t0.Add(-time.Second)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := rate(tt.prev, tt.cur); got != tt.nanocores {
				t.Fatalf("rate = %d, want %d", got, tt.nanocores)
			}
		})
	}
}

func TestSplitReport(t *testing.T) {
	r := &api.NodeUsageReport{CPUNanoCores: 7}
	for i := range 5 {
		r.Pods = append(r.Pods, api.PodUsage{Namespace: "default", Name: fmt.Sprintf("p%d", i)})
	}
	parts := splitReport(r, 2)
	if len(parts) != 3 || len(parts[0].Pods) != 2 || len(parts[2].Pods) != 1 || parts[2].Pods[0].Name != "p4" || parts[1].CPUNanoCores != 7 {
		t.Fatalf("split into %d parts: %+v", len(parts), parts)
	}
	if parts := splitReport(r, api.MaxUsagePods); len(parts) != 1 || parts[0] != r {
		t.Fatalf("a small report was split: %d parts", len(parts))
	}
}

func TestMachineReadings(t *testing.T) {
	if _, err := machineBusyNanosOK(); err != nil {
		t.Skip(err)
	}
	a, _ := machineBusyNanos()
	b, _ := machineBusyNanos()
	if b < a {
		t.Fatalf("busy time went back: %d then %d", a, b)
	}
	if machineWorkingSet() == 0 {
		t.Fatal("no memory in use on this machine")
	}
}

func machineBusyNanosOK() (uint64, error) {
	n, ok := machineBusyNanos()
	if !ok {
		return 0, fmt.Errorf("no /proc/stat here")
	}
	return n, nil
}
