package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/micro"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kybernetes/kybernetes/api"
	"github.com/kybernetes/kybernetes/control/store"
)

func listOptions(ns string) store.ListOptions { return store.ListOptions{Namespace: ns} }

// applyDoc is one validated document of an apply.
type applyDoc struct {
	kind     *api.Kind
	obj      api.Object
	warnings []string
	// alloc is what a Service's apply claimed (services.go), or nil.
	alloc *svcAlloc
}

// maxApplyAttempts bounds compare-and-set retries of one object.
const maxApplyAttempts = 20

// handleApply decodes and validates in the dispatched goroutine too:
// decoding YAML is the costliest step of an apply, and doing it on micro's
// one handler goroutine would cap the endpoint at one core.
func (s *Server) handleApply(req micro.Request) {
	data := req.Data()
	s.dispatch(req, func(ctx context.Context) ([]byte, error) {
		docs, err := s.prepareApply(ctx, data)
		if err != nil {
			return nil, err
		}
		if err := s.authorizeApply(req, docs); err != nil {
			return nil, err
		}
		// Services get their IPs and NodePorts before anything is written.
		allocs, err := s.allocateServices(ctx, docs)
		if err != nil {
			return nil, err
		}
		var b bytes.Buffer
		b.WriteString(`{"results":[`)
		for i, d := range docs {
			d.alloc = allocs[i]
			res, err := s.applyOne(ctx, d)
			if a := allocs[i]; a != nil && err == nil {
				a.claimed = nil // the Service holds them now
				s.releaseDropped(ctx, a)
			}
			if err != nil {
				s.releaseClaims(allocs)
				m := d.obj.GetObjectMeta()
				if len(docs) > 1 && i > 0 {
					// Earlier documents are applied: say so.
					st := toStatus(err)
					cp := *st
					cp.Message = fmt.Sprintf("document %d (%s %q): %s (documents 1-%d were applied)", i+1, d.kind.Name, m.Name, st.Message, i)
					return nil, &cp
				}
				return nil, err
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(res)
		}
		b.WriteString(`]}`)
		return b.Bytes(), nil
	})
}

// prepareApply decodes, defaults and validates every document of a
// manifest. It fails with one Status naming every problem of every
// document, so that nothing is stored unless all of them are valid.
func (s *Server) prepareApply(ctx context.Context, data []byte) ([]applyDoc, error) {
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, api.NewBadRequest("empty manifest")
	}
	decoded, err := api.Decode(data)
	if err != nil {
		var st *api.Status
		if errors.As(err, &st) {
			return nil, st
		}
		return nil, api.NewBadRequest("decode manifest: %v", err)
	}
	if len(decoded) == 0 {
		return nil, api.NewBadRequest("manifest holds no objects")
	}
	multi := len(decoded) > 1
	var causes []api.StatusCause
	var problems []string
	invalidDocs := 0
	allNotFound := true
	docs := make([]applyDoc, 0, len(decoded))
	seen := map[string]int{}
	newNamespaces := map[string]bool{}
	var conflicts []docConflict
	for i, d := range decoded {
		var dc []api.StatusCause
		add := func(field, msg string, notFound bool) {
			dc = append(dc, api.StatusCause{Field: field, Message: msg})
			allNotFound = allNotFound && notFound
		}
		// addInvalid adds the causes of a validation error, or the error itself.
		addInvalid := func(err error) {
			var st *api.Status
			if !errors.As(err, &st) || len(st.Causes) == 0 {
				add("", err.Error(), false)
				return
			}
			for _, c := range st.Causes {
				add(c.Field, c.Message, false)
			}
		}
		if d.Kind == nil || d.Object == nil {
			add("kind", "unknown kind", false)
		} else if d.Kind == eventKind {
			add("kind", "events are recorded by the cluster's components, not applied", false)
		} else {
			clearStatus(d.Object)
			api.Default(d.Object)
			m := d.Object.GetObjectMeta()
			if err := api.Validate(d.Object); err != nil {
				addInvalid(err)
			}
			id := d.Kind.Name + "/" + m.Namespace + "/" + m.Name
			if j, dup := seen[id]; dup {
				add("metadata.name", fmt.Sprintf("duplicate of document %d", j+1), false)
			}
			seen[id] = i
			if d.Kind == namespaceKind {
				newNamespaces[m.Name] = true
			}
			// A namespace that is not a valid name (reported above) is not
			// looked up: it could not be part of a key.
			if d.Kind.Namespaced && m.Namespace != "" && !newNamespaces[m.Namespace] && len(validation.IsDNS1123Label(m.Namespace)) == 0 {
				if msg, notFound := s.checkNamespace(ctx, m.Namespace); msg != "" {
					add("metadata.namespace", msg, notFound)
				}
			}
			if len(dc) == 0 {
				var cur api.Object
				if e := s.cache.get(d.Kind, m.Namespace, m.Name); e != nil {
					cur = e.obj
				}
				if m.ResourceVersion != "" {
					// A conditional apply: its precondition is checked
					// against the store (the cache may lag), for every
					// document before any is written.
					if !validRV(m.ResourceVersion) {
						add("metadata.resourceVersion", "must be a resourceVersion read from the object (a positive integer), or absent", false)
					} else {
						obj, err := s.st.Get(ctx, d.Kind, m.Namespace, m.Name)
						if err != nil && !api.IsNotFound(err) {
							return nil, fmt.Errorf("apply %s %s: read current: %w", d.Kind.Name, m.Name, err)
						}
						cur = obj
						if err := preconditionOf(d.Kind, m, cur); err != nil {
							conflicts = append(conflicts, docConflict{i: i, st: err})
						}
					}
				} else if cur != nil && m.UID != "" && m.UID != cur.GetObjectMeta().UID {
					conflicts = append(conflicts, docConflict{i: i, st: uidConflict(d.Kind, m, cur)})
				}
				if cur != nil && len(dc) == 0 {
					merged := merge(cur, api.DeepCopy(d.Object))
					if err := api.ValidateUpdate(cur, merged); err != nil {
						addInvalid(err)
					}
				}
			}
		}
		if len(dc) == 0 {
			docs = append(docs, applyDoc{kind: d.Kind, obj: d.Object, warnings: d.Warnings})
			continue
		}
		invalidDocs++
		what := "document"
		if d.Kind != nil && d.Object != nil {
			what = fmt.Sprintf("%s %q", d.Kind.Name, clip(d.Object.GetObjectMeta().Name))
		}
		for _, c := range dc {
			f := c.Field
			if multi {
				if f != "" {
					f = fmt.Sprintf("documents[%d].%s", i, f)
				} else {
					f = fmt.Sprintf("documents[%d]", i)
				}
				problems = append(problems, fmt.Sprintf("document %d (%s): %s", i+1, what, fieldMsg(c.Field, c.Message)))
			} else {
				problems = append(problems, fmt.Sprintf("%s: %s", what, fieldMsg(c.Field, c.Message)))
			}
			causes = append(causes, api.StatusCause{Field: f, Message: c.Message})
		}
	}
	if len(causes) == 0 && len(conflicts) == 0 {
		if err := s.admitPodSecurity(ctx, docs); err != nil {
			return nil, err
		}
		return docs, nil
	}
	if len(causes) == 0 {
		return nil, conflictStatus(conflicts, len(decoded))
	}
	st := &api.Status{Code: 422, Reason: api.ReasonInvalid, Causes: causes}
	if allNotFound {
		st.Code, st.Reason = 404, api.ReasonNotFound
	}
	if !multi {
		st.Kind = decoded[0].Object.GetTypeMeta().Kind
		st.Name = clip(decoded[0].Object.GetObjectMeta().Name)
		st.Message = strings.Join(problems, "; ")
	} else {
		st.Message = fmt.Sprintf("%d of %d documents are invalid, nothing was applied: %s", invalidDocs, len(decoded), strings.Join(problems, "; "))
	}
	return nil, st
}

