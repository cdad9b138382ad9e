package api

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/resource"
)

func TestPodRequests(t *testing.T) {
	res := func(kv ...string) ResourceList {
		l := ResourceList{}
		for i := 0; i < len(kv); i += 2 {
			l[ResourceName(kv[i])] = resource.MustParse(kv[i+1])
		}
		return l
	}
	ctr := func(req, lim ResourceList) Container {
		return Container{Name: "c", Image: "x", Resources: ResourceRequirements{Requests: req, Limits: lim}}
	}
	tests := []struct {
		name     string
		spec     PodSpec
		cpu, mem int64
	}{
		{"none", PodSpec{Containers: []Container{ctr(nil, nil)}}, 0, 0},
		{"sum of containers", PodSpec{Containers: []Container{
			ctr(res("cpu", "250m", "memory", "64Mi"), nil),
			ctr(res("cpu", "0.5", "memory", "1G"), nil),
		}}, 750, 64<<20 + 1e9},
		{"limit counts when no request", PodSpec{Containers: []Container{
			ctr(nil, res("cpu", "1", "memory", "128Mi")),
			ctr(res("cpu", "100m"), res("cpu", "200m", "memory", "1Mi")),
		}}, 1100, 129 << 20},
		{"init container larger", PodSpec{
			InitContainers: []Container{ctr(res("cpu", "2", "memory", "10Mi"), nil), ctr(res("memory", "1Gi"), nil)},
			Containers:     []Container{ctr(res("cpu", "500m", "memory", "100Mi"), nil)},
		}, 2000, 1 << 30},
		{"init container smaller", PodSpec{
			InitContainers: []Container{ctr(res("cpu", "100m", "memory", "1Mi"), nil)},
			Containers:     []Container{ctr(res("cpu", "500m", "memory", "100Mi"), nil)},
		}, 500, 100 << 20},
		{"fractional millicores round up", PodSpec{Containers: []Container{ctr(res("cpu", "1.5m"), nil)}}, 2, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cpu, mem := PodRequests(&Pod{Spec: tt.spec})
			if cpu != tt.cpu || mem != tt.mem {
				t.Errorf("PodRequests = %dm, %d bytes; want %dm, %d bytes", cpu, mem, tt.cpu, tt.mem)
			}
		})
	}
}
