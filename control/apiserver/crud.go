package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"strconv"
	"time"

	"github.com/nats-io/nats.go/micro"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
)

var (
	podKind       = api.KindOf(&api.Pod{})
	nodeKind      = api.KindOf(&api.Node{})
	namespaceKind = api.KindOf(&api.Namespace{})
)

// decodeBody unmarshals a JSON request body, with a 400 naming the shape.
func decodeBody(data []byte, v any, what string) error {
	if len(bytes.TrimSpace(data)) == 0 {
		return api.NewBadRequest("empty request: expected a JSON %s", what)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return api.NewBadRequest("decode %s: %v", what, err)
	}
	return nil
}

// scope resolves the kind name and the namespace of a request: "default"
// when a namespaced kind names none, "" for cluster-scoped kinds.
func scope(kindName, ns string) (*api.Kind, string, error) {
	if kindName == "" {
		return nil, "", api.NewBadRequest("kind: required")
	}
	k, err := api.LookupKind(kindName)
	if err != nil {
		return nil, "", api.NewBadRequest("kind: %v", err)
	}
	if !k.Namespaced {
		return k, "", nil
	}
	if ns == "" {
		ns = api.DefaultNamespace
	}
	return k, ns, nil
}

func (s *Server) handleGet(req micro.Request) {
	var r api.GetRequest
	if err := decodeBody(req.Data(), &r, "GetRequest"); err != nil {
		syncErr(req, err)
		return
	}
	k, ns, err := scope(r.Kind, r.Namespace)
	if err == nil && r.Name == "" {
		err = api.NewBadRequest("name: required")
	}
	if err != nil {
		syncErr(req, err)
		return
	}
	s.dispatch(req, func(ctx context.Context) ([]byte, error) {
		obj, err := s.st.Get(ctx, k, ns, r.Name)
		if err != nil {
			return nil, err
		}
		return encode(obj)
	})
}

// listHeadroom is room left in a list reply for its envelope and headers.
const listHeadroom = 4 << 10

func (s *Server) handleList(req micro.Request) {
	var r api.ListRequest
	if err := decodeBody(req.Data(), &r, "ListRequest"); err != nil {
		syncErr(req, err)
		return
	}
	k, ns, err := scope(r.Kind, r.Namespace)
	if err != nil {
		syncErr(req, err)
		return
	}
	if r.AllNamespaces {
		ns = ""
	}
	sel, err := parseSelectors(r.LabelSelector, r.FieldSelector)
	if err != nil {
		syncErr(req, err)
		return
	}
	if r.Limit < 0 {
		syncErr(req, api.NewBadRequest("limit: must not be negative"))
		return
	}
	s.dispatch(req, func(ctx context.Context) ([]byte, error) {
		var match func(api.Object) bool
		if sel != nil {
			// The store's selector matching, so a list answers the same
			// whether it is served from this cache or read from the store.
			match = sel.Matches
		}
		budget := int(s.nc.MaxPayload()) - listHeadroom
		var b bytes.Buffer
		b.WriteString(`{"kind":"`)
		b.WriteString(k.Name)
		b.WriteString(`List","resourceVersion":"`)
		// The revision before the scan: a watch from it may repeat a change
		// the list holds, but never misses one.
		b.WriteString(strconv.FormatUint(s.cache.revision(), 10))
		b.WriteString(`","items":[`)
		n, next, last := 0, "", ""
		s.cache.scan(k, ns, r.Continue, func(key string, e *entry) bool {
			if match != nil && !match(e.obj) {
				return true
			}
			if (r.Limit > 0 && n == r.Limit) || (n > 0 && b.Len()+len(e.raw)+1 > budget) {
				next = last
				return false
			}
			if n > 0 {
				b.WriteByte(',')
			}
			b.Write(e.raw)
			n++
			last = key
			return true
		})
		b.WriteByte(']')
		if next != "" {
			b.WriteString(`,"continue":`)
			c, _ := json.Marshal(next)
			b.Write(c)
		}
		b.WriteByte('}')
		return b.Bytes(), nil
	})
}

