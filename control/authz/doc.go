// Package authz decides what a principal may do: Kubernetes' RBAC over
// Role, ClusterRole, RoleBinding and ClusterRoleBinding objects.
//
// An Authorizer keeps an in-memory index of the RBAC objects, fed by the
// apiserver's one store watch (Observe, Forget): a request is authorized
// without reading the store. Authorize(Attributes) answers nil or a
// 403 Forbidden *api.Status that names the user, verb, resource and
// namespace, as Kubernetes does:
//
//	user "bob" cannot delete resource "pods" in namespace "default"
//
// The model, as in Kubernetes:
//   - Members of the group system:masters (the control plane) may do
//     everything, whatever the index holds.
//   - Everything else is denied unless a rule allows it. A rule allows a
//     request when its verbs, apiGroups, resources and (if given)
//     resourceNames all match; "*" matches anything.
//   - A ClusterRoleBinding grants its ClusterRole's rules everywhere: in
//     every namespace and on cluster-scoped resources (nodes, namespaces,
//     clusterroles, modules).
//   - A RoleBinding grants the rules of its Role (of its own namespace) or
//     ClusterRole only within its namespace.
//   - Subjects match by User name, Group name, or ServiceAccount (the user
//     system:serviceaccount:<namespace>:<name>).
//   - A namespace object is in itself: get, update or delete of the
//     namespace a is decided as a request in namespace a; creating one is
//     cluster-scoped.
//
// Resources are lower-case plurals ("pods"), with subresources after a
// slash ("pods/log"), plus kyb's own "modules" (wasm modules, cluster-scoped,
// API group "kyb"). A resource's API group is its kind's (core "" for pods,
// nodes, namespaces; "apps" for deployments; rbac.authorization.k8s.io for
// the RBAC kinds); a rule naming the group "kyb" matches every resource too,
// since every kind is also served as kyb/v1.
//
// The built-in ClusterRoles (BuiltinClusterRoles) keep Kubernetes' meaning
// mapped to kyb's kinds: cluster-admin (everything), admin (edit plus Roles
// and RoleBindings in the namespace), edit (view plus writing workloads,
// pods, configmaps, secrets and services, no RBAC), view (reading every
// namespaced resource except secrets and RBAC). The ClusterRoleBinding
// kyb-admin binds the user "admin" to cluster-admin. The apiserver creates
// them on start and restores them whenever they are changed or deleted.
//
// Creating or updating a Role or ClusterRole, and binding one, is refused
// when it would grant a permission the requester does not hold (Kubernetes'
// escalation check), unless the requester may "escalate" roles or "bind"
// them.
//
// An Authorizer is safe for concurrent use.
package authz
