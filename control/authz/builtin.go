package authz

import (
	"reflect"

	"github.com/kybernetes/kybernetes/api"
)

// Names of the built-in RBAC objects.
const (
	ClusterAdmin = "cluster-admin"
	Admin        = "admin"
	Edit         = "edit"
	View         = "view"
	// AdminBinding is the ClusterRoleBinding of the user AdminUser to
	// cluster-admin.
	AdminBinding = "kyb-admin"
	// AdminUser is the user of the admin credentials the server issues.
	AdminUser = "admin"
)

// Labels and annotations of the built-in objects, as Kubernetes sets them.
const (
	// BootstrapLabel marks built-in objects: kubernetes.io/bootstrapping=rbac-defaults.
	BootstrapLabel      = "kubernetes.io/bootstrapping"
	BootstrapLabelValue = "rbac-defaults"
	// AutoupdateAnnotation says the apiserver keeps the object as built in.
	AutoupdateAnnotation = "rbac.authorization.kubernetes.io/autoupdate"
)

var (
	readVerbs  = []string{api.VerbGet, api.VerbList, api.VerbWatch}
	writeVerbs = []string{api.VerbCreate, api.VerbUpdate, api.VerbDelete}
	allVerbs   = append(append([]string{}, readVerbs...), writeVerbs...)
)

// What view may read: every namespaced resource but secrets and RBAC (and
// namespaces, as Kubernetes' view role may).
var (
	viewCore = []string{"pods", "pods/log", "pods/status", "services", "services/status", "endpoints", "configmaps", "events", "serviceaccounts", "namespaces", "persistentvolumeclaims", "persistentvolumeclaims/status"}
	viewApps = []string{"deployments", "deployments/scale", "deployments/status", "replicasets", "replicasets/scale", "replicasets/status", "statefulsets", "daemonsets", "controllerrevisions"}
	batch    = []string{"jobs", "cronjobs"}
	// What edit may also write: workloads, pods, configmaps, secrets, services, claims.
	editCore = []string{"pods", "services", "endpoints", "configmaps", "secrets", "serviceaccounts", "persistentvolumeclaims"}
	editApps = []string{"deployments", "deployments/scale", "replicasets", "replicasets/scale", "statefulsets", "daemonsets"}
)

func viewRules() []api.PolicyRule {
	return []api.PolicyRule{
		{APIGroups: []string{""}, Resources: viewCore, Verbs: readVerbs},
		{APIGroups: []string{"apps"}, Resources: viewApps, Verbs: readVerbs},
		{APIGroups: []string{"batch"}, Resources: batch, Verbs: readVerbs},
		// As Kubernetes: every role reads EndpointSlices; none but
		// cluster-admin writes them (the controller does; a writable slice
		// could send a Service's traffic anywhere, CVE-2021-25740).
		{APIGroups: []string{api.DiscoveryGroup}, Resources: []string{"endpointslices"}, Verbs: readVerbs},
		{APIGroups: []string{KybGroup}, Resources: []string{ResourceModules}, Verbs: readVerbs},
		// Usage (kyb top), as Kubernetes' system:aggregated-metrics-reader
		// aggregated into view, edit and admin.
		{APIGroups: []string{api.MetricsGroup}, Resources: []string{"pods", "nodes"}, Verbs: readVerbs},
	}
}

func editRules() []api.PolicyRule {
	return append(viewRules(),
		api.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: readVerbs},
		api.PolicyRule{APIGroups: []string{""}, Resources: editCore, Verbs: writeVerbs},
		// As Kubernetes' edit role: into the pods it may write (kyb exec,
		// attach, port-forward); view may not.
		api.PolicyRule{APIGroups: []string{""}, Resources: []string{"pods/exec", "pods/attach", "pods/portforward"}, Verbs: []string{api.VerbCreate, api.VerbGet}},
		api.PolicyRule{APIGroups: []string{"apps"}, Resources: editApps, Verbs: writeVerbs},
		api.PolicyRule{APIGroups: []string{"batch"}, Resources: batch, Verbs: writeVerbs},
		api.PolicyRule{APIGroups: []string{KybGroup}, Resources: []string{ResourceModules}, Verbs: writeVerbs},
	)
}

