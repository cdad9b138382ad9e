// Package podsecurity holds Kubernetes' Pod Security Standards as pure
// functions: Check evaluates a pod against one of the levels privileged,
// baseline and restricted and names every violation with its field path;
// NamespaceLevel reads the level a namespace enforces from its
// pod-security.kubernetes.io/enforce label. It owns no state, does no I/O
// and is safe for concurrent use; the apiserver calls it before any pod is
// stored.
//
// The checks are those of Kubernetes' "latest" standards, over the fields
// kybernetes has, with one documented difference: baseline allows host
// ports in HostPortMin..HostPortMax (see there). A pod-security
// .kubernetes.io/enforce-version label is accepted and the latest checks are
// applied whatever it says. The warn and audit labels are not acted on.
// docs/pod-security.md is the user's view.
package podsecurity
