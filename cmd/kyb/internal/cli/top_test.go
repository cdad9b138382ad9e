package cli

import (
	"bytes"
	"strings"
	"testing"

	"github.com/kybernetes/kybernetes/api"
)

func TestPrintTop(t *testing.T) {
	nodes := []api.NodeMetrics{
		{Name: "a", Usage: api.UsagePoint{CPUNanoCores: 250e6, MemoryBytes: 512 << 20}, AllocatableCPUMilli: 1000, AllocatableMemoryBytes: 1 << 30},
		{Name: "b", Usage: api.UsagePoint{CPUNanoCores: 500e6, MemoryBytes: 256 << 20}},
	}
	pods := []api.PodMetrics{
		{Namespace: "default", Name: "small", Usage: api.UsagePoint{CPUNanoCores: 1e6, MemoryBytes: 128 << 10},
			Containers: []api.ContainerUsage{{Name: "m", CPUNanoCores: 1e6, MemoryBytes: 128 << 10}}},
		{Namespace: "kube", Name: "big", Usage: api.UsagePoint{CPUNanoCores: 3e6, MemoryBytes: 64 << 20},
			Containers: []api.ContainerUsage{{Name: "x", CPUNanoCores: 2e6, MemoryBytes: 60 << 20}, {Name: "y", CPUNanoCores: 1e6, MemoryBytes: 4 << 20}}},
	}
	tests := []struct {
		name  string
		print func(*bytes.Buffer) error
		want  []string
	}{
		{"nodes", func(b *bytes.Buffer) error { return printTopNodes(b, nodes, topOptions{}) }, []string{
			"NAME CPU(cores) CPU(%) MEMORY(bytes) MEMORY(%)", "a 250m 25% 512Mi 50%", "b 500m <unknown> 256Mi <unknown>"}},
		{"nodes by cpu", func(b *bytes.Buffer) error {
			return printTopNodes(b, nodes, topOptions{sortBy: "cpu", noHeaders: true})
		}, []string{
			"b 500m <unknown> 256Mi <unknown>", "a 250m 25% 512Mi 50%"}},
		{"pods", func(b *bytes.Buffer) error { return printTopPods(b, pods, topOptions{}) }, []string{
			"NAME CPU(cores) MEMORY(bytes)", "small 1m 128Ki", "big 3m 64Mi"}},
		{"pods -A --containers by memory", func(b *bytes.Buffer) error {
			return printTopPods(b, pods, topOptions{allNS: true, containers: true, sortBy: "memory"})
		}, []string{
			"NAMESPACE POD NAME CPU(cores) MEMORY(bytes)", "kube big x 2m 60Mi", "kube big y 1m 4Mi", "default small m 1m 128Ki"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			if err := tt.print(&b); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range strings.Split(strings.TrimSpace(b.String()), "\n") {
				got = append(got, strings.Join(strings.Fields(l), " "))
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Fatalf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}
