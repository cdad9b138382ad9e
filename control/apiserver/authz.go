package apiserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/authn"
	"github.com/kybernetes/kybernetes/control/authz"
	"github.com/kybernetes/kybernetes/control/store"
)

// Who asks, and may they: every kyb.api.v1 verb authorizes its caller
// (authn.FromHeader) with RBAC (control/authz) before it reads or writes;
// node verbs accept only the node they name (or the control plane).

// identify returns the sender of req.
func (s *Server) identify(req micro.Request) (authn.UserInfo, error) {
	return s.cfg.Accounts.FromHeader(nats.Header(req.Headers()))
}

// AuthorizeHeader returns nil when the sender of a request with headers h
// may do verb on the cluster-scoped resource (name "" for any), for the
// control plane's other services (the auth service's credential verbs).
// Otherwise a 401 or 403 *api.Status.
func (s *Server) AuthorizeHeader(h nats.Header, verb, resource, name string) error {
	who, err := s.cfg.Accounts.FromHeader(h)
	if err != nil {
		return err
	}
	return s.authz.Authorize(authz.Attributes{User: who, Verb: verb, Resource: resource, Name: name})
}

// authorize returns nil when the sender of req may do verb on resource
// (a kind's plural such as "pods", a subresource "pods/log", or "modules")
// in namespace ns ("" for cluster-scoped resources and for every
// namespace), on the object name ("" for list and create). Otherwise it
// returns a 401 (unknown sender) or 403 (denied) *api.Status.
func (s *Server) authorize(req micro.Request, verb, resource, ns, name string) error {
	who, err := s.identify(req)
	if err != nil {
		return err
	}
	return s.authz.Authorize(authz.Attributes{User: who, Verb: verb, Resource: resource, Namespace: ns, Name: name})
}

// authorizeApply checks that the sender of req may create (when absent) or
// update (when present) every document of an apply, and that no Role or
// binding among them grants more than the sender holds. The 403 names the
// first document denied; nothing is stored when one is.
func (s *Server) authorizeApply(req micro.Request, docs []applyDoc) error {
	who, err := s.identify(req)
	if err != nil {
		return err
	}
	for i, d := range docs {
		m := d.obj.GetObjectMeta()
		verb := api.VerbCreate
		if e := s.cache.get(d.kind, m.Namespace, m.Name); e != nil {
			verb = api.VerbUpdate
		}
		attr := authz.Attributes{User: who, Verb: verb, Resource: d.kind.Plural, Namespace: m.Namespace, Name: m.Name}
		err := s.authz.Authorize(attr)
		if err == nil {
			err = s.authz.CheckEscalation(who, d.obj)
		}
		if err != nil {
			st := toStatus(err)
			cp := *st
			cp.Kind, cp.Name = d.kind.Name, m.Name
			if len(docs) > 1 {
				cp.Message = fmt.Sprintf("document %d (%s %q): %s; nothing was applied", i+1, d.kind.Name, m.Name, st.Message)
			}
			return &cp
		}
	}
	return nil
}

// nodeOnly wraps the handler of a kyb.node.<node>.<verb> endpoint: only
// the node principal of <node>, or the control plane, may call it; anyone
// else gets 403 (or 401 when unknown) and the handler does not run.
func (s *Server) nodeOnly(h func(micro.Request)) func(micro.Request) {
	return func(req micro.Request) {
		if err := s.authorizeNode(req); err != nil {
			syncErr(req, err)
			return
		}
		h(req)
	}
}

// authorizeNode checks that the sender of req is the node its subject
// names, or the control plane.
func (s *Server) authorizeNode(req micro.Request) error {
	who, err := s.identify(req)
	if err != nil {
		return err
	}
	node, err := nodeOf(req.Subject())
	if err != nil {
		return err
	}
	if who.Name == authn.ControlPlaneUser && who.InGroup(authn.GroupMasters) {
		return nil
	}
	if n, ok := authn.NodeName(who); ok && n == node {
		return nil
	}
	return api.NewForbidden("user %q may not speak for node %q on %s", who.Name, node, req.Subject())
}

// handleAuthz answers kyb.api.v1.authz: may the caller do this?
func (s *Server) handleAuthz(req micro.Request) {
	var r api.AuthzRequest
	if err := decodeBody(req.Data(), &r, "AuthzRequest"); err != nil {
		syncErr(req, err)
		return
	}
	attr, err := authzAttributes(r)
	if err == nil {
		attr.User, err = s.identify(req)
	}
	if err != nil {
		syncErr(req, err)
		return
	}
	ok, reason := s.authz.Allowed(attr)
	if !ok {
		reason = authz.Forbidden(attr, "").Message
	}
	b, err := jsonMarshal(api.AuthzReply{Allowed: ok, Reason: reason})
	if err != nil {
		syncErr(req, api.NewInternal(err))
		return
	}
	if err := req.Respond(b); err != nil {
		s.log.Warn("reply to authz", "err", err)
	}
}

