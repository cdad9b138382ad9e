// Package controlplane composes the control plane into one process: an
// embedded NATS server with JetStream (the store and the event bus), the
// typed object store, the NATS API (apiserver), the scheduler and the
// controllers. `kyb server` and `kyb up` run it.
package controlplane
