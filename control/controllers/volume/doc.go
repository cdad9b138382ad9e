// Package volume is the persistent volume controller: the binder of
// claims to volumes and the coordinator of their provisioning and
// reclaiming, as Kubernetes' PV controller, on the controller framework.
//
// Keys of claims (namespace/name) and of volumes (cluster-scoped: an empty
// namespace) share one queue.
//
//   - A claim with no storageClassName gets the default class (the one
//     annotated storageclass.kubernetes.io/is-default-class), as
//     Kubernetes' retroactive default assignment.
//   - A claim binds to a volume that serves it (class, size, access modes,
//     selector; the smallest that fits), pre-bound ones (volume.claimRef or
//     claim.volumeName) first: the volume's claimRef is written first,
//     then the claim's volumeName, then both phases Bound.
//   - A claim of a WaitForFirstConsumer class waits for the scheduler to
//     annotate it volume.kubernetes.io/selected-node; then only volumes
//     usable from that node bind, and with the kyb.dev/local provisioner a
//     volume pvc-<claim uid> is made for that node (its directory
//     <agent data dir>/volumes/<volume>, created by the node on first use,
//     and nodeAffinity to the node).
//   - When its claim goes, a volume is Released: Retain keeps it and its
//     data; Delete (volumes the local provisioner made) asks the node to
//     remove the directory (Deleter), once no pod of the claim's namespace
//     that is still running names the claim; the node confirms and the
//     apiserver removes the volume. A Delete volume not made by
//     kyb.dev/local is marked Failed.
package volume
