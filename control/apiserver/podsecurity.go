package apiserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/admission/podsecurity"
)

// admitPodSecurity checks every Pod of an apply against the Pod Security
// level its namespace enforces (podsecurity.NamespaceLevel), after the
// apply validated and before anything of it is stored. A Namespace of the
// same apply counts with the labels it is applied with. It returns nil or
// one 403 Forbidden Status naming every violation of every pod, each cause
// with its field path (prefixed `documents[i].` in a multi-document apply,
// as validation's are), so that a multi-document apply stores nothing.
func (s *Server) admitPodSecurity(ctx context.Context, docs []applyDoc) error {
	applied := map[string]*api.Namespace{}
	for _, d := range docs {
		if ns, ok := d.obj.(*api.Namespace); ok {
			applied[ns.Name] = ns
		}
	}
	multi := len(docs) > 1
	var causes []api.StatusCause
	var problems []string
	var kind, name string
	for i, d := range docs {
		pod, prefix, what := podOf(d.obj)
		if pod == nil {
			continue
		}
		ns := applied[pod.Namespace]
		if ns == nil {
			var err error
			if ns, err = s.namespaceOf(ctx, pod.Namespace); err != nil {
				return err
			}
		}
		level := podsecurity.NamespaceLevel(ns)
		pc := podsecurity.Check(level, pod)
		if len(pc) == 0 {
			continue
		}
		kind, name = api.KindOf(d.obj).Name, pod.Name
		parts := make([]string, len(pc))
		for j, c := range pc {
			c.Field = prefix + c.Field
			parts[j] = c.Field + ": " + c.Message
			if multi {
				c.Field = fmt.Sprintf("documents[%d].%s", i, c.Field)
			}
			causes = append(causes, c)
		}
		problems = append(problems, fmt.Sprintf("%s %q is forbidden: violates PodSecurity %q of namespace %q: %s", what, pod.Name, level, pod.Namespace, strings.Join(parts, "; ")))
	}
	if len(causes) == 0 {
		return nil
	}
	st := api.NewForbidden("%s", strings.Join(problems, "; "))
	if multi {
		st.Message += " (nothing was applied)"
	} else {
		st.Kind, st.Name = kind, name
	}
	st.Causes = causes
	return st
}

// podOf returns the pod an applied object is or makes: a Pod itself, or
// the pod of a workload's template (its controller creates such pods
// without passing admission, so the template is admitted here, where
// Kubernetes only warns), with the field prefix of the template's spec
// and what to call the object in a message; nil for other kinds.
func podOf(obj api.Object) (*api.Pod, string, string) {
	var t *api.PodTemplateSpec
	var m *api.ObjectMeta
	switch o := obj.(type) {
	case *api.Pod:
		return o, "", "pod"
	case *api.ReplicaSet:
		t, m = &o.Spec.Template, &o.ObjectMeta
	case *api.Deployment:
		t, m = &o.Spec.Template, &o.ObjectMeta
	case *api.DaemonSet:
		t, m = &o.Spec.Template, &o.ObjectMeta
	case *api.StatefulSet:
		t, m = &o.Spec.Template, &o.ObjectMeta
	default:
		return nil, "", ""
	}
	pod := &api.Pod{ObjectMeta: api.ObjectMeta{Name: m.Name, Namespace: m.Namespace, Labels: t.Labels, Annotations: t.Annotations}, Spec: t.Spec}
	return pod, "spec.template.", strings.ToLower(api.KindOf(obj).Name)
}

// namespaceOf returns the namespace ns from the cache, else from the store
// (the cache may lag a namespace created a moment ago elsewhere).
func (s *Server) namespaceOf(ctx context.Context, ns string) (*api.Namespace, error) {
	if e := s.cache.get(namespaceKind, "", ns); e != nil {
		return e.obj.(*api.Namespace), nil
	}
	obj, err := s.st.Get(ctx, namespaceKind, "", ns)
	if err != nil {
		return nil, fmt.Errorf("pod security admission: look up namespace %q: %w", ns, err)
	}
	return obj.(*api.Namespace), nil
}