// clip shortens a name that failed validation (it may be megabytes long)
// for an error message; a valid name is returned whole.
func clip(name string) string {
	const max = 253 // the longest valid name
	if len(name) <= max {
		return name
	}
	return name[:64] + fmt.Sprintf("... (%d bytes)", len(name))
}

// docConflict is a failed precondition of document i.
type docConflict struct {
	i  int
	st *api.Status
}

// conflictStatus is the one 409 of an apply whose documents are valid but
// some of whose preconditions fail: nothing was applied.
func conflictStatus(cs []docConflict, docs int) *api.Status {
	if docs == 1 {
		return cs[0].st
	}
	parts := make([]string, len(cs))
	for j, c := range cs {
		parts[j] = fmt.Sprintf("document %d: %s", c.i+1, c.st.Message)
	}
	return &api.Status{Code: 409, Reason: api.ReasonConflict,
		Message: fmt.Sprintf("%d of %d documents fail their preconditions, nothing was applied: %s", len(cs), docs, strings.Join(parts, "; "))}
}

// validRV reports whether rv can be a resourceVersion (a positive integer).
func validRV(rv string) bool {
	n, err := strconv.ParseUint(rv, 10, 64)
	return err == nil && n > 0
}

// preconditionOf checks an applied object's metadata.resourceVersion (and
// uid, when given) against cur, the stored object (nil: absent), as
// Kubernetes' optimistic concurrency does: a 409 Conflict naming both
// versions when they differ, and a 409 when the object does not exist (a
// create must not carry a resourceVersion: the object it was read from is
// gone). nil when m carries no resourceVersion.
func preconditionOf(kind *api.Kind, m *api.ObjectMeta, cur api.Object) *api.Status {
	if m.ResourceVersion == "" {
		return nil
	}
	if cur == nil {
		return api.NewConflict(kind.Name, m.Name, fmt.Sprintf("metadata.resourceVersion %s given, but the object does not exist: a create must not carry a resourceVersion", m.ResourceVersion))
	}
	if m.UID != "" && m.UID != cur.GetObjectMeta().UID {
		return uidConflict(kind, m, cur)
	}
	if stored := cur.GetObjectMeta().ResourceVersion; stored != m.ResourceVersion {
		return api.NewConflict(kind.Name, m.Name, fmt.Sprintf("metadata.resourceVersion %s given, stored %s: the object has been modified; read it again and apply your changes to that version", m.ResourceVersion, stored))
	}
	return nil
}

