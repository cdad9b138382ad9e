// Package e2e holds the end-to-end tests: a real control plane (embedded
// JetStream, apiserver, scheduler, controllers), real node agents with the
// real wasm runtime (and the fake one where a test only needs placement),
// driven through the kyb commands and the Go client over real NATS.
package e2e
