// Package runtimes defines the one interface through which the node agent
// runs pods, whatever runs them: containerd containers (runtimes/containerd),
// WebAssembly modules on wazero (runtimes/wasm), or a fake for the layers
// above (runtimes/fake). runtimes/runtimetest is the conformance suite every
// implementation passes.
//
// The shape follows CRI and Nomad's driver interface: a pod sandbox holds the
// pod's shared state (network namespace, volumes, host ports); containers are
// created, started, waited on, stopped with a grace period and removed inside
// it. Every method takes a context first and is safe for concurrent use.
// Optional features (stats, exec, attach) are separate interfaces found by
// type assertion.
package runtimes