// uidConflict is the 409 of an applied metadata.uid that is not the stored
// object's: it was read from another object of that name (since deleted).
func uidConflict(kind *api.Kind, m *api.ObjectMeta, cur api.Object) *api.Status {
	return api.NewConflict(kind.Name, m.Name, fmt.Sprintf("metadata.uid %s given, stored %s: the object was deleted and created again", m.UID, cur.GetObjectMeta().UID))
}

// statusOf returns obj's Status field, settable; an invalid Value for a
// kind without one. Every kind keeps what the cluster writes there.
func statusOf(obj api.Object) reflect.Value {
	return reflect.ValueOf(obj).Elem().FieldByName("Status")
}

// clearStatus drops a status given in a manifest: status is the cluster's
// to write (agents, scheduler, controllers), never apply's.
func clearStatus(obj api.Object) {
	if f := statusOf(obj); f.IsValid() {
		f.SetZero()
	}
}

func fieldMsg(field, msg string) string {
	if field == "" {
		return msg
	}
	return field + ": " + msg
}

// checkNamespace returns a problem with applying into namespace ns ("" when
// there is none) and whether the problem is that it does not exist.
func (s *Server) checkNamespace(ctx context.Context, ns string) (string, bool) {
	var obj api.Object
	if e := s.cache.get(namespaceKind, "", ns); e != nil {
		obj = e.obj
	} else {
		// The cache may lag a namespace created a moment ago elsewhere.
		var err error
		if obj, err = s.st.Get(ctx, namespaceKind, "", ns); err != nil {
			if api.IsNotFound(err) {
				return fmt.Sprintf("namespace %q not found", ns), true
			}
			return fmt.Sprintf("look up namespace %q: %v", ns, err), false
		}
	}
	if obj.(*api.Namespace).Status.Phase == api.NamespaceTerminating {
		return fmt.Sprintf("namespace %q is being terminated", ns), false
	}
	return "", false
}

// merge returns applied made ready to update existing: the server-set
// metadata and the status are kept from existing, as are the fields the
// cluster fills in (a pod's nodeName, a node's pod CIDRs) when applied
// leaves them empty. applied is changed in place.
func merge(existing, applied api.Object) api.Object {
	em, am := existing.GetObjectMeta(), applied.GetObjectMeta()
	am.UID = em.UID
	am.CreationTimestamp = em.CreationTimestamp
	am.ResourceVersion = em.ResourceVersion
	am.Generation = em.Generation
	am.DeletionTimestamp = em.DeletionTimestamp
	am.DeletionGracePeriodSeconds = em.DeletionGracePeriodSeconds
	if am.Finalizers == nil {
		am.Finalizers = em.Finalizers
	}
	if am.OwnerReferences == nil {
		am.OwnerReferences = em.OwnerReferences
	}
	// The status stays the cluster's, whatever the kind.
	if f := statusOf(applied); f.IsValid() {
		f.Set(statusOf(existing))
	}
	switch a := applied.(type) {
	case *api.Pod:
		if a.Spec.NodeName == "" {
			a.Spec.NodeName = existing.(*api.Pod).Spec.NodeName
		}
	case *api.Node:
		e := existing.(*api.Node)
		if a.Spec.PodCIDR == "" {
			a.Spec.PodCIDR = e.Spec.PodCIDR
		}
		if a.Spec.PodCIDRs == nil {
			a.Spec.PodCIDRs = e.Spec.PodCIDRs
		}
	case *api.Job:
		mergeJob(existing.(*api.Job), a)
	case *api.ReplicaSet, *api.Deployment:
		keepControllerAnnotations(em, am)
	case *api.Service:
		mergeService(existing.(*api.Service), a)
	}
	return applied
}

