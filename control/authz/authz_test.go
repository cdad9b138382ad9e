package authz_test

import (
	"fmt"
	"testing"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/authn"
	"github.com/kybernetes/kybernetes/control/authz"
)

func user(name string, groups ...string) authn.UserInfo {
	return authn.UserInfo{Name: name, Groups: append([]string{authn.GroupAuthenticated}, groups...)}
}

func roleBinding(ns, name, refKind, refName string, subjects ...api.Subject) *api.RoleBinding {
	b := &api.RoleBinding{ObjectMeta: api.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: "1"},
		Subjects: subjects, RoleRef: api.RoleRef{Kind: refKind, Name: refName}}
	api.Default(b)
	return b
}

func clusterRoleBinding(name, refName string, subjects ...api.Subject) *api.ClusterRoleBinding {
	b := &api.ClusterRoleBinding{ObjectMeta: api.ObjectMeta{Name: name, ResourceVersion: "1"},
		Subjects: subjects, RoleRef: api.RoleRef{Kind: "ClusterRole", Name: refName}}
	api.Default(b)
	return b
}

func userSubject(n string) api.Subject  { return api.Subject{Kind: api.SubjectUser, Name: n} }
func groupSubject(n string) api.Subject { return api.Subject{Kind: api.SubjectGroup, Name: n} }

// testAuthorizer indexes the built-ins and:
//   - bob: view in namespace a (RoleBinding to the ClusterRole view);
//   - carol: edit everywhere (ClusterRoleBinding);
//   - dave: the Role a/web-reader (get pods named web) in a;
//   - group ops: view everywhere; erin: admin in a;
//   - service account a/ci: edit in a.
func testAuthorizer(t *testing.T) *authz.Authorizer {
	t.Helper()
	a := authz.New()
	for _, o := range authz.Builtins() {
		a.Observe(o)
	}
	webReader := &api.Role{ObjectMeta: api.ObjectMeta{Namespace: "a", Name: "web-reader"},
		Rules: []api.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}, ResourceNames: []string{"web"}}}}
	objs := []api.Object{
		roleBinding("a", "bob-view", "ClusterRole", "view", userSubject("bob")),
		clusterRoleBinding("carol-edit", "edit", userSubject("carol")),
		webReader,
		roleBinding("a", "dave-web", "Role", "web-reader", userSubject("dave")),
		clusterRoleBinding("ops-view", "view", groupSubject("ops")),
		roleBinding("a", "erin-admin", "ClusterRole", "admin", userSubject("erin")),
		roleBinding("a", "ci-edit", "ClusterRole", "edit", api.Subject{Kind: api.SubjectServiceAccount, Name: "ci"}),
	}
	for _, o := range objs {
		if err := api.Validate(o); err != nil {
			t.Fatalf("fixture %s: %v", o.GetObjectMeta().Name, err)
		}
		a.Observe(o)
	}
	return a
}

