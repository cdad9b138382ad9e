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
	// The credential verbs of the auth service (kyb token create, kyb user
	// create, kyb node|user revoke): cluster-admin only, as no other
	// built-in role names group kyb.
	"tokens": KybGroup, "users": KybGroup, "credentials": KybGroup,
	"deployments": "apps", "replicasets": "apps", "statefulsets": "apps", "daemonsets": "apps",
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

// nsName keys the index: namespace ("" for cluster-scoped) and name.
type nsName struct{ ns, name string }

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
	roles               map[nsName]*role
	clusterRoles        map[nsName]*role
	roleBindings        map[string]map[string]*binding // namespace -> name
	clusterRoleBindings map[string]*binding
	// bySubject finds the bindings of a user or group; nil when a binding
	// changed since it was built.
	bySubject *subjectIndex
}

// subjectIndex maps subjects to the live bindings that name them. Keys are
// the binding's namespace ("" for ClusterRoleBindings) and the user (a
// service account as its user name) or group name.
type subjectIndex struct {
	users, groups map[nsName][]*binding
}

func (x *subjectIndex) add(b *binding) {
	if b.gone {
		return
	}
	for _, s := range b.subjects {
		switch s.Kind {
		case api.SubjectUser:
			k := nsName{b.ns, s.Name}
			x.users[k] = append(x.users[k], b)
		case api.SubjectGroup:
			k := nsName{b.ns, s.Name}
			x.groups[k] = append(x.groups[k], b)
		case api.SubjectServiceAccount:
			ns := s.Namespace
			if ns == "" {
				ns = b.ns
			}
			if ns != "" {
				k := nsName{b.ns, api.ServiceAccountUser(ns, s.Name)}
				x.users[k] = append(x.users[k], b)
			}
		}
	}
}

// subjects returns the subject index, building it when a binding changed.
// The read lock is held; it is released and taken again around a build.
func (a *Authorizer) subjects() *subjectIndex {
	if x := a.bySubject; x != nil {
		return x
	}
	a.mu.RUnlock()
	a.mu.Lock()
	if a.bySubject == nil {
		x := &subjectIndex{users: map[nsName][]*binding{}, groups: map[nsName][]*binding{}}
		for _, b := range a.clusterRoleBindings {
			if b.ref.Kind == "ClusterRole" {
				x.add(b)
			}
		}
		for _, byName := range a.roleBindings {
			for _, b := range byName {
				x.add(b)
			}
		}
		a.bySubject = x
	}
	x := a.bySubject
	a.mu.Unlock()
	a.mu.RLock()
	return x
}

// New returns an Authorizer with an empty index: it allows only the group
// system:masters until RBAC objects are observed.
func New() *Authorizer {
	return &Authorizer{
		roles:               map[nsName]*role{},
		clusterRoles:        map[nsName]*role{},
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
	a.bySubject = nil // rebuilt by the next decision
	switch o := obj.(type) {
	case *api.Role:
		putRole(a.roles, nsName{m.Namespace, m.Name}, &role{rev: rev, rules: o.Rules})
	case *api.ClusterRole:
		putRole(a.clusterRoles, nsName{"", m.Name}, &role{rev: rev, rules: o.Rules})
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

func putRole(m map[nsName]*role, key nsName, r *role) {
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
	a.bySubject = nil
	switch obj.(type) {
	case *api.Role:
		forgetRole(a.roles, nsName{m.Namespace, m.Name}, rev)
	case *api.ClusterRole:
		forgetRole(a.clusterRoles, nsName{"", m.Name}, rev)
	case *api.RoleBinding:
		byName := a.roleBindings[m.Namespace]
		if byName == nil {
			byName = map[string]*binding{}
			a.roleBindings[m.Namespace] = byName
		}
		forgetBinding(byName, m.Name, rev)
	case *api.ClusterRoleBinding:
		forgetBinding(a.clusterRoleBindings, m.Name, rev)
	}
}

func forgetRole(m map[nsName]*role, key nsName, rev uint64) {
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
	if ok, _ := a.decide(&attr); ok {
		return nil
	}
	return Forbidden(attr, "")
}

// Forbidden returns the 403 Status denying attr, with why appended when
// not empty.
func Forbidden(attr Attributes, why string) *api.Status {
	normalize(&attr)
	where := fmt.Sprintf("in namespace %q", attr.Namespace)
	if attr.Namespace == "" {
		where = "at the cluster scope"
	}
	msg := fmt.Sprintf("user %q cannot %s resource %q %s", attr.User.Name, attr.Verb, attr.Resource, where)
	if attr.Name != "" {
		// As Kubernetes: `pods "web" is forbidden: User "bob" cannot ...`.
		msg = fmt.Sprintf("%s %q is forbidden: %s", attr.Resource, attr.Name, msg)
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
	ok, b := a.decide(&attr)
	switch {
	case !ok:
		return false, "no RBAC rule allows it"
	case b == nil:
		return true, fmt.Sprintf("user %q is in group %s", attr.User.Name, authn.GroupMasters)
	case b.ns == "":
		return true, fmt.Sprintf("allowed by ClusterRoleBinding %q of ClusterRole %q", b.name, b.ref.Name)
	default:
		return true, fmt.Sprintf("allowed by RoleBinding %q of %s %q in namespace %q", b.name, b.ref.Kind, b.ref.Name, b.ns)
	}
}

// normalize gives a namespace object the namespace of its own name, as
// Kubernetes does: a RoleBinding in namespace a may grant get (or delete)
// on the namespace a itself. Creating a namespace is always cluster-scoped.
func normalize(attr *Attributes) {
	if attr.Resource == "namespaces" && attr.Namespace == "" && attr.Name != "" && attr.Verb != api.VerbCreate {
		attr.Namespace = attr.Name
	}
}

// decide reports whether attr (normalized in place) is allowed, and the
// binding that allows it (nil for system:masters).
func (a *Authorizer) decide(attr *Attributes) (bool, *binding) {
	if attr.User.InGroup(authn.GroupMasters) {
		return true, nil
	}
	normalize(attr)
	group := attr.APIGroup
	if group == "" {
		group = GroupOf(attr.Resource)
	}
	allows := func(r *role) bool {
		if r == nil {
			return false
		}
		for i := range r.rules {
			if ruleAllows(&r.rules[i], attr.Verb, group, attr.Resource, attr.Name) {
				return true
			}
		}
		return false
	}
	a.mu.RLock()
	defer a.mu.RUnlock()
	x := a.subjects()
	// ClusterRoleBindings (namespace ""), then RoleBindings of the namespace.
	scopes := [2]string{"", attr.Namespace}
	for i, ns := range scopes {
		if i == 1 && ns == "" {
			break
		}
		for _, b := range x.users[nsName{ns, attr.User.Name}] {
			if allows(a.roleOf(b)) {
				return true, b
			}
		}
		for _, g := range attr.User.Groups {
			for _, b := range x.groups[nsName{ns, g}] {
				if allows(a.roleOf(b)) {
					return true, b
				}
			}
		}
	}
	return false, nil
}

// roleOf returns the live role a binding refers to, or nil. The lock is held.
func (a *Authorizer) roleOf(b *binding) *role {
	var r *role
	switch b.ref.Kind {
	case "ClusterRole":
		r = a.clusterRoles[nsName{"", b.ref.Name}]
	case "Role":
		if b.ns != "" {
			r = a.roles[nsName{b.ns, b.ref.Name}]
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
