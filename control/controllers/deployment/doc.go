// Package deployment is the Deployment controller: it rolls a
// Deployment's pod template out through ReplicaSets, as Kubernetes' does.
//
// Each distinct template gets one ReplicaSet, named <deployment>-<hash>,
// whose selector, template and labels carry pod-template-hash=<hash> so
// that the ReplicaSets of one Deployment never select each other's pods.
// The ReplicaSet whose template equals the Deployment's (ignoring that
// label) is the new one; the others are old. Each ReplicaSet carries the
// revision annotation; the new one gets the highest, so a rollback (which
// copies an old template back) makes an old ReplicaSet current again with
// a new revision.
//
// RollingUpdate scales the new ReplicaSet up while the pods of every
// ReplicaSet of the Deployment number at most replicas + maxSurge, and
// scales old ones down while at least replicas - maxUnavailable pods are
// available (Ready for minReadySeconds). Counts are taken
// conservatively from both the ReplicaSets (spec.replicas) and the pod
// cache: a ReplicaSet counts as max(spec, active pods) toward the surge
// and as min(spec, available pods) toward availability, so neither a
// ReplicaSet controller that has not yet acted nor a lagging status can
// push the rollout past its bounds. Every write is a compare-and-set on
// the cached revision, so a decision made on a stale cache fails and is
// made again. Recreate scales every old ReplicaSet to 0 and creates the
// new one's pods only once no old pod is left.
//
// Status carries the counts and the conditions Available (at least
// replicas - maxUnavailable available) and Progressing (True while the
// rollout moves, NewReplicaSetAvailable when complete, False with
// ProgressDeadlineExceeded when nothing moved for
// progressDeadlineSeconds). A paused Deployment rolls nothing out. Old
// ReplicaSets scaled to 0 beyond revisionHistoryLimit are deleted.
//
// Everything is read from the stored state each time (level-triggered):
// a controller restarted mid-rollout continues from what the store holds.
package deployment
