package apiserver_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/client"
	"github.com/kybernetes/kybernetes/control/authn"
	"github.com/kybernetes/kybernetes/control/store"
	"github.com/kybernetes/kybernetes/internal/testutil"
)

// principal is who a test request claims to be, through the
// Nats-Request-Info header that a service import with share: true sets (in
// tests every connection is in one account, so the test sets it by hand).
type principal struct {
	acc, user string
	tags      []string
}

func userP(name string, groups ...string) principal {
	p := principal{acc: authn.AccountUsers, user: name}
	for _, g := range groups {
		p.tags = append(p.tags, authn.GroupTagPrefix+g)
	}
	return p
}

func nodeP(node string) principal {
	return principal{acc: authn.AccountNodes, user: authn.NodeUserPrefix + node}
}

// req sends body on subject as p, with a raw nats.go request as an
// attacker would, and returns the reply body or the reply's error Status.
func (e *env) req(t testing.TB, p principal, subject string, body []byte) ([]byte, error) {
	t.Helper()
	info, err := json.Marshal(map[string]any{"acc": p.acc, "user": p.user, "tags": p.tags, "name": "test client"})
	if err != nil {
		t.Fatal(err)
	}
	msg := &nats.Msg{Subject: subject, Data: body, Header: nats.Header{}}
	msg.Header.Set(authn.RequestInfoHeader, string(info))
	reply, err := e.nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	if err := client.ReplyError(reply); err != nil {
		return nil, err
	}
	return reply.Data, nil
}

func (e *env) reqJSON(t testing.TB, p principal, subject string, v any) ([]byte, error) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return e.req(t, p, subject, b)
}

func wantCode(t testing.TB, what string, err error, code int, contains ...string) {
	t.Helper()
	st, ok := err.(*api.Status)
	if !ok || st.Code != code {
		t.Fatalf("%s: %v; want a %d Status", what, err, code)
	}
	for _, c := range contains {
		if !strings.Contains(st.Message, c) {
			t.Fatalf("%s: message %q does not contain %q", what, st.Message, c)
		}
	}
}

func roleBindingYAML(ns, name, refKind, refName, user string) string {
	return fmt.Sprintf(`apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: %s
  namespace: %s
subjects:
- kind: User
  name: %s
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: %s
  name: %s
`, name, ns, user, refKind, refName)
}

// grantEventually applies manifest as the control plane and waits until
// check passes (the authorizer follows the store watch).
func (e *env) grantEventually(t *testing.T, manifest string, check func() error) {
	t.Helper()
	e.apply(t, manifest)
	testutil.Eventually(t, 5*time.Second, check)
}

func TestRBACViewUser(t *testing.T) {
	e := newEnv(t)
	e.apply(t, podYAML("", "web", nil))
	bob := userP("bob")
	get := api.GetRequest{Kind: "pod", Namespace: "default", Name: "web"}

	// Before any binding, bob may do nothing.
	_, err := e.reqJSON(t, bob, api.SubjectGet, get)
	wantCode(t, "get without a binding", err, 403, `user "bob" cannot get resource "pods"`)

	e.grantEventually(t, roleBindingYAML("default", "bob-view", "ClusterRole", "view", "bob"), func() error {
		_, err := e.reqJSON(t, bob, api.SubjectGet, get)
		return err
	})
	b, err := e.reqJSON(t, bob, api.SubjectList, api.ListRequest{Kind: "pods"})
	if err != nil {
		t.Fatalf("view user lists pods: %v", err)
	}
	var list api.ListReply
	if err := json.Unmarshal(b, &list); err != nil || len(list.Items) != 1 {
		t.Fatalf("list as bob: %s, %v", b, err)
	}

	_, err = e.reqJSON(t, bob, api.SubjectDelete, api.DeleteRequest{Kind: "pod", Namespace: "default", Name: "web"})
	wantCode(t, "delete as a view user", err, 403, `pods "web" is forbidden: user "bob" cannot delete resource "pods" in namespace "default"`)
	before := e.pod(t, "default", "web")
	_, err = e.req(t, bob, api.SubjectApply, []byte(podYAML("", "web", map[string]string{"changed": "v2"})))
	wantCode(t, "apply (update) as a view user", err, 403, `cannot update resource "pods"`)
	_, err = e.req(t, bob, api.SubjectApply, []byte(podYAML("", "other", nil)))
	wantCode(t, "apply (create) as a view user", err, 403, `cannot create resource "pods"`)
	after := e.pod(t, "default", "web")
	if after.ResourceVersion != before.ResourceVersion || after.Labels["changed"] != "" {
		t.Fatal("a denied apply changed the pod")
	}
	if _, err := e.c.Get(e.ctx, "pod", "default", "other"); !api.IsNotFound(err) {
		t.Fatalf("a denied apply created a pod: %v", err)
	}
	// view reads no RBAC and no cluster-scoped kinds.
	_, err = e.reqJSON(t, bob, api.SubjectList, api.ListRequest{Kind: "rolebindings"})
	wantCode(t, "list rolebindings as view", err, 403)
	_, err = e.reqJSON(t, bob, api.SubjectList, api.ListRequest{Kind: "nodes"})
	wantCode(t, "list nodes as view in a namespace", err, 403, "at the cluster scope")
}