func TestAuthorize(t *testing.T) {
	a := testAuthorizer(t)
	tests := []struct {
		name  string
		attr  authz.Attributes
		allow bool
	}{
		{"masters may do anything", authz.Attributes{User: authn.ControlPlane(), Verb: "delete", Resource: "nodes", Name: "n1"}, true},
		{"admin user is cluster-admin", authz.Attributes{User: user("admin"), Verb: "delete", Resource: "nodes", Name: "n1"}, true},
		{"admin user may write RBAC", authz.Attributes{User: user("admin"), Verb: "create", Resource: "clusterrolebindings"}, true},
		{"unbound user gets nothing", authz.Attributes{User: user("mallory"), Verb: "get", Resource: "pods", Namespace: "default", Name: "x"}, false},
		{"view: get pods", authz.Attributes{User: user("bob"), Verb: "get", Resource: "pods", Namespace: "a", Name: "web"}, true},
		{"view: list pods", authz.Attributes{User: user("bob"), Verb: "list", Resource: "pods", Namespace: "a"}, true},
		{"view: watch pods", authz.Attributes{User: user("bob"), Verb: "watch", Resource: "pods", Namespace: "a"}, true},
		{"view: pod logs", authz.Attributes{User: user("bob"), Verb: "get", Resource: "pods/log", Namespace: "a", Name: "web"}, true},
		{"view: no delete", authz.Attributes{User: user("bob"), Verb: "delete", Resource: "pods", Namespace: "a", Name: "web"}, false},
		{"view: no create", authz.Attributes{User: user("bob"), Verb: "create", Resource: "pods", Namespace: "a"}, false},
		{"view: no secrets", authz.Attributes{User: user("bob"), Verb: "get", Resource: "secrets", Namespace: "a", Name: "s"}, false},
		{"view: no RBAC", authz.Attributes{User: user("bob"), Verb: "list", Resource: "rolebindings", Namespace: "a"}, false},
		{"rolebinding in a grants nothing in b", authz.Attributes{User: user("bob"), Verb: "get", Resource: "pods", Namespace: "b", Name: "web"}, false},
		{"rolebinding grants nothing across namespaces", authz.Attributes{User: user("bob"), Verb: "list", Resource: "pods"}, false},
		{"rolebinding grants nothing cluster-scoped", authz.Attributes{User: user("bob"), Verb: "list", Resource: "nodes"}, false},
		{"edit everywhere: create pods in b", authz.Attributes{User: user("carol"), Verb: "create", Resource: "pods", Namespace: "b"}, true},
		{"edit: secrets", authz.Attributes{User: user("carol"), Verb: "get", Resource: "secrets", Namespace: "b", Name: "s"}, true},
		{"edit: deployments (apps)", authz.Attributes{User: user("carol"), Verb: "update", Resource: "deployments", Namespace: "b", Name: "d"}, true},
		{"edit: no RBAC", authz.Attributes{User: user("carol"), Verb: "create", Resource: "roles", Namespace: "b"}, false},
		{"edit: no nodes", authz.Attributes{User: user("carol"), Verb: "delete", Resource: "nodes", Name: "n1"}, false},
		{"edit through a clusterrolebinding: modules", authz.Attributes{User: user("carol"), Verb: "create", Resource: "modules"}, true},
		{"role with resourceNames: that name", authz.Attributes{User: user("dave"), Verb: "get", Resource: "pods", Namespace: "a", Name: "web"}, true},
		{"role with resourceNames: other name", authz.Attributes{User: user("dave"), Verb: "get", Resource: "pods", Namespace: "a", Name: "db"}, false},
		{"role with resourceNames: no list", authz.Attributes{User: user("dave"), Verb: "list", Resource: "pods", Namespace: "a"}, false},
		{"group binding", authz.Attributes{User: user("frank", "ops"), Verb: "list", Resource: "pods", Namespace: "z"}, true},
		{"group binding: not in the group", authz.Attributes{User: user("frank"), Verb: "list", Resource: "pods", Namespace: "z"}, false},
		{"admin role: rolebindings in its namespace", authz.Attributes{User: user("erin"), Verb: "create", Resource: "rolebindings", Namespace: "a"}, true},
		{"admin role: not clusterroles", authz.Attributes{User: user("erin"), Verb: "create", Resource: "clusterroles"}, false},
		{"service account of the binding's namespace", authz.Attributes{User: user("system:serviceaccount:a:ci"), Verb: "create", Resource: "pods", Namespace: "a"}, true},
		{"service account of another namespace", authz.Attributes{User: user("system:serviceaccount:b:ci"), Verb: "create", Resource: "pods", Namespace: "a"}, false},
		{"a namespace is in itself: view in a gets namespace a", authz.Attributes{User: user("bob"), Verb: "get", Resource: "namespaces", Name: "a"}, true},
		{"view in a does not get namespace b", authz.Attributes{User: user("bob"), Verb: "get", Resource: "namespaces", Name: "b"}, false},
		{"view in a does not list namespaces", authz.Attributes{User: user("bob"), Verb: "list", Resource: "namespaces"}, false},
		{"admin in a may not delete namespace a", authz.Attributes{User: user("erin"), Verb: "delete", Resource: "namespaces", Name: "a"}, false},
		{"view: list services", authz.Attributes{User: user("bob"), Verb: "list", Resource: "services", Namespace: "a"}, true},
		{"view: list endpointslices", authz.Attributes{User: user("bob"), Verb: "list", Resource: "endpointslices", Namespace: "a"}, true},
		{"edit: create services", authz.Attributes{User: user("carol"), Verb: "create", Resource: "services", Namespace: "b"}, true},
		{"edit: no endpointslice writes (CVE-2021-25740)", authz.Attributes{User: user("carol"), Verb: "create", Resource: "endpointslices", Namespace: "b"}, false},
		{"admin role: no endpointslice writes", authz.Attributes{User: user("erin"), Verb: "update", Resource: "endpointslices", Namespace: "a", Name: "x"}, false},
		{"node principal gets no API rights", authz.Attributes{User: authn.NodeUser("n1"), Verb: "get", Resource: "pods", Namespace: "a", Name: "web"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := a.Authorize(tt.attr)
			if tt.allow && err != nil {
				t.Fatalf("Authorize: %v; want allowed", err)
			}
			if !tt.allow {
				if err == nil {
					t.Fatal("Authorize allowed; want 403")
				}
				if st, ok := err.(*api.Status); !ok || st.Code != 403 {
					t.Fatalf("Authorize = %v; want a 403 Status", err)
				}
			}
		})
	}
}