func adminRules() []api.PolicyRule {
	return append(editRules(),
		api.PolicyRule{APIGroups: []string{api.RBACGroup}, Resources: []string{"roles", "rolebindings"}, Verbs: allVerbs},
	)
}

func builtinMeta(name string) api.ObjectMeta {
	return api.ObjectMeta{
		Name:        name,
		Labels:      map[string]string{BootstrapLabel: BootstrapLabelValue},
		Annotations: map[string]string{AutoupdateAnnotation: "true"},
	}
}

// BuiltinClusterRoles returns new copies of the built-in ClusterRoles:
// cluster-admin, admin, edit and view (see the package documentation).
func BuiltinClusterRoles() []*api.ClusterRole {
	mk := func(name string, rules []api.PolicyRule) *api.ClusterRole {
		r := &api.ClusterRole{ObjectMeta: builtinMeta(name), Rules: rules}
		api.Default(r)
		return r
	}
	return []*api.ClusterRole{
		mk(ClusterAdmin, []api.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}),
		mk(Admin, adminRules()),
		mk(Edit, editRules()),
		mk(View, viewRules()),
	}
}

// BuiltinClusterRoleBindings returns new copies of the built-in
// ClusterRoleBindings: kyb-admin, which binds the user admin to
// cluster-admin.
func BuiltinClusterRoleBindings() []*api.ClusterRoleBinding {
	b := &api.ClusterRoleBinding{
		ObjectMeta: builtinMeta(AdminBinding),
		Subjects:   []api.Subject{{Kind: api.SubjectUser, Name: AdminUser}},
		RoleRef:    api.RoleRef{Kind: "ClusterRole", Name: ClusterAdmin},
	}
	api.Default(b)
	return []*api.ClusterRoleBinding{b}
}

// Builtins returns new copies of every built-in RBAC object.
func Builtins() []api.Object {
	var out []api.Object
	for _, r := range BuiltinClusterRoles() {
		out = append(out, r)
	}
	for _, b := range BuiltinClusterRoleBindings() {
		out = append(out, b)
	}
	return out
}

// Builtin returns a new copy of the built-in object of obj's kind and name,
// or nil when obj is not one of them.
func Builtin(obj api.Object) api.Object {
	m := obj.GetObjectMeta()
	for _, b := range Builtins() {
		if api.KindOf(b) == api.KindOf(obj) && b.GetObjectMeta().Name == m.Name && m.Namespace == "" {
			return b
		}
	}
	return nil
}

// Drifted returns the built-in object that obj, a stored object, must be
// restored to — with obj's metadata kept and its rules, subjects, roleRef,
// labels and annotations set as built in — or nil when obj is not built in
// or already as built in.
func Drifted(obj api.Object) api.Object {
	want := Builtin(obj)
	if want == nil {
		return nil
	}
	m := obj.GetObjectMeta()
	wm := want.GetObjectMeta()
	same := m.Labels[BootstrapLabel] == BootstrapLabelValue && m.Annotations[AutoupdateAnnotation] == "true"
	switch w := want.(type) {
	case *api.ClusterRole:
		same = same && reflect.DeepEqual(obj.(*api.ClusterRole).Rules, w.Rules)
	case *api.ClusterRoleBinding:
		o := obj.(*api.ClusterRoleBinding)
		same = same && reflect.DeepEqual(o.Subjects, w.Subjects) && o.RoleRef == w.RoleRef
	}
	if same {
		return nil
	}
	out := api.DeepCopy(obj)
	om := out.GetObjectMeta()
	if om.Labels == nil {
		om.Labels = map[string]string{}
	}
	if om.Annotations == nil {
		om.Annotations = map[string]string{}
	}
	for k, v := range wm.Labels {
		om.Labels[k] = v
	}
	for k, v := range wm.Annotations {
		om.Annotations[k] = v
	}
	switch w := want.(type) {
	case *api.ClusterRole:
		out.(*api.ClusterRole).Rules = w.Rules
	case *api.ClusterRoleBinding:
		o := out.(*api.ClusterRoleBinding)
		o.Subjects, o.RoleRef = w.Subjects, w.RoleRef
	}
	return out
}
