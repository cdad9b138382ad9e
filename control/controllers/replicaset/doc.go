// Package replicaset is the ReplicaSet controller: it keeps spec.replicas
// pods that match a ReplicaSet's selector, as Kubernetes' does.
//
// It creates pods from the template with a controlling ownerReference to
// the ReplicaSet, deletes the extra ones (unscheduled, pending, not-ready
// and newest first), adopts orphan pods that match the selector and
// releases owned pods that no longer match it. Status counts replicas, the
// pods whose Ready condition is True (readyReplicas), and those Ready for
// at least minReadySeconds (availableReplicas).
//
// The pod cache lags the store, so every create and delete is recorded as
// an expectation (by pod name) that the pod informer's events satisfy; a
// ReplicaSet whose expectations are open only updates its status, so it
// never creates twice for one missing pod. Expectations live in memory: a
// restarted controller starts with none and reads what the store holds,
// once its caches have synced.
//
// The pod helpers (IsPodReady, IsPodAvailable, DeletePod) are shared by the
// Deployment controller and the garbage collector.
package replicaset
