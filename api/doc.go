// Package api owns kybernetes' resource types (Namespace, Node, Pod, and
// the RBAC kinds Role, ClusterRole, RoleBinding, ClusterRoleBinding), their
// metadata, defaults and validation, manifest decoding, the wire shapes of the
// NATS API (errors, requests, replies) and the node agent protocol.
//
// Field names follow Kubernetes so that a plain Kubernetes manifest decodes
// unchanged. Resource quantities are Kubernetes' own (k8s.io/apimachinery's
// resource.Quantity), so `250m`, `0.5`, `128Mi` and `1G` parse and print
// exactly as they do there.
//
// The package imports nothing else of the project.
package api