// parseSelectors parses a request's label and field selectors into store
// ListOptions (nil when both are empty), with a 400 naming the field.
func parseSelectors(labelSel, fieldSel string) (*store.ListOptions, error) {
	if labelSel == "" && fieldSel == "" {
		return nil, nil
	}
	opts := &store.ListOptions{}
	var err error
	if labelSel != "" {
		if opts.Labels, err = labels.Parse(labelSel); err != nil {
			return nil, api.NewBadRequest("labelSelector: %v", err)
		}
	}
	if fieldSel != "" {
		if opts.Fields, err = fields.ParseSelector(fieldSel); err != nil {
			return nil, api.NewBadRequest("fieldSelector: %v", err)
		}
		for _, req := range opts.Fields.Requirements() {
			switch req.Field {
			case "metadata.name", "metadata.namespace", "spec.nodeName", "status.phase":
			default:
				return nil, api.NewBadRequest("fieldSelector: field %q is not supported (use metadata.name, metadata.namespace, spec.nodeName or status.phase)", req.Field)
			}
		}
	}
	return opts, nil
}

func (s *Server) handleDelete(req micro.Request) {
	var r api.DeleteRequest
	if err := decodeBody(req.Data(), &r, "DeleteRequest"); err != nil {
		syncErr(req, err)
		return
	}
	k, ns, err := scope(r.Kind, r.Namespace)
	if err == nil && r.Name == "" {
		err = api.NewBadRequest("name: required")
	}
	if err == nil && r.GracePeriodSeconds != nil && *r.GracePeriodSeconds < 0 {
		err = api.NewBadRequest("gracePeriodSeconds: must not be negative")
	}
	if err == nil && k == namespaceKind && r.Name == api.DefaultNamespace {
		err = api.NewForbidden("namespace %q may not be deleted", api.DefaultNamespace)
	}
	if err != nil {
		syncErr(req, err)
		return
	}
	s.dispatch(req, func(ctx context.Context) ([]byte, error) {
		var obj api.Object
		var err error
		switch k {
		case podKind:
			obj, err = s.deletePod(ctx, ns, r.Name, r.GracePeriodSeconds)
		case namespaceKind:
			obj, err = s.deleteNamespace(ctx, r.Name, r.GracePeriodSeconds)
		default:
			obj, err = s.st.Delete(ctx, k, ns, r.Name, "")
			if err == nil {
				s.cache.remove(k, ns, r.Name, revOf(obj))
			}
			if err == nil && k == nodeKind && s.hb != nil {
				if ferr := s.hb.Forget(ctx, r.Name); ferr != nil {
					s.log.Warn("forget heartbeat of deleted node", "node", r.Name, "err", ferr)
				}
			}
		}
		if err != nil {
			return nil, err
		}
		return encode(obj)
	})
}

// deletePod removes an unbound (or orphaned) pod at once, and so does a
// grace period of 0 (force: the agent learns of it by the DELETED
// assignment and stops what is left). A pod bound to a node is marked for
// graceful deletion instead: deletionTimestamp and grace period set,
// removed when the node's agent reports it Finalized. It returns the
// deleted or marked pod.
func (s *Server) deletePod(ctx context.Context, ns, name string, grace *int64) (api.Object, error) {
	for attempt := 0; ; attempt++ {
		if attempt > 1 {
			if err := backoff(ctx, attempt); err != nil {
				return nil, err
			}
		}
		obj, err := s.st.Get(ctx, podKind, ns, name)
		if err != nil {
			return nil, err
		}
		pod := obj.(*api.Pod)
		force := grace != nil && *grace == 0 // as Kubernetes: 0 removes at once
		if force || !s.needsGracefulDelete(ctx, pod) {
			last, err := s.st.Delete(ctx, podKind, ns, name, pod.ResourceVersion)
			if api.IsConflict(err) && attempt < maxApplyAttempts {
				continue
			}
			if err != nil {
				return nil, err
			}
			s.cache.remove(podKind, ns, name, revOf(last))
			return last, nil
		}
		g := int64(s.cfg.DefaultGracePeriod / time.Second)
		if pod.Spec.TerminationGracePeriodSeconds != nil {
			g = *pod.Spec.TerminationGracePeriodSeconds
		}
		if grace != nil {
			g = *grace
		}
		if pod.DeletionTimestamp != nil {
			// Already terminating: only a shorter grace period changes anything.
			if pod.DeletionGracePeriodSeconds == nil || g >= *pod.DeletionGracePeriodSeconds {
				return pod, nil
			}
		} else {
			now := time.Now().UTC().Truncate(time.Second)
			pod.DeletionTimestamp = &now
		}
		pod.DeletionGracePeriodSeconds = &g
		err = s.st.Update(ctx, pod)
		if (api.IsConflict(err) || api.IsNotFound(err)) && attempt < maxApplyAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.writeThrough(pod)
		return pod, nil
	}
}

