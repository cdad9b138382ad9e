package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"maps"
	"slices"

	"github.com/nats-io/nats.go/micro"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
)

// --- a node's ConfigMaps and Secrets ---------------------------------------

// podReferences reports whether pod references the ConfigMap or Secret
// kind/ns/name (api.ConfigRefs: env, envFrom, volumes, projected sources,
// imagePullSecrets).
func podReferences(p *api.Pod, kind, ns, name string) bool {
	if p.Namespace != ns {
		return false
	}
	return slices.Contains(api.ConfigRefs(&p.Spec), api.ConfigRef{Kind: kind, Name: name})
}

// nodeMayReadConfig reports whether a pod bound to node references the
// ConfigMap or Secret, as the cache sees it now: Kubernetes' node
// authorizer rule.
func (s *Server) nodeMayReadConfig(node, kind, ns, name string) bool {
	found := false
	s.cache.podsOn(node, func(p *api.Pod) bool {
		found = podReferences(p, kind, ns, name)
		return !found
	})
	return found
}

// parseConfigRequest decodes and checks a ConfigRequest: kind ConfigMap
// or Secret, a namespace that is a DNS-1123 label, a name that is a
// DNS-1123 subdomain (so none can become an odd key or subject).
func parseConfigRequest(data []byte) (api.ConfigRequest, *api.Kind, error) {
	var r api.ConfigRequest
	if err := decodeBody(data, &r, "ConfigRequest"); err != nil {
		return r, nil, err
	}
	var kind *api.Kind
	switch r.Kind {
	case "ConfigMap":
		kind = api.ConfigMapKind()
	case "Secret":
		kind = api.SecretKind()
	default:
		return r, nil, api.NewBadRequest("kind: unsupported value %q: supported values: \"ConfigMap\", \"Secret\"", clip(r.Kind))
	}
	if msgs := validation.IsDNS1123Label(r.Namespace); len(msgs) > 0 {
		return r, nil, badField("namespace", msgs)
	}
	if msgs := api.ValidateName(kind, r.Name); len(msgs) > 0 {
		return r, nil, badField("name", msgs)
	}
	return r, kind, nil
}

// handleNodeConfig answers kyb.node.<node>.config: the ConfigMap or Secret
// a pod bound to the node references; 403 for anything else (another
// node's, or nobody's), 404 when a referenced one does not exist.
func (s *Server) handleNodeConfig(req micro.Request) {
	node, err := nodeOf(req.Subject())
	if err != nil {
		syncErr(req, err)
		return
	}
	r, kind, err := parseConfigRequest(req.Data())
	if err != nil {
		syncErr(req, err)
		return
	}
	if !s.nodeMayReadConfig(node, r.Kind, r.Namespace, r.Name) {
		syncErr(req, api.NewForbidden("node %q may not read %s %s/%s: no pod bound to it references it", node, r.Kind, r.Namespace, r.Name))
		return
	}
	s.dispatchNode(req, func(context.Context) ([]byte, error) {
		e := s.cache.get(kind, r.Namespace, r.Name)
		if e == nil {
			return nil, api.NewNotFound(r.Kind, r.Name)
		}
		return e.raw, nil
	})
}

// publishConfigNotice tells every node with a pod that references the
// changed ConfigMap or Secret (a notice without values; the agent fetches
// the object through its node verb), so that its files are updated and a
// container waiting for it starts. A rewrite that changed no value (a
// label, or the re-encryption of a key rotation) is not announced.
func (s *Server) publishConfigNotice(obj, prev api.Object, typ string) {
	if typ == api.EventModified && prev != nil && sameConfig(obj, prev) {
		return
	}
	kind := api.KindOf(obj).Name
	m := obj.GetObjectMeta()
	nodes := s.cache.nodesReferencing(kind, m.Namespace, m.Name)
	if len(nodes) == 0 {
		return
	}
	b, err := json.Marshal(api.ConfigNotice{Type: typ, Kind: kind, Namespace: m.Namespace, Name: m.Name, ResourceVersion: m.ResourceVersion})
	if err != nil {
		return
	}
	for _, node := range nodes {
		subject := api.AgentSubject(node, api.AgentVerbConfig)
		if !publishable(subject) {
			continue
		}
		if err := s.nc.Publish(subject, b); err != nil {
			s.log.Warn("publish config notice", "node", node, "err", err)
		}
	}
}

// nodesReferencing returns the nodes with a live pod that references the
// ConfigMap or Secret kind/ns/name.
func (c *cache) nodesReferencing(kind, ns, name string) []string {
	c.mu.RLock()
	defer c.mu.RUnlock()
	var out []string
	for node, pods := range c.podsByNode {
		for _, e := range pods {
			if podReferences(e.obj.(*api.Pod), kind, ns, name) {
				out = append(out, node)
				break
			}
		}
	}
	return out
}

// sameConfig reports whether two versions of a ConfigMap or Secret hold the
// same values (what a pod sees of it).
func sameConfig(a, b api.Object) bool {
	switch x := a.(type) {
	case *api.ConfigMap:
		y, ok := b.(*api.ConfigMap)
		return ok && maps.Equal(x.Data, y.Data) && maps.EqualFunc(x.BinaryData, y.BinaryData, bytes.Equal)
	case *api.Secret:
		y, ok := b.(*api.Secret)
		return ok && x.Type == y.Type && maps.EqualFunc(x.Data, y.Data, bytes.Equal)
	}
	return false
}