func TestForbiddenMessage(t *testing.T) {
	a := testAuthorizer(t)
	err := a.Authorize(authz.Attributes{User: user("bob"), Verb: "delete", Resource: "pods", Namespace: "default"})
	want := `user "bob" cannot delete resource "pods" in namespace "default"`
	if err == nil || err.Error() != want {
		t.Fatalf("Authorize = %v; want %q", err, want)
	}
	err = a.Authorize(authz.Attributes{User: user("bob"), Verb: "delete", Resource: "nodes", Name: "n1"})
	if err == nil || err.Error() != `nodes "n1" is forbidden: user "bob" cannot delete resource "nodes" at the cluster scope` {
		t.Fatalf("Authorize = %v; want the cluster scope named", err)
	}
}

func TestIndexFollowsChanges(t *testing.T) {
	a := testAuthorizer(t)
	attr := authz.Attributes{User: user("bob"), Verb: "get", Resource: "pods", Namespace: "a", Name: "web"}
	if err := a.Authorize(attr); err != nil {
		t.Fatal(err)
	}
	b := roleBinding("a", "bob-view", "ClusterRole", "view", userSubject("bob"))
	a.Forget(b)
	if err := a.Authorize(attr); err == nil {
		t.Fatal("allowed after the binding was forgotten")
	}
	// An older revision does not replace a newer one.
	b2 := roleBinding("a", "bob-view", "ClusterRole", "view", userSubject("bob"))
	b2.ResourceVersion = "5"
	a.Observe(b2)
	old := roleBinding("a", "bob-view", "ClusterRole", "view", userSubject("someone-else"))
	old.ResourceVersion = "4"
	a.Observe(old)
	if err := a.Authorize(attr); err != nil {
		t.Fatalf("an older revision replaced the newer binding: %v", err)
	}
	// A changed ClusterRole changes what its bindings grant.
	view := &api.ClusterRole{ObjectMeta: api.ObjectMeta{Name: "view", ResourceVersion: "9"}}
	a.Observe(view)
	if err := a.Authorize(attr); err == nil {
		t.Fatal("allowed after view lost its rules")
	}
}

func TestCheckEscalation(t *testing.T) {
	a := testAuthorizer(t)
	podRole := func(ns string, verbs ...string) *api.Role {
		return &api.Role{ObjectMeta: api.ObjectMeta{Namespace: ns, Name: "r"},
			Rules: []api.PolicyRule{{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: verbs}}}
	}
	tests := []struct {
		name  string
		user  authn.UserInfo
		obj   api.Object
		allow bool
	}{
		{"admin of a: a role it holds", user("erin"), podRole("a", "get", "delete"), true},
		{"admin of a: a role with rules it lacks", user("erin"), &api.Role{ObjectMeta: api.ObjectMeta{Namespace: "a", Name: "r"},
			Rules: []api.PolicyRule{{APIGroups: []string{"*"}, Resources: []string{"*"}, Verbs: []string{"*"}}}}, false},
		{"admin of a: bind edit in a", user("erin"), roleBinding("a", "x", "ClusterRole", "edit", userSubject("zed")), true},
		{"admin of a: bind cluster-admin in a", user("erin"), roleBinding("a", "x", "ClusterRole", "cluster-admin", userSubject("zed")), false},
		{"admin of a: bind a missing role", user("erin"), roleBinding("a", "x", "ClusterRole", "nope", userSubject("zed")), false},
		{"admin of a: in b it holds nothing", user("erin"), podRole("b", "get"), false},
		{"cluster-admin user may bind anything", user("admin"), clusterRoleBinding("x", "cluster-admin", userSubject("zed")), true},
		{"masters pass", authn.ControlPlane(), clusterRoleBinding("x", "nope", userSubject("zed")), true},
		{"other kinds pass", user("bob"), &api.Pod{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := a.CheckEscalation(tt.user, tt.obj)
			if tt.allow && err != nil {
				t.Fatalf("CheckEscalation: %v; want allowed", err)
			}
			if !tt.allow && !api.IsForbidden(err) {
				t.Fatalf("CheckEscalation = %v; want 403", err)
			}
		})
	}
}

