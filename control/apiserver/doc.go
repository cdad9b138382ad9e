// Package apiserver owns kybernetes' NATS API: the nats.go/micro service
// "kyb" with the endpoints kyb.api.v1.{apply,get,list,delete}, the streamed
// kyb.api.v1.{watch,logs}, kyb.api.v1.modules.{push,upload.<id>,list,get},
// the node agent protocol (kyb.node.<node>.{register,heartbeat,status,
// podstatus,sync,moduleinfo} and the streamed kyb.node.<node>.module), the
// change events published on kyb.events.<kind>.<namespace>.<name>, the pod
// assignments published on kyb.agent.<node>.pods, and the JetStream assets
// the rest of the cluster uses (the KYB_LOGS stream, the kyb-modules object
// store).
//
// Requests are decoded, defaulted and validated here (with package api) and
// written through control/store with compare-and-set. One store watch over
// every kind feeds an in-memory cache (lists, pod sync) and drives every
// event and assignment, so writes made by other components (the scheduler)
// are published too.
//
// Several apiservers may serve the same cluster (the micro endpoints share a
// queue group), but each runs its own watch, so each publishes every event
// and assignment: consumers must tolerate duplicates (they are ordered by
// resourceVersion) until event publishing is given to a lease holder.
//
// Users and agents need nothing else: every JetStream asset (the object
// store, the logs stream) is read and written here, on their behalf.
//
// A streamed reply (stream.go) is one mechanism for every streaming verb:
// data messages, heartbeats and an end message on the request's reply
// subject, each marked by the Kyb-Reply header; the server ends a stream
// after Config.StreamMaxDuration or Config.StreamMaxBytes with a resume
// point the client sends back. Watches resume from a history of the last
// Config.WatchHistory committed changes (history.go), fed by the same store
// watch as the cache, so a watch from a list's resourceVersion misses
// nothing. Module uploads are chunked (a private upload subject per push),
// hashed as they arrive and piped into the object store, which keeps the
// object only when the digest matched.
//
// Errors are replied as micro errors: the Nats-Service-Error-Code header holds
// the Status code ("404"), Nats-Service-Error the message, and the body the
// api.Status JSON.
package apiserver
