package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go/micro"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
)

var (
	podKind       = api.KindOf(&api.Pod{})
	nodeKind      = api.KindOf(&api.Node{})
	namespaceKind = api.KindOf(&api.Namespace{})
	eventKind     = api.EventKind()
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

// badField is the 400 of a request field that cannot be used, naming the
// field and never echoing the value (it may be megabytes long).
func badField(field string, msgs []string) *api.Status {
	causes := make([]api.StatusCause, len(msgs))
	for i, m := range msgs {
		causes[i] = api.StatusCause{Field: field, Message: m}
	}
	return &api.Status{Code: 400, Reason: api.ReasonBadRequest, Causes: causes,
		Message: field + ": " + strings.Join(msgs, "; ")}
}

// maxKindLen bounds the kind of a request; no kind has a longer name.
const maxKindLen = 63

// scope resolves the kind name and the namespace of a request: "default"
// when a namespaced kind names none, "" for cluster-scoped kinds. The
// namespace must be a DNS-1123 label, as every namespace is: it becomes part
// of a key or subject, so a bad one is a 400 naming the field here, before
// anything is looked up.
func scope(kindName, ns string) (*api.Kind, string, error) {
	if kindName == "" {
		return nil, "", api.NewBadRequest("kind: required")
	}
	if len(kindName) > maxKindLen {
		return nil, "", badField("kind", []string{fmt.Sprintf("unknown kind (longer than %d bytes)", maxKindLen)})
	}
	k, err := api.LookupKind(kindName)
	if err != nil {
		return nil, "", badField("kind", []string{err.Error()})
	}
	if !k.Namespaced {
		return k, "", nil
	}
	if ns == "" {
		ns = api.DefaultNamespace
	}
	if msgs := validation.IsDNS1123Label(ns); len(msgs) > 0 {
		return nil, "", badField("namespace", msgs)
	}
	return k, ns, nil
}

// checkName returns a 400 naming the field "name" when name cannot be the
// name of an object of kind k (empty, too long, bad characters): no such
// object can exist, and the name would become part of a key.
func checkName(k *api.Kind, name string) error {
	if msgs := nameProblems(k, name); len(msgs) > 0 {
		return badField("name", msgs)
	}
	return nil
}

// nameProblems returns what is wrong with name as the name of an object of
// kind k (nothing when it is valid).
func nameProblems(k *api.Kind, name string) []string {
	if name == "" {
		return []string{"required"}
	}
	return api.ValidateName(k, name)
}

// parseGet decodes and checks a GetRequest body: the kind, namespace and
// name to read, each fit to be part of a key, and the revision to read at.
func parseGet(data []byte) (k *api.Kind, ns, name string, at readAt, err error) {
	var r api.GetRequest
	if err := decodeBody(data, &r, "GetRequest"); err != nil {
		return nil, "", "", at, err
	}
	if k, ns, err = scope(r.Kind, r.Namespace); err != nil {
		return nil, "", "", at, err
	}
	if at, err = parseReadRVOf(k, r.ResourceVersion); err != nil {
		return nil, "", "", at, err
	}
	if k == eventKind {
		if len(r.Name) == 0 || len(r.Name) > store.MaxNameLen+17 {
			return nil, "", "", at, badField("name", []string{"required, and not longer than an event's name"})
		}
		return k, ns, r.Name, at, nil
	}
	if err := checkName(k, r.Name); err != nil {
		return nil, "", "", at, err
	}
	return k, ns, r.Name, at, nil
}

// parseReadRVOf is parseReadRV for a read of kind k: events are read from
// their own stream, at its latest state, so they take no revision of the
// objects' store.
func parseReadRVOf(k *api.Kind, rv string) (readAt, error) {
	at, err := parseReadRV(rv)
	if err == nil && k == eventKind && !at.latest && at.rev != 0 {
		return at, badField("resourceVersion", []string{`events are read at their latest state: "" or "0" only`})
	}
	return at, err
}

func (s *Server) handleGet(req micro.Request) {
	k, ns, name, at, err := parseGet(req.Data())
	if err == nil {
		err = s.authorize(req, api.VerbGet, k.Plural, ns, name)
	}
	if err != nil {
		syncErr(req, err)
		return
	}
	if k == eventKind {
		s.dispatch(req, func(ctx context.Context) ([]byte, error) { return s.getEvent(ctx, ns, name) })
		return
	}
	s.dispatch(req, func(ctx context.Context) ([]byte, error) {
		// From the cache, once it holds every write acknowledged before
		// the request (consistent.go): a get through any server reads
		// what a write through any other returned.
		if err := s.awaitRead(ctx, at); err != nil {
			return nil, err
		}
		e := s.cache.get(k, ns, name)
		if e == nil {
			return nil, api.NewNotFound(k.Name, name)
		}
		return e.raw, nil
	})
}

// listHeadroom is room left in a list reply for its envelope and headers.
const listHeadroom = 4 << 10

// listQuery is a checked ListRequest.
type listQuery struct {
	k     *api.Kind
	ns    string             // "" for every namespace
	sel   *store.ListOptions // nil: no selector
	ev    *eventQuery        // for kind Event: its selectors
	limit int
	cont  string
	at    readAt
}

// maxContinueLen bounds a continue token: the key "<namespace>/<name>" of
// the last item of a page.
const maxContinueLen = store.MaxNamespaceLen + 1 + store.MaxNameLen

// parseList decodes and checks a ListRequest body: kind, namespace,
// selectors (parsed, fields limited to the selectable ones), limit and
// continue token.
func parseList(data []byte) (q listQuery, err error) {
	var r api.ListRequest
	if err := decodeBody(data, &r, "ListRequest"); err != nil {
		return q, err
	}
	if q.k, q.ns, err = scope(r.Kind, r.Namespace); err != nil {
		return q, err
	}
	if r.AllNamespaces {
		q.ns = ""
	}
	if q.k == eventKind {
		q.ev, err = parseEventQuery(r.LabelSelector, r.FieldSelector)
	} else {
		q.sel, err = parseSelectors(r.LabelSelector, r.FieldSelector)
	}
	if err != nil {
		return q, err
	}
	if r.Limit < 0 {
		return q, badField("limit", []string{"must not be negative"})
	}
	if len(r.Continue) > maxContinueLen {
		return q, badField("continue", []string{"not a continue token of this server (too long)"})
	}
	if q.at, err = parseReadRVOf(q.k, r.ResourceVersion); err != nil {
		return q, err
	}
	q.limit, q.cont = r.Limit, r.Continue
	return q, nil
}

func (s *Server) handleList(req micro.Request) {
	q, err := parseList(req.Data())
	if err != nil {
		syncErr(req, err)
		return
	}
	k, ns, sel := q.k, q.ns, q.sel
	if err := s.authorize(req, api.VerbList, k.Plural, ns, ""); err != nil {
		syncErr(req, err)
		return
	}
	if k == eventKind {
		s.dispatch(req, func(ctx context.Context) ([]byte, error) { return s.listEvents(ctx, ns, q.ev, q.limit) })
		return
	}
	s.dispatch(req, func(ctx context.Context) ([]byte, error) {
		if err := s.awaitRead(ctx, q.at); err != nil {
			return nil, err
		}
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
		s.cache.scan(k, ns, q.cont, func(key string, e *entry) bool {
			if match != nil && !match(e.obj) {
				return true
			}
			if (q.limit > 0 && n == q.limit) || (n > 0 && b.Len()+len(e.raw)+1 > budget) {
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
			return nil, badField("labelSelector", []string{err.Error()})
		}
	}
	if fieldSel != "" {
		if opts.Fields, err = fields.ParseSelector(fieldSel); err != nil {
			return nil, badField("fieldSelector", []string{err.Error()})
		}
		for _, req := range opts.Fields.Requirements() {
			switch req.Field {
			case "metadata.name", "metadata.namespace", "spec.nodeName", "status.phase":
			default:
				return nil, badField("fieldSelector", []string{fmt.Sprintf("field %q is not supported (use metadata.name, metadata.namespace, spec.nodeName or status.phase)", req.Field)})
			}
		}
	}
	return opts, nil
}

// parseDelete decodes and checks a DeleteRequest body; it returns the
// request with its kind resolved and namespace defaulted.
func parseDelete(data []byte) (r api.DeleteRequest, k *api.Kind, ns string, err error) {
	if err := decodeBody(data, &r, "DeleteRequest"); err != nil {
		return r, nil, "", err
	}
	k, ns, err = scope(r.Kind, r.Namespace)
	if err == nil && k == eventKind {
		err = api.NewMethodNotAllowed("events are deleted by the cluster when they age out, not on request")
	}
	if err == nil {
		err = checkName(k, r.Name)
	}
	if err == nil {
		err = checkPreconditions(r.Preconditions)
	}
	if err == nil && r.GracePeriodSeconds != nil && *r.GracePeriodSeconds < 0 {
		err = api.NewBadRequest("gracePeriodSeconds: must not be negative")
	}
	if err == nil {
		switch r.PropagationPolicy {
		case "", api.DeletePropagationBackground:
		case api.DeletePropagationForeground, api.DeletePropagationOrphan:
			if k == podKind || !k.Namespaced {
				err = badField("propagationPolicy", []string{fmt.Sprintf("%s is not supported for %s (only Background)", r.PropagationPolicy, k.Plural)})
			}
		default:
			err = badField("propagationPolicy", []string{fmt.Sprintf("unsupported value %q: supported values: \"Background\", \"Foreground\", \"Orphan\"", clip(r.PropagationPolicy))})
		}
	}
	if err == nil && k == namespaceKind && r.Name == api.DefaultNamespace {
		err = api.NewForbidden("namespace %q may not be deleted", api.DefaultNamespace)
	}
	if err != nil {
		return r, nil, "", err
	}
	return r, k, ns, nil
}

func (s *Server) handleDelete(req micro.Request) {
	r, k, ns, err := parseDelete(req.Data())
	if err == nil {
		err = s.authorize(req, api.VerbDelete, k.Plural, ns, r.Name)
	}
	if err != nil {
		syncErr(req, err)
		return
	}
	pre := r.Preconditions
	s.dispatch(req, func(ctx context.Context) ([]byte, error) {
		var obj api.Object
		var err error
		switch k {
		case podKind:
			obj, err = s.deletePod(ctx, ns, r.Name, r.GracePeriodSeconds, pre)
		case namespaceKind:
			obj, err = s.deleteNamespace(ctx, r.Name, r.GracePeriodSeconds, pre)
		default:
			if fin := finalizerOf(r.PropagationPolicy); fin != "" {
				obj, err = s.markDeleted(ctx, k, ns, r.Name, pre, fin)
				break
			}
			obj, err = s.deleteChecked(ctx, k, ns, r.Name, pre)
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

// checkPreconditions refuses malformed delete preconditions with a 400
// naming the field: a resourceVersion must be a revision, a uid not empty.
func checkPreconditions(p *api.Preconditions) error {
	if p == nil {
		return nil
	}
	if p.ResourceVersion != nil {
		if n, err := strconv.ParseUint(*p.ResourceVersion, 10, 64); err != nil || n == 0 {
			return badField("preconditions.resourceVersion", []string{"must be a resourceVersion read from the object (a positive integer)"})
		}
	}
	if p.UID != nil && (*p.UID == "" || len(*p.UID) > 128) {
		return badField("preconditions.uid", []string{"must be the object's uid"})
	}
	return nil
}

// holds returns a 409 Conflict naming the given and the stored values when
// obj (as stored) does not meet the preconditions p; nil when p is nil.
func holds(p *api.Preconditions, obj api.Object) error {
	if p == nil {
		return nil
	}
	m := obj.GetObjectMeta()
	kind := api.KindOf(obj).Name
	if p.UID != nil && *p.UID != m.UID {
		return api.NewConflict(kind, m.Name, fmt.Sprintf("precondition failed: uid %q given, stored %q", *p.UID, m.UID))
	}
	if p.ResourceVersion != nil && *p.ResourceVersion != m.ResourceVersion {
		return api.NewConflict(kind, m.Name, fmt.Sprintf("precondition failed: resourceVersion %s given, stored %s", *p.ResourceVersion, m.ResourceVersion))
	}
	return nil
}

// deleteChecked deletes an object of a kind without graceful deletion. With
// preconditions it reads the object, checks them, and deletes that revision
// only (compare-and-set), so nothing else is deleted in between.
func (s *Server) deleteChecked(ctx context.Context, k *api.Kind, ns, name string, pre *api.Preconditions) (api.Object, error) {
	if pre == nil {
		return s.st.Delete(ctx, k, ns, name, "")
	}
	var last api.Object
	err := casLoop(ctx, nil, func() error {
		obj, err := s.st.Get(ctx, k, ns, name)
		if err != nil {
			return err
		}
		if err := holds(pre, obj); err != nil {
			return err
		}
		last, err = s.st.Delete(ctx, k, ns, name, obj.GetObjectMeta().ResourceVersion)
		if api.IsConflict(err) {
			return again(err) // changed since read: check again
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return last, nil
}

// finalizerOf is the finalizer of a propagation policy that waits for the
// garbage collector ("" for Background).
func finalizerOf(policy string) string {
	switch policy {
	case api.DeletePropagationForeground:
		return api.FinalizerDeleteDependents
	case api.DeletePropagationOrphan:
		return api.FinalizerOrphanDependents
	}
	return ""
}

// markDeleted marks an object for deletion by the garbage collector:
// deletionTimestamp set and the finalizer added (compare-and-set on each
// read); the collector deletes (or orphans) its dependents and then the
// object. It returns the marked object.
func (s *Server) markDeleted(ctx context.Context, k *api.Kind, ns, name string, pre *api.Preconditions, finalizer string) (api.Object, error) {
	var out api.Object
	err := casLoop(ctx, nil, func() error {
		obj, err := s.st.Get(ctx, k, ns, name)
		if err != nil {
			return err
		}
		if err := holds(pre, obj); err != nil {
			return err
		}
		m := obj.GetObjectMeta()
		if m.DeletionTimestamp != nil && slices.Contains(m.Finalizers, finalizer) {
			out = obj
			return nil
		}
		if m.DeletionTimestamp == nil {
			now := time.Now().UTC().Truncate(time.Second)
			m.DeletionTimestamp = &now
		}
		if !slices.Contains(m.Finalizers, finalizer) {
			m.Finalizers = append(m.Finalizers, finalizer)
		}
		err = s.st.Update(ctx, obj)
		if api.IsConflict(err) || api.IsNotFound(err) {
			return again(err)
		}
		if err != nil {
			return err
		}
		s.writeThrough(obj)
		out = obj
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// deletePod removes an unbound (or orphaned) pod at once, and so does a
// grace period of 0 (force: the agent learns of it by the DELETED
// assignment and stops what is left). A pod bound to a node is marked for
// graceful deletion instead: deletionTimestamp and grace period set,
// removed when the node's agent reports it Finalized. It returns the
// deleted or marked pod.
//
// Preconditions (nil: none) are checked against every read of the pod, and
// each write is a compare-and-set on that read, so they hold at the write.
func (s *Server) deletePod(ctx context.Context, ns, name string, grace *int64, pre *api.Preconditions) (api.Object, error) {
	var out api.Object
	err := casLoop(ctx, nil, func() error {
		obj, err := s.st.Get(ctx, podKind, ns, name)
		if err != nil {
			return err
		}
		if err := holds(pre, obj); err != nil {
			return err
		}
		pod := obj.(*api.Pod)
		force := grace != nil && *grace == 0 // as Kubernetes: 0 removes at once
		if force || !s.needsGracefulDelete(ctx, pod) {
			last, err := s.st.Delete(ctx, podKind, ns, name, pod.ResourceVersion)
			if api.IsConflict(err) {
				return again(err)
			}
			if err != nil {
				return err
			}
			s.cache.remove(podKind, ns, name, revOf(last))
			out = last
			return nil
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
				out = pod
				return nil
			}
		} else {
			now := time.Now().UTC().Truncate(time.Second)
			pod.DeletionTimestamp = &now
		}
		pod.DeletionGracePeriodSeconds = &g
		err = s.st.Update(ctx, pod)
		if api.IsConflict(err) || api.IsNotFound(err) {
			return again(err)
		}
		if err != nil {
			return err
		}
		s.writeThrough(pod)
		out = pod
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
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

// deleteNamespace marks the namespace Terminating and deletes its pods; the
// namespace controller removes it once no pod is left (at once, or when the
// last pod's agent reports it finalized). It returns the namespace as
// marked.
func (s *Server) deleteNamespace(ctx context.Context, name string, grace *int64, pre *api.Preconditions) (api.Object, error) {
	var ns *api.Namespace
	err := casLoop(ctx, nil, func() error {
		obj, err := s.st.Get(ctx, namespaceKind, "", name)
		if err != nil {
			return err
		}
		if err := holds(pre, obj); err != nil {
			return err
		}
		ns = obj.(*api.Namespace)
		if ns.DeletionTimestamp != nil && ns.Status.Phase == api.NamespaceTerminating {
			return nil
		}
		now := time.Now().UTC().Truncate(time.Second)
		ns.DeletionTimestamp = &now
		ns.Status.Phase = api.NamespaceTerminating
		err = s.st.Update(ctx, ns)
		if api.IsConflict(err) {
			return again(err)
		}
		if err != nil {
			return err
		}
		s.writeThrough(ns)
		return nil
	})
	if err != nil {
		return nil, err
	}
	pods, _, err := s.st.List(ctx, podKind, listOptions(name))
	if err != nil {
		return nil, err
	}
	for _, p := range pods {
		if _, err := s.deletePod(ctx, name, p.GetObjectMeta().Name, grace, nil); err != nil && !api.IsNotFound(err) {
			return nil, err
		}
	}
	// The namespace controller (control/controllers/namespace) removes it
	// once no pod is left, as Kubernetes' does.
	return ns, nil
}