// mergeJob keeps the selector and pod labels a Job's controller
// generated when an apply leaves them out (a manifest without
// manualSelector never names them).
func mergeJob(e, a *api.Job) {
	if a.Spec.Selector != nil || e.Spec.Selector == nil || (e.Spec.ManualSelector != nil && *e.Spec.ManualSelector) {
		return
	}
	a.Spec.Selector = api.DeepCopy(&api.Job{Spec: api.JobSpec{Selector: e.Spec.Selector}}).Spec.Selector
	for _, k := range []string{api.LabelControllerUID, api.LabelLegacyControllerUID, api.LabelJobName, api.LabelLegacyJobName} {
		v, ok := e.Spec.Template.Labels[k]
		if !ok {
			continue
		}
		if _, set := a.Spec.Template.Labels[k]; set {
			continue
		}
		if a.Spec.Template.Labels == nil {
			a.Spec.Template.Labels = map[string]string{}
		}
		a.Spec.Template.Labels[k] = v
	}
}

// keepControllerAnnotations keeps the annotations the Deployment
// controller writes (deployment.kubernetes.io/: the revision, ...) when an
// applied manifest does not set them, so re-applying a manifest is
// "unchanged" and does not erase a rollout's revision.
func keepControllerAnnotations(existing, applied *api.ObjectMeta) {
	for k, v := range existing.Annotations {
		if !strings.HasPrefix(k, "deployment.kubernetes.io/") {
			continue
		}
		if _, ok := applied.Annotations[k]; ok {
			continue
		}
		if applied.Annotations == nil {
			applied.Annotations = map[string]string{}
		}
		applied.Annotations[k] = v
	}
}

// specOf returns what apply compares to decide "unchanged".
func specOf(o api.Object) any {
	m := o.GetObjectMeta()
	// Every field but the type, the metadata and the status: spec, or
	// rules, subjects and roleRef for RBAC kinds.
	spec := map[string]any{}
	v := reflect.ValueOf(o).Elem()
	for i := range v.NumField() {
		switch f := v.Type().Field(i); f.Name {
		case "TypeMeta", "ObjectMeta", "Status":
		default:
			spec[f.Name] = v.Field(i).Interface()
		}
	}
	return struct {
		Labels      map[string]string `json:"l,omitempty"`
		Annotations map[string]string `json:"a,omitempty"`
		Owners      any               `json:"o,omitempty"`
		Spec        any               `json:"s"`
	}{m.Labels, m.Annotations, m.OwnerReferences, spec}
}

func sameSpec(a, b api.Object) bool { return sameJSON(specOf(a), specOf(b)) }