func TestRBACRoleBindingIsNamespaced(t *testing.T) {
	e := newEnv(t)
	e.apply(t, "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: b\n")
	bob := userP("bob")
	e.grantEventually(t, roleBindingYAML("a", "bob-edit", "ClusterRole", "edit", "bob"), func() error {
		_, err := e.req(t, bob, api.SubjectApply, []byte(podYAML("a", "web", nil)))
		return err
	})
	_, err := e.req(t, bob, api.SubjectApply, []byte(podYAML("b", "web", nil)))
	wantCode(t, "apply in b with a binding in a", err, 403, `in namespace "b"`)
	_, err = e.reqJSON(t, bob, api.SubjectGet, api.GetRequest{Kind: "pod", Namespace: "b", Name: "web"})
	wantCode(t, "get in b", err, 403)
	_, err = e.reqJSON(t, bob, api.SubjectList, api.ListRequest{Kind: "pod", AllNamespaces: true})
	wantCode(t, "list across namespaces", err, 403, "at the cluster scope")

	// A multi-document apply with one denied document stores nothing, and
	// the 403 names the document.
	_, err = e.req(t, bob, api.SubjectApply, []byte(podYAML("a", "one", nil)+"---\n"+podYAML("b", "two", nil)))
	wantCode(t, "multi-document apply", err, 403, `document 2 (Pod "two")`, "nothing was applied")
	if _, err := e.c.Get(e.ctx, "pod", "a", "one"); !api.IsNotFound(err) {
		t.Fatalf("document 1 of a denied apply was stored: %v", err)
	}
	// edit does not write RBAC, and admin may not bind beyond what it holds.
	_, err = e.req(t, bob, api.SubjectApply, []byte(roleBindingYAML("a", "mine", "ClusterRole", "edit", "mallory")))
	wantCode(t, "edit user binds a role", err, 403, `cannot create resource "rolebindings"`)
	erin := userP("erin")
	e.grantEventually(t, roleBindingYAML("a", "erin-admin", "ClusterRole", "admin", "erin"), func() error {
		_, err := e.req(t, erin, api.SubjectApply, []byte(roleBindingYAML("a", "bob-view", "ClusterRole", "view", "bob")))
		return err
	})
	_, err = e.req(t, erin, api.SubjectApply, []byte(roleBindingYAML("a", "escalate", "ClusterRole", "cluster-admin", "erin")))
	wantCode(t, "namespace admin binds cluster-admin", err, 403, "does not hold")
}

