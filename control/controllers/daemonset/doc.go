// Package daemonset is the DaemonSet controller: it runs one pod of a
// DaemonSet's template on every node that matches it, as Kubernetes'.
//
// A node matches when the template's nodeSelector selects its labels and
// the template's tolerations (with the daemon tolerations
// api.AddDaemonTolerations adds) tolerate its NoSchedule and NoExecute
// taints. Neither readiness nor cordoning (spec.unschedulable) keeps a
// daemon off a node, as in Kubernetes: the controller binds each pod
// itself through spec.nodeName, so the scheduler never sees it. A node
// that joins later gets its pod when the node informer shows it; a pod
// whose node stops matching is deleted (a node whose new NoSchedule taint
// is not tolerated keeps a running daemon, as Kubernetes; an untolerated
// NoExecute taint removes it). Failed daemon pods are deleted and
// replaced; a node with more than one daemon pod keeps the one of the
// current template (else the oldest).
//
// A template change rolls out node by node (updateStrategy RollingUpdate):
// each pod carries the label controller-revision-hash (a hash of the
// template); an old pod that is not available is replaced at once, an
// available one only while fewer than maxUnavailable nodes (rounded up from
// a percentage of the desired nodes) lack an available daemon. With
// maxSurge (and maxUnavailable 0) a node gets its new pod beside the old
// one, on at most maxSurge nodes at a time, and the old one is deleted once
// the new one is available. OnDelete replaces a pod only when someone else
// deletes it.
//
// Like the ReplicaSet controller it adopts orphan pods its selector
// matches and releases owned pods whose labels stop matching.
//
// Before creating a pod the controller checks its namespace's Pod Security
// level (replicaset.AdmitPod); a refused pod is a FailedCreate event.
package daemonset
