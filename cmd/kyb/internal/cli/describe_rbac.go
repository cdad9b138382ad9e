package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/kybernetes/kybernetes/api"
)

// describeRole prints a Role or ClusterRole as kubectl does: its rules as
// a table of resources (resource.group), resource names and verbs.
func describeRole(w io.Writer, m *api.ObjectMeta, rules []api.PolicyRule) {
	kv(w, "Name", m.Name)
	if m.Namespace != "" {
		kv(w, "Namespace", m.Namespace)
	}
	kv(w, "Labels", mapText(m.Labels))
	kv(w, "Annotations", mapText(m.Annotations))
	fmt.Fprintln(w, "PolicyRule:")
	fmt.Fprintln(w, "  Resources\tResource Names\tVerbs")
	fmt.Fprintln(w, "  ---------\t--------------\t-----")
	for _, r := range rules {
		for _, res := range r.Resources {
			for _, g := range r.APIGroups {
				name := res
				if g != "" {
					name += "." + g
				}
				fmt.Fprintf(w, "  %s\t[%s]\t[%s]\n", name, strings.Join(r.ResourceNames, " "), strings.Join(r.Verbs, " "))
			}
		}
	}
}

// describeBinding prints a RoleBinding or ClusterRoleBinding as kubectl
// does: its role and a table of subjects.
func describeBinding(w io.Writer, m *api.ObjectMeta, ref api.RoleRef, subjects []api.Subject) {
	kv(w, "Name", m.Name)
	if m.Namespace != "" {
		kv(w, "Namespace", m.Namespace)
	}
	kv(w, "Labels", mapText(m.Labels))
	kv(w, "Annotations", mapText(m.Annotations))
	fmt.Fprintln(w, "Role:")
	kv(w, "  Kind", ref.Kind)
	kv(w, "  Name", ref.Name)
	fmt.Fprintln(w, "Subjects:")
	fmt.Fprintln(w, "  Kind\tName\tNamespace")
	fmt.Fprintln(w, "  ----\t----\t---------")
	for _, s := range subjects {
		fmt.Fprintf(w, "  %s\t%s\t%s\n", s.Kind, s.Name, s.Namespace)
	}
}
