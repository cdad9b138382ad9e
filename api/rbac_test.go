package api

import (
	"strings"
	"testing"
)

func TestDecodeRBAC(t *testing.T) {
	manifest := `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: pod-reader
  namespace: dev
rules:
- apiGroups: [""]
  resources: ["pods", "pods/log"]
  verbs: ["get", "watch", "list"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: read-pods
  namespace: dev
subjects:
- kind: User
  name: jane
  apiGroup: rbac.authorization.k8s.io
- kind: ServiceAccount
  name: ci
roleRef:
  kind: Role
  name: pod-reader
  apiGroup: rbac.authorization.k8s.io
---
apiVersion: kyb/v1
kind: ClusterRole
metadata:
  name: system:node-reader
rules:
- apiGroups: [""]
  resources: ["nodes"]
  verbs: ["get"]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: read-nodes
subjects:
- kind: Group
  name: ops
roleRef:
  kind: ClusterRole
  name: system:node-reader
`
	docs, err := Decode([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if len(docs) != 4 {
		t.Fatalf("decoded %d objects; want 4", len(docs))
	}
	for _, d := range docs {
		if len(d.Warnings) > 0 {
			t.Errorf("%s: warnings %v", d.Kind.Name, d.Warnings)
		}
		Default(d.Object)
		if err := Validate(d.Object); err != nil {
			t.Errorf("%s: %v", d.Kind.Name, err)
		}
	}
	rb := docs[1].Object.(*RoleBinding)
	if rb.Subjects[1].Namespace != "dev" || rb.Subjects[0].APIGroup != RBACGroup {
		t.Fatalf("defaulted subjects: %+v", rb.Subjects)
	}
	crb := docs[3].Object.(*ClusterRoleBinding)
	if crb.RoleRef.APIGroup != RBACGroup || crb.Subjects[0].APIGroup != RBACGroup {
		t.Fatalf("defaulted cluster role binding: %+v", crb)
	}
	if k, err := LookupKind("clusterrolebindings"); err != nil || k.Namespaced || k != KindOf(crb) {
		t.Fatalf("LookupKind(clusterrolebindings) = %v, %v", k, err)
	}
	if _, err := Decode([]byte("apiVersion: v1\nkind: Role\nmetadata:\n  name: x\n")); err == nil {
		t.Fatal("a Role with apiVersion v1 decoded")
	}
}

func TestValidateRBAC(t *testing.T) {
	rule := PolicyRule{APIGroups: []string{""}, Resources: []string{"pods"}, Verbs: []string{"get"}}
	ref := RoleRef{Kind: "ClusterRole", Name: "view"}
	user := Subject{Kind: SubjectUser, Name: "jane"}
	tests := []struct {
		name   string
		obj    Object
		causes []string // field paths expected, in order; none means valid
	}{
		{"valid role", &Role{ObjectMeta: ObjectMeta{Name: "r"}, Rules: []PolicyRule{rule}}, nil},
		{"role without verbs, resources or groups", &Role{ObjectMeta: ObjectMeta{Name: "r"}, Rules: []PolicyRule{{}}},
			[]string{"rules[0].verbs", "rules[0].resources", "rules[0].apiGroups"}},
		{"role with a bad resource", &Role{ObjectMeta: ObjectMeta{Name: "r"},
			Rules: []PolicyRule{{APIGroups: []string{""}, Resources: []string{"Pods.v1"}, Verbs: []string{"get"}}}}, []string{"rules[0].resources[0]"}},
		{"role name with a colon", &ClusterRole{ObjectMeta: ObjectMeta{Name: "system:controller:x"}, Rules: []PolicyRule{rule}}, nil},
		{"role name with a slash", &ClusterRole{ObjectMeta: ObjectMeta{Name: "a/b"}}, []string{"metadata.name"}},
		{"valid binding", &RoleBinding{ObjectMeta: ObjectMeta{Name: "b"}, Subjects: []Subject{user}, RoleRef: ref}, nil},
		{"binding without roleRef", &RoleBinding{ObjectMeta: ObjectMeta{Name: "b"}, Subjects: []Subject{user}},
			[]string{"roleRef.kind", "roleRef.name"}},
		{"binding with a bad roleRef group", &RoleBinding{ObjectMeta: ObjectMeta{Name: "b"}, RoleRef: RoleRef{APIGroup: "apps", Kind: "Role", Name: "r"}},
			[]string{"roleRef.apiGroup"}},
		{"cluster binding to a Role", &ClusterRoleBinding{ObjectMeta: ObjectMeta{Name: "b"}, RoleRef: RoleRef{Kind: "Role", Name: "r"}},
			[]string{"roleRef.kind"}},
		{"bad subjects", &RoleBinding{ObjectMeta: ObjectMeta{Name: "b"}, RoleRef: ref,
			Subjects: []Subject{{Kind: "Robot", Name: "x"}, {Kind: SubjectUser}, {Kind: SubjectServiceAccount, Name: "ci", APIGroup: "rbac.authorization.k8s.io"}}},
			[]string{"subjects[0].kind", "subjects[1].name", "subjects[2].apiGroup"}},
		{"cluster binding: a service account needs a namespace", &ClusterRoleBinding{ObjectMeta: ObjectMeta{Name: "b"}, RoleRef: ref,
			Subjects: []Subject{{Kind: SubjectServiceAccount, Name: "ci"}}}, []string{"subjects[0].namespace"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Default(tt.obj)
			err := Validate(tt.obj)
			if len(tt.causes) == 0 {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			st, ok := err.(*Status)
			if !ok || st.Code != 422 {
				t.Fatalf("Validate = %v; want 422", err)
			}
			var got []string
			for _, c := range st.Causes {
				got = append(got, c.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.causes, ",") {
				t.Fatalf("causes %v (%v); want %v", got, st.Message, tt.causes)
			}
		})
	}
}

func TestValidateUpdateRoleRefImmutable(t *testing.T) {
	old := &RoleBinding{ObjectMeta: ObjectMeta{Name: "b"}, RoleRef: RoleRef{Kind: "ClusterRole", Name: "view"}}
	Default(old)
	changed := DeepCopy(old)
	changed.RoleRef.Name = "edit"
	if err := ValidateUpdate(old, changed); err == nil || !strings.Contains(err.Error(), "roleRef") {
		t.Fatalf("ValidateUpdate with a new roleRef = %v; want roleRef refused", err)
	}
	same := DeepCopy(old)
	same.Subjects = []Subject{{Kind: SubjectUser, Name: "x", APIGroup: RBACGroup}}
	if err := ValidateUpdate(old, same); err != nil {
		t.Fatalf("ValidateUpdate with new subjects: %v", err)
	}
}
