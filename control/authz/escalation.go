package authz

import (
	"fmt"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/authn"
)

// Verbs that lift the escalation check, as in Kubernetes.
const (
	// VerbEscalate on roles or clusterroles lets a user write rules it does not hold.
	VerbEscalate = "escalate"
	// VerbBind on roles or clusterroles lets a user bind a role whose rules it does not hold.
	VerbBind = "bind"
)

// CheckEscalation returns nil when u may store obj without gaining a
// permission it does not hold, else a 403 *api.Status; other kinds than the
// RBAC kinds always pass. As in Kubernetes:
//   - a Role or ClusterRole passes when u holds every permission of its rules
//     (in the Role's namespace; cluster-wide for a ClusterRole), or may
//     "escalate" roles (clusterroles);
//   - a RoleBinding or ClusterRoleBinding passes when u holds every
//     permission of the role it refers to (in the binding's namespace;
//     cluster-wide for a ClusterRoleBinding), or may "bind" that role. A
//     binding to a role that does not exist passes only with "bind".
//
// Call it after Authorize allowed the create or update itself.
func (a *Authorizer) CheckEscalation(u authn.UserInfo, obj api.Object) error {
	if u.InGroup(authn.GroupMasters) {
		return nil
	}
	m := obj.GetObjectMeta()
	var (
		rules    []api.PolicyRule
		ns       string
		resource string // roles or clusterroles
		verb     string // escalate or bind
		refName  string
		what     string
	)
	switch o := obj.(type) {
	case *api.Role:
		rules, ns, resource, verb, refName = o.Rules, m.Namespace, "roles", VerbEscalate, m.Name
		what = fmt.Sprintf("role %q", m.Name)
	case *api.ClusterRole:
		rules, resource, verb, refName = o.Rules, "clusterroles", VerbEscalate, m.Name
		what = fmt.Sprintf("clusterrole %q", m.Name)
	case *api.RoleBinding:
		ns, verb, refName = m.Namespace, VerbBind, o.RoleRef.Name
		resource = "clusterroles"
		if o.RoleRef.Kind == "Role" {
			resource = "roles"
		}
		what = fmt.Sprintf("rolebinding %q to %s %q", m.Name, o.RoleRef.Kind, o.RoleRef.Name)
	case *api.ClusterRoleBinding:
		verb, refName, resource = VerbBind, o.RoleRef.Name, "clusterroles"
		what = fmt.Sprintf("clusterrolebinding %q to ClusterRole %q", m.Name, o.RoleRef.Name)
	default:
		return nil
	}
	// The escalate or bind verb on the role lifts the check.
	if ok, _ := a.Allowed(Attributes{User: u, Verb: verb, Resource: resource, APIGroup: api.RBACGroup, Namespace: ns, Name: refName}); ok {
		return nil
	}
	if verb == VerbBind {
		r, found := a.referencedRules(obj)
		if !found {
			return api.NewForbidden("user %q may not create %s: the role does not exist, and binding it needs the %q verb on %s", u.Name, what, VerbBind, resource)
		}
		rules = r
	}
	owned := a.rulesOf(u, ns)
	for _, r := range rules {
		if missing, ok := covers(owned, r); !ok {
			where := fmt.Sprintf("in namespace %q", ns)
			if ns == "" {
				where = "at the cluster scope"
			}
			return api.NewForbidden("user %q may not create or update %s: it would grant %s, which the user does not hold %s (needs the %q verb on %s)", u.Name, what, missing, where, verb, resource)
		}
	}
	return nil
}

// referencedRules returns the rules of the role a binding refers to.
func (a *Authorizer) referencedRules(obj api.Object) ([]api.PolicyRule, bool) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var b *binding
	switch o := obj.(type) {
	case *api.RoleBinding:
		b = &binding{ns: o.Namespace, ref: o.RoleRef}
	case *api.ClusterRoleBinding:
		b = &binding{ref: o.RoleRef}
		if o.RoleRef.Kind != "ClusterRole" {
			return nil, false
		}
	}
	r := a.roleOf(b)
	if r == nil {
		return nil, false
	}
	return r.rules, true
}

// rulesOf returns every rule u holds in namespace ns (only the
// cluster-wide ones when ns is empty).
func (a *Authorizer) rulesOf(u authn.UserInfo, ns string) []api.PolicyRule {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []api.PolicyRule
	for _, b := range a.clusterRoleBindings {
		if appliesTo(b, u) && b.ref.Kind == "ClusterRole" {
			if r := a.roleOf(b); r != nil {
				out = append(out, r.rules...)
			}
		}
	}
	if ns != "" {
		for _, b := range a.roleBindings[ns] {
			if appliesTo(b, u) {
				if r := a.roleOf(b); r != nil {
					out = append(out, r.rules...)
				}
			}
		}
	}
	return out
}

// covers reports whether the rules owned hold every permission of rule r,
// and if not, one permission they lack. A "*" in r is held only by a "*"
// in owned.
func covers(owned []api.PolicyRule, r api.PolicyRule) (string, bool) {
	names := r.ResourceNames
	if len(names) == 0 {
		names = []string{""}
	}
	for _, g := range r.APIGroups {
		for _, res := range r.Resources {
			for _, v := range r.Verbs {
				for _, n := range names {
					if !heldBy(owned, v, g, res, n) {
						p := fmt.Sprintf("%s on %q in API group %q", v, res, g)
						if n != "" {
							p += fmt.Sprintf(" named %q", n)
						}
						return p, false
					}
				}
			}
		}
	}
	return "", true
}

// heldBy reports whether some owned rule holds verb on resource of group,
// named name ("" for every name).
func heldBy(owned []api.PolicyRule, verb, group, resource, name string) bool {
	for i := range owned {
		o := &owned[i]
		if !has(o.Verbs, verb) || !has(o.APIGroups, group) || !resourceMatches(o.Resources, resource) {
			continue
		}
		if len(o.ResourceNames) == 0 || (name != "" && contains(o.ResourceNames, name)) {
			return true
		}
	}
	return false
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}
