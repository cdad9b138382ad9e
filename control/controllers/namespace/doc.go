// Package namespace owns namespace finalization, as Kubernetes' namespace
// controller: once a namespace is Terminating (the apiserver's delete sets
// its deletionTimestamp and phase), it deletes what is left in it — the
// objects of every namespaced kind other than pods at once, pods the way
// the apiserver deletes them (unbound ones, and those on a node that is
// gone, at once; bound ones marked for graceful deletion, removed when
// their agent reports them finalized) — and removes the namespace when no
// pod is left. It runs on control/controllers/framework: a Reconciler keyed
// by namespace name, fed by the shared Namespace, Pod and Node informers.
package namespace
