package api

import (
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// RBAC: Kubernetes' role-based access control kinds, with Kubernetes'
// fields. A Role (namespaced) or ClusterRole holds rules; a RoleBinding
// (namespaced) or ClusterRoleBinding grants the rules of one role to
// subjects. A RoleBinding grants only within its own namespace, even when it
// refers to a ClusterRole; a ClusterRoleBinding grants everywhere.

// RBACGroup is the API group of the RBAC kinds; RBACVersion their canonical
// apiVersion.
const (
	RBACGroup   = "rbac.authorization.k8s.io"
	RBACVersion = RBACGroup + "/v1"
)

// Subject kinds.
const (
	SubjectUser           = "User"
	SubjectGroup          = "Group"
	SubjectServiceAccount = "ServiceAccount"
)

// Verbs of RBAC rules and of the API's authorization (VerbAll matches every verb).
const (
	VerbGet    = "get"
	VerbList   = "list"
	VerbWatch  = "watch"
	VerbCreate = "create"
	VerbUpdate = "update"
	VerbDelete = "delete"
	VerbAll    = "*"
)

// PolicyRule allows verbs on resources. Every list must match for the rule
// to apply; "*" in a list matches everything. An empty ResourceNames
// matches every name.
type PolicyRule struct {
	Verbs         []string `json:"verbs"`
	APIGroups     []string `json:"apiGroups,omitempty"`
	Resources     []string `json:"resources,omitempty"`
	ResourceNames []string `json:"resourceNames,omitempty"`
}

// Subject is one principal a binding grants a role to: a User, a Group or a
// ServiceAccount (namespace/name, user "system:serviceaccount:<ns>:<name>").
type Subject struct {
	Kind      string `json:"kind"`
	APIGroup  string `json:"apiGroup,omitempty"`
	Name      string `json:"name"`
	Namespace string `json:"namespace,omitempty"`
}

// RoleRef names the role a binding grants: kind Role (same namespace as the
// binding) or ClusterRole. It cannot change once the binding exists.
type RoleRef struct {
	APIGroup string `json:"apiGroup"`
	Kind     string `json:"kind"`
	Name     string `json:"name"`
}

// Role holds rules that apply within its namespace.
type Role struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Rules      []PolicyRule `json:"rules"`
}

// ClusterRole holds rules that apply cluster-wide (through a
// ClusterRoleBinding) or within one namespace (through a RoleBinding).
type ClusterRole struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Rules      []PolicyRule `json:"rules"`
}

// RoleBinding grants a Role or ClusterRole to subjects within its namespace.
type RoleBinding struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Subjects   []Subject `json:"subjects,omitempty"`
	RoleRef    RoleRef   `json:"roleRef"`
}

// ClusterRoleBinding grants a ClusterRole to subjects in every namespace and
// on cluster-scoped resources.
type ClusterRoleBinding struct {
	TypeMeta   `json:",inline"`
	ObjectMeta `json:"metadata"`
	Subjects   []Subject `json:"subjects,omitempty"`
	RoleRef    RoleRef   `json:"roleRef"`
}

