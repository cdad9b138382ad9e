package authz

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/authn"
)

// Attributes describe one request to authorize.
type Attributes struct {
	// User is who asks.
	User authn.UserInfo
	// Verb is get, list, watch, create, update or delete (or another verb a
	// rule may name, such as escalate or bind).
	Verb string
	// Resource is the lower-case plural ("pods"), with a subresource after
	// a slash ("pods/log"), or "modules".
	Resource string
	// APIGroup is the resource's API group; empty means the group of the
	// kind whose plural is Resource (GroupOf).
	APIGroup string
	// Namespace is the request's namespace; empty for cluster-scoped
	// resources and for requests across every namespace.
	Namespace string
	// Name is the object's name; empty for list, watch and create.
	Name string
}

// KybGroup is the API group of kyb's own resources (modules); a rule that
// names it matches every resource, since every kind is served as kyb/v1.
const KybGroup = "kyb"

// ResourceModules is the resource of wasm modules in the cluster's module
// store (cluster-scoped).
const ResourceModules = "modules"

// knownGroups are the API groups of Kubernetes resources kyb may not serve
// (yet), so that rules written for them mean what they mean there.
var knownGroups = map[string]string{
	ResourceModules: KybGroup,
	"deployments":   "apps", "replicasets": "apps", "statefulsets": "apps", "daemonsets": "apps",
	"jobs": "batch", "cronjobs": "batch",
}

// GroupOf returns the API group of a resource (before any "/subresource"):
// the group of the canonical apiVersion of the kind whose plural it is (""
// for pods, rbac.authorization.k8s.io for roles), "kyb" for modules,
// Kubernetes' group for a Kubernetes resource kyb does not serve
// ("apps" for deployments), else the core group "".
func GroupOf(resource string) string {
	base, _, _ := strings.Cut(resource, "/")
	for _, k := range api.Kinds() {
		if k.Plural == base {
			g, _, ok := strings.Cut(k.APIVersions[0], "/")
			if !ok {
				return ""
			}
			return g
		}
	}
	return knownGroups[base]
}

// role is one indexed Role or ClusterRole, or the tombstone of a deleted one.
type role struct {
	rev   uint64
	rules []api.PolicyRule
	gone  bool
}

// binding is one indexed RoleBinding or ClusterRoleBinding, or the
// tombstone of a deleted one.
type binding struct {
	rev      uint64
	gone     bool
	name     string
	ns       string
	subjects []api.Subject
	ref      api.RoleRef
}

// Authorizer answers authorization requests from an index of RBAC objects.
// The zero value is not usable; create it with New. Safe for concurrent use.
type Authorizer struct {
	mu                  sync.RWMutex
	roles               map[string]*role // "<ns>/<name>"
	clusterRoles        map[string]*role
	roleBindings        map[string]map[string]*binding // namespace -> name
	clusterRoleBindings map[string]*binding
}

// New returns an Authorizer with an empty index: it allows only the group
// system:masters until RBAC objects are observed.
func New() *Authorizer {
	return &Authorizer{
		roles:               map[string]*role{},
		clusterRoles:        map[string]*role{},
		roleBindings:        map[string]map[string]*binding{},
		clusterRoleBindings: map[string]*binding{},
	}
}

func revOf(m *api.ObjectMeta) uint64 {
	r, _ := strconv.ParseUint(m.ResourceVersion, 10, 64)
	return r
}