func TestDrifted(t *testing.T) {
	view := authz.BuiltinClusterRoles()[3]
	if authz.Drifted(view) != nil {
		t.Fatal("the built-in view drifted from itself")
	}
	changed := api.DeepCopy(view)
	changed.Rules = append(changed.Rules, api.PolicyRule{APIGroups: []string{""}, Resources: []string{"secrets"}, Verbs: []string{"get"}})
	changed.ResourceVersion = "7"
	got, ok := authz.Drifted(changed).(*api.ClusterRole)
	if !ok || len(got.Rules) != len(view.Rules) || got.ResourceVersion != "7" {
		t.Fatalf("Drifted = %+v; want the built-in rules at the stored resourceVersion", got)
	}
	other := &api.ClusterRole{ObjectMeta: api.ObjectMeta{Name: "mine"}}
	if authz.Drifted(other) != nil {
		t.Fatal("a user's ClusterRole is not built in")
	}
	b := authz.BuiltinClusterRoleBindings()[0]
	b.Subjects = append(b.Subjects, userSubject("mallory"))
	if authz.Drifted(b) == nil {
		t.Fatal("a subject added to kyb-admin is not restored")
	}
}

func TestGroupOf(t *testing.T) {
	for res, want := range map[string]string{"pods": "", "pods/log": "", "nodes": "", "modules": "kyb", "roles": api.RBACGroup, "clusterrolebindings": api.RBACGroup} {
		if got := authz.GroupOf(res); got != want {
			t.Errorf("GroupOf(%q) = %q; want %q", res, got, want)
		}
	}
}

func TestForgetLeavesTombstone(t *testing.T) {
	a := testAuthorizer(t)
	attr := authz.Attributes{User: user("bob"), Verb: "get", Resource: "pods", Namespace: "a", Name: "web"}
	b := roleBinding("a", "bob-view", "ClusterRole", "view", userSubject("bob"))
	b.ResourceVersion = "3"
	a.Observe(b)
	a.Forget(b)
	a.Observe(b) // a late write-through of the deleted revision
	if err := a.Authorize(attr); err == nil {
		t.Fatal("a late observe of the deleted revision brought the binding back")
	}
	again := roleBinding("a", "bob-view", "ClusterRole", "view", userSubject("bob"))
	again.ResourceVersion = "8" // created again
	a.Observe(again)
	if err := a.Authorize(attr); err != nil {
		t.Fatalf("the binding created again is not in force: %v", err)
	}
}

// BenchmarkAuthorize measures one decision for a user bound through a
// RoleBinding among a hundred other bindings.
func BenchmarkAuthorize(b *testing.B) {
	a := authz.New()
	for _, o := range authz.Builtins() {
		a.Observe(o)
	}
	for i := range 100 {
		a.Observe(roleBinding("a", fmt.Sprintf("b%d", i), "ClusterRole", "view", userSubject(fmt.Sprintf("u%d", i))))
		a.Observe(clusterRoleBinding(fmt.Sprintf("c%d", i), "view", groupSubject(fmt.Sprintf("g%d", i))))
	}
	attr := authz.Attributes{User: user("u99"), Verb: "get", Resource: "pods", Namespace: "a", Name: "web"}
	b.ReportAllocs()
	for b.Loop() {
		if err := a.Authorize(attr); err != nil {
			b.Fatal(err)
		}
	}
}

func TestNamespaceObjectsAreInThemselves(t *testing.T) {
	a := testAuthorizer(t)
	a.Observe(&api.Role{ObjectMeta: api.ObjectMeta{Namespace: "a", Name: "ns-owner"},
		Rules: []api.PolicyRule{{APIGroups: []string{""}, Resources: []string{"namespaces"}, Verbs: []string{"*"}}}})
	a.Observe(roleBinding("a", "nina", "Role", "ns-owner", userSubject("nina")))
	for _, tt := range []struct {
		verb, name string
		allow      bool
	}{
		{"delete", "a", true},
		{"update", "a", true},
		{"delete", "b", false},
		{"create", "a", false}, // creating is cluster-scoped, as in Kubernetes
		{"list", "", false},
	} {
		err := a.Authorize(authz.Attributes{User: user("nina"), Verb: tt.verb, Resource: "namespaces", Name: tt.name})
		if (err == nil) != tt.allow {
			t.Errorf("%s namespace %q: %v; want allowed %v", tt.verb, tt.name, err, tt.allow)
		}
	}
}
