package scheduler

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/kybernetes/kybernetes/api"
)

// Reasons a node is filtered out, as they appear in a pod's Unschedulable
// message. They are Kubernetes' texts where Kubernetes has the same check.
const (
	ReasonNodeUnschedulable    = "node(s) were unschedulable"
	ReasonNodeNotReady         = "node(s) were not ready"
	ReasonNodeSelectorMismatch = "node(s) didn't match Pod's node affinity/selector"
	ReasonInsufficientCPU      = "Insufficient cpu"
	ReasonInsufficientMemory   = "Insufficient memory"
	ReasonTooManyPods          = "Too many pods"
	// ReasonNoNodes is the whole message when the cluster has no nodes.
	ReasonNoNodes = "no nodes available to schedule pods"
)

// RuntimeNotAvailable is the reason for a node that does not offer the pod's
// runtime class, e.g. "runtime wasm not available".
func RuntimeNotAvailable(runtime string) string {
	return "runtime " + runtime + " not available"
}

// UntoleratedTaint is the reason for a node with a NoSchedule or NoExecute
// taint the pod does not tolerate, e.g. "node(s) had untolerated taint {gpu: true}".
func UntoleratedTaint(t *api.Taint) string {
	return fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value)
}

// Taints Kubernetes puts on unschedulable and not-ready nodes; a pod that
// tolerates them (a DaemonSet-like pod) may still land on such a node.
const (
	taintUnschedulable = "node.kubernetes.io/unschedulable"
	taintNotReady      = "node.kubernetes.io/not-ready"
)

// failure says why a node cannot take a pod; the zero value means it can.
// Fit failures may combine several bits, as Kubernetes reports both
// "Insufficient cpu" and "Insufficient memory" for one node.
type failure struct {
	code  uint16
	taint *api.Taint
}

const (
	failUnschedulable uint16 = 1 << iota
	failNotReady
	failRuntime
	failSelector
	failTaint
	failPods
	failCPU
	failMemory
)

// reasons appends the reason texts of f for pod p.
func (f failure) reasons(p *podInfo, dst []string) []string {
	if f.code&failUnschedulable != 0 {
		dst = append(dst, ReasonNodeUnschedulable)
	}
	if f.code&failNotReady != 0 {
		dst = append(dst, ReasonNodeNotReady)
	}
	if f.code&failRuntime != 0 {
		dst = append(dst, RuntimeNotAvailable(p.runtime))
	}
	if f.code&failSelector != 0 {
		dst = append(dst, ReasonNodeSelectorMismatch)
	}
	if f.code&failTaint != 0 {
		dst = append(dst, UntoleratedTaint(f.taint))
	}
	if f.code&failPods != 0 {
		dst = append(dst, ReasonTooManyPods)
	}
	if f.code&failCPU != 0 {
		dst = append(dst, ReasonInsufficientCPU)
	}
	if f.code&failMemory != 0 {
		dst = append(dst, ReasonInsufficientMemory)
	}
	if f.code&failVolumeAffinity != 0 {
		dst = append(dst, ReasonVolumeNodeAffinityConflict)
	}
	if f.code&failVolumeBind != 0 {
		dst = append(dst, ReasonVolumeBindConflict)
	}
	return dst
}

// checker is one feasibility check, in the manner of Nomad's
// FeasibilityChecker: it looks at one node for one pod and says why not.
type checker interface {
	check(p *podInfo, n *nodeInfo) failure
}

// filterChain returns the checks in the order they run: the cheap, coarse
// ones (node state, runtime) first, resource fit last, like Kubernetes'
// filter plugins. A node is reported under the first check that rejects it.
func filterChain(vols *volumes) []checker {
	return []checker{
		schedulableCheck{},   // node Ready and not cordoned
		runtimeCheck{},       // the pod's runtime class is offered by the node
		selectorCheck{},      // spec.nodeSelector matches the node's labels
		taintCheck{},         // every NoSchedule/NoExecute taint is tolerated
		volumeCheck{v: vols}, // the pod's claims can be used from the node (volumes.go)
		fitCheck{},           // cpu, memory and pod slots fit in allocatable minus used
	}
}

type schedulableCheck struct{}

func (schedulableCheck) check(p *podInfo, n *nodeInfo) failure {
	if n.unschedulable && !p.toleratesUnschedulable {
		return failure{code: failUnschedulable}
	}
	if !n.ready && !p.toleratesNotReady {
		return failure{code: failNotReady}
	}
	return failure{}
}

type runtimeCheck struct{}

func (runtimeCheck) check(p *podInfo, n *nodeInfo) failure {
	if n.rtMask&p.rtBit != 0 {
		if p.rtBit != overflowRuntimeBit {
			return failure{}
		}
		for _, r := range n.runtimes { // a rare 64th+ runtime name: compare names
			if r == p.runtime {
				return failure{}
			}
		}
	}
	return failure{code: failRuntime}
}

type selectorCheck struct{}

func (selectorCheck) check(p *podInfo, n *nodeInfo) failure {
	if len(p.pod.Spec.NodeSelector) == 0 {
		return failure{}
	}
	for k, v := range p.pod.Spec.NodeSelector {
		if got, ok := n.labels[k]; !ok || got != v {
			return failure{code: failSelector}
		}
	}
	return failure{}
}

type taintCheck struct{}

func (taintCheck) check(p *podInfo, n *nodeInfo) failure {
	for i := range n.taints {
		if !tolerates(p.pod.Spec.Tolerations, &n.taints[i]) {
			return failure{code: failTaint, taint: &n.taints[i]}
		}
	}
	return failure{}
}

func tolerates(tols []api.Toleration, t *api.Taint) bool {
	for i := range tols {
		if tols[i].ToleratesTaint(t) {
			return true
		}
	}
	return false
}

type fitCheck struct{}

func (fitCheck) check(p *podInfo, n *nodeInfo) failure {
	return failure{code: fitFailure(&p.req, &n.used, &n.alloc)}
}

// fitFailure returns the fit failure bits for a request on a node with
// used and allocatable resources. A zero request always fits, as in
// Kubernetes.
func fitFailure(req, used, alloc *Resources) uint16 {
	var code uint16
	if req.Pods > 0 && used.Pods+req.Pods > alloc.Pods {
		code |= failPods
	}
	if req.WasmPods > 0 && used.WasmPods+req.WasmPods > alloc.WasmPods {
		code |= failPods
	}
	if req.CPU > 0 && used.CPU+req.CPU > alloc.CPU {
		code |= failCPU
	}
	if req.Memory > 0 && used.Memory+req.Memory > alloc.Memory {
		code |= failMemory
	}
	return code
}

// unschedulableMessage formats why no node fits, as Kubernetes does:
// "0/3 nodes are available: 2 Insufficient memory, 1 runtime wasm not
// available." Reasons are ordered by count, most first, then by text.
func unschedulableMessage(total int, counts map[string]int) string {
	if total == 0 {
		return ReasonNoNodes
	}
	reasons := slices.Collect(maps.Keys(counts))
	slices.SortFunc(reasons, func(a, b string) int {
		if c := cmp.Compare(counts[b], counts[a]); c != 0 {
			return c
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	fmt.Fprintf(&b, "0/%d nodes are available: ", total)
	for i, r := range reasons {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%d %s", counts[r], r)
	}
	b.WriteString(".")
	return b.String()
}
