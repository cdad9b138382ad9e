// Package statefulset is the StatefulSet controller, on the controller
// framework: pods with stable identities, as Kubernetes' StatefulSet.
//
//   - Pod <set>-<ordinal> for each ordinal from spec.ordinals.start, with
//     hostname its name and subdomain spec.serviceName (a headless Service
//     of that name gives it <pod>.<service>.<namespace>.svc.cluster.local),
//     the labels statefulset.kubernetes.io/pod-name,
//     apps.kubernetes.io/pod-index and controller-revision-hash.
//   - Its claims <template>-<set>-<ordinal>, one per volumeClaimTemplate,
//     made before the pod and never replaced: a new pod of the ordinal
//     finds its data. They stay when the set scales down or goes, unless
//     persistentVolumeClaimRetentionPolicy says Delete (whenScaled: the
//     claims of a removed ordinal are deleted once its pod is gone;
//     whenDeleted: the claims carry an ownerReference to the set, so the
//     garbage collector takes them with it).
//   - OrderedReady: pod N+1 is created only when pods 0..N are Running and
//     Ready; on scale-down the highest ordinal goes first, one at a time,
//     while the others are Running and Ready. Parallel: all at once.
//   - RollingUpdate: once every pod is Running and Ready, the highest
//     ordinal not below partition whose revision is old is deleted (and
//     made again from the new template), one at a time; a pod below the
//     partition that is made again gets the current revision's template.
//     OnDelete: a pod gets the new template only when someone deletes it.
//   - Each revision of the template is a ControllerRevision <set>-<hash>
//     owned by the set (the pods' controller-revision-hash); unused ones
//     beyond revisionHistoryLimit are deleted.
//   - A failed pod is deleted and made again. Orphans the selector matches
//     are adopted (framework.ClaimPods).
//
// Stable names make creates idempotent (a pod already there is
// AlreadyExists), so no expectations are kept: a stale cache at worst
// waits for the next event.
package statefulset