// ServiceAccountUser returns the user name of a service account:
// system:serviceaccount:<namespace>:<name>.
func ServiceAccountUser(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// isRBACKind reports whether k is one of the four RBAC kinds.
func isRBACKind(k *Kind) bool {
	switch k.Name {
	case "Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding":
		return true
	}
	return false
}

// validateRBACName checks the name of an RBAC object. Kubernetes accepts any
// path segment (system:node, system:controller:foo); kyb accepts a DNS-1123
// subdomain in which ':' may stand anywhere a '-' may, which covers every
// built-in name of Kubernetes and keeps names safe in subjects and keys.
func validateRBACName(name string) []string {
	return validation.IsDNS1123Subdomain(strings.ReplaceAll(name, ":", "-"))
}

// defaultRBAC fills in an RBAC object's defaults: roleRef.apiGroup and a
// User or Group subject's apiGroup are rbac.authorization.k8s.io; a
// ServiceAccount subject of a RoleBinding without a namespace gets the
// binding's.
func defaultRBAC(obj Object) {
	switch o := obj.(type) {
	case *RoleBinding:
		defaultBinding(o.Subjects, &o.RoleRef, o.Namespace)
	case *ClusterRoleBinding:
		defaultBinding(o.Subjects, &o.RoleRef, "")
	}
}

func defaultBinding(subjects []Subject, ref *RoleRef, ns string) {
	if ref.APIGroup == "" {
		ref.APIGroup = RBACGroup
	}
	for i := range subjects {
		s := &subjects[i]
		switch s.Kind {
		case SubjectUser, SubjectGroup:
			if s.APIGroup == "" {
				s.APIGroup = RBACGroup
			}
		case SubjectServiceAccount:
			if s.Namespace == "" && ns != "" {
				s.Namespace = ns
			}
		}
	}
}

// validateRBAC adds the problems of an RBAC object's rules, subjects and
// roleRef, as Kubernetes' validation does.
func validateRBAC(e *errs, obj Object) {
	switch o := obj.(type) {
	case *Role:
		validateRules(e, o.Rules, field.NewPath("rules"))
	case *ClusterRole:
		validateRules(e, o.Rules, field.NewPath("rules"))
	case *RoleBinding:
		validateRoleRef(e, &o.RoleRef, true)
		validateSubjects(e, o.Subjects, true)
	case *ClusterRoleBinding:
		validateRoleRef(e, &o.RoleRef, false)
		validateSubjects(e, o.Subjects, false)
	}
}

func validateRules(e *errs, rules []PolicyRule, p *field.Path) {
	for i, r := range rules {
		rp := p.Index(i)
		if len(r.Verbs) == 0 {
			e.add(rp.Child("verbs"), "required: at least one verb")
		}
		for j, v := range r.Verbs {
			if v == "" || strings.TrimSpace(v) != v {
				e.add(rp.Child("verbs").Index(j), "invalid value %q: must be a non-empty verb without spaces", v)
			}
		}
		if len(r.Resources) == 0 {
			// Kubernetes also has nonResourceURLs, which kyb has no use for.
			e.add(rp.Child("resources"), "required: at least one resource (or \"*\")")
		}
		if len(r.APIGroups) == 0 {
			e.add(rp.Child("apiGroups"), "required: at least one API group (\"\" is the core group, \"*\" every group)")
		}
		for j, res := range r.Resources {
			if res == "" || strings.ContainsAny(res, " \t.") {
				e.add(rp.Child("resources").Index(j), "invalid value %q: must be a lower-case plural resource, optionally with a subresource (pods/log)", res)
			}
		}
		for j, n := range r.ResourceNames {
			if n == "" {
				e.add(rp.Child("resourceNames").Index(j), "must not be empty")
			}
		}
	}
}

var rbacRefKinds = []string{"Role", "ClusterRole"}

func validateRoleRef(e *errs, ref *RoleRef, namespaced bool) {
	p := field.NewPath("roleRef")
	if ref.APIGroup != RBACGroup {
		e.unsupported(p.Child("apiGroup"), ref.APIGroup, RBACGroup)
	}
	switch {
	case ref.Kind == "":
		e.required(p.Child("kind"))
	case namespaced && !slices.Contains(rbacRefKinds, ref.Kind):
		e.unsupported(p.Child("kind"), ref.Kind, rbacRefKinds...)
	case !namespaced && ref.Kind != "ClusterRole":
		e.unsupported(p.Child("kind"), ref.Kind, "ClusterRole")
	}
	if ref.Name == "" {
		e.required(p.Child("name"))
	} else {
		e.addAll(p.Child("name"), validateRBACName(ref.Name))
	}
}

var subjectKinds = []string{SubjectUser, SubjectGroup, SubjectServiceAccount}

func validateSubjects(e *errs, subjects []Subject, namespaced bool) {
	for i, s := range subjects {
		p := field.NewPath("subjects").Index(i)
		if s.Name == "" {
			e.required(p.Child("name"))
		}
		switch s.Kind {
		case SubjectUser, SubjectGroup:
			if s.APIGroup != RBACGroup {
				e.unsupported(p.Child("apiGroup"), s.APIGroup, RBACGroup)
			}
		case SubjectServiceAccount:
			if s.APIGroup != "" {
				e.unsupported(p.Child("apiGroup"), s.APIGroup, "")
			}
			if s.Name != "" {
				e.addAll(p.Child("name"), validation.IsDNS1123Subdomain(s.Name))
			}
			if s.Namespace == "" && !namespaced {
				e.required(p.Child("namespace"))
			}
			if s.Namespace != "" {
				e.addAll(p.Child("namespace"), validation.IsDNS1123Label(s.Namespace))
			}
		case "":
			e.required(p.Child("kind"))
		default:
			e.unsupported(p.Child("kind"), s.Kind, subjectKinds...)
		}
	}
}

// validateBindingUpdate refuses a change of a binding's roleRef, as
// Kubernetes does: delete and re-create the binding instead.
func validateBindingUpdate(e *errs, old, new Object) {
	var oref, nref RoleRef
	switch o := old.(type) {
	case *RoleBinding:
		oref, nref = o.RoleRef, new.(*RoleBinding).RoleRef
	case *ClusterRoleBinding:
		oref, nref = o.RoleRef, new.(*ClusterRoleBinding).RoleRef
	default:
		return
	}
	if oref != nref {
		e.add(field.NewPath("roleRef"), "cannot change roleRef (was %s %q): delete the binding and create it again", oref.Kind, oref.Name)
	}
}

// SubjectAuthz is the endpoint that tells callers what they may do
// (Kubernetes' SelfSubjectAccessReview): body AuthzRequest, reply AuthzReply.
const SubjectAuthz = SubjectPrefix + ".authz"

// AuthzRequest asks whether the caller may do Verb on Kind (a kind's name,
// plural or short name, a resource such as "pods/log", or "modules") in
// Namespace ("default" for namespaced kinds when empty), optionally on the
// object Name.
type AuthzRequest struct {
	Verb      string `json:"verb"`
	Kind      string `json:"kind"`
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name,omitempty"`
}

// AuthzReply answers an AuthzRequest. Reason says which binding allowed it,
// or why nothing did.
type AuthzReply struct {
	Allowed bool   `json:"allowed"`
	Reason  string `json:"reason,omitempty"`
}

// ReasonUnauthorized is the Status reason (code 401) of a request whose
// sender is not known.
const ReasonUnauthorized = "Unauthorized"

// NewUnauthorized says the request's sender could not be identified.
func NewUnauthorized(format string, args ...any) *Status {
	return &Status{Code: 401, Reason: ReasonUnauthorized, Message: "unauthorized: " + fmt.Sprintf(format, args...)}
}

// IsForbidden reports whether err is a Forbidden Status.
func IsForbidden(err error) bool { return ReasonOf(err) == ReasonForbidden }