// Observe adds or replaces an RBAC object in the index; other kinds are
// ignored. An object not newer (by resourceVersion) than the one indexed
// under its name, or than its deletion, is ignored, so the apiserver may
// observe its own writes before its watch delivers them. The index keeps
// obj's rules and subjects: the caller must not change them afterwards.
func (a *Authorizer) Observe(obj api.Object) {
	if !isRBAC(obj) {
		return // without the lock: the apiserver observes every write
	}
	m := obj.GetObjectMeta()
	rev := revOf(m)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch o := obj.(type) {
	case *api.Role:
		putRole(a.roles, m.Namespace+"/"+m.Name, &role{rev: rev, rules: o.Rules})
	case *api.ClusterRole:
		putRole(a.clusterRoles, m.Name, &role{rev: rev, rules: o.Rules})
	case *api.RoleBinding:
		byName := a.roleBindings[m.Namespace]
		if byName == nil {
			byName = map[string]*binding{}
			a.roleBindings[m.Namespace] = byName
		}
		putBinding(byName, &binding{rev: rev, name: m.Name, ns: m.Namespace, subjects: o.Subjects, ref: o.RoleRef})
	case *api.ClusterRoleBinding:
		putBinding(a.clusterRoleBindings, &binding{rev: rev, name: m.Name, subjects: o.Subjects, ref: o.RoleRef})
	}
}

// isRBAC reports whether obj is of one of the four RBAC kinds.
func isRBAC(obj api.Object) bool {
	switch obj.(type) {
	case *api.Role, *api.ClusterRole, *api.RoleBinding, *api.ClusterRoleBinding:
		return true
	}
	return false
}

func putRole(m map[string]*role, key string, r *role) {
	if old := m[key]; old != nil && (old.rev > r.rev || (old.gone && old.rev >= r.rev)) {
		return
	}
	m[key] = r
}

func putBinding(m map[string]*binding, b *binding) {
	if old := m[b.name]; old != nil && (old.rev > b.rev || (old.gone && old.rev >= b.rev)) {
		return
	}
	m[b.name] = b
}

// Forget removes an RBAC object deleted from the store (obj as it was
// last, at its last resourceVersion) from the index; other kinds are
// ignored. It leaves a tombstone, so that a late Observe of that revision
// or an older one cannot bring the object back.
func (a *Authorizer) Forget(obj api.Object) {
	if !isRBAC(obj) {
		return
	}
	m := obj.GetObjectMeta()
	rev := revOf(m)
	a.mu.Lock()
	defer a.mu.Unlock()
	switch obj.(type) {
	case *api.Role:
		forgetRole(a.roles, m.Namespace+"/"+m.Name, rev)
	case *api.ClusterRole:
		forgetRole(a.clusterRoles, m.Name, rev)
	case *api.RoleBinding:
		if byName := a.roleBindings[m.Namespace]; byName != nil {
			forgetBinding(byName, m.Name, rev)
		}
	case *api.ClusterRoleBinding:
		forgetBinding(a.clusterRoleBindings, m.Name, rev)
	}
}

func forgetRole(m map[string]*role, key string, rev uint64) {
	if old := m[key]; old != nil && old.rev > rev {
		return
	}
	m[key] = &role{rev: rev, gone: true}
}

func forgetBinding(m map[string]*binding, name string, rev uint64) {
	if old := m[name]; old != nil && old.rev > rev {
		return
	}
	m[name] = &binding{rev: rev, name: name, gone: true}
}

// Authorize returns nil when attr is allowed, else a 403 Forbidden
// *api.Status naming the user, verb, resource and namespace.
func (a *Authorizer) Authorize(attr Attributes) error {
	if ok, _ := a.Allowed(attr); ok {
		return nil
	}
	return Forbidden(attr, "")
}

// Forbidden returns the 403 Status denying attr, with why appended when
// not empty.
func Forbidden(attr Attributes, why string) *api.Status {
	where := fmt.Sprintf("in namespace %q", attr.Namespace)
	if attr.Namespace == "" {
		where = "at the cluster scope"
	}
	msg := fmt.Sprintf("user %q cannot %s resource %q %s", attr.User.Name, attr.Verb, attr.Resource, where)
	if attr.Name != "" {
		msg = fmt.Sprintf("user %q cannot %s resource %q %q %s", attr.User.Name, attr.Verb, attr.Resource, attr.Name, where)
	}
	if why != "" {
		msg += ": " + why
	}
	st := api.NewForbidden("%s", msg)
	st.Name = attr.Name
	return st
}