func TestRBACGroupsAndAdmin(t *testing.T) {
	e := newEnv(t)
	// The admin credentials' user is cluster-admin through kyb-admin.
	testutil.Eventually(t, 5*time.Second, func() error {
		_, err := e.req(t, userP("admin"), api.SubjectApply, []byte(podYAML("", "web", nil)))
		return err
	})
	if _, err := e.reqJSON(t, userP("admin"), api.SubjectDelete, api.DeleteRequest{Kind: "pod", Name: "web", GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatalf("admin deletes: %v", err)
	}
	// Groups come from the user's tags.
	e.grantEventually(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ops-view
subjects:
- kind: Group
  name: ops
roleRef:
  kind: ClusterRole
  name: view
`, func() error {
		_, err := e.reqJSON(t, userP("frank", "ops"), api.SubjectList, api.ListRequest{Kind: "pods", AllNamespaces: true})
		return err
	})
	_, err := e.reqJSON(t, userP("frank"), api.SubjectList, api.ListRequest{Kind: "pods", AllNamespaces: true})
	wantCode(t, "list without the group", err, 403)
	// A sender of an account the apiserver does not serve is unauthorized.
	_, err = e.reqJSON(t, principal{acc: "SOMEONE", user: "admin"}, api.SubjectList, api.ListRequest{Kind: "pods"})
	wantCode(t, "unknown account", err, 401)
}

func TestNodeVerbsOnlyForTheirNode(t *testing.T) {
	e := newEnv(t)
	node := &api.Node{Status: api.NodeStatus{Conditions: []api.NodeCondition{{Type: api.NodeReady, Status: api.ConditionTrue}}}}
	if _, err := e.reqJSON(t, nodeP("n1"), api.NodeSubject("n1", api.NodeVerbRegister), node); err != nil {
		t.Fatalf("n1 registers itself: %v", err)
	}
	if _, err := e.reqJSON(t, nodeP("n1"), api.NodeSubject("n1", api.NodeVerbHeartbeat), api.Heartbeat{Time: time.Now()}); err != nil {
		t.Fatalf("n1 beats: %v", err)
	}
	tests := []struct {
		name string
		p    principal
		verb string
		body any
		code int
	}{
		{"another node registers n2", nodeP("n1"), api.NodeVerbRegister, node, 403},
		{"another node beats for n2", nodeP("n1"), api.NodeVerbHeartbeat, api.Heartbeat{Time: time.Now()}, 403},
		{"another node reports n2's status", nodeP("n1"), api.NodeVerbStatus, api.NodeStatus{}, 403},
		{"another node reports pod status", nodeP("n1"), api.NodeVerbPodStatus, api.PodStatusBatch{}, 403},
		{"another node reads n2's pods", nodeP("n1"), api.NodeVerbSync, struct{}{}, 403},
		{"another node watches services as n2", nodeP("n1"), api.NodeVerbServiceWatch, struct{}{}, 403},
		{"a user watches services as a node", userP("admin"), api.NodeVerbServiceWatch, struct{}{}, 403},
		{"a user, even admin, is no node", userP("admin"), api.NodeVerbRegister, node, 403},
		{"a user named like a node is no node", principal{acc: authn.AccountUsers, user: "n2"}, api.NodeVerbSync, struct{}{}, 403},
		{"a node account with a bad name", principal{acc: authn.AccountNodes, user: "n2"}, api.NodeVerbSync, struct{}{}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := e.reqJSON(t, tt.p, api.NodeSubject("n2", tt.verb), tt.body)
			wantCode(t, tt.name, err, tt.code)
		})
	}
	if _, err := e.st.Get(e.ctx, api.KindOf(&api.Node{}), "", "n2"); !api.IsNotFound(err) {
		t.Fatalf("a denied register created n2: %v", err)
	}
	// The control plane (no header) may call any node's verbs.
	if _, err := e.c.Request(e.ctx, api.NodeSubject("n1", api.NodeVerbSync), nil); err != nil {
		t.Fatalf("control plane syncs n1: %v", err)
	}
}

func TestAuthzEndpoint(t *testing.T) {
	e := newEnv(t)
	bob := userP("bob")
	ask := func(p principal, r api.AuthzRequest) api.AuthzReply {
		t.Helper()
		b, err := e.reqJSON(t, p, api.SubjectAuthz, r)
		if err != nil {
			t.Fatalf("authz %+v: %v", r, err)
		}
		var out api.AuthzReply
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatal(err)
		}
		return out
	}
	e.grantEventually(t, roleBindingYAML("default", "bob-view", "ClusterRole", "view", "bob"), func() error {
		if !ask(bob, api.AuthzRequest{Verb: "get", Kind: "pods"}).Allowed {
			return fmt.Errorf("bob may not get pods yet")
		}
		return nil
	})
	tests := []struct {
		name  string
		p     principal
		r     api.AuthzRequest
		allow bool
	}{
		{"view: list pods (short name)", bob, api.AuthzRequest{Verb: "list", Kind: "po"}, true},
		{"view: pod logs", bob, api.AuthzRequest{Verb: "get", Kind: "pods/log", Name: "web"}, true},
		{"view: no delete", bob, api.AuthzRequest{Verb: "delete", Kind: "pod", Name: "web"}, false},
		{"view: nothing in another namespace", bob, api.AuthzRequest{Verb: "get", Kind: "pod", Namespace: "kube-system"}, false},
		{"view: no module push", bob, api.AuthzRequest{Verb: "create", Kind: "modules"}, false},
		{"view in default: modules are cluster-wide", bob, api.AuthzRequest{Verb: "get", Kind: "modules", Namespace: "default"}, false},
		{"admin: anything", userP("admin"), api.AuthzRequest{Verb: "delete", Kind: "nodes", Name: "n1"}, true},
		{"control plane is asked too", principal{}, api.AuthzRequest{Verb: "*", Kind: "*"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got api.AuthzReply
			if tt.p.acc == "" {
				b, err := json.Marshal(tt.r)
				if err != nil {
					t.Fatal(err)
				}
				raw, err := e.c.Request(e.ctx, api.SubjectAuthz, b)
				if err != nil {
					t.Fatal(err)
				}
				if err := json.Unmarshal(raw, &got); err != nil {
					t.Fatal(err)
				}
			} else {
				got = ask(tt.p, tt.r)
			}
			if got.Allowed != tt.allow || got.Reason == "" {
				t.Fatalf("authz = %+v; want allowed %v with a reason", got, tt.allow)
			}
		})
	}
	_, err := e.reqJSON(t, bob, api.SubjectAuthz, api.AuthzRequest{Kind: "pods"})
	wantCode(t, "authz without a verb", err, 400)
}

func TestBuiltinRBACRestored(t *testing.T) {
	e := newEnv(t)
	for _, name := range []string{"cluster-admin", "admin", "edit", "view"} {
		if _, err := e.c.Get(e.ctx, "clusterrole", "", name); err != nil {
			t.Fatalf("built-in ClusterRole %s: %v", name, err)
		}
	}
	crb, err := e.c.Get(e.ctx, "clusterrolebinding", "", "kyb-admin")
	if err != nil {
		t.Fatal(err)
	}
	if b := crb.(*api.ClusterRoleBinding); b.RoleRef.Name != "cluster-admin" || len(b.Subjects) != 1 || b.Subjects[0].Name != "admin" {
		t.Fatalf("kyb-admin = %+v", b)
	}
	// Someone widens view and deletes edit: both come back as built.
	e.apply(t, `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: view
rules:
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list]
`)
	if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "clusterrole", Name: "edit"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		v, err := e.c.Get(e.ctx, "clusterrole", "", "view")
		if err != nil {
			return err
		}
		for _, r := range v.(*api.ClusterRole).Rules {
			for _, res := range r.Resources {
				if res == "secrets" {
					return fmt.Errorf("view still reads secrets")
				}
			}
		}
		if _, err := e.c.Get(e.ctx, "clusterrole", "", "edit"); err != nil {
			return fmt.Errorf("edit not restored: %w", err)
		}
		return nil
	})
}

// BenchmarkApplyCreateAsUser is BenchmarkApplyCreate/json sent as the user
// admin (cluster-admin through the kyb-admin binding), so that every apply
// parses the sender's Nats-Request-Info and runs an RBAC decision.
func BenchmarkApplyCreateAsUser(b *testing.B) {
	e := newEnv(b)
	admin := userP("admin")
	testutil.Eventually(b, 5*time.Second, func() error {
		_, err := e.req(b, admin, api.SubjectApply, manifests["json"]("warm"))
		return err
	})
	lat := make([]time.Duration, 0, b.N)
	b.ResetTimer()
	for i := range b.N {
		m := manifests["json"](fmt.Sprintf("p%d", i))
		start := time.Now()
		_, err := e.req(b, admin, api.SubjectApply, m)
		lat = append(lat, time.Since(start))
		if err != nil {
			b.Fatalf("apply %d: %v", i, err)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(percentile(lat, 0.50).Microseconds()), "p50-µs")
	b.ReportMetric(float64(percentile(lat, 0.99).Microseconds()), "p99-µs")
}

// TestRBACKindsStoredGenerically applies, re-applies, changes, reads, lists
// and deletes RBAC objects through the generic paths (store keys, cache,
// events, unchanged detection), with a name Kubernetes allows (a colon).
func TestRBACKindsStoredGenerically(t *testing.T) {
	e := newEnv(t)
	role := `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: system:node-reader
rules:
- apiGroups: [""]
  resources: [nodes]
  verbs: [%s]
`
	binding := `apiVersion: kyb/v1
kind: ClusterRoleBinding
metadata:
  name: read-nodes
subjects:
- kind: Group
  name: ops
roleRef:
  kind: ClusterRole
  name: %s
`
	for i, step := range []struct {
		manifest string
		want     []string
	}{
		{fmt.Sprintf(role, "get"), []string{"ClusterRole/system:node-reader created"}},
		{fmt.Sprintf(role, "get"), []string{"ClusterRole/system:node-reader unchanged"}},
		{fmt.Sprintf(role, "get, list"), []string{"ClusterRole/system:node-reader configured"}},
		{fmt.Sprintf(binding, "system:node-reader"), []string{"ClusterRoleBinding/read-nodes created"}},
	} {
		var got []string
		// Unchanged is decided from the cache, which the watch fills.
		testutil.Eventually(t, 5*time.Second, func() error {
			got = actions(e.apply(t, step.manifest))
			if strings.Join(got, ",") != strings.Join(step.want, ",") {
				return fmt.Errorf("step %d: apply = %v; want %v", i, got, step.want)
			}
			return nil
		})
	}
	_, err := e.c.Apply(e.ctx, []byte(fmt.Sprintf(binding, "view")))
	wantCode(t, "change a binding's roleRef", err, 422, "roleRef")
	obj, err := e.c.Get(e.ctx, "clusterrole", "", "system:node-reader")
	if err != nil {
		t.Fatal(err)
	}
	if r := obj.(*api.ClusterRole); len(r.Rules) != 1 || len(r.Rules[0].Verbs) != 2 {
		t.Fatalf("stored role: %+v", r.Rules)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		_, err := e.reqJSON(t, userP("frank", "ops"), api.SubjectList, api.ListRequest{Kind: "nodes"})
		return err
	})
	if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "clusterrolebinding", Name: "read-nodes"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		_, err := e.reqJSON(t, userP("frank", "ops"), api.SubjectList, api.ListRequest{Kind: "nodes"})
		if !api.IsForbidden(err) {
			return fmt.Errorf("list nodes after the binding was deleted: %v", err)
		}
		return nil
	})
	_, err = e.c.Apply(e.ctx, []byte("apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\nrules:\n- verbs: [get]\n"))
	wantCode(t, "a rule without resources", err, 422, "rules[0].resources", "rules[0].apiGroups")
}

// TestNamespaceDeletionRemovesItsRBAC: a namespace deleted and created
// again does not inherit the grants of the old one.
func TestNamespaceDeletionRemovesItsRBAC(t *testing.T) {
	e := newEnv(t)
	ns := "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: a\n"
	e.apply(t, ns)
	e.apply(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: Role\nmetadata:\n  name: r\n  namespace: a\nrules:\n- apiGroups: [\"\"]\n  resources: [pods]\n  verbs: [list]\n")
	bob := userP("bob")
	list := api.ListRequest{Kind: "pods", Namespace: "a"}
	e.grantEventually(t, roleBindingYAML("a", "bob-view", "ClusterRole", "view", "bob"), func() error {
		_, err := e.reqJSON(t, bob, api.SubjectList, list)
		return err
	})
	if _, err := e.c.Delete(e.ctx, api.DeleteRequest{Kind: "namespace", Name: "a"}); err != nil {
		t.Fatal(err)
	}
	testutil.Eventually(t, 5*time.Second, func() error {
		for _, o := range []api.Object{&api.RoleBinding{}, &api.Role{}} {
			k := api.KindOf(o)
			objs, _, err := e.st.List(e.ctx, k, store.ListOptions{Namespace: "a"})
			if err != nil {
				return err
			}
			if len(objs) > 0 {
				return fmt.Errorf("%d %s left in the deleted namespace", len(objs), k.Plural)
			}
		}
		return nil
	})
	e.apply(t, ns)
	testutil.Eventually(t, 5*time.Second, func() error {
		_, err := e.reqJSON(t, bob, api.SubjectList, list)
		if !api.IsForbidden(err) {
			return fmt.Errorf("list in the new namespace a: %v; want 403", err)
		}
		return nil
	})
}
