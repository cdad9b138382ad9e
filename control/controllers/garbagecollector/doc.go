// Package garbagecollector deletes objects whose owners are gone, as
// Kubernetes' garbage collector does in background cascade: when a
// Deployment is deleted its ReplicaSets go, and with them their pods.
//
// Every namespaced kind (but Event) is a possible dependent: one
// controller per kind reconciles each object that has ownerReferences.
// An owner counts as present when an object of the referenced kind, name
// and uid exists in the object's namespace (or, for a cluster-scoped
// kind, in the cluster); the watch-fed cache answers first and the store
// confirms an absence, since the cache of the owner's kind may lag a
// dependent created just after its owner. An object none of whose owners
// is present is deleted (pods gracefully, as the apiserver deletes them);
// one with some owners gone loses the dangling references. When an
// object is deleted, the dependents that name its uid are queued; every
// object is checked when the collector starts, so owners deleted while it
// was down are caught up.
//
// Foreground and orphan deletion (DeleteRequest.PropagationPolicy) are
// finished here too: the apiserver only marks such an object
// (deletionTimestamp and the foregroundDeletion or orphan finalizer). For
// foregroundDeletion the collector deletes the object's dependents (pods
// gracefully, other objects marked foregroundDeletion in turn, so the
// cascade reaches the pods first) and removes the object once none is
// left; for orphan it removes the dependents' references to the object
// and then the object. Reconciling is level-triggered and needs no state
// beyond the store.
package garbagecollector
