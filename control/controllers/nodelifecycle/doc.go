// Package nodelifecycle owns the node lifecycle controller, Kubernetes'
// node lifecycle controller and taint-eviction controller in one:
//
//   - Liveness. It watches node heartbeats (control/store.Heartbeats, a KV
//     bucket with per-key TTL) and, when a node's key expires or a node
//     never beats within a grace period, sets the node's conditions to
//     Unknown (Ready=Unknown, reason NodeStatusUnknown). It never sets a
//     node Ready again: the agent's own status report does that once it
//     beats again.
//   - Taints. A node's NoExecute taint follows its Ready condition:
//     node.kubernetes.io/unreachable for Unknown, node.kubernetes.io/not-ready
//     for False, none for True, with timeAdded when put on; it goes as soon
//     as the node is Ready again.
//   - Pods of a silent node. When a node turns Unknown its running pods'
//     Ready and ContainersReady conditions turn False (reason NodeLost) and
//     their containers not ready, at once (event NodeNotReady): their agent
//     cannot say what runs. The agent's status report corrects this when
//     it returns.
//   - Eviction. A pod on a node with a NoExecute taint is marked for
//     deletion (deletionTimestamp, a DisruptionTarget condition, event
//     TaintManagerEviction) when its toleration of the taint runs out:
//     timeAdded plus the longest tolerationSeconds of its tolerations that
//     match (never with a toleration without seconds; at once without a
//     toleration; 300 s for the unreachable and not-ready taints of a pod
//     that says nothing of them). Evictions are rate limited (a token
//     bucket, Config.EvictionRate and EvictionBurst). Completed pods are
//     never evicted. A returning agent stops a pod marked meanwhile and
//     reports it finalized, which removes it; when its Node is deleted
//     instead, the controller removes it.
//   - Disruption. In a zone (label topology.kubernetes.io/zone) where more
//     than Config.UnhealthyZoneThreshold (0.55) of the nodes are not Ready,
//     the control plane is more likely the one cut off than most nodes
//     dead at once: no taint is added there, those there are removed, and
//     no pod is evicted. When the zone recovers, the nodes still silent are
//     tainted afresh, so their pods get their whole toleration again.
//
// Everything is level-triggered and read from the shared informers: node
// keys are queued by Node changes and heartbeat expiries, pod keys by Pod
// changes and by changes of their node's readiness or NoExecute taints;
// waiting for a toleration is Result.RequeueAfter.
package nodelifecycle
