// Package scheduler owns pod placement: it keeps a cache of nodes and pods
// fed by store watches (never by listing in a loop), finds the nodes that can
// run each unbound pod with a chain of small feasibility checks (node ready
// and schedulable, runtime class offered, nodeSelector, taints and
// tolerations, cpu/memory/pod-slot fit), ranks them with a pure scoring
// function (bin-pack by default, spread as an option) and binds the pod with
// a compare-and-set update of spec.nodeName.
//
// Decisions are made one pod at a time by a single goroutine over in-memory
// state; a bound pod's resources are "assumed" on its node the moment it is
// chosen, so the bind writes can run in parallel while the next decisions
// already see them. A pod that fits nowhere gets the condition
// PodScheduled=False/Unschedulable with a Kubernetes-style message
// ("0/3 nodes are available: 2 Insufficient memory, 1 runtime wasm not
// available.") and is parked until a node or pod change could let it fit.
//
// Two schedulers may run over the same store: the compare-and-set bind makes
// sure each pod is bound exactly once; the loser sees the winner's binding
// through its watch.
package scheduler