// needsGracefulDelete reports whether an agent must stop the pod before it
// is removed: it is bound to a node that still exists.
func (s *Server) needsGracefulDelete(ctx context.Context, pod *api.Pod) bool {
	if pod.Spec.NodeName == "" {
		return false
	}
	_, err := s.st.Get(ctx, nodeKind, "", pod.Spec.NodeName)
	return !api.IsNotFound(err)
}

// deleteNamespace marks the namespace Terminating, deletes its pods, and
// removes it once no pod is left (at once, or when the last pod's agent
// reports it finalized). It returns the namespace as deleted or marked.
func (s *Server) deleteNamespace(ctx context.Context, name string, grace *int64) (api.Object, error) {
	var ns *api.Namespace
	for attempt := 0; ; attempt++ {
		if attempt > 1 {
			if err := backoff(ctx, attempt); err != nil {
				return nil, err
			}
		}
		obj, err := s.st.Get(ctx, namespaceKind, "", name)
		if err != nil {
			return nil, err
		}
		ns = obj.(*api.Namespace)
		if ns.DeletionTimestamp != nil && ns.Status.Phase == api.NamespaceTerminating {
			break
		}
		now := time.Now().UTC().Truncate(time.Second)
		ns.DeletionTimestamp = &now
		ns.Status.Phase = api.NamespaceTerminating
		err = s.st.Update(ctx, ns)
		if api.IsConflict(err) && attempt < maxApplyAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		s.writeThrough(ns)
		break
	}
	pods, _, err := s.st.List(ctx, podKind, listOptions(name))
	if err != nil {
		return nil, err
	}
	for _, p := range pods {
		if _, err := s.deletePod(ctx, name, p.GetObjectMeta().Name, grace); err != nil && !api.IsNotFound(err) {
			return nil, err
		}
	}
	done, err := s.finishNamespace(ctx, name)
	if done != nil {
		return done, nil
	}
	if err != nil {
		return nil, err
	}
	return ns, nil
}

// maybeFinishNamespace removes a terminating namespace whose last pod is
// gone; called by the watch after a pod deletion.
func (s *Server) maybeFinishNamespace(ctx context.Context, ns string) {
	e := s.cache.get(namespaceKind, "", ns)
	if e == nil || e.obj.(*api.Namespace).Status.Phase != api.NamespaceTerminating || s.cache.podCount(ns) > 0 {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if _, err := s.finishNamespace(ctx, ns); err != nil {
			s.log.Error("finish namespace", "namespace", ns, "err", err)
		}
	}()
}

// finishNamespace deletes the terminating namespace when the store holds no
// pod in it. It returns the deleted namespace, or nil when pods remain.
func (s *Server) finishNamespace(ctx context.Context, name string) (api.Object, error) {
	for attempt := 0; attempt < maxApplyAttempts; attempt++ {
		if attempt > 1 {
			if err := backoff(ctx, attempt); err != nil {
				return nil, err
			}
		}
		obj, err := s.st.Get(ctx, namespaceKind, "", name)
		if api.IsNotFound(err) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if obj.(*api.Namespace).Status.Phase != api.NamespaceTerminating {
			return nil, nil
		}
		pods, _, err := s.st.List(ctx, podKind, listOptions(name))
		if err != nil {
			return nil, err
		}
		if len(pods) > 0 {
			return nil, nil
		}
		last, err := s.st.Delete(ctx, namespaceKind, "", name, obj.GetObjectMeta().ResourceVersion)
		if api.IsConflict(err) {
			continue
		}
		if api.IsNotFound(err) {
			return obj, nil // removed by a concurrent finisher
		}
		if err != nil {
			return nil, err
		}
		s.cache.remove(namespaceKind, "", name, revOf(last))
		return last, nil
	}
	return nil, api.NewConflict("Namespace", name, "changed too often while being removed")
}