// authzAttributes resolves an AuthzRequest: a kind's names, or a resource
// that is not a kind (a subresource such as pods/log, or modules).
func authzAttributes(r api.AuthzRequest) (authz.Attributes, error) {
	if r.Verb == "" {
		return authz.Attributes{}, api.NewBadRequest("verb: required")
	}
	if r.Kind == "" {
		return authz.Attributes{}, api.NewBadRequest("kind: required")
	}
	if len(r.Verb) > 64 || len(r.Kind) > 253 || len(r.Namespace) > 63 || len(r.Name) > 253 {
		return authz.Attributes{}, api.NewBadRequest("verb, kind, namespace or name too long")
	}
	base, sub, _ := strings.Cut(strings.ToLower(r.Kind), "/")
	attr := authz.Attributes{Verb: r.Verb, Namespace: r.Namespace, Name: r.Name}
	if k, err := api.LookupKind(base); err == nil {
		attr.Resource = k.Plural
		if !k.Namespaced {
			attr.Namespace = ""
		} else if attr.Namespace == "" {
			attr.Namespace = api.DefaultNamespace
		}
	} else {
		attr.Resource = base
		if base == authz.ResourceModules {
			attr.Namespace = "" // the module store is cluster-wide
		}
	}
	if sub != "" {
		attr.Resource += "/" + sub
	}
	return attr, nil
}

// observeRBAC keeps the authorizer's index in step with the store watch,
// and restores a built-in RBAC object that was changed or deleted (when
// live: the initial state is handled by ensureRBAC).
//
// A namespace that is terminating or deleted loses its Roles and
// RoleBindings, as Kubernetes' namespace controller deletes them, so that a
// namespace created again under the name does not inherit the old grants.
func (s *Server) observeRBAC(ctx context.Context, obj api.Object, deleted, live bool) {
	switch o := obj.(type) {
	case *api.Role, *api.ClusterRole, *api.RoleBinding, *api.ClusterRoleBinding:
	case *api.Namespace:
		if live && (deleted || o.Status.Phase == api.NamespaceTerminating) {
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				if err := s.deleteNamespaceRBAC(ctx, o.Name); err != nil && ctx.Err() == nil {
					s.log.Error("delete RBAC objects of namespace", "namespace", o.Name, "err", err)
				}
			}()
		}
		return
	default:
		return
	}
	if deleted {
		s.authz.Forget(obj)
	} else {
		s.authz.Observe(obj)
	}
	if !live || authz.Builtin(obj) == nil || (!deleted && authz.Drifted(obj) == nil) {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := s.ensureBuiltin(ctx, authz.Builtin(obj)); err != nil && ctx.Err() == nil {
			s.log.Error("restore built-in RBAC object", "kind", api.KindOf(obj).Name, "name", obj.GetObjectMeta().Name, "err", err)
		}
	}()
}

// deleteNamespaceRBAC deletes every Role and RoleBinding in namespace ns.
func (s *Server) deleteNamespaceRBAC(ctx context.Context, ns string) error {
	for _, k := range []*api.Kind{api.KindOf(&api.RoleBinding{}), api.KindOf(&api.Role{})} {
		objs, _, err := s.st.List(ctx, k, store.ListOptions{Namespace: ns})
		if err != nil {
			return fmt.Errorf("list %s: %w", k.Plural, err)
		}
		for _, o := range objs {
			name := o.GetObjectMeta().Name
			last, err := s.st.Delete(ctx, k, ns, name, "")
			if api.IsNotFound(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("delete %s %s/%s: %w", k.Name, ns, name, err)
			}
			s.cache.remove(k, ns, name, revOf(last))
		}
	}
	return nil
}

// ensureRBAC creates the built-in ClusterRoles and ClusterRoleBindings, or
// restores them to their built-in rules and subjects, as Kubernetes'
// autoupdate does on start.
func (s *Server) ensureRBAC(ctx context.Context) error {
	for _, b := range authz.Builtins() {
		if err := s.ensureBuiltin(ctx, b); err != nil {
			return fmt.Errorf("apiserver: ensure %s %s: %w", api.KindOf(b).Name, b.GetObjectMeta().Name, err)
		}
	}
	return nil
}

// ensureBuiltin creates want (a built-in object) when the store lacks it,
// and restores it when the stored one differs; the index sees the result
// at once.
func (s *Server) ensureBuiltin(ctx context.Context, want api.Object) error {
	kind := api.KindOf(want)
	name := want.GetObjectMeta().Name
	gaveUp := func() error { return api.NewConflict(kind.Name, name, "changed concurrently too often") }
	return casLoop(ctx, gaveUp, func() error {
		cur, err := s.st.Get(ctx, kind, "", name)
		if api.IsNotFound(err) {
			obj := api.DeepCopy(want)
			err = s.st.Create(ctx, obj)
			if api.IsAlreadyExists(err) {
				return again(err)
			}
			if err != nil {
				return err
			}
			s.writeThrough(obj)
			s.log.Info("created built-in RBAC object", "kind", kind.Name, "name", name)
			return nil
		}
		if err != nil {
			return err
		}
		fixed := authz.Drifted(cur)
		if fixed == nil {
			s.authz.Observe(cur)
			return nil
		}
		err = s.st.Update(ctx, fixed)
		if api.IsConflict(err) || api.IsNotFound(err) {
			return again(err)
		}
		if err != nil {
			return err
		}
		s.writeThrough(fixed)
		s.log.Info("restored built-in RBAC object", "kind", kind.Name, "name", name)
		return nil
	})
}
