// Package apiserver owns kybernetes' NATS API: the nats.go/micro service
// "kyb" with the endpoints kyb.api.v1.{apply,get,list,delete,authz} (list,
// get and watch of kind Event read the events stream, control/events),
// the streamed kyb.api.v1.{watch,logs}, kyb.api.v1.modules.{push,upload.<id>,
// list,get}, the node agent protocol (kyb.node.<node>.{register,heartbeat,
// status,podstatus,sync,events,moduleinfo} and the streamed
// kyb.node.<node>.module), the pod assignments published on
// kyb.agent.<node>.pods, and the JetStream assets
// the rest of the cluster uses (the KYB_LOGS stream, the kyb-modules object
// store).
//
// Every request is authorized first. Its sender comes from NATS
// (control/authn: the Nats-Request-Info header a service import with
// share: true adds; none from the control plane's own account). Every
// kyb.api.v1 verb asks RBAC (control/authz) — get, list, delete, and for
// apply create or update per document, with Kubernetes' escalation check
// for roles and bindings — before it reads or writes; kyb.api.v1.authz
// answers "may I?". Node verbs accept only the node their subject names (or
// the control plane). The authorizer's index of RBAC objects is fed by the
// store watch below, so authorizing reads no KV. The built-in ClusterRoles
// (cluster-admin, admin, edit, view) and the ClusterRoleBinding kyb-admin
// are created on start and restored when changed or deleted.
//
// Requests are decoded, defaulted and validated here (with package api) and
// written through control/store with compare-and-set. One store watch over
// every kind feeds an in-memory cache (lists, pod sync), the watch history
// (kyb.api.v1.watch) and every assignment, so writes made by other
// components (the scheduler) reach watchers and agents too.
//
// Several apiservers may serve the same cluster (the micro endpoints share a
// queue group), but each runs its own watch, so each publishes every event
// and assignment: consumers must tolerate duplicates (they are ordered by
// resourceVersion) until event publishing is given to a lease holder.
//
// No request can take the server down. Every endpoint passes one gate
// (guard) first: a kyb.api.v1 body over api.MaxRequestBytes (1 MiB) is a
// 413, a reply subject too long to publish on drops the request. Each
// payload is then decoded and checked by one function (parseGet, parseList,
// parseDelete, parseRegister, ...; fuzzed) before any name, namespace or
// kind becomes part of a key or subject, and the subjects the server
// publishes on are checked once more (publishable). Node requests are served
// on their own semaphore (Config.NodeMaxInFlight), apart from user requests
// (Config.MaxInFlight), so a flood of applies never delays a heartbeat.
//
// An apply or delete may be conditional, as in Kubernetes: a document's
// metadata.resourceVersion (and uid), or a delete's preconditions, must
// match the stored object, else 409 Conflict. A manifest is checked whole
// (validation, namespaces, preconditions) before any document is written.
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
