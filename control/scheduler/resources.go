package scheduler

import (
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/kybernetes/kybernetes/api"
)

// Resources is the part of a node's capacity the scheduler accounts for.
// CPU is in millicores, Memory in bytes; Pods and WasmPods are slot counts.
type Resources struct {
	CPU      int64
	Memory   int64
	Pods     int64
	WasmPods int64
}

func (r *Resources) add(o Resources) {
	r.CPU += o.CPU
	r.Memory += o.Memory
	r.Pods += o.Pods
	r.WasmPods += o.WasmPods
}

func (r *Resources) sub(o Resources) {
	r.CPU -= o.CPU
	r.Memory -= o.Memory
	r.Pods -= o.Pods
	r.WasmPods -= o.WasmPods
}

// podRequests returns what a pod takes from its node: api.PodRequests, and
// one slot of its runtime's pod count.
func podRequests(p *api.Pod) Resources {
	var r Resources
	r.CPU, r.Memory = api.PodRequests(p)
	if p.Spec.RuntimeClass() == api.RuntimeWasm {
		r.WasmPods = 1
	} else {
		r.Pods = 1
	}
	return r
}

// nodeAllocatable returns a node's allocatable resources, falling back to
// capacity for each resource the agent did not report as allocatable. A
// resource reported in neither is zero, so nothing that needs it fits (as in
// Kubernetes, a node without a `pods` count takes no pods).
func nodeAllocatable(n *api.Node) Resources {
	get := func(name api.ResourceName) (resource.Quantity, bool) {
		if q, ok := n.Status.Allocatable[name]; ok {
			return q, true
		}
		q, ok := n.Status.Capacity[name]
		return q, ok
	}
	var r Resources
	if q, ok := get(api.ResourceCPU); ok {
		r.CPU = q.MilliValue()
	}
	if q, ok := get(api.ResourceMemory); ok {
		r.Memory = q.Value()
	}
	if q, ok := get(api.ResourcePods); ok {
		r.Pods = q.Value()
	}
	if q, ok := get(api.ResourceWasmPods); ok {
		r.WasmPods = q.Value()
	}
	return r
}