// applyOne creates or updates one document and returns its ApplyResult JSON.
func (s *Server) applyOne(ctx context.Context, d applyDoc) ([]byte, error) {
	m := d.obj.GetObjectMeta()
	// Applies of one object through this server take turns, so they do
	// not fail each other's compare-and-set; other writers still may.
	mu := s.stripe(d.kind, m.Namespace, m.Name)
	mu.Lock()
	defer mu.Unlock()
	if m.ResourceVersion != "" {
		return s.applyConditional(ctx, d)
	}
	fromStore := false
	var out []byte
	gaveUp := func() error {
		return api.NewConflict(d.kind.Name, m.Name, fmt.Sprintf("changed concurrently %d times in a row; try again", maxApplyAttempts))
	}
	err := casLoop(ctx, gaveUp, func() error {
		retrying := fromStore
		var existing api.Object
		if fromStore {
			obj, err := s.st.Get(ctx, d.kind, m.Namespace, m.Name)
			if err != nil && !api.IsNotFound(err) {
				return fmt.Errorf("apply %s %s/%s: read current: %w", d.kind.Name, m.Namespace, m.Name, err)
			}
			existing = obj
		} else if e := s.cache.get(d.kind, m.Namespace, m.Name); e != nil {
			existing = e.obj
		}
		fromStore = true // every later attempt reads the store
		var err error
		if existing == nil {
			obj := d.obj
			if retrying {
				obj = api.DeepCopy(d.obj)
				clearServerMeta(obj)
			}
			err = s.st.Create(ctx, obj)
			if api.IsAlreadyExists(err) {
				return again(err)
			}
			if err != nil {
				return err
			}
			out, err = s.result(d, obj, api.ActionCreated)
			return err
		}
		applied := api.DeepCopy(d.obj)
		if d.alloc != nil {
			d.alloc.adoptStored(existing.(*api.Service), applied.(*api.Service))
		}
		merged := merge(existing, applied)
		if sameSpec(existing, merged) {
			out, err = s.result(d, existing, api.ActionUnchanged)
			return err
		}
		if err := api.ValidateUpdate(existing, merged); err != nil {
			return err
		}
		err = s.st.Update(ctx, merged)
		if api.IsConflict(err) || api.IsNotFound(err) {
			return again(err)
		}
		if err != nil {
			return err
		}
		out, err = s.result(d, merged, api.ActionConfigured)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// applyConditional writes one document that carries metadata.resourceVersion:
// only over that stored revision (compare-and-set), never retried, as a
// Kubernetes update with a resourceVersion. A stale version (or a deleted
// object) is a 409 Conflict naming both versions.
func (s *Server) applyConditional(ctx context.Context, d applyDoc) ([]byte, error) {
	m := d.obj.GetObjectMeta()
	existing, err := s.st.Get(ctx, d.kind, m.Namespace, m.Name)
	if err != nil && !api.IsNotFound(err) {
		return nil, fmt.Errorf("apply %s %s/%s: read current: %w", d.kind.Name, m.Namespace, m.Name, err)
	}
	if st := preconditionOf(d.kind, m, existing); st != nil {
		return nil, st
	}
	merged := merge(existing, api.DeepCopy(d.obj))
	if sameSpec(existing, merged) {
		return s.result(d, existing, api.ActionUnchanged)
	}
	if err := api.ValidateUpdate(existing, merged); err != nil {
		return nil, err
	}
	err = s.st.Update(ctx, merged)
	if api.IsConflict(err) || api.IsNotFound(err) {
		// Changed (or deleted) since read: name the version now stored.
		cur, gerr := s.st.Get(ctx, d.kind, m.Namespace, m.Name)
		if gerr != nil && !api.IsNotFound(gerr) {
			return nil, err
		}
		if st := preconditionOf(d.kind, m, cur); st != nil {
			return nil, st
		}
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	return s.result(d, merged, api.ActionConfigured)
}

// stripe returns the lock that serializes this server's writes of one object.
func (s *Server) stripe(kind *api.Kind, ns, name string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(kind.Name))
	h.Write([]byte{0})
	h.Write([]byte(ns))
	h.Write([]byte{0})
	h.Write([]byte(name))
	return &s.stripes[h.Sum32()%uint32(len(s.stripes))]
}

func clearServerMeta(obj api.Object) {
	m := obj.GetObjectMeta()
	m.UID, m.ResourceVersion, m.Generation = "", "", 0
	m.CreationTimestamp = time.Time{}
}

// result records obj in the cache (when it was written) and returns the
// JSON of its ApplyResult.
func (s *Server) result(d applyDoc, obj api.Object, action string) ([]byte, error) {
	var raw []byte
	if action == api.ActionUnchanged {
		if e := s.cache.get(d.kind, obj.GetObjectMeta().Namespace, obj.GetObjectMeta().Name); e != nil && e.obj == obj {
			raw = e.raw
		}
	} else {
		raw = s.writeThrough(obj)
	}
	if raw == nil {
		var err error
		if raw, err = encode(obj); err != nil {
			return nil, err
		}
	}
	// Built by hand: json.Marshal would re-validate and copy raw.
	m := obj.GetObjectMeta()
	head, err := jsonMarshal(api.ApplyResult{
		Kind: d.kind.Name, Namespace: m.Namespace, Name: m.Name,
		Action: action, Warnings: d.warnings, Object: json.RawMessage("null"),
	})
	if err != nil {
		return nil, err
	}
	head = head[:len(head)-len(`null}`)]
	out := make([]byte, 0, len(head)+len(raw)+1)
	out = append(append(append(out, head...), raw...), '}')
	return out, nil
}
