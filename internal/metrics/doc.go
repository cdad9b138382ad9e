// Package metrics holds kyb's Prometheus metric families and serves them on
// /metrics (prometheus/client_golang).
//
// Every family is defined here, in one registry (Registry), so that the call
// sites that observe them (the apiserver's endpoint wrapper, the scheduler,
// the store, the node agent, the wasm runtime's WAGI handler) stay one line
// each, and docs/metrics.md can list them in one place. Labels are bounded:
// verbs, codes, operations, runtimes and results are small fixed sets; the
// only label naming an object is the pod of the WAGI request counter, whose
// series are deleted when the pod's server stops (ForgetWAGIPod).
//
// Serve exposes the registry on an HTTP address: plain on loopback; beyond
// loopback only with a bearer token (Options.Token) or when explicitly
// insecure (Options.Insecure).
package metrics
