// Package framework is the one controller framework of the control plane,
// in the shape of controller-runtime: every controller in
// control/controllers is a Reconciler run by a Controller over shared,
// watch-fed caches.
//
// # Pieces
//
//   - Informer: the one reflector of a kind. It watches control/store
//     (Watch from revision 0: the initial state, Synced, then changes) into
//     an in-memory cache, calls Handlers after each change, closes Synced()
//     once the initial state is in, and after an error watches again from
//     the last revision it applied (retry.DefaultWatch between attempts),
//     never listing the bucket in a loop. Lister reads the cache: Get by
//     namespace and name, List by namespace and label selector. Objects
//     from a Lister or a Handler are the cache's own and shared by every
//     controller: never change them; copy with api.DeepCopy first.
//   - Manager: owns one Informer per kind (Manager.Informer), shared by
//     every controller, and runs them with the controllers (Manager.Add,
//     Manager.Run).
//   - Queue: a de-duplicating work queue of Keys (namespace, name). A key
//     added many times before a worker takes it is handed out once; a key
//     being processed is never handed out again until Done, and one added
//     meanwhile is handed out after Done. AddAfter delays a key,
//     AddRateLimited delays it by its RateLimiter: DefaultRateLimiter is a
//     per-key exponential back-off (5 ms doubling to 5 min, reset by
//     Forget) combined with an overall token bucket (50/s, burst 300).
//   - Controller: runs Options.Workers goroutines that take keys from the
//     queue and call Reconcile(ctx, key) (Result, error). Watch(informer,
//     mapFunc) queues the keys of changed objects; Run waits for those
//     informers to sync first. An error requeues the key rate-limited; an
//     error wrapped with Terminal is logged and not retried;
//     Result.RequeueAfter queues the key again after that long,
//     Result.Requeue after its back-off; success resets the back-off; a
//     panic is an error. OwnerKey and NamespaceKey are ready MapFuncs.
//
// Reconcilers are level-triggered: they read the current state for the
// key every time and act on the difference, so a dropped, repeated or
// merged event changes nothing. They write with compare-and-set and wrap
// read-modify-write in retry.RetryOnConflict.
//
// # Writing a controller
//
//	mgr := framework.NewManager(st, log)
//	pods := mgr.Informer(api.KindOf(&api.Pod{}))
//	rs := mgr.Informer(api.KindOf(&api.ReplicaSet{}))
//	c := framework.NewController("replicaset", reconciler, framework.Options{Workers: 4, Logger: log})
//	c.Watch(rs, nil)                 // a ReplicaSet's own key
//	c.Watch(pods, framework.OwnerKey("ReplicaSet")) // a pod's controlling ReplicaSet
//	mgr.Add("replicaset", c)
//	mgr.SetElector(lease)            // a *store.Lease: controllers run only while held
//	go mgr.Run(ctx)
//
// With an Elector, informers start at once and the controllers only while
// the lease is held; when it is lost they are cancelled, no worker
// reconciles another key, and Run returns an error wrapping
// store.ErrLeaseLost: build a new Manager to campaign again.
//
// Time in queues comes from a Clock; FakeClock moves only when told, so
// tests of back-off and delays never sleep.
package framework