// Allowed reports whether attr is allowed and why: which binding grants
// it, or that nothing does.
func (a *Authorizer) Allowed(attr Attributes) (bool, string) {
	if attr.User.InGroup(authn.GroupMasters) {
		return true, fmt.Sprintf("user %q is in group %s", attr.User.Name, authn.GroupMasters)
	}
	group := attr.APIGroup
	if group == "" {
		group = GroupOf(attr.Resource)
	}
	allows := func(rules []api.PolicyRule) bool {
		for i := range rules {
			if ruleAllows(&rules[i], attr.Verb, group, attr.Resource, attr.Name) {
				return true
			}
		}
		return false
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	for _, name := range sortedKeys(a.clusterRoleBindings) {
		b := a.clusterRoleBindings[name]
		if !appliesTo(b, attr.User) {
			continue
		}
		if r := a.clusterRoles[b.ref.Name]; r != nil && b.ref.Kind == "ClusterRole" && !r.gone && allows(r.rules) {
			return true, fmt.Sprintf("allowed by ClusterRoleBinding %q of ClusterRole %q", b.name, b.ref.Name)
		}
	}
	if attr.Namespace != "" {
		byName := a.roleBindings[attr.Namespace]
		for _, name := range sortedKeys(byName) {
			b := byName[name]
			if !appliesTo(b, attr.User) {
				continue
			}
			if r := a.roleOf(b); r != nil && allows(r.rules) {
				return true, fmt.Sprintf("allowed by RoleBinding %q of %s %q in namespace %q", b.name, b.ref.Kind, b.ref.Name, b.ns)
			}
		}
	}
	return false, "no RBAC rule allows it"
}

// roleOf returns the live role a binding refers to, or nil. The lock is held.
func (a *Authorizer) roleOf(b *binding) *role {
	var r *role
	switch b.ref.Kind {
	case "ClusterRole":
		r = a.clusterRoles[b.ref.Name]
	case "Role":
		if b.ns != "" {
			r = a.roles[b.ns+"/"+b.ref.Name]
		}
	}
	if r == nil || r.gone {
		return nil
	}
	return r
}

// appliesTo reports whether b is live and one of its subjects is u.
func appliesTo(b *binding, u authn.UserInfo) bool {
	if b.gone {
		return false
	}
	for _, s := range b.subjects {
		switch s.Kind {
		case api.SubjectUser:
			if s.Name == u.Name {
				return true
			}
		case api.SubjectGroup:
			if u.InGroup(s.Name) {
				return true
			}
		case api.SubjectServiceAccount:
			ns := s.Namespace
			if ns == "" {
				ns = b.ns
			}
			if ns != "" && api.ServiceAccountUser(ns, s.Name) == u.Name {
				return true
			}
		}
	}
	return false
}

// ruleAllows reports whether rule r allows verb on resource (of API group
// group) named name.
func ruleAllows(r *api.PolicyRule, verb, group, resource, name string) bool {
	return has(r.Verbs, verb) &&
		(has(r.APIGroups, group) || slices.Contains(r.APIGroups, KybGroup)) &&
		resourceMatches(r.Resources, resource) &&
		(len(r.ResourceNames) == 0 || (name != "" && slices.Contains(r.ResourceNames, name)))
}

// has reports whether list holds v or "*".
func has(list []string, v string) bool {
	for _, x := range list {
		if x == v || x == "*" {
			return true
		}
	}
	return false
}

// resourceMatches reports whether a rule's resources match resource:
// "*", the resource itself, or "*/<sub>" for a subresource <sub>.
func resourceMatches(list []string, resource string) bool {
	if has(list, resource) {
		return true
	}
	if _, sub, ok := strings.Cut(resource, "/"); ok {
		return slices.Contains(list, "*/"+sub)
	}
	return false
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
